"""The bench's measurement rules (not its ratios), the upstream-way arm, and the ONNX export."""

from __future__ import annotations

import importlib.util
import json
import os
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from microast_video.bench.arms import clock, median_run, ratio_range
from microast_video.bench.upstream_way import UpstreamWay
from microast_video.cli import app
from microast_video.core.process import openmp_wait_setting, openmp_waits
from microast_video.models.export import ContentPath, FullNetwork

runner = CliRunner()


def sleeps(*seconds: float):
    for s in seconds:
        time.sleep(s)
        yield s


def test_the_timing_rule_leaves_out_the_warm_up_and_counts_the_end():
    t = clock(sleeps(0.3, 0.05, 0.05), warmup=1)
    assert t.measured == 2 and 0.09 < t.seconds < 0.25  # the slow first frame is not measured
    assert t.fps == pytest.approx(2 / t.seconds)
    ended = clock(sleeps(0.05, 0.05), warmup=1, end=lambda: time.sleep(0.2))
    assert ended.seconds > 0.24  # the last frame is done when the end (the file complete) is
    with pytest.raises(ValueError, match="warm-up"):
        clock(sleeps(0.01), warmup=1)


def test_an_arm_of_several_rounds_is_its_median_run_and_ratios_pair_rounds():
    runs = [{"fps": f, "peak_rss_mb": 100 + i} for i, f in enumerate((2.0, 1.0, 4.0))]
    arm = median_run(runs)
    assert arm["fps"] == 2.0 and arm["peak_rss_mb"] == 100  # the median run's own figures, whole
    assert arm["runs_fps"] == [2.0, 1.0, 4.0]  # every run, in round order
    assert median_run(runs[:2])["fps"] == 1.0  # an even count: the lower middle, not a mean
    peer = median_run([{"fps": f} for f in (1.0, 1.0, 2.0)])
    assert ratio_range(arm, peer) == (1.0, 2.0)  # round by round: 2/1, 1/1, 4/2
    with pytest.raises(ValueError, match="at least one run"):
        median_run([])


def test_repeat_runs_every_arm_once_per_round(env, tmp_path):
    out = tmp_path / "bench.json"
    r = runner.invoke(app, ["bench", "--resolution", "64x48", "--frames", "1", "--warmup", "1", "--device", "cpu",
                            "--preset", "ultrafast", "--compile", "off", "--no-naive", "--repeat", "2",
                            "--json", str(out)])
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["repeat"] == 2
    assert all(len(data["model"][arm]["runs_fps"]) == 2 for arm in ("ours", "ours-fp32"))
    assert all(len(data["pipeline"][arm]["runs_fps"]) == 2 for arm in ("ours", "ours, temporal off"))
    lo, hi = data["ratio_ranges"]["ours / ours-fp32"]
    assert lo <= hi and "by round" in r.stdout and "the median of 2 rounds" in r.stdout
    e2e, model = data["pipeline"]["ours"]["runs_fps"], data["model"]["ours"]["runs_fps"]
    per_round = [a / b for a, b in zip(e2e, model)]  # the end-to-end ratio pairs runs of one round
    assert data["ratio_ranges"]["end-to-end / model-only (ours)"] == pytest.approx([min(per_round), max(per_round)])
    bad = runner.invoke(app, ["bench", "--repeat", "0"])
    assert bad.exit_code != 0 and "--repeat" in bad.output


def test_every_ratio_comes_with_its_range_by_round():
    """With --repeat, each ratio, the end-to-end one against the upstream way included, is
    paired round by round (figures made up: only the bookkeeping is under test)."""
    from microast_video.bench.bench import BenchOptions, _figures

    def arm(*fps: float, **extra: object) -> dict:
        return {"fps": sorted(fps)[len(fps) // 2], "runs_fps": list(fps), **extra}

    model = {"ours": arm(2.0, 1.0, 3.0, macs_per_pixel=1.0, precision="bfloat16"), "naive": arm(1.0, 1.0, 1.0)}
    pipeline = {"ours": arm(1.0, 0.5, 3.0), "naive": arm(0.5, 0.25, 1.0), "ours, temporal off": arm(1.5, 1.0, 1.5)}
    got = _figures(BenchOptions(resolution=(64, 48), repeat=3), (64, 48), model, pipeline,
                   {"bf16_gflops": 1.0, "fp32_gflops": 1.0})
    assert got["ratios"]["end-to-end ours / naive"] == pytest.approx(2.0)
    assert got["ratio_ranges"]["end-to-end ours / naive"] == pytest.approx((2.0, 3.0))  # 2/1, 0.5/0.25, 3/1
    assert got["ratio_ranges"]["end-to-end / model-only (ours)"] == pytest.approx((0.5, 1.0))
    assert set(got["ratio_ranges"]) == set(got["ratios"])


def test_the_upstream_way_gives_the_projects_pixels(model):
    x, style = torch.rand(1, 3, 48, 64), torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        theirs = UpstreamWay(model)(x, style)
        ours = model(x, model.encode_style(style))
    assert float((theirs - ours).abs().max()) < 1e-4


def test_every_arm_is_measured_the_same_way(env, tmp_path):
    out = tmp_path / "bench.json"
    args = ["bench", "--resolution", "64x48", "--frames", "2", "--warmup", "1", "--device", "cpu",
            "--preset", "ultrafast", "--compile", "off", "--json", str(out)]
    peers = all(importlib.util.find_spec(m) for m in ("onnxscript", "onnxruntime", "openvino"))
    r = runner.invoke(app, args + (["--peers"] if peers else []))
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    arms = {**{f"model {k}": v for k, v in data["model"].items()}, **{f"e2e {k}": v for k, v in data["pipeline"].items()}}
    expected = {"model ours", "model ours-fp32", "model naive", "model naive+alloc", "e2e ours", "e2e naive",
                "e2e ours, temporal off"}
    if peers:
        expected |= {"model onnxruntime-fp32", "model openvino-fp32", "model openvino-bf16"}
    assert expected <= set(arms)
    for name, arm in arms.items():
        if "skipped" in arm:
            assert name == "model openvino-bf16", (name, arm)  # only a CPU without bf16 skips it
            continue
        assert arm["warmup_frames"] == 1 and arm["measured_frames"] == 2, name
        assert arm["threads"] == data["ceiling"]["threads"], name  # the same threads everywhere
        assert arm["openmp_wait"] == data["ceiling"]["openmp_wait"] == openmp_wait_setting(openmp_waits(os.environ))
    assert arms["model naive"]["allocator"] == "glibc default" and arms["model naive+alloc"]["allocator"] == "tuned"
    assert arms["e2e ours"]["frames_written"] == arms["e2e ours, temporal off"]["frames_written"] == 3
    assert arms["e2e ours"]["temporal"]["on"] and not arms["e2e ours, temporal off"]["temporal"]["on"]
    assert data["ratios"]["end-to-end, temporal off / model-only"] == pytest.approx(
        arms["e2e ours, temporal off"]["fps"] / arms["model ours"]["fps"])
    assert data["ratios"]["ours / naive"] == pytest.approx(arms["model ours"]["fps"] / arms["model naive"]["fps"])
    assert 0 < data["share_of_peak"] and data["gflop_per_frame"] == pytest.approx(2 * 27772 * 64 * 48 / 1e9, rel=0.02)
    assert "first frame after" in r.stdout and "% of what this machine's matrix units reach" in r.stdout
    table = r.stdout.splitlines()
    top = next(i for i, line in enumerate(table) if "s/frame" in line)
    assert table[top].split() == ["s/frame", "fps", "min/min", "peak", "MB"]
    arms = table[top + 1:table.index("", top)]
    rows = [line for line in arms if line.startswith("    ") and "skipped" not in line]
    assert len(rows) >= 6 and any(line.startswith("    upstream code as published, fp32") for line in rows)
    assert all(line.split(",")[-1].split()[0] in ("bf16", "fp32", "fp16") for line in rows), rows  # precision named
    assert "naive+alloc" not in r.stdout and "GOMP_SPINCOUNT" not in r.stdout.split("(threads, allocator")[0]
    columns = {line.index(line.split()[-4]) + len(line.split()[-4]) for line in rows if "skipped" not in line}
    assert len(columns) == 1  # the s/frame column ends in the same place on every row: aligned
    spf = float(rows[0].split()[-4])
    assert float(rows[0].split()[-2]) == pytest.approx(24 * spf, abs=0.06)  # min/min = s/frame x 24


def test_bench_without_weights_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", str(tmp_path / "none"))
    r = runner.invoke(app, ["bench", "--resolution", "64x48"])
    assert r.exit_code != 0 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output


# --- export ---------------------------------------------------------------------------------

@pytest.fixture()
def style_path(tmp_path):
    import cv2

    from microast_video.media.procedural import painting

    path = tmp_path / "style.png"
    cv2.imwrite(str(path), painting(96, seed=3))
    return path


def run_onnx(path, *inputs: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'microast-video[onnx]' (CI has it)")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})[0]


def test_export_with_a_style_matches_pytorch(env, model, tmp_path, style_path):
    pytest.importorskip("onnxscript", reason="the onnx extra: pip install 'microast-video[onnx]' (CI has it)")
    out = tmp_path / "m.onnx"
    r = runner.invoke(app, ["export", "--onnx", str(out), "--style", str(style_path), "--size", "96x64"])
    assert r.exit_code == 0, r.output
    from microast_video import compute_signals

    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = ContentPath(model, compute_signals(model, [style_path]))(x).numpy()
    assert np.abs(run_onnx(out, x.numpy()) - expected).max() < 1e-4


def test_dynamic_export_takes_any_size_and_the_style_as_input(env, model, tmp_path):
    pytest.importorskip("onnxscript", reason="the onnx extra: pip install 'microast-video[onnx]' (CI has it)")
    out = tmp_path / "full.onnx"
    r = runner.invoke(app, ["export", "--onnx", str(out), "--dynamic"])
    assert r.exit_code == 0, r.output
    style = torch.rand(1, 3, 80, 64, generator=torch.Generator().manual_seed(1))
    for h, w in ((48, 64), (72, 128)):
        x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h))
        with torch.inference_mode():
            expected = FullNetwork(model)(x, style).numpy()
        got = run_onnx(out, x.numpy(), style.numpy())
        assert got.shape == (1, 3, h, w) and np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize(("args", "needle"), [
    (["--size", "96x64", "--dynamic"], "not both"),
    (["--size", "big"], "--size"),
    (["--style", "missing.jpg"], "missing.jpg"),
])
def test_export_errors_are_one_line(env, tmp_path, args, needle):
    r = runner.invoke(app, ["export", "--onnx", str(tmp_path / "m.onnx"), *args])
    assert r.exit_code != 0 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_the_arms_take_the_device_they_are_given(model):
    """bench --device cuda crashed: the MAC count and the upstream-way arm built CPU tensors for a
    CUDA model, and the ceiling was a CPU matmul. Each now works on its model's device."""
    import numpy as np

    from microast_video.bench.arms import naive_frames
    from microast_video.bench.children import macs_per_pixel

    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        net = model.to(device)
        try:
            assert macs_per_pixel(net) > 1000
            (out,) = naive_frames(net, torch.rand(1, 3, 32, 32), [np.zeros((24, 32, 3), np.uint8)])
            assert out.shape == (24, 32, 3) and out.dtype == np.uint8
        finally:
            model.to("cpu")


def test_a_compiled_cuda_arm_warms_up_past_the_graph_recording():
    """One warm-up frame timed the CUDA-graph recording (made on one of the first calls)."""
    from microast_video.bench.children import _warmup

    args = {"warmup": 1, "batch_size": 2, "compile": "on"}
    assert _warmup(args, torch.device("cuda")) >= 4 * 2  # every call that may record, untimed
    assert _warmup(args, torch.device("cpu")) == 1
    assert _warmup({**args, "compile": "off"}, torch.device("cuda")) == 1
