"""--decode: NVDEC on a CUDA job where FFmpeg decodes the codec there, the CPU otherwise
(with a note on a GPU job), and an error for --decode gpu where it cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import lavfi_clip, make_style, one_line_error, run_cli

from microast_video import probe
from microast_video.core.options import Decode
from microast_video.core.errors import InputError
from microast_video.jobs import plan as plan_module
from microast_video.jobs.plan import VideoJob, choose_decoder
from microast_video.media.decode import decode_frames, nvdec_problem


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return lavfi_clip(tmp_path_factory.mktemp("nvdec") / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")


def test_a_cpu_job_decodes_on_the_cpu_without_a_word(clip):
    job = VideoJob(input=clip, styles=())
    assert choose_decoder(job, probe(clip), torch.device("cpu")) == (None, None)


def test_decode_gpu_on_a_cpu_job_is_one_line(clip, tmp_path):
    style = make_style(tmp_path / "s.png")
    result = run_cli("video", clip, "--style", style, "--decode", "gpu", "--device", "cpu", "-o", tmp_path / "o.mp4")
    one_line_error(result, "--decode gpu needs a CUDA device")
    assert not (tmp_path / "o.mp4").exists()


def test_where_nvdec_cannot_a_gpu_job_says_why_and_decodes_on_the_cpu(clip, monkeypatch):
    monkeypatch.setattr(plan_module, "nvdec_problem", lambda info, gpu: "this FFmpeg has no CUDA decoding")
    job = VideoJob(input=clip, styles=())
    gpu, note = choose_decoder(job, probe(clip), torch.device("cuda:1"))
    assert gpu is None and note == "decoding on the CPU: this FFmpeg has no CUDA decoding"
    with pytest.raises(InputError, match="c.mp4: --decode gpu: this FFmpeg has no CUDA decoding"):
        choose_decoder(VideoJob(input=clip, styles=(), decode=Decode.gpu), probe(clip), torch.device("cuda:1"))
    assert choose_decoder(VideoJob(input=clip, styles=(), decode=Decode.cpu), probe(clip),
                          torch.device("cuda:1")) == (None, None)


def test_where_nvdec_can_a_gpu_job_decodes_on_its_own_gpu(clip, monkeypatch):
    asked = []
    monkeypatch.setattr(plan_module, "nvdec_problem", lambda info, gpu: asked.append(gpu))
    assert choose_decoder(VideoJob(input=clip, styles=()), probe(clip), torch.device("cuda:1")) == ("1", None)
    assert asked == ["1"]


def test_nvdec_problem_names_the_reason_and_never_raises(clip, tmp_path):
    problem = nvdec_problem(probe(clip), "0")
    if torch.cuda.is_available() and problem is None:
        return  # a machine with NVDEC: the CUDA-marked test below compares its frames
    assert isinstance(problem, str) and problem
    gif = lavfi_clip(tmp_path / "c.gif", "testsrc2=size=32x32:rate=10:duration=0.2", out=("-c:v", "gif"))
    assert nvdec_problem(probe(gif), "0") == "NVDEC does not decode gif"


def test_the_manifest_takes_decode_and_refuses_a_bad_value():
    from microast_video.core.schema import MANIFEST_OPTIONS, OPTIONS

    assert "decode" in MANIFEST_OPTIONS and OPTIONS["decode"].parse("gpu") is Decode.gpu
    with pytest.raises(ValueError, match="auto, cpu, gpu|auto|cpu"):
        OPTIONS["decode"].parse("nvdec-please")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_nvdec_frames_match_the_cpu_decode(clip):
    info = probe(clip)
    if (problem := nvdec_problem(info, "0")) is not None:
        pytest.fail(f"a CUDA machine whose FFmpeg cannot use NVDEC: {problem}")
    cpu = [f.data for f in decode_frames(info)]
    gpu = [f.data for f in decode_frames(info, gpu="0")]
    assert len(cpu) == len(gpu) and all(np.abs(a.astype(int) - b).mean() < 1.0 for a, b in zip(cpu, gpu))
