"""The network against the upstream conformance vectors, and its size handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared_path

from microast_video import StyleSignals
from microast_video.models import featmod, mean_std, upstream_to_project_keys

CASES = ["noise_64x64_a1", "photo_128x96_a1", "photo_256x144_a05"]
# conformance name -> StyleSignals field
SIGNAL_NAMES = {
    "style_mean0": "mean1",
    "style_std0": "std1",
    "style_mean1": "mean2",
    "style_std1": "std2",
    "w0": "w1",
    "b0": "b1",
    "w1": "w2",
    "b1": "b2",
}


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b.astype(np.float64)))


@pytest.mark.shared
@pytest.mark.parametrize("case", CASES)
def test_conformance(model, case):
    data = np.load(shared_path("conformance", f"{case}.npz"))
    with torch.inference_mode():
        signals = model.encode_style(torch.from_numpy(data["style"]))
        out = model(torch.from_numpy(data["content"]), signals, alpha=float(data["alpha"]))
    assert out.dtype == torch.float32 and out.shape == data["output"].shape
    assert rel_err(out.numpy(), data["output"]) < 1e-5
    assert len(SIGNAL_NAMES) == len(StyleSignals.names())
    for ref, ours in SIGNAL_NAMES.items():
        assert rel_err(getattr(signals, ours).numpy(), data[ref]) < 1e-5, ref


def test_model_is_eval_and_frozen(model):
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    counts = {n: sum(p.numel() for p in getattr(model, n).parameters()) for n in
              ("content_encoder", "style_encoder", "modulator", "decoder")}
    assert counts == {"content_encoder": 157792, "style_encoder": 157792, "modulator": 2560, "decoder": 153843}


def test_key_mapping_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unexpected key"):
        upstream_to_project_keys("decoder", {"dec9.conv_layer.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unknown checkpoint part"):
        upstream_to_project_keys("vgg", {})


def test_mean_std_is_unbiased_with_eps():
    f = torch.randn(2, 3, 5, 7, dtype=torch.float64).float()
    mean, std = mean_std(f)
    flat = f.double().reshape(2, 3, -1)
    assert torch.allclose(mean.flatten(), flat.mean(-1).flatten().float(), atol=1e-6)
    expected = (flat.var(-1, unbiased=True) + 1e-5).sqrt()
    assert torch.allclose(std.flatten(), expected.flatten().float(), rtol=1e-5)


@pytest.fixture(scope="module")
def signals(model):
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        return model.encode_style(torch.rand(1, 3, 40, 52, generator=g))


@pytest.mark.parametrize("h,w", [(5, 5), (33, 67), (61, 18), (6, 130), (64, 64)])
def test_any_size_comes_back_same_size(model, signals, h, w):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    with torch.inference_mode():
        out = model(x, signals)
    assert out.shape == (2, 3, h, w)
    assert torch.isfinite(out).all()


def test_sizes_divisible_by_four_are_not_padded(model, signals):
    x = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        _, c2 = model.content_encoder(x)
        direct = model.decoder(c2, signals)
        out = model(x, signals)
    assert torch.equal(out, direct)


def test_odd_size_is_reflection_padded_then_cropped(model, signals):
    x = torch.rand(1, 3, 30, 45, generator=torch.Generator().manual_seed(4))
    padded = torch.nn.functional.pad(x, (0, 3, 0, 2), mode="reflect")
    with torch.inference_mode():
        out = model(x, signals)
        full = model(padded, signals)
    assert torch.equal(out, full[..., :30, :45])


def test_batch_equals_frames_one_by_one(model, signals):
    x = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        batch = model(x, signals)
        single = torch.cat([model(x[i : i + 1], signals) for i in range(3)])
    assert torch.allclose(batch, single, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("h,w", [(4, 64), (64, 4), (1, 1), (3, 100)])
def test_too_small_frames_are_a_clear_value_error(model, signals, h, w):
    with pytest.raises(ValueError, match="too small"):
        model(torch.rand(1, 3, h, w), signals)


def test_too_small_style_is_a_clear_value_error(model):
    with pytest.raises(ValueError, match="style image of 4x4 px is too small"):
        model.encode_style(torch.rand(1, 3, 4, 4))


def test_bad_shapes_and_alpha_are_value_errors(model, signals):
    with pytest.raises(ValueError, match="content must be"):
        model(torch.rand(3, 16, 16), signals)
    with pytest.raises(ValueError, match="style must be"):
        model.encode_style(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="alpha"):
        model(torch.rand(1, 3, 16, 16), signals, alpha=1.5)


def test_featmod_matches_target_statistics():
    x = torch.randn(1, 4, 16, 16)
    mean = torch.tensor([0.5, -1.0, 2.0, 0.0]).view(1, 4, 1, 1)
    std = torch.tensor([1.0, 0.5, 3.0, 0.1]).view(1, 4, 1, 1)
    y_mean, y_std = mean_std(featmod(x, mean, std))
    assert torch.allclose(y_mean, mean, atol=1e-5)
    # std of the result is std * sqrt(var / (var + eps)) + eps correction: close to std
    assert torch.allclose(y_std, std, rtol=1e-3, atol=1e-3)
