"""User controls from the seed papers: alpha, style interpolation, colour preservation;
style signals saved and loaded; device and precision choices."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from microast_video import (
    DeviceError,
    EngineSettings,
    InputError,
    Precision,
    Stylizer,
    load_signals,
    mix_signals,
    preserve_color,
    resolve_device,
    resolve_precision,
    rgb_to_ycbcr,
    save_signals,
    ycbcr_to_rgb,
)
from microast_video.models import featmod, mean_std


@pytest.fixture(scope="module")
def two_styles(model):
    g = torch.Generator().manual_seed(7)
    with torch.inference_mode():
        a = model.encode_style(torch.rand(1, 3, 48, 40, generator=g))
        b = model.encode_style(torch.rand(1, 3, 36, 60, generator=g) ** 3)
    return a, b


@pytest.fixture(scope="module")
def content():
    return torch.rand(2, 3, 36, 44, generator=torch.Generator().manual_seed(8))


# --- alpha -------------------------------------------------------------------------------

def test_alpha_mix_is_featmod_with_mixed_statistics():
    """Upstream's ``alpha*featmod(c, s) + (1-alpha)*c`` is FeatMod towards statistics
    mixed between the content's and the style's: the control is affine in the signals."""
    c = torch.randn(1, 8, 12, 12, dtype=torch.float64).float() * 2 + 1
    s_mean, s_std = torch.randn(1, 8, 1, 1), torch.rand(1, 8, 1, 1) + 0.5
    c_mean, c_std = mean_std(c)
    for alpha in (0.0, 0.3, 1.0):
        upstream = alpha * featmod(c, s_mean, s_std) + (1 - alpha) * c
        mixed = featmod(c, alpha * s_mean + (1 - alpha) * c_mean, alpha * s_std + (1 - alpha) * c_std)
        assert torch.allclose(upstream, mixed, atol=1e-5)


def test_alpha_moves_output_from_content_towards_style(model, two_styles, content):
    style, _ = two_styles
    with torch.inference_mode():
        outs = {a: model(content, style, alpha=a) for a in (0.0, 0.5, 1.0)}
    assert not torch.equal(outs[0.0], outs[1.0])
    # alpha=1 takes the upstream fast path, which must equal the blend formula's value
    with torch.inference_mode():
        blended = model(content, style, alpha=1.0 - 1e-12)
    assert torch.allclose(outs[1.0], blended, atol=1e-5)


# --- style interpolation ------------------------------------------------------------------

def test_interpolation_weights_one_zero_give_exactly_the_single_style(model, two_styles, content):
    a, b = two_styles
    with torch.inference_mode():
        for weights, single in (((1.0, 0.0), a), ((0.0, 1.0), b)):
            mixed = mix_signals([a, b], weights)
            assert all(torch.equal(x, y) for x, y in zip(mixed.tensors(), single.tensors()))
            assert torch.equal(model(content, mixed), model(content, single))


def test_interpolation_is_the_weighted_mean_of_signals(two_styles):
    a, b = two_styles
    mixed = mix_signals([a, b], [0.25, 0.75])
    for m, x, y in zip(mixed.tensors(), a.tensors(), b.tensors()):
        assert torch.allclose(m, 0.25 * x + 0.75 * y, atol=1e-7)
    halves = mix_signals([a, b])  # default: equal weights
    assert torch.allclose(halves.w1, (a.w1 + b.w1) / 2)


def test_mixing_a_style_with_itself_changes_nothing(model, two_styles, content):
    a, _ = two_styles
    with torch.inference_mode():
        assert torch.allclose(model(content, mix_signals([a, a, a], [0.2, 0.3, 0.5])), model(content, a), atol=1e-5)


@pytest.mark.parametrize("weights", [(0.5, 0.6), (1.2, -0.2), (1.0,), (float("nan"), 1.0)])
def test_bad_interpolation_weights_are_rejected(two_styles, weights):
    with pytest.raises(ValueError):
        mix_signals(list(two_styles), weights)


# --- colour preservation ------------------------------------------------------------------

@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
def test_ycbcr_round_trip_and_white_is_unit_luma(matrix):
    rgb = torch.rand(2, 3, 5, 6)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb, matrix), matrix), rgb, atol=1e-6)
    white = rgb_to_ycbcr(torch.ones(1, 3, 1, 1), matrix).flatten()
    assert torch.allclose(white, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)


def test_matrices_differ_where_they_should():
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert rgb_to_ycbcr(red, "bt601")[0, 0].item() == pytest.approx(0.299)
    assert rgb_to_ycbcr(red, "bt709")[0, 0].item() == pytest.approx(0.2126)
    assert rgb_to_ycbcr(red, "bt2020")[0, 0].item() == pytest.approx(0.2627)
    with pytest.raises(ValueError, match="unknown colour matrix"):
        rgb_to_ycbcr(red, "srgb")


def test_preserve_color_keeps_content_chroma_and_stylized_luma():
    g = torch.Generator().manual_seed(9)
    content = torch.rand(1, 3, 8, 8, generator=g) * 0.5 + 0.25
    stylized = torch.rand(1, 3, 8, 8, generator=g) * 0.5 + 0.25
    out = preserve_color(stylized, content, "bt709")
    ycc_out, ycc_c, ycc_s = (rgb_to_ycbcr(t, "bt709") for t in (out, content, stylized))
    assert torch.allclose(ycc_out[:, 0], ycc_s[:, 0], atol=1e-6)
    assert torch.allclose(ycc_out[:, 1:], ycc_c[:, 1:], atol=1e-6)
    assert not torch.allclose(out, stylized, atol=1e-3)


def test_preserve_color_on_grey_content_gives_grey_output(model, two_styles):
    grey = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(10)).expand(1, 3, 32, 32).contiguous()
    a, _ = two_styles
    out = Stylizer(model, a, color_matrix="bt601")(grey)
    assert (out[:, 0] - out[:, 1]).abs().max() < 1e-5
    assert (out[:, 1] - out[:, 2]).abs().max() < 1e-5
    plain = Stylizer(model, a)(grey)
    assert (plain[:, 0] - plain[:, 2]).abs().max() > 1e-2  # the style alone does colour it


def test_stylizer_clamps_and_keeps_shape(model, two_styles, content):
    out = Stylizer(model, two_styles[0], alpha=0.5)(content)
    assert out.shape == content.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


# --- style signals on disk ----------------------------------------------------------------

def test_signals_round_trip_exactly(tmp_path, two_styles):
    a, _ = two_styles
    path = tmp_path / "a.npz"
    save_signals(a, path)
    b = load_signals(path)
    assert all(torch.equal(x, y) for x, y in zip(a.tensors(), b.tensors()))
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left


def test_signals_load_validates(tmp_path, two_styles):
    a, _ = two_styles
    bad_shape = {n: t.numpy() for n, t in zip(a.names(), a.tensors())}
    bad_shape["w1"] = np.zeros((1, 32, 1, 1), np.float32)
    np.savez(tmp_path / "shape.npz", format=np.array("microast-video/style-signals/1"), **bad_shape)
    with pytest.raises(InputError, match="w1 must be float32"):
        load_signals(tmp_path / "shape.npz")
    nan = {n: t.numpy().copy() for n, t in zip(a.names(), a.tensors())}
    nan["b2"][0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", format=np.array("microast-video/style-signals/1"), **nan)
    with pytest.raises(InputError, match="NaN"):
        load_signals(tmp_path / "nan.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(InputError, match="not a style-signals file"):
        load_signals(tmp_path / "text.npz")
    pickled = tmp_path / "pickle.npz"
    np.savez(pickled, format=np.array("microast-video/style-signals/1"), mean1=np.array([object()], dtype=object))
    with pytest.raises(InputError):
        load_signals(pickled)
    with pytest.raises(InputError, match="file not found"):
        load_signals(tmp_path / "missing.npz")


# --- device and precision -----------------------------------------------------------------

def test_device_resolution_on_this_machine(capsys, monkeypatch):
    from microast_video.core import quiet

    monkeypatch.setattr(quiet, "_said", set())  # the notice is said once per run: this test's run starts here
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(DeviceError, match="unknown device|unsupported device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        assert "no CUDA GPU" in capsys.readouterr().err  # never a silent fall-back
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            resolve_device("cuda")
        with pytest.raises(DeviceError):
            resolve_device("cuda:1")


def test_precision_resolution():
    cpu = torch.device("cpu")
    from microast_video.engine.device import cpu_supports_bf16

    assert resolve_precision("auto", cpu) == (torch.bfloat16 if cpu_supports_bf16() else torch.float32)
    assert resolve_precision(Precision.bf16, cpu) == torch.bfloat16
    assert resolve_precision("fp32", cpu) == torch.float32
    with pytest.raises(DeviceError, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", cpu)
    with pytest.raises(DeviceError, match="unknown precision"):
        resolve_precision("int8", cpu)


def test_bf16_output_stays_close_to_fp32(model, two_styles, content):
    a, _ = two_styles
    exact = Stylizer(model, a)(content)
    fast = Stylizer(model, a, EngineSettings(dtype=torch.bfloat16))(content)
    assert fast.dtype == torch.float32
    mse = float(((fast - exact) ** 2).mean())
    assert 0 < mse and 10 * np.log10(1 / mse) > 25  # PSNR in dB; issue 4 tightens this


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_matches_cpu(model, two_styles, content):
    a, _ = two_styles
    exact = Stylizer(model, a)(content)
    gpu_model = copy.deepcopy(model).to("cuda")
    out = Stylizer(gpu_model, a, EngineSettings(dtype=torch.float16))(content.cuda()).cpu()
    mse = float(((out - exact) ** 2).mean())
    assert 10 * np.log10(1 / max(mse, 1e-12)) > 30
