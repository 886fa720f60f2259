"""The native kernel: upsampling + grouped 3x3 conv fused, equal to PyTorch's two ops."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from microast_video import EngineSettings, engine_settings, prepare_runtime
from microast_video.models import PYTORCH, MiddleKernels, StripKernels, strips
from microast_video.models.strip_runner import run_strip
from microast_video.models.strips import Conv, UpConv, blocked_order
from microast_video.native import build
from microast_video.native import model as _native


@pytest.fixture
def native(tmp_path_factory):
    """The kernels built (in a temp cache) and loaded: what the CPU engine gives a model."""
    kernels, why = _native.strip_kernels(tmp_path_factory.getbasetemp() / "native-cache")
    if why is not None and build.cxx_compiler() is None:
        pytest.skip(f"no C++ compiler on this machine: {why}")
    assert why is None and kernels.up_dw is not None and kernels.middle is not None, why
    return kernels


@pytest.fixture
def kernels_of(model):
    """Give the shared model kernels for one test; PyTorch's ops again after it."""
    yield model.use_kernels
    model.use_kernels(PYTORCH)


def reference(x: torch.Tensor, conv: torch.nn.Conv2d, blocked: bool) -> torch.Tensor:
    """F.interpolate, F.pad and the grouped conv, in float32, on interleaved channels."""
    if blocked:  # channel k * G + g holds input k of group g: back to the conv's own order
        x = x[:, torch.argsort(blocked_order(x.shape[1], x.shape[1] // conv.groups))]
    up = F.interpolate(x.float(), scale_factor=2.0, mode="bilinear", align_corners=False)
    return F.relu(F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), conv.weight, conv.bias, groups=conv.groups))


@pytest.mark.parametrize("cin,groups,blocked", [(64, 32, False), (32, 16, True), (32, 16, False)])
def test_fused_kernel_equals_upsampling_then_grouped_conv_in_every_strip(native, cin, groups, blocked):
    torch.manual_seed(cin + blocked)
    conv = torch.nn.Conv2d(cin, groups, 3, groups=groups)
    x = torch.randn(2, cin, 13, 19).contiguous(memory_format=torch.channels_last)
    want = reference(x, conv, blocked)
    op, plain = UpConv(Conv(conv, True, blocked_in=blocked), native.up_dw), UpConv(Conv(conv, True, blocked_in=blocked))
    for r0, r1 in ((0, 26), (0, 1), (0, 9), (9, 17), (17, 26), (25, 26)):  # both edges, the middle, one row
        with torch.inference_mode():
            got = run_strip([op], x, r0, r1)
            torch_ops = run_strip([plain], x, r0, r1)
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, want[:, :, r0:r1], rtol=1e-5, atol=2e-6)
        torch.testing.assert_close(got, torch_ops, rtol=1e-5, atol=2e-6)


def test_fused_kernel_in_bf16_rounds_only_its_output(native):
    """bf16 in (and autocast on): float32 inside, one rounding at the end."""
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(32, 16, 3, groups=16)
    x = torch.randn(1, 32, 10, 17).bfloat16().contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = run_strip([UpConv(Conv(conv, True), native.up_dw)], x, 3, 15)
    assert got.dtype == torch.bfloat16
    want = reference(x.float(), conv, False)[:, :, 3:15]
    assert torch.allclose(got.float(), want, rtol=2**-8, atol=1e-6)  # bf16 keeps 8 significant bits
    assert torch.equal(got, want.bfloat16())  # round to nearest even, as PyTorch rounds


def test_the_network_in_strips_with_the_kernel_equals_the_whole_frame(native, model, kernels_of):
    calls = []
    kernels_of(StripKernels(lambda *a, **k: calls.append(1) or native.up_dw(*a, **k)))
    with torch.inference_mode():
        signals = model.encode_style(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)))
        x = torch.rand(1, 3, 70, 90, generator=torch.Generator().manual_seed(6))
        whole = model(x, signals)
        for rows in (1, 8, 33, 70):
            got = model(x, signals, strip_rows=rows)
            assert float((got - whole).norm() / whole.norm()) < 1e-5, rows
    assert calls, "the strips never called the native kernel"


@pytest.mark.parametrize("pad", [(1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 0, 1), (2, 3, 2, 1)])
def test_native_centring_equals_pad_then_centre_then_round(native, pad):
    """One pass: the same bf16 values PyTorch's pad, subtraction and cast give (with its mean)."""
    x = (torch.randn(2, 64, 11, 23, generator=torch.Generator().manual_seed(sum(pad))) * 3 + 5)
    rows = x.contiguous(memory_format=torch.channels_last)[:, :, 2:9]  # a strip's rows: NHWC, row-strided
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, mu = _native.centre_pad(rows, pad)
    assert torch.allclose(mu, rows.double().mean(dim=(2, 3), keepdim=True).float(), rtol=1e-6, atol=1e-6)
    weight = torch.empty(1, 1, 1, 1).contiguous(memory_format=torch.channels_last)
    want = strips._padded(rows - mu, pad, weight).bfloat16()
    assert got.shape == want.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(got, want)
    assert _native.centre_pad(rows.contiguous(), pad) is None  # NCHW rows: PyTorch's ops run


@pytest.mark.parametrize("modulated,residual,relu", [(True, False, True), (True, True, False),
                                                     (False, False, True), (False, True, False)])
def test_native_tail_equals_pytorch_ops(native, modulated, residual, relu):
    """float(y) + shift, then * w + b * z, + res, relu: PyTorch's operations in one pass."""
    g = torch.Generator().manual_seed(2 * modulated + residual)
    y = torch.randn(2, 64, 5, 9, generator=g).bfloat16().contiguous(memory_format=torch.channels_last)
    shift, w, b = (torch.randn(n, 64, 1, 1, generator=g) for n in (2, 1, 1))  # signals: one for the batch
    rows = torch.randn(2, 64, 8, 9, generator=g).contiguous(memory_format=torch.channels_last)
    z, res = rows.narrow(2, 1, 5), rows.narrow(2, 3, 5)  # row-strided NHWC views
    want = y.float() + shift
    if modulated:
        want = want * w + b * z
    if residual:
        want = want + res
    want = F.relu(want) if relu else want
    got = _native.epilogue(y, shift, w if modulated else None, b if modulated else None, z if modulated else None,
                           res if residual else None, relu)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)  # a fused multiply-add may round once less
    assert _native.epilogue(y.float(), shift, None, None, None, None, relu) is None  # not bf16: PyTorch's ops


def test_native_statistics_and_modulation_equal_pytorch_ops(native):
    from microast_video.models.strip_blocks import Modulate, strip_mean_std

    g = torch.Generator().manual_seed(7)
    x = (torch.randn(2, 64, 13, 21, generator=g) * 2 + 1).contiguous(memory_format=torch.channels_last)
    plain_mean, plain_std = strip_mean_std(x, [(0, 5), (5, 13)], 1e-5)  # no autocast: PyTorch's ops
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mean, std = _native.channel_stats(x, 1e-5)
        ops = [Modulate(mean, std, *(torch.rand(1, 64, 1, 1, generator=g) for _ in range(2)), alpha) for alpha in (1.0, 0.3)]
        got = [_native.modulate(x[:, :, 2:9], op.m, op.s, op.mean, op.std, op.alpha) for op in ops]
    torch.testing.assert_close(mean, plain_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(std, plain_std, rtol=1e-6, atol=1e-6)
    for op, out in zip(ops, got):
        torch.testing.assert_close(out, op.apply(x, 0, 13, 2, 9), rtol=1e-6, atol=1e-6)  # PyTorch's ops, no autocast
    assert _native.channel_stats(x, 1e-5) is None  # outside bf16 autocast the exact path keeps PyTorch's ops


def test_bf16_strips_with_the_native_middle_match_pytorch_ops(native, model, kernels_of):
    """The middle natively (each conv's input centred, its mean the unpadded rows'; the residual
    tails; FeatMod's statistics and modulation) gives the frame PyTorch's ops give, up to bf16
    rounding of the centred values."""
    calls: dict[str, int] = {}
    kernels = native.middle

    def counted(name):
        fn = getattr(kernels, name)
        return lambda *a: calls.__setitem__(name, calls.get(name, 0) + 1) or fn(*a)

    kernels_of(StripKernels(None, MiddleKernels(*(counted(n) for n in ("centre_pad", "tail", "stats", "modulate")))))
    settings = EngineSettings(torch.bfloat16, channels_last=True, strip_rows=16)
    x = torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(12))
    with torch.inference_mode():
        signals = model.encode_style(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5)))
        exact = model(x, signals)
        model.to(memory_format=torch.channels_last)
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                native_out = model(x, signals, strip_rows=settings.strip_rows)
                kernels_of(PYTORCH)
                plain = model(x, signals, strip_rows=settings.strip_rows)
        finally:
            model.to(memory_format=torch.contiguous_format)
    assert calls["centre_pad"] == calls["tail"] > 0 and calls["stats"] == 2 and calls["modulate"] > 0, calls
    error = lambda out: float((out.float() - exact).norm() / exact.norm())  # noqa: E731
    assert error(native_out) < 0.01 and error(native_out) < 1.5 * error(plain) + 1e-3  # both ~0.5 %
    assert float((native_out.float() - plain.float()).norm() / plain.float().norm()) < 0.01


def test_engine_gives_the_model_kernels_for_cpu_strips_and_none_otherwise(native, model, kernels_of):
    settings = engine_settings(torch.device("cpu"), torch.float32, 1080, 1920)
    assert settings.native and settings.describe()["native"] is True
    other = type(model)()  # another model in the same process keeps its own (none)
    try:
        assert prepare_runtime(model, settings) is None and model.kernels.up_dw is not None
        assert model.kernels.middle is not None and other.kernels is PYTORCH
        assert prepare_runtime(model, EngineSettings(strip_rows=64, channels_last=True)) is None
        assert model.kernels is PYTORCH  # native=False: PyTorch's ops
        prepare_runtime(model, settings)
        assert prepare_runtime(model, EngineSettings(native=True)) is None  # whole frames: no strips, no kernel
        assert model.kernels is PYTORCH
    finally:
        model.to(memory_format=torch.contiguous_format)


def test_a_failed_build_is_one_note_and_pytorch_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "_state", {})
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(build, "cxx_compiler", lambda: str(tmp_path / "no-such-compiler"))
    kernels, why = _native.strip_kernels(tmp_path / "cache")
    assert why is not None and "\n" not in why and "no-such-compiler" in why
    assert kernels is PYTORCH


def test_the_build_is_cached_by_source_compiler_and_cpu(tmp_path, monkeypatch):
    if build.cxx_compiler() is None:
        pytest.skip("no C++ compiler on this machine")
    first = build._build(tmp_path)
    stamp = os.stat(first).st_mtime_ns
    assert build._build(tmp_path) == first and os.stat(first).st_mtime_ns == stamp  # not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary files left
    monkeypatch.setattr(build, "_cpu_identity", lambda: "another cpu")
    second = build._build(tmp_path)
    assert second != first and [p.name for p in tmp_path.iterdir()] == [second.name]  # the stale one removed
