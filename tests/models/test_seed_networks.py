"""AdaIN and Johnson feed-forward networks on the same pipeline: conformance with the upstream
code's outputs (weights loaded through the files users give: torch.save'd state dicts under
the upstream keys), and end to end through the video, image and batch commands."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path
from helpers import lavfi_clip, make_style, one_line_error, run_cli

from microast_video import decode_frames, probe
from microast_video.core.options import Network
from microast_video.style.networks import load_network


@pytest.fixture(scope="module")
def adain_dir(tmp_path_factory):
    """AdaIN's two files as users have them (vgg_normalised.pth with keys to 52.*, decoder.pth)."""
    w = np.load(shared_path("conformance", "adain", "weights.npz"))
    d = tmp_path_factory.mktemp("adain")
    vgg = {k[4:]: torch.from_numpy(w[k]) for k in w.files if k.startswith("vgg/")}
    vgg["52.weight"], vgg["52.bias"] = torch.zeros(512, 512, 3, 3, dtype=torch.float16)[:1], torch.zeros(1)  # unused rest
    torch.save(vgg, d / "vgg_normalised.pth")
    torch.save({k[8:]: torch.from_numpy(w[k]) for k in w.files if k.startswith("decoder/")}, d / "decoder.pth")
    return d


@pytest.fixture(scope="module")
def johnson_model(tmp_path_factory):
    """An old-style published checkpoint: the TransformerNet keys plus inN.running_mean/var."""
    w = np.load(shared_path("conformance", "johnson", "weights.npz"))
    path = tmp_path_factory.mktemp("johnson") / "mosaic.pth"
    torch.save({k: torch.from_numpy(w[k]) for k in w.files}, path)
    return path


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("case", ["a_64x96_a1", "a_72x100_a0", "a_120x160_a06"])
def test_adain_matches_the_upstream_code(adain_dir, case):
    d = np.load(shared_path("conformance", "adain", f"{case}.npz"))
    net = load_network(Network.adain, weights=adain_dir)
    with torch.no_grad():
        signals = net.encode_style(torch.from_numpy(d["style"]))
        out = net.raw(torch.from_numpy(d["content"]), signals, float(d["alpha"]))
        product = net(torch.from_numpy(d["content"]), signals, float(d["alpha"]))
    assert out.shape == d["output"].shape and rel(out, torch.from_numpy(d["output"])) < 1e-4
    assert product.shape[-2:] == d["content"].shape[-2:]  # the product gives back the input's size


@pytest.mark.parametrize("case", ["j_64x96", "j_121x77", "j_100x148"])
def test_johnson_matches_the_upstream_code(johnson_model, case):
    d = np.load(shared_path("conformance", "johnson", f"{case}.npz"))
    net = load_network(Network.johnson, style_model=str(johnson_model))
    with torch.no_grad():
        out = net.raw(torch.from_numpy(d["content"]))
        product = net(torch.from_numpy(d["content"]) / 255)
    assert out.shape == d["output"].shape and rel(out, torch.from_numpy(d["output"])) < 1e-4
    assert product.shape[-2:] == d["content"].shape[-2:] and 0 <= float(product.min()) <= float(product.max()) <= 1


def test_files_that_are_not_the_networks_are_one_line(tmp_path, adain_dir, johnson_model):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")
    for args, needle in [(["--style-model", tmp_path / "junk.pth"], "not a PyTorch checkpoint"),
                         (["--style-model", tmp_path / "wrong.pth"], "not a fast_neural_style TransformerNet"),
                         ([], "needs --style-model")]:
        one_line_error(run_cli("video", clip, "--network", "johnson", *args, "-o", tmp_path / "o.mp4"), needle)
    result = run_cli("video", clip, "--network", "adain", "--style", make_style(tmp_path / "s.png"), "--weights",
                     tmp_path, "-o", tmp_path / "o.mp4")
    one_line_error(result, "vgg_normalised.pth", "missing")
    result = run_cli("video", clip, "--network", "johnson", "--style-model", johnson_model, "--style",
                     make_style(tmp_path / "s.png"), "-o", tmp_path / "o.mp4")
    one_line_error(result, "style built in")
    assert not (tmp_path / "o.mp4").exists()


def test_both_networks_run_end_to_end_with_the_temporal_stage(tmp_path, adain_dir, johnson_model):
    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=100x68:rate=25:duration=0.4")
    style = make_style(tmp_path / "s.png")
    run_cli("video", clip, "--network", "adain", "--style", style, "--weights", adain_dir, "--codec", "ffv1", "-o",
            tmp_path / "a.mkv", "--report", tmp_path / "a.json", "-q", expect=0)
    run_cli("video", clip, "--network", "johnson", "--style-model", johnson_model, "--codec", "ffv1", "-o",
            tmp_path / "j.mkv", "-q", "--strength", "0.5", expect=0)
    source = [f.data for f in decode_frames(probe(clip))]
    for name in ("a.mkv", "j.mkv"):
        out = [f.data for f in decode_frames(probe(tmp_path / name))]
        assert len(out) == len(source) == 10 and out[0].shape == source[0].shape  # the input's size, 100x68
        assert np.abs(out[0].astype(int) - source[0]).mean() > 2
    assert json.loads((tmp_path / "a.json").read_text())["temporal"]["on"]


def test_a_johnson_network_with_a_matte_paints_inside_it_only(tmp_path, johnson_model):
    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.3")
    matte = tmp_path / "m.png"
    m = np.zeros((64, 96), np.uint8)
    m[:, :48] = 255
    cv2.imwrite(str(matte), m)
    run_cli("video", clip, "--network", "johnson", "--style-model", johnson_model, "--matte", matte, "--codec", "ffv1",
            "-o", tmp_path / "o.mkv", "-q", expect=0)
    out = [f.data.astype(int) for f in decode_frames(probe(tmp_path / "o.mkv"))]
    src = [f.data.astype(int) for f in decode_frames(probe(clip))]
    assert all(np.array_equal(o[:, 60:], s[:, 60:]) for o, s in zip(out, src))
    assert np.abs(out[0][:, :40] - src[0][:, :40]).mean() > 2


def test_the_image_command_and_a_batch_look_name_their_network(tmp_path, adain_dir, johnson_model, monkeypatch):
    content = tmp_path / "photo.png"
    cv2.imwrite(str(content), cv2.resize(cv2.imread(str(make_style(tmp_path / "p.png", seed=5))), (72, 56)))
    run_cli("image", content, "--network", "johnson", "--style-model", johnson_model, "-o", tmp_path / "j.png", "-q",
            expect=0)
    assert cv2.imread(str(tmp_path / "j.png")).shape == (56, 72, 3)
    monkeypatch.setenv("MICROAST_VIDEO_ADAIN_WEIGHTS", str(adain_dir))
    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.3")
    (tmp_path / "jobs.toml").write_text(f"""output = "{{stem}}_{{look}}.mkv"
output_dir = "{tmp_path / 'out'}"
[defaults]
codec = "ffv1"
[[inputs]]
path = "{clip}"
[looks.adain]
style = "{make_style(tmp_path / 's.png')}"
network = "adain"
[looks.mosaic]
network = "johnson"
style_model = "{johnson_model}"
""")
    result = run_cli("batch", tmp_path / "jobs.toml", "-q")
    assert result.exit_code == 0, result.stderr
    assert probe(tmp_path / "out" / "c_adain.mkv").frames == probe(tmp_path / "out" / "c_mosaic.mkv").frames == 8


def test_a_frame_too_large_for_8_gb_is_refused_before_any_work(tmp_path, adain_dir):
    """AdaIN's whole-frame pass took 10.07 GB at UHD (benchmarks/networks.py): refused, with a height that fits."""
    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=3840x2160:rate=25:duration=0.04")
    result = run_cli("video", clip, "--network", "adain", "--style", make_style(tmp_path / "s.png"), "--weights",
                     adain_dir, "-o", tmp_path / "o.mp4")
    line = one_line_error(result, "--network adain at 3840x2160", "8 GB", "--height")
    height = int(line.split("--height ")[1].split()[0])
    assert 1800 <= height < 2160


def test_the_bench_measures_a_seed_network_as_it_measures_this_tool(tmp_path, adain_dir, johnson_model):
    """`bench --network adain --network johnson`: each an arm on the same frames (a fresh process)."""
    from microast_video.bench.bench import ARM_WORDS, run_child

    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")
    common = {"input": str(clip), "style": str(make_style(tmp_path / "s.png")), "frames": 2, "warmup": 1,
              "device": "cpu", "batch_size": 1, "precision": "auto"}
    for network in ("adain", "johnson"):
        arm = run_child("network", {**common, "network": network, "adain_weights": str(adain_dir),
                                    "style_model": str(johnson_model)})
        assert arm["fps"] > 0 and arm["measured_frames"] == 2 and arm["warmup"] == 1 and network in ARM_WORDS
    with pytest.raises(Exception, match="needs vgg_normalised.pth"):
        run_child("network", {**common, "network": "adain", "adain_weights": None, "style_model": None})


def test_adain_takes_a_matte_with_each_regions_own_statistics(tmp_path, adain_dir):
    """The AdaIN paper's spatial control: a full matte is the plain network; half a matte with one
    style keeps the original outside it (the video command, the temporal stage on)."""
    net = load_network(Network.adain, weights=adain_dir)
    x = torch.rand(1, 3, 64, 96)
    signals = net.encode_style(torch.rand(1, 3, 64, 64))
    with torch.no_grad():
        assert torch.allclose(net(x, signals), net(x, signals, matte=torch.ones(1, 1, 64, 96)), atol=1e-5)
        half = torch.zeros(1, 1, 64, 96)
        half[..., :48] = 1
        other = net.encode_style(torch.rand(1, 3, 64, 64) * 0.5)
        two = net(x, signals, matte=half, background=other)
    assert two.shape == x.shape and not torch.allclose(two, net(x, signals))
    clip = lavfi_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.3")
    matte = tmp_path / "m.png"
    m = np.zeros((64, 96), np.uint8)
    m[:, :48] = 255
    cv2.imwrite(str(matte), m)
    run_cli("video", clip, "--network", "adain", "--style", make_style(tmp_path / "s.png"), "--weights", adain_dir,
            "--matte", matte, "--codec", "ffv1", "-o", tmp_path / "o.mkv", "-q", expect=0)
    out = [f.data.astype(int) for f in decode_frames(probe(tmp_path / "o.mkv"))]
    src = [f.data.astype(int) for f in decode_frames(probe(clip))]
    assert all(np.array_equal(o[:, 60:], s[:, 60:]) for o, s in zip(out, src))  # outside: the original
    assert np.abs(out[0][:, :40] - src[0][:, :40]).mean() > 2  # inside: painted


def test_an_onnx_export_of_a_johnson_network_runs_as_the_checkpoint_does(tmp_path, johnson_model):
    pytest.importorskip("onnxruntime", reason="the onnx extra (CI installs it)")
    pytest.importorskip("onnxscript", reason="the onnx extra (CI installs it)")
    net = load_network(Network.johnson, style_model=str(johnson_model))
    x = torch.rand(1, 3, 64, 96) * 255
    onnx_path = tmp_path / "mosaic.onnx"

    class Raw(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.raw(x)

    torch.onnx.export(Raw(net), (x,), str(onnx_path), input_names=["input_image"], output_names=["output_image"],
                      dynamo=True, verbose=False)
    runner = load_network(Network.johnson, style_model=str(onnx_path))
    with torch.no_grad():
        assert rel(runner(x / 255), net(x / 255)) < 1e-4
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(Exception, match="not an ONNX model"):
        load_network(Network.johnson, style_model=str(tmp_path / "junk.onnx"))


def test_adain_mixes_styles_and_is_in_the_public_api(adain_dir):
    """Interpolation of several styles (the AdaIN paper's) through the same mix as MicroAST's."""
    import microast_video

    net = microast_video.load_network(microast_video.Network.adain, weights=adain_dir)
    a, b = (net.encode_style(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(s))) for s in (1, 2))
    half = microast_video.mix_signals([a, b], [0.5, 0.5])
    assert type(half) is type(a) and torch.allclose(half.mean, (a.mean + b.mean) / 2)
    assert microast_video.mix_signals([a, b], [1.0, 0.0]).std.equal(a.std)
