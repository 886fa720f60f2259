"""4:2:0 transport: colour conversion on the device instead of RGB over the bus."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from av.video.reformatter import ColorRange, Colorspace, Interpolation
from helpers import lavfi_clip as make_clip
from typer.testing import CliRunner

from microast_video import Stylizer, decode_frames, probe
from microast_video.cli import app
from microast_video.core.frame import pack_planes, unpack_planes
from microast_video.core.paths import cache_dir
from microast_video.engine.stylizer import FrameEngine
from microast_video.engine.transport import RGBTransport, YUV420Transport

runner = CliRunner()
SWS = {"bt709": Colorspace.ITU709, "bt601": Colorspace.ITU601}


pytestmark = pytest.mark.usefixtures("env")  # every test here runs with the weights set


def swscale_rgb(frame: av.VideoFrame, matrix: str, full: bool) -> np.ndarray:
    rng = ColorRange.JPEG if full else ColorRange.MPEG
    return frame.to_ndarray(format="rgb24", src_colorspace=SWS[matrix], src_color_range=rng,
                            dst_color_range=ColorRange.JPEG,
                            interpolation=Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT)


@pytest.mark.parametrize("matrix,full", [("bt709", False), ("bt601", False), ("bt709", True)])
def test_planes_to_rgb_matches_ffmpegs_conversion(tmp_path, matrix, full):
    tags = ("-colorspace", "bt709" if matrix == "bt709" else "smpte170m", "-color_range", "pc" if full else "tv")
    clip = make_clip(tmp_path / "c.mp4", "testsrc2=size=128x96:rate=25:duration=0.2",
                     out=("-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", *tags))
    with av.open(str(clip)) as c:
        frame = next(c.decode(video=0))
    ref = swscale_rgb(frame, matrix, full).astype(float)
    ours = YUV420Transport(matrix, matrix, in_full=full, out_full=full).to_float(torch.from_numpy(frame.to_ndarray())[None])
    ours = (ours.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    diff = np.abs(ours - ref)
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 3, (diff.mean(), diff.max())


@pytest.mark.parametrize("bits,full", [(8, False), (10, False), (8, True)])
def test_yuv_rgb_yuv_round_trip_keeps_smooth_pictures(bits, full):
    h, w = 32, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = torch.from_numpy(np.stack([xx / w, yy / h, 0.5 + 0.3 * np.sin(xx / 9)], 0))[None].float()
    t = YUV420Transport("bt709", "bt709", in_full=full, out_full=full, bits=bits)
    planes = t.from_float(rgb, deep=bits > 8)
    assert planes.shape == (1, h * 3 // 2, w)
    assert planes.dtype == (torch.int16 if bits > 8 else torch.uint8)
    back = t.to_float(planes)
    assert (back - rgb).abs().mean() < 2 / 255
    if bits > 8:
        samples = planes.to(torch.int32) & 0xFFFF
        assert samples.max() <= 1023 and len(torch.unique(samples)) > 256  # really 10-bit


def test_pack_unpack_round_trip():
    planes = [np.arange(48).reshape(6, 8), np.arange(12).reshape(3, 4), np.arange(12, 24).reshape(3, 4)]
    packed = pack_planes(planes)
    assert packed.shape == (9, 8)
    assert all(np.array_equal(a, b) for a, b in zip(unpack_planes(packed), planes))


def test_decoder_planes_keep_the_stream_samples(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")
    info = probe(clip)
    frame = next(decode_frames(info, planes=True))
    with av.open(str(clip)) as c:
        raw = next(c.decode(video=0)).to_ndarray()
    assert frame.layout == "yuv420p" and np.array_equal(frame.data, raw)
    with pytest.raises(ValueError, match="even"):
        next(decode_frames(info, planes=True, size=(95, 64)))


def test_engine_with_planes_keeps_layout_and_timing(model):
    signals = model.encode_style(torch.rand(1, 3, 32, 32))
    t = YUV420Transport("bt709", "bt709")
    from fractions import Fraction

    from microast_video.core.frame import Frame

    frames = [Frame(i, i * 40, 40, Fraction(1, 1000), np.full((48, 32), 100 + i, np.uint8), "yuv420p") for i in range(3)]
    out = list(FrameEngine(Stylizer(model, signals), 2, transport=t).run(frames))
    assert [f.index for f in out] == [0, 1, 2] and [f.pts for f in out] == [0, 40, 80]
    assert all(f.layout == "yuv420p" and f.data.shape == (48, 32) and f.data.dtype == np.uint8 for f in out)
    rgb = list(FrameEngine(Stylizer(model, signals), 2, transport=RGBTransport()).run(
        [Frame(0, 0, 40, Fraction(1, 1000), np.zeros((32, 32, 3), np.uint8))]))
    assert rgb[0].data.shape == (32, 32, 3)


def _psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    mse = np.mean([((x.astype(float) - y.astype(float)) ** 2).mean() for x, y in zip(a, b)])
    return 10 * np.log10(255**2 / mse)


def _frames(path, fmt: str | None = "rgb24") -> list[np.ndarray]:
    """Every decoded frame of ``path``: RGB, or with ``fmt=None`` the stored planes."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format=fmt) if fmt else f.to_ndarray() for f in c.decode(video=0)]


def _transport_planes(transport: YUV420Transport, rgb: np.ndarray) -> np.ndarray:
    """(H * 3/2, W) 8-bit planes of (H, W, 3) uint8 ``rgb`` by the device transport's arithmetic."""
    return transport.from_float(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, False)[0].numpy()


def test_yuv420_transport_end_to_end_matches_rgb_transport(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "testsrc2=size=128x72:rate=25:duration=0.32",
                     out=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-colorspace", "bt709"))
    style = tmp_path / "s.png"
    import cv2

    cv2.imwrite(str(style), (np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8))
    outs = {}
    for transport in ("rgb", "yuv420"):
        out, report = tmp_path / f"{transport}.mp4", tmp_path / f"{transport}.json"
        r = runner.invoke(app, ["video", str(clip), "-s", str(style), "-o", str(out), "--device", "cpu", "--quiet",
                                "--precision", "fp32", "--transport", transport, "--report", str(report)])
        assert r.exit_code == 0, r.output
        assert json.loads(report.read_text())["engine"]["transport"] == transport
        outs[transport] = _frames(out)
    assert len(outs["rgb"]) == len(outs["yuv420"]) == 8
    assert _psnr(outs["rgb"], outs["yuv420"]) > 25  # same pictures; only chroma resampling differs


def test_yuv420_transport_falls_back_with_a_note_on_odd_sizes(tmp_path):
    clip = make_clip(tmp_path / "odd.mkv", "testsrc2=size=96x64:rate=25:duration=0.12,scale=67:45",
                     out=("-c:v", "ffv1", "-pix_fmt", "yuv444p"))
    style = tmp_path / "s.png"
    import cv2

    cv2.imwrite(str(style), np.full((32, 32, 3), 128, np.uint8))
    report = tmp_path / "r.json"
    r = runner.invoke(app, ["video", str(clip), "-s", str(style), "-o", str(tmp_path / "o.mp4"), "--device", "cpu",
                            "--quiet", "--transport", "yuv420", "--report", str(report)])
    assert r.exit_code == 0, r.output
    data = json.loads(report.read_text())
    assert data["engine"]["transport"] == "rgb" and any("4:2:0 transport not used" in n for n in data["notes"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_planes_match_cpu_planes(model):
    signals = model.encode_style(torch.rand(1, 3, 32, 32))
    t = YUV420Transport("bt709", "bt709")
    from fractions import Fraction

    from microast_video.core.frame import Frame

    frames = [Frame(i, i, 1, Fraction(1, 25), np.random.default_rng(i).integers(16, 235, (96, 64), np.uint8), "yuv420p")
              for i in range(5)]
    cpu = list(FrameEngine(Stylizer(model, signals), 2, transport=t).run(frames))
    import copy

    gpu_model = copy.deepcopy(model).cuda()
    gpu = list(FrameEngine(Stylizer(gpu_model, signals), 2, transport=t).run(frames))
    assert [f.index for f in gpu] == list(range(5))
    assert all(np.abs(a.data.astype(int) - b.data.astype(int)).mean() < 1.0 for a, b in zip(cpu, gpu))


def _recorded(monkeypatch, method: str) -> list:
    """A list that gets the first argument (a copy of an array) each time ``ColourKernels.<method>`` runs."""
    from microast_video.native import colour as _native

    calls = []
    real = getattr(_native.ColourKernels, method)
    monkeypatch.setattr(_native.ColourKernels, method,
                        lambda self, first, *a: calls.append(first.copy() if isinstance(first, np.ndarray) else first)
                        or real(self, first, *a))
    return calls


@pytest.fixture()
def kernel_calls(monkeypatch):
    """One entry each time the decoder's native colour conversion runs."""
    return _recorded(monkeypatch, "yuv420_to_rgb8")


@pytest.fixture()
def encode_calls(monkeypatch):
    """The RGB frames the encoder's native colour conversion was given, in order."""
    return _recorded(monkeypatch, "rgb8_to_yuv420")


@pytest.mark.parametrize("matrix,full", [("bt709", False), ("bt601", False), ("bt709", True)])
def test_native_decode_conversion_matches_ffmpegs(tmp_path, kernel_calls, matrix, full):
    """8-bit 4:2:0 frames at their stored size go to RGB through the native kernel: the
    same RGB as swscale's accurate bilinear conversion (the decoder's other path), to a level,
    and exactly the device transport's arithmetic."""
    from microast_video.native import colour as _native

    tags = ("-colorspace", "bt709" if matrix == "bt709" else "smpte170m", "-color_range", "pc" if full else "tv")
    clip = make_clip(tmp_path / "c.mp4", "testsrc2=size=128x96:rate=25:duration=0.2",
                     out=("-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                          "-pix_fmt", "yuvj420p" if full else "yuv420p", *tags))
    info = probe(clip)
    assert _native.colour_kernels(cache_dir()) is not None, "the native library should build where the tests run"
    native = np.stack([f.data for f in decode_frames(info)])
    swscale = np.stack([f.data for f in decode_frames(info, native=False)])
    assert len(kernel_calls) == len(native) == len(swscale) == 5
    diff = np.abs(native.astype(int) - swscale)
    assert diff.max() <= 1 and diff.mean() < 0.01, (diff.max(), diff.mean())
    with av.open(str(clip)) as c:
        frame = next(c.decode(video=0))
    device = YUV420Transport(matrix, matrix, in_full=full).to_float(torch.from_numpy(frame.to_ndarray())[None])
    device = (device.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).numpy()
    assert np.abs(native[0].astype(int) - device).max() <= 1


def test_native_decode_conversion_only_where_it_applies(tmp_path, kernel_calls, monkeypatch):
    """Resized, 4:4:4 or woven interlaced frames, and a machine without the kernel, take swscale."""
    from microast_video.media import decode

    calls = kernel_calls
    even = make_clip(tmp_path / "e.mp4", "testsrc2=size=96x64:rate=25:duration=0.12")
    full444 = make_clip(tmp_path / "f.mp4", "testsrc2=size=96x64:rate=25:duration=0.12",
                        out=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"))
    woven = make_clip(tmp_path / "i.mp4", "testsrc2=size=96x64:rate=50:duration=0.12",
                      out=("-vf", "tinterlace=mode=interleave_top,setfield=tff", "-c:v", "libx264", "-preset",
                           "ultrafast", "-flags", "+ildct+ilme", "-pix_fmt", "yuv420p"))
    frames = [f.data for f in decode_frames(probe(even), size=(48, 32))]
    frames += [f.data for f in decode_frames(probe(full444))]
    frames += [f.data for f in decode_frames(probe(woven))]  # fields left woven: chroma per field
    assert calls == [] and len(frames) == 9 and frames[-1].shape == (64, 96, 3)
    monkeypatch.setattr(decode, "colour_kernels", lambda cache: None)  # no kernel on this machine
    without = [f.data for f in decode_frames(probe(even))]
    assert calls == [] and len(without) == 3
    assert np.array_equal(without[0], next(decode_frames(probe(even), native=False)).data)


@pytest.mark.parametrize("matrix,full", [("bt709", False), ("bt601", False), ("bt709", True)])
def test_native_encode_conversion_is_the_transports_arithmetic(matrix, full):
    """RGB -> 4:2:0 planes natively: the same samples as the CUDA path's YUV420Transport.from_float."""
    from microast_video.colour.convert import rgb_to_ycbcr_matrix
    from microast_video.colour.spaces import levels
    from microast_video.native import colour as _native

    kernels = _native.colour_kernels(cache_dir())
    assert kernels is not None, "the native library should build where the tests run"
    rng = np.random.default_rng(len(matrix) + full)
    yy, xx = np.mgrid[0:34, 0:58]
    smooth = np.stack([xx * 4, yy * 7, 128 + 100 * np.sin(xx / 5)], -1).clip(0, 255).astype(np.uint8)
    for rgb in (rng.integers(0, 256, (34, 58, 3), dtype=np.uint8), smooth, np.zeros((2, 2, 3), np.uint8)):
        got = kernels.rgb8_to_yuv420(rgb, rgb_to_ycbcr_matrix(matrix).numpy(), levels(8, full))
        want = _transport_planes(YUV420Transport(matrix, matrix, out_full=full), rgb)
        assert got.shape == want.shape == (rgb.shape[0] * 3 // 2, rgb.shape[1])
        diff = np.abs(got.astype(int) - want)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (diff.max(), (diff > 0).mean())
    with pytest.raises(ValueError, match="even packed 8-bit RGB"):
        kernels.rgb8_to_yuv420(np.zeros((3, 4, 3), np.uint8), rgb_to_ycbcr_matrix(matrix).numpy(), levels(8, full))


def test_writer_sends_native_planes_to_a_yuv420p_output(tmp_path, encode_calls, monkeypatch):
    """8-bit RGB bound for yuv420p goes down the pipe as 4:2:0 planes made in this process: a
    lossless file then holds exactly the transport's planes of the frames written. ffmpeg's own
    conversion (the path left for other outputs) gives the same luma to a level and chroma sited
    the same way (MPEG-2 / H.264), filtered differently."""
    from microast_video.media.encode import FFmpegWriter

    clip = make_clip(tmp_path / "c.mp4", "testsrc2=size=96x64:rate=25:duration=0.2")
    style = tmp_path / "s.png"
    import cv2

    cv2.imwrite(str(style), (np.random.default_rng(2).random((40, 40, 3)) * 255).astype(np.uint8))

    def run(name: str, *extra: str) -> Path:
        out = tmp_path / name
        r = runner.invoke(app, ["video", str(clip), "-s", str(style), "-o", str(out), "--device", "cpu", "--quiet",
                                "--codec", "ffv1", *extra])
        assert r.exit_code == 0, r.output
        return out

    native = run("native.mkv", "--pix-fmt", "yuv420p")
    info, planes = probe(native), _frames(native, None)
    assert len(encode_calls) == len(planes) == 5
    transport = YUV420Transport(info.matrix, info.matrix, out_full=info.full_range)
    for rgb, got in zip(encode_calls, planes):
        want = _transport_planes(transport, rgb)
        assert np.abs(got.astype(int) - want).max() <= 1
    monkeypatch.setattr(FFmpegWriter, "planes_converter", lambda self, first: None)
    by_ffmpeg = _frames(run("ffmpeg.mkv", "--pix-fmt", "yuv420p"), None)
    luma = np.abs(np.stack(planes)[:, :64].astype(int) - np.stack(by_ffmpeg)[:, :64])
    chroma = np.abs(np.stack(planes)[:, 64:].astype(int) - np.stack(by_ffmpeg)[:, 64:])
    # chroma: bicubic against [1, 2, 1] filters on textured frames (0.84 levels on average);
    # ffmpeg sited chroma between columns before it was told to site it left, 1.57
    assert luma.max() <= 1 and chroma.mean() < 1.2 and chroma.max() <= 8, (luma.max(), chroma.mean(), chroma.max())
    assert len(encode_calls) == 5  # the second run never called the kernel


def test_writer_leaves_other_outputs_to_ffmpeg(tmp_path, encode_calls):
    """4:4:4 output and odd frame sizes (padded for 4:2:0) keep ffmpeg's conversion."""
    style = tmp_path / "s.png"
    import cv2

    cv2.imwrite(str(style), np.full((32, 32, 3), 90, np.uint8))
    even = make_clip(tmp_path / "e.mp4", "testsrc2=size=64x48:rate=25:duration=0.12")
    odd = make_clip(tmp_path / "o.mkv", "testsrc2=size=96x64:rate=25:duration=0.12,scale=67:45",
                    out=("-c:v", "ffv1", "-pix_fmt", "yuv444p"))
    for clip, extra in ((even, ("--codec", "ffv1", "--pix-fmt", "yuv444p")), (odd, ())):
        out = tmp_path / f"{clip.stem}_out.mkv"
        r = runner.invoke(app, ["video", str(clip), "-s", str(style), "-o", str(out), "--device", "cpu", "--quiet",
                                *extra])
        assert r.exit_code == 0, r.output
        assert len(_frames(out, None)) == 3
    assert encode_calls == []


def test_the_per_batch_path_builds_no_tensor_from_host_data(monkeypatch):
    """The 4:2:0 transport copied its two colour matrices from pageable host memory every batch: on
    CUDA, two blocking copies (hidden synchronisations) per batch. Now once per process and device."""
    from microast_video.colour import convert

    convert._on_device.cache_clear()
    built = []
    for name in ("rgb_to_ycbcr_matrix", "ycbcr_to_rgb_matrix"):
        real = getattr(convert, name)
        monkeypatch.setattr(convert, name, lambda m, real=real, name=name: built.append(name) or real(m))
    transport = YUV420Transport(in_matrix="bt709", out_matrix="bt709")
    planes = torch.randint(16, 235, (2, 48, 64), dtype=torch.uint8)
    for batch in range(3):
        out = transport.from_float(transport.to_float(planes).clamp(0, 1), deep=False)
        assert out.shape == planes.shape
        if batch == 0:
            assert sorted(built) == ["rgb_to_ycbcr_matrix", "ycbcr_to_rgb_matrix"]
    assert len(built) == 2, built  # none after the first batch


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("transport", [RGBTransport(), YUV420Transport("bt709", "bt709")])
def test_the_per_batch_path_never_synchronises(model, transport):
    """submit() (pinned copy, upload on a side stream, network, download queued) with CUDA's
    sync debug mode set to error: any hidden synchronisation (a blocking copy of a colour
    matrix, a tensor built from host data, an .item()) raises."""
    import copy
    from fractions import Fraction

    from microast_video.core.frame import Frame
    from microast_video.engine.cuda import CudaRunner

    gpu_model = copy.deepcopy(model).cuda()
    signals = gpu_model.encode_style(torch.rand(1, 3, 32, 32, device="cuda"))
    engine = FrameEngine(Stylizer(gpu_model, signals), 2, transport=transport)
    shape = (96, 64) if isinstance(transport, YUV420Transport) else (64, 64, 3)
    layout = "yuv420p" if isinstance(transport, YUV420Transport) else "rgb"
    frames = [Frame(i, i, 1, Fraction(1, 25), np.random.default_rng(i).integers(16, 235, shape, np.uint8), layout)
              for i in range(2 * (CudaRunner.depth + 1) + 2)]
    runner = CudaRunner(engine)
    batches = [frames[i:i + 2] for i in range(0, len(frames), 2)]
    runner.collect(runner.submit(batches[0]))  # warm-up: allocations, the ring's first slot, kernels chosen
    torch.cuda.synchronize()
    handles = []
    torch.cuda.set_sync_debug_mode("error")
    try:
        for batch in batches[1:CudaRunner.depth + 1]:  # as many as the ring holds without waiting
            handles.append(runner.submit(batch))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert [f.index for h in handles for f in runner.collect(h)] == list(range(2, 2 + 2 * len(handles)))
