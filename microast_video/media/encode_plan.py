"""Planning the output before the first frame: codec, container, size, colour tags, streams."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg

from ..colour import spaces as cs
from ..core.errors import OptionError, OutputError, shown
from ..core.options import Codec, DnxhrProfile, HdrMode, ProresProfile
from .probe import VideoInfo
from .sequence import WRITE, output_sequence


@dataclasses.dataclass(frozen=True)
class CodecSpec:
    """What the tool knows of one ``--codec`` choice."""

    encoder: str
    pix_fmt_8: str
    pix_fmt_deep: str
    containers: tuple[str, ...]  # output formats (ffmpeg muxer names) that hold it
    default_ext: str
    crf: int | None = None
    preset: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    pix_fmt_hdr: str | None = "yuv420p10le"  # the 10-bit format HDR input keeps (None: cannot)


CODECS: dict[Codec, CodecSpec] = {
    # libx264 "fast", not ffmpeg's "medium": on stylized footage (1080p, CRF 18) it gave the same
    # PSNR and SSIM (42.71 vs 42.72 dB, 0.9847 both) and bitrate (24.5 vs 24.4 Mb/s) for 2/3 of
    # the CPU time (115 vs 185 ms a frame), time a CPU job's network would otherwise lose
    # (benchmarks/side_costs.py; RESULTS.md).
    Codec.h264: CodecSpec("libx264", "yuv420p", "yuv420p", ("mp4", "mov", "matroska"), ".mp4", 18, "fast"),
    Codec.hevc: CodecSpec("libx265", "yuv420p", "yuv420p10le", ("mp4", "mov", "matroska"), ".mp4", 20, "medium",
                          (("x265-params", "log-level=error"),)),
    Codec.prores: CodecSpec("prores_ks", "yuv422p10le", "yuv422p10le", ("mov", "matroska"), ".mov", None, None,
                            (("vendor", "apl0"),), "yuv422p10le"),
    Codec.dnxhr: CodecSpec("dnxhd", "yuv422p", "yuv422p", ("mov", "mxf"), ".mov", None, None, (), None),
    # ffv1 has no 8-bit planar RGB encoder format (ffmpeg would silently swap gbrp for bgr0).
    Codec.ffv1: CodecSpec("ffv1", "bgr0", "gbrp16le", ("matroska", "mov"), ".mkv", None, None,
                          (("level", "3"), ("slicecrc", "1"), ("g", "1")), "gbrp16le"),
    Codec.h264_nvenc: CodecSpec("h264_nvenc", "yuv420p", "yuv420p", ("mp4", "mov", "matroska"), ".mp4", 19, "p5",
                                pix_fmt_hdr=None),
    Codec.hevc_nvenc: CodecSpec("hevc_nvenc", "yuv420p", "p010le", ("mp4", "mov", "matroska"), ".mp4", 21, "p5",
                                pix_fmt_hdr="p010le"),
}

#: Output file extension -> ffmpeg muxer.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".mxf": "mxf"}

#: prores_ks's number for each profile, and the 4:4:4 ones (which carry alpha).
PRORES_PROFILES = {ProresProfile.proxy: "0", ProresProfile.lt: "1", ProresProfile.standard: "2",
                   ProresProfile.hq: "3", ProresProfile.p4444: "4", ProresProfile.p4444xq: "5"}
#: DNxHR profile -> pixel format (lb, sq and hq are 8-bit 4:2:2).
DNXHR_FORMATS = {DnxhrProfile.lb: "yuv422p", DnxhrProfile.sq: "yuv422p", DnxhrProfile.hq: "yuv422p",
                 DnxhrProfile.hqx: "yuv422p10le", DnxhrProfile.p444: "yuv444p10le"}
#: What a container takes for audio it cannot copy (MXF: 24-bit PCM at 48 kHz, as broadcast wants it).
AUDIO_FALLBACK = {"mxf": "pcm_s24le"}

#: Subtitle codecs that are text and can become mov_text for MP4/MOV.
_TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}


@dataclasses.dataclass(frozen=True)
class EncodeSettings:
    """How to encode the output (``--codec``, ``--crf``, ``--preset``, ``--pix-fmt``)."""

    codec: Codec = Codec.auto
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    prores_profile: ProresProfile = ProresProfile.hq
    dnxhr_profile: DnxhrProfile = DnxhrProfile.hq


@dataclasses.dataclass(frozen=True)
class EncodePlan:
    """Everything decided before the first frame: formats, tags, which streams to carry."""

    muxer: str
    encoder: str
    pix_fmt: str
    size: tuple[int, int]  # (width, height) of the upright frames the network makes
    pad: tuple[int, int]  # columns, rows added (edge-replicated) for chroma subsampling
    sar: Fraction
    matrix: str  # ffmpeg -colorspace value used for RGB -> YUV and tagged
    color_primaries: str
    color_trc: str
    color_range: str  # "tv" or "pc"
    deep: bool  # 16-bit RGB through the pipeline (deep source and deep output format)
    audio: tuple[tuple[int, str], ...]  # (a:N, "copy" or encoder)
    subtitles: tuple[tuple[int, str], ...]  # (s:N, "copy" or "mov_text")
    notes: tuple[str, ...]  # what the user should know (re-encoded audio, dropped subtitles)
    codec_args: tuple[tuple[str, str], ...]
    tonemap: str | None = None  # "PQ" or "HLG": the frames are tone-mapped to SDR BT.709 first
    alpha: bool = False  # the source's alpha goes with the stylized RGB (ProRes 4444)
    codec: Codec = Codec.h264  # what --codec auto became
    first_number: int | None = None  # an image-sequence output's first frame number (None: a movie)

    @property
    def full_range(self) -> bool:
        """Full-range ("pc") samples, not limited ("tv")."""
        return self.color_range == "pc"


def ffmpeg_exe() -> str:
    """The ffmpeg program: ``$MICROAST_VIDEO_FFMPEG`` if set, else the one in imageio-ffmpeg."""
    exe = os.environ.get("MICROAST_VIDEO_FFMPEG")
    if exe:
        found = shutil.which(exe)
        if not found:
            raise OutputError(f"ffmpeg program {shown(exe)} (MICROAST_VIDEO_FFMPEG) not found or not executable")
        return found

    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=8)
def available_encoders(exe: str) -> frozenset[str]:
    """Names of the video/audio encoders the ffmpeg program ``exe`` has."""
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return frozenset(names)


def _supported_codecs(muxer: str) -> set[str]:
    with av.open(os.devnull, "w", format=muxer) as probe:
        return set(probe.supported_codecs)


def chroma_alignment(pix_fmt: str) -> tuple[int, int]:
    """(x, y) multiples that the frame size must have for ``pix_fmt``'s chroma subsampling."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.FFmpegError) as err:
        raise OptionError(f"unknown pixel format {pix_fmt!r}") from err
    if fmt.is_rgb or len(fmt.components) < 3:
        return 1, 1
    probe = av.VideoFormat(pix_fmt, 16, 16)
    luma, chroma = probe.components[0], probe.components[1]
    return max(1, luma.width // max(chroma.width, 1)), max(1, luma.height // max(chroma.height, 1))


def resolved_codec(codec: Codec, info: VideoInfo | None, output: Path | None, hdr: HdrMode = HdrMode.keep) -> Codec:
    """``--codec auto``: h264; for an HDR source kept HDR, HEVC Main 10, or ProRes in a .mov
    (H.264 High 10, which many players and editors refuse, is never chosen for you)."""
    if codec is not Codec.auto:
        return codec
    if info is None or info.hdr is None or hdr is HdrMode.tonemap:
        return Codec.h264
    return Codec.prores if output is not None and output.suffix.lower() == ".mov" else Codec.hevc


def default_output(input_path: Path, codec: Codec) -> Path:
    """``INPUT_stylized.EXT`` beside the input; EXT is the input's if it can hold ``codec``."""
    ext = input_path.suffix.lower()
    codec = resolved_codec(codec, None, None)
    if CONTAINERS.get(ext) not in CODECS[codec].containers:
        ext = CODECS[codec].default_ext
    return input_path.with_name(f"{input_path.stem}_stylized{ext}")


def plan_encode(info: VideoInfo, output: Path, settings: EncodeSettings, *, exe: str,
                height: int | None = None, hdr: HdrMode = HdrMode.keep, first_number: int | None = None) -> EncodePlan:
    """Decide the output's size, formats and streams up front.

    Without ``height`` the output keeps the upright stored size and its sample aspect
    ratio. With ``height`` the frames are ``height`` rows high and as wide as the display
    aspect ratio asks (square pixels), the width rounded to the chroma subsampling's
    multiple. A side the pixel format cannot hold (odd, for 4:2:0) is padded by one
    edge-replicated column or row, never a failed encode.

    HDR input (HLG, PQ) stays HDR by default: 10-bit output with its tags (an 8-bit file
    never claims HLG or PQ); ``hdr=tonemap`` makes SDR BT.709 instead.

    Raises:
        OutputError: an extension, codec/container pair or encoder that cannot work.
        OptionError: a ``height`` too small for the network, a bad ``crf``, HDR into 8 bits.
    """
    settings = dataclasses.replace(settings, codec=resolved_codec(settings.codec, info, output, hdr))
    if output_sequence(output) is not None:
        settings = dataclasses.replace(settings, crf=None, preset=None)  # frames have neither
    muxer, spec = _muxer_and_codec(output, settings.codec, exe)
    pix_fmt, hdr_notes = _pixel_format(info, settings, spec, hdr)
    out_fmt = av.VideoFormat(pix_fmt)
    deep = (info.bit_depth > 8 or info.hdr is not None) and max(c.bits for c in out_fmt.components) > 8
    (w, h), pad, sar = _frame_size(info, pix_fmt, height)
    if settings.codec is Codec.dnxhr and (w + pad[0] < 256 or h + pad[1] < 120):
        raise OptionError(f"DNxHR needs frames of at least 256x120 px, not {w + pad[0]}x{h + pad[1]}; raise --height "
                          "or use --codec prores")
    matrix, primaries, trc, color_range = _colour_tags(info, out_fmt.is_rgb, hdr)
    audio, subtitles, notes = _carried_streams(info, muxer, output)
    args, codec_notes = _codec_args(settings, spec, muxer)
    tonemap = info.hdr if info.hdr and hdr is HdrMode.tonemap else None
    alpha = info.alpha and any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)  # ProRes 4444: the source's alpha
    if alpha and info.sequence is not None and info.sequence.missing:  # its alpha would end at the first gap
        alpha, notes = False, [*notes, "the sequence has held gaps (--missing hold): its alpha is not carried (opaque)"]
    return EncodePlan(muxer, spec.encoder, pix_fmt, (w, h), pad, sar, matrix, primaries, trc, color_range, deep,
                      audio, subtitles, (*hdr_notes, *notes, *codec_notes), args, tonemap, alpha, settings.codec,
                      first_number if muxer == "image2" else None)


def _profile_format(info: VideoInfo, settings: EncodeSettings) -> str | None:
    """The pixel format a ProRes or DNxHR profile writes (ProRes 4444 with alpha where the input has it)."""
    if settings.codec is Codec.prores and settings.prores_profile in (ProresProfile.p4444, ProresProfile.p4444xq):
        return "yuva444p10le" if info.alpha else "yuv444p10le"
    if settings.codec is Codec.dnxhr:
        return DNXHR_FORMATS[settings.dnxhr_profile]
    return None


def _pixel_format(info: VideoInfo, settings: EncodeSettings, spec: CodecSpec, hdr: HdrMode) -> tuple[str, list[str]]:
    pix_fmt = settings.pix_fmt or _profile_format(info, settings) or (
        spec.pix_fmt_deep if info.bit_depth > 8 else spec.pix_fmt_8)
    chroma_alignment(pix_fmt)  # refuses an unknown pixel format with one line
    bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    if info.hdr is None or hdr is HdrMode.tonemap or bits >= 10:
        notes = ([f"the input is HDR ({info.hdr}); tone-mapped to SDR BT.709"] if hdr is HdrMode.tonemap else
                 [f"the input is HDR ({info.hdr}): writing 10-bit {pix_fmt} with its HDR tags (--hdr tonemap makes "
                  "SDR)"]) if info.hdr else []
        return pix_fmt, notes
    name = shown(info.path)
    if settings.pix_fmt is not None or spec.pix_fmt_hdr is None:
        what = f"--pix-fmt {pix_fmt}" if settings.pix_fmt else f"--codec {settings.codec.value}"
        raise OptionError(f"input {name} is HDR ({info.hdr}) and {what} is 8-bit, which cannot carry it: "
                          "use a 10-bit codec or pixel format, or --hdr tonemap for SDR")
    return spec.pix_fmt_hdr, [f"the input is HDR ({info.hdr}): writing 10-bit {spec.pix_fmt_hdr} with its HDR tags "
                              "(--hdr tonemap makes SDR)"]


def sequence_spec(output: Path) -> CodecSpec:
    """The frame format of a sequence output (``.png``, ``.tif``, ``.dpx``): 8-bit RGB, or 16-bit
    RGB for deep sources (bit depth kept)."""
    encoder = WRITE[output.suffix.lower()]
    if encoder == "exr":  # half-float, ZIP-compressed (what compositors read everywhere)
        return CodecSpec("exr", "gbrpf32le", "gbrpf32le", ("image2",), output.suffix,
                         extra=(("format:v", "half"), ("compression:v", "zip1")), pix_fmt_hdr="gbrpf32le")
    deep = {"png": "rgb48be", "tiff": "rgb48le", "dpx": "rgb48le"}[encoder]
    return CodecSpec(encoder, "rgb24", deep, ("image2",), output.suffix, pix_fmt_hdr=deep)


def _muxer_and_codec(output: Path, codec: Codec, exe: str) -> tuple[str, CodecSpec]:
    if output_sequence(output) is not None:
        return "image2", sequence_spec(output)
    muxer = CONTAINERS.get(output.suffix.lower())
    if muxer is None:
        raise OutputError(f"output {shown(output)}: unsupported extension {output.suffix!r} (use .mp4, .mov, .mkv or .mxf)")
    spec = CODECS[codec]
    if muxer not in spec.containers:
        exts = sorted({e for e, m in CONTAINERS.items() if m in spec.containers})
        raise OutputError(f"output {shown(output)}: codec {codec.value} cannot be stored in {output.suffix}; "
                          f"use {' or '.join(exts)}")
    if spec.encoder not in available_encoders(exe):
        raise OutputError(f"the ffmpeg program {shown(exe)} has no {spec.encoder} encoder (for --codec {codec.value})")
    return muxer, spec


def _frame_size(info: VideoInfo, pix_fmt: str, height: int | None) -> tuple[tuple[int, int], tuple[int, int], Fraction]:
    """((width, height), (pad columns, pad rows), sample aspect ratio) of the output."""
    ax, ay = chroma_alignment(pix_fmt)
    if height is None:
        (w, h), sar = info.upright_size, info.upright_sar
    else:
        if height < 5:
            raise OptionError(f"--height must be at least 5 px, got {height = }")
        w, h, sar = max(ax, round(height * info.display_aspect / ax) * ax), height, Fraction(1)
    return (w, h), ((-w) % ax, (-h) % ay), sar


def _colour_tags(info: VideoInfo, rgb_output: bool, hdr: HdrMode) -> tuple[str, str, str, str]:
    """(matrix, primaries, transfer, range): the source's tags, or the size's usual standard
    (BT.709 throughout for tone-mapped HDR)."""
    if info.hdr and hdr is HdrMode.tonemap:
        return "bt709", "bt709", "bt709", "pc" if rgb_output else "tv"
    matrix = cs.matrix("bt709" if info.matrix == "gbr" else info.matrix)
    primaries = info.color_primaries or ("bt709" if matrix.hd else "smpte170m")
    trc = info.color_trc or ("bt709" if matrix.hd else "smpte170m")
    color_range = "pc" if info.full_range or rgb_output else "tv"  # RGB is always full range
    return matrix.name, primaries, trc, color_range


def _carried_streams(info: VideoInfo, muxer: str, output: Path
                     ) -> tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...], list[str]]:
    """Audio and subtitle streams to copy (or convert), and notes on what cannot be kept."""
    if muxer == "image2":  # frames: no sound, no subtitles
        return (), (), ["the output is a sequence of frames: audio and subtitles are not written"] if (
            info.audio or info.subtitles) else []
    supported = _supported_codecs(muxer)
    notes = []
    audio = []
    fallback = AUDIO_FALLBACK.get(muxer, "aac")
    for stream in info.audio:
        if stream.codec in supported:
            audio.append((stream.index, "copy"))
        else:
            audio.append((stream.index, fallback))
            notes.append(f"audio stream {stream.index} ({stream.codec}) cannot be stored in {output.suffix}; "
                         f"re-encoding it to {fallback}")
    subtitles = []
    for stream in info.subtitles:
        if stream.codec in supported:
            subtitles.append((stream.index, "copy"))
        elif stream.codec in _TEXT_SUBTITLES and "mov_text" in supported:
            subtitles.append((stream.index, "mov_text"))
        else:
            notes.append(f"subtitle stream {stream.index} ({stream.codec}) cannot be stored in {output.suffix}; "
                         "dropped (use .mkv to keep it)")
    return tuple(audio), tuple(subtitles), notes


def _codec_args(settings: EncodeSettings, spec: CodecSpec, muxer: str) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    args: list[tuple[str, str]] = list(spec.extra)
    notes = []
    if settings.crf is not None and not 0 <= settings.crf <= 51:
        raise OptionError(f"--crf must be between 0 and 51, got {settings.crf}")
    if spec.crf is None and settings.crf is not None:
        notes.append(f"--crf does not apply to {settings.codec.value} (it has no quality factor); ignored")
    elif (crf := settings.crf if settings.crf is not None else spec.crf) is not None:
        args.append(("cq" if "nvenc" in spec.encoder else "crf", str(crf)))
    preset = settings.preset or spec.preset
    if preset is not None:
        args.append(("preset", preset))
    if settings.codec is Codec.hevc and muxer in ("mp4", "mov"):
        args.append(("tag:v", "hvc1"))  # plays in Apple players
    if settings.codec is Codec.prores:
        args.append(("profile:v", PRORES_PROFILES[settings.prores_profile]))
    if settings.codec is Codec.dnxhr:
        args.append(("profile:v", f"dnxhr_{settings.dnxhr_profile.value}"))
    return tuple(args), notes


#: Lines ffmpeg adds after the real reason an encoder failed to open.
_FFMPEG_CHATTER = ("Error while opening encoder", "Error sending frames", "Task finished", "Terminating thread",
                   "Conversion failed", "Error while filtering", "Nothing was written")


def check_encoder(plan: EncodePlan, exe: str, codec: Codec) -> None:
    """Encode two small frames with the plan's encoder, pixel format and settings, into nothing.

    A bad ``--preset``, an NVENC codec without an NVIDIA GPU, a pixel format the encoder
    cannot take: all fail here, before any weights load, as one line naming the option.
    """
    cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
           "color=c=gray:s=256x144:r=25:d=0.08", "-vf", f"format={plan.pix_fmt}", "-c:v", plan.encoder]
    for key, value in plan.codec_args:
        cmd += [f"-{key}", value]
    cmd += ["-f", "null", "-"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise OutputError(f"cannot run the ffmpeg program {shown(exe)} ({err})") from err
    if proc.returncode != 0:
        lines = [re.sub(r"^(\[[^]]*@ 0x[0-9a-f]+\] )+", "", line).strip() for line in proc.stderr.splitlines()]
        useful = [line for line in lines if line and not line.startswith(_FFMPEG_CHATTER)]
        detail = "; ".join(useful[:2])[:300] or f"exit status {proc.returncode}"
        preset = dict(plan.codec_args).get("preset")
        raise OptionError(f"--codec {codec.value}" + (f" --preset {preset}" if preset else "")
                          + f" cannot encode here: {detail}")
