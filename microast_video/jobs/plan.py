"""The video job's plan (:class:`JobPlan`) from its description (:class:`~.job.VideoJob`,
importable from here too).

:func:`plan_video` is the job's first phase: it checks everything that can be refused
(options, input, styles, every output path, codec and container, device and precision)
before any frame is decoded or any weight loaded, and freezes every decision the later
phases need into one :class:`JobPlan`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import torch

from ..colour import spaces as cs
from ..colour.ocio import ColourManagement, plan_colour
from ..core.errors import InputError, OptionError, OutputError, shown
from ..core.files import FilePlan
from ..core.options import (
    CompileMode,
    Decode,
    Deinterlace,
    Ease,
    KeepBars,
    Network,
    Temporal,
    Transport,
    megapixels,
)
from ..core.paths import cache_dir
from ..core.schema import ENCODE_OPTIONS
from ..engine.device import resolve_device, resolve_precision
from ..engine.stylizer import EngineSettings, engine_settings
from ..engine.transport import RGBTransport, YUV420Transport
from ..media.bars import Picture, picture_area
from ..media.decode import nvdec_problem
from ..media.encode_plan import (
    EncodePlan,
    check_encoder,
    chroma_alignment,
    default_output,
    ffmpeg_exe,
    plan_encode,
)
from ..media.frame_header import HEADER_FORMATS
from ..media.frame_header import available as header_support
from ..media.probe import VideoInfo, probe
from ..media.sequence import output_sequence
from ..media.timecode import frames_before
from ..models.microast import MIN_SIDE
from ..style.controls import Curve
from ..style.mattes import MatteSource
from ..style.signals import check_style_source
from ..temporal.stabilizer import MIN_FLOW_SIDE, TemporalSettings
from .chart import check_chart_available
from .job import (
    Keyframes,
    VideoJob,
    alpha_notes,
    check_controls,
    check_network,
    check_network_memory,
    plan_keyframes,
    style_keyed,
)
from .options import check_declared


@dataclasses.dataclass(frozen=True)
class JobPlan:
    """Every decision of a video job, taken before any work."""

    job: VideoJob
    info: VideoInfo
    output: Path
    encode: EncodePlan
    exe: str
    device: torch.device
    engine: EngineSettings
    transport: RGBTransport | YUV420Transport
    batch_size: int
    queue_frames: int
    expected_frames: int | None
    color_matrix: str | None  # the matrix colour preservation works in (None: off)
    notes: tuple[str, ...]
    deinterlace: bool = False  # run bwdif while decoding
    gpu_decode: str | None = None  # decode on this CUDA device's NVDEC ("0"); None: on the CPU
    temporal: TemporalSettings | None = None  # None: every frame on its own
    matte: MatteSource | None = None
    keyframes: Keyframes | None = None
    files: FilePlan = dataclasses.field(default_factory=FilePlan)  # every file read and written
    picture: Picture | None = None  # the area the look paints; None: the whole frame (no bars)
    colour: ColourManagement | None = None  # OpenColorIO: scene-linear / log in and out; None: display

    @property
    def strength(self) -> Curve | None:
        """The look's strength over time (``--strength``, its keyframes), or None where it is 1
        throughout (then no frame is mixed: the output is the full style, bit for bit)."""
        keys = self.keyframes
        if keys is not None and keys.strengths:
            return Curve(keys.strength_times, keys.strengths, keys.ease)
        return None if self.job.strength >= 1.0 else Curve((), (), Ease.linear)


def file_plan(job: VideoJob, output: Path, keyframes: Keyframes | None) -> FilePlan:
    """Every file the video job reads (clip, styles, signals, matte, keyframes file and its
    styles) and writes (video, report, chart); :meth:`FilePlan.check` refuses clashes."""
    files = FilePlan().read("input", job.input).read("style", *job.styles).read("signals", job.signals)
    files.read("matte", job.matte).read("keyframes", job.keyframes).read("style model", job.style_model)
    files.read("keyframe style", *(keyframes.style_paths if keyframes is not None else ()))
    return files.write("output", output).write("report", job.report).write("--chart", job.chart)


def auto_batch_size(width: int, height: int) -> int:
    """Frames per batch: about two megapixels per batch (1 at 1080p and above, 8 at 360p).

    Strips already keep the CPU busy within a frame, so large frames gain nothing from
    batching and would only hold more memory; small frames amortise per-op overhead.
    """
    return max(1, min(8, (2_100_000 // max(1, width * height))))


def expected_frames(info: VideoInfo, start: float, duration: float | None) -> int | None:
    """How many frames the window [start, start + duration) of the clip should hold: the
    container's count where it lists one (in proportion for a part: a variable-rate clip's
    average rate is FFmpeg's estimate from its first frames, 12 fps for one of 50 frames
    in 3.08 s with a gap after the first), else by its frame rate."""
    if info.duration is None:
        return None if duration is None else round(duration * info.frame_rate)
    left = max(0.0, float(info.duration) - start)
    seconds = left if duration is None else min(left, duration)
    if info.frames_listed and info.frames and info.duration > 0:
        return info.frames if seconds == float(info.duration) else math.ceil(info.frames * seconds / float(info.duration))
    return max(0, round(seconds * info.frame_rate))


def early_end_note(job: VideoJob, info: VideoInfo, end_seconds: float) -> list[str]:
    """A note where the decoded frames stop (``end_seconds``: the last one's end, on the output's
    clock) well before the container's duration says the window ends (a cut-off MKV or TS)."""
    if info.duration is None:
        return []
    left = float(info.duration) - job.start
    end = left if job.duration is None else min(job.duration, left)
    if end_seconds >= end - max(2 * float(info.frame_seconds), 0.1):
        return []
    return [f"the input {shown(job.input)} ends early: frames stop at {end_seconds:.2f} s of the {end:.2f} s "
            "expected (truncated file?); the output is that long"]


def check_options(job: VideoJob) -> None:
    """Refuse bad option values (one line each) before anything is opened."""
    check_declared(job)
    check_declared(job.encode, ENCODE_OPTIONS)
    if job.chart is not None:
        check_chart_available()
    if job.queue_frames is not None and job.queue_frames < 1:
        raise OptionError(f"queue_frames must be >= 1, got {job.queue_frames}")
    check_network(job)
    check_controls(job)
    if not style_keyed(job) and Network(job.network) is not Network.johnson:
        check_style_source(job.styles, job.signals, job.style_weights, job.max_pixels)


def choose_transport(job: VideoJob, info: VideoInfo, plan: EncodePlan, device: torch.device
                     ) -> tuple[RGBTransport | YUV420Transport, str | None]:
    """How frames travel to the device, and a note when a requested 4:2:0 transport can't be used.

    ``auto`` ships 4:2:0 planes to a CUDA device (1.5 instead of 3 bytes per pixel each
    way, colour converted on the GPU) whenever the clip allows it, RGB otherwise.
    """
    transport = Transport(job.transport)
    w, h = plan.size
    why = None
    if plan.pad != (0, 0) or w % 2 or h % 2:
        why = "the frame size is odd"
    elif info.matrix == "gbr" or not cs.matrix(info.matrix).linear or not cs.matrix(plan.matrix).linear:
        why = f"the colour matrix ({info.matrix} in, {plan.matrix} out) is not a plain YCbCr matrix"
    elif info.rotation:
        why = "the clip is rotated (turning 4:2:0 planes moves the chroma siting)"
    elif chroma_alignment(plan.pix_fmt) != (2, 2):
        why = f"the output pixel format {plan.pix_fmt} is not 4:2:0"
    elif plan.tonemap:
        why = "HDR is tone-mapped to SDR on the CPU first"
    wanted = transport is Transport.yuv420 or (transport is Transport.auto and device.type == "cuda")
    if not wanted or why:
        note = f"4:2:0 transport not used: {why}; frames travel as RGB" if transport is Transport.yuv420 else None
        return RGBTransport(), note
    return YUV420Transport(in_matrix=info.matrix, out_matrix=plan.matrix, in_full=info.full_range,
                           out_full=plan.full_range, bits=10 if plan.deep else 8), None


def plan_video(job: VideoJob, *, log: Callable[[str], None] = lambda m: None) -> JobPlan:
    """Phase 1 of the job: check everything, then decide everything (no frame, no weights yet).

    Raises:
        OptionError, InputError, OutputError, DeviceError: one line naming the problem.
    """
    check_options(job)
    info = probe(job.input, fps=Fraction(job.fps).limit_denominator(1001), missing=job.missing)
    if info.duration is not None and job.start >= float(info.duration):
        raise OptionError(f"--start {job.start} s is past the end of {shown(job.input)} ({float(info.duration):.3f} s)")
    output = job.output or default_output(info.sequence.folder / f"{info.sequence.stem}.mp4"
                                          if info.sequence else job.input, job.encode.codec)
    if (frames := output_sequence(output)) is not None:
        output = frames.pattern  # shot.####.png as FFmpeg writes it: shot.%04d.png
    keyframes = plan_keyframes(job, info.frame_rate)
    files = file_plan(job, output, keyframes)
    files.check(overwrite=job.overwrite)
    check_sequence_output(info, output)
    check_frame_sizes(job, info)
    exe = ffmpeg_exe()
    encode = plan_encode(info, output, job.encode, exe=exe, height=job.height, hdr=job.hdr,
                         first_number=first_number(job, info))
    check_frame_sizes(job, info, encode.size)
    check_network_memory(job, encode.size)
    colour = plan_colour(job.input_colorspace, job.output_colorspace, job.ocio_config, declared=info.colour_space,
                         float_input="f16" in info.pix_fmt or "f32" in info.pix_fmt, output=encode.encoder)
    check_encoder(encode, exe, job.encode.codec)
    matte = None if job.matte is None else MatteSource.open(job.matte, job.max_pixels)
    matte_notes = () if matte is None else tuple(matte.check_covers(info, job.start, job.duration))
    device = resolve_device(job.device, quiet=not job.progress)
    dtype = resolve_precision(job.precision, device)
    transport, transport_note = choose_transport(job, info, encode, device)
    gpu_decode, decode_note = choose_decoder(job, info, device)
    expected = expected_frames(info, job.start, job.duration)
    engine = _engine_for(job, device, dtype, encode.size, expected)
    batch_size = job.batch_size or auto_batch_size(*encode.size)
    frame_bytes = encode.size[0] * encode.size[1] * 3 * (2 if encode.deep else 1)
    queue_frames = max(job.queue_frames or min(8, max(1, 100_000_000 // frame_bytes)), batch_size)
    deinterlace = job.deinterlace is Deinterlace.on or (job.deinterlace is Deinterlace.auto and info.interlaced)
    temporal = plan_temporal(job, encode.size)
    picture, picture_note = picture_area(info, encode.size, crop=job.crop, keep_bars=KeepBars(job.keep_bars),
                                         start=job.start, duration=job.duration)
    notes = (*input_notes(info, job.deinterlace, encode.alpha or frames_keep_alpha(info, output)), *encode.notes, *([transport_note] if transport_note else []),
             *matte_notes, *([decode_note] if decode_note else []), *alpha_notes(job, keyframes),
             *([picture_note] if picture_note else []), *header_notes(job, info))
    for note in notes:
        log(f"microast-video: note: {note}")
    color_matrix = ("bt709" if info.matrix == "gbr" or encode.tonemap else info.matrix) if job.preserve_color else None
    if matte is not None or (keyframes is not None and keyframes.network):
        engine = dataclasses.replace(engine, compile=False, freeze=False)  # per-frame controls run eager
    return JobPlan(job, info, output, encode, exe, device, engine, transport, batch_size, queue_frames,
                   expected, color_matrix, notes, deinterlace, gpu_decode, temporal, matte, keyframes, files, picture,
                   colour)


def check_sequence_output(info: VideoInfo, output: Path) -> None:
    """An output sequence never writes over the input sequence's frames."""
    out = output_sequence(output)
    if out is None or info.sequence is None:
        return
    same = os.path.realpath(out.folder) == os.path.realpath(info.sequence.folder)
    if same and (out.prefix, out.suffix.lower()) == (info.sequence.prefix, info.sequence.suffix.lower()):
        raise OutputError(f"output {shown(output)} names the input's own frames; give the output another name or folder")


def first_number(job: VideoJob, info: VideoInfo) -> int:
    """An image-sequence output's first frame number: ``--start-number``, else the input's own
    numbering (a sequence's first number, a movie's 1) moved on by the frames ``--start`` skips."""
    if job.start_number is not None:
        return job.start_number
    first = info.sequence.first if info.sequence is not None else 1
    return first + frames_before(job.start, info.nominal_rate or info.frame_rate)


def plan_temporal(job: VideoJob, size: tuple[int, int]) -> TemporalSettings | None:
    """The temporal stage's settings (None: off), refused in one line on frames too small for its flow."""
    temporal = (TemporalSettings(strength=job.temporal_strength) if Temporal(job.temporal) is Temporal.on
                and job.temporal_strength > 0 else None)
    if temporal is not None and (max(size) < MIN_FLOW_SIDE[0] or min(size) < MIN_FLOW_SIDE[1]):
        w, h = size
        raise OptionError(f"{w}x{h} px frames are too small for the temporal stage's optical flow (it needs "
                          f"{MIN_FLOW_SIDE[0]} px on the longer side and {MIN_FLOW_SIDE[1]} on the shorter); raise "
                          "--height or pass --temporal off")
    return temporal


def choose_decoder(job: VideoJob, info: VideoInfo, device: torch.device) -> tuple[str | None, str | None]:
    """(the CUDA device index to decode on with NVDEC, or None for the CPU; a note or None).

    ``auto`` decodes on the GPU of a CUDA job where NVDEC takes the clip (its first frame is
    tried), else on the CPU with a note saying why; ``gpu`` refuses in one line where it cannot;
    CPU jobs decode on the CPU without a word."""
    mode = Decode(job.decode)
    if mode is Decode.cpu or (mode is Decode.auto and device.type != "cuda"):
        return None, None
    if device.type != "cuda":
        raise OptionError(f"--decode gpu needs a CUDA device; this job runs on {device}")
    gpu = str(device.index if device.index is not None else torch.cuda.current_device())
    problem = nvdec_problem(info, gpu)
    if problem is None:
        return gpu, None
    if mode is Decode.gpu:
        raise InputError(f"input {shown(info.path)}: --decode gpu: {problem}")
    return None, f"decoding on the CPU: {problem}"


def check_frame_sizes(job: VideoJob, info: VideoInfo, size: tuple[int, int] | None = None) -> None:
    """Refuse pictures over ``--max-pixels`` (before decoding them) and under the network's minimum.

    Without ``size``: the input's declared frame size. With it: the frames the job would make.
    """
    name, limit = shown(job.input), job.max_pixels
    if size is None:
        if info.pixels > limit:
            raise InputError(f"input {name}: its frames are {info.width}x{info.height} px ({megapixels(info.pixels)}), "
                             f"over the limit of {megapixels(limit)}; raise it with --max-pixels")
        return
    w, h = size
    if w * h > limit:
        raise OptionError(f"--height {job.height} makes {w}x{h} px frames ({megapixels(w * h)}), over the limit of "
                          f"{megapixels(limit)}; lower --height or raise --max-pixels")
    if min(w, h) < MIN_SIDE:
        raise InputError(f"input {name}: {w}x{h} px frames are too small for the network (each side needs "
                         f"{MIN_SIDE} px)" + ("; raise --height" if job.height else ""))


def input_notes(info: VideoInfo, deinterlace: Deinterlace, alpha_kept: bool = False) -> list[str]:
    """What the user should hear about the input before the run changes it silently."""
    notes = []
    if info.video_streams > 1:
        notes.append(f"the input has {info.video_streams} video streams; only the first is stylized")
    if info.alpha and not alpha_kept:
        notes.append("the input has an alpha channel; the output is opaque (alpha dropped; --codec prores "
                     "--prores-profile 4444 keeps it)")
    if info.interlaced and deinterlace is not Deinterlace.off:
        notes.append("the input is interlaced: deinterlaced with bwdif (--deinterlace off keeps the fields)")
    elif info.interlaced:
        notes.append("the input is interlaced and --deinterlace off keeps its fields: moving edges will comb")
    return notes


def frames_keep_alpha(info: VideoInfo, output: Path) -> bool:
    """An OpenEXR or DPX sequence out of a sequence with alpha carries its alpha (OpenImageIO)."""
    out = output_sequence(output)
    return bool(info.alpha and info.sequence is not None and out is not None
                and out.suffix.lower() in HEADER_FORMATS and header_support())


def header_notes(job: VideoJob, info: VideoInfo) -> list[str]:
    """What the frames' headers decided (a colour space), or that they could not be read."""
    if info.sequence is None:
        return []
    held = info.sequence.missing
    notes = [f"{len(held)} missing frame(s) of {shown(info.sequence.pattern)} (the first: {held[0]}) hold the frame "
             "before them (--missing hold)"] if held else []
    if info.sequence.suffix.lower() not in HEADER_FORMATS:
        return notes
    if not header_support():
        return [*notes, "OpenImageIO is not installed: the frames' timecode and colour headers are not read or "
                "written (pip install 'microast-video[post]')"]
    if info.colour_space and not job.input_colorspace:
        return [*notes, f"the frames' header ({info.colour_declared_by}) declares {info.colour_space}: read as such "
                "(--input-colorspace says otherwise)"]
    return notes


def _engine_for(job: VideoJob, device: torch.device, dtype: torch.dtype, size: tuple[int, int],
                frames: int | None) -> EngineSettings:
    settings = engine_settings(device, dtype, size[1], size[0], frames=frames, kernel_cache=cache_dir() / "inductor")
    if job.compile is not CompileMode.auto:
        settings = dataclasses.replace(settings, compile=job.compile is CompileMode.on)
    if job.freeze is not None:
        settings = dataclasses.replace(settings, freeze=job.freeze)
    return dataclasses.replace(settings, freeze=settings.freeze and settings.compile)
