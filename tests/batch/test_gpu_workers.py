"""Several batch workers per GPU where one job leaves it idle: the default from the frame
size, the spread over the GPUs, the limit, and the option on the command line."""

from __future__ import annotations

import pytest
import torch
from helpers import run_cli

from microast_video.batch import jobs
from microast_video.core.errors import OptionError


@pytest.mark.parametrize(("size", "cpus", "want"), [((3840, 2160), 16, 2), ((1920, 1080), 16, 4),
                                                    ((7680, 4320), 16, 1), ((640, 360), 16, 4),
                                                    ((1920, 1080), 8, 2), ((1920, 1080), 2, 1)])
def test_the_default_workers_per_gpu_follow_the_frame_size_and_the_cores(size, cpus, want):
    assert jobs.workers_per_gpu(size[0] * size[1], cpus) == want


def fake_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_workers_are_spread_over_the_gpus(monkeypatch):
    fake_gpus(monkeypatch, 2)
    assert jobs._worker_devices(4, 2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert jobs._worker_devices(1, 3) == ["cuda:0"]


def test_more_workers_than_the_gpus_take_is_one_line(monkeypatch):
    fake_gpus(monkeypatch, 2)
    with pytest.raises(OptionError, match="--workers 5 .* 2 GPU.*--workers-per-gpu is 2: at most 4 workers"):
        jobs._worker_devices(5, 2)


def test_without_gpus_every_worker_is_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert jobs._worker_devices(3, 2) == [None, None, None]


def test_the_batch_command_takes_workers_per_gpu_and_refuses_zero(tmp_path):
    result = run_cli("batch", "--help")
    assert "--workers-per-gpu" in result.output
    bad = run_cli("batch", str(tmp_path / "m.toml"), "--workers-per-gpu", "0")
    assert bad.exit_code == 2 and "--workers-per-gpu" in bad.output


def test_the_batch_default_comes_from_its_largest_frame_and_the_option_wins():
    from types import SimpleNamespace

    from microast_video.batch.types import BatchOptions

    runs = [SimpleNamespace(plan=SimpleNamespace(encode=SimpleNamespace(size=size))) for size in
            [(1920, 1080), (3840, 2160)]]
    assert jobs._per_gpu(runs, BatchOptions()) == jobs.workers_per_gpu(3840 * 2160)
    assert jobs._per_gpu(runs, BatchOptions(workers_per_gpu=3)) == 3
