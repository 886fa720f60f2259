"""``microast-video preview``: a few frames of the clip stylized, in seconds, as one contact sheet.

Rows are frames spread over the clip (timestamps printed), columns the input and each look:
every style given (unless ``--style-weights`` mixes them into one) times every ``--alpha``.
Every option of the video command applies (height, colour preservation, matte, keyframes...);
nothing is encoded, so checking a look costs seconds, not the render's hours.
"""

from __future__ import annotations

import dataclasses
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import OptionError, shown
from ..core.files import FilePlan
from ..core.frame import Frame
from ..core.options import PREVIEW_HEIGHT, Codec
from ..core.output import write_bytes
from ..core.schema import OPTIONS
from ..core.stages import terminate_on_signals
from ..engine.stylizer import FrameEngine
from ..media.bars import bars_kept
from ..media.decode import decode_frames
from ..media.encode_plan import EncodeSettings
from ..media.probe import probe
from ..style.controls import at_strength
from ..style.mattes import matted
from ..style.networks import load_network
from .contact import labelled, png_bytes, sheet_grid, spread
from .plan import JobPlan, VideoJob, plan_video, style_keyed
from .video import build_stylizer


@dataclasses.dataclass(frozen=True)
class PreviewJob:
    """A preview: the video job's options, the looks to compare, how many frames, where the sheet goes."""

    video: VideoJob
    alphas: tuple[float, ...] = (1.0,)
    frames: int = 6
    output: Path | None = None
    overwrite: bool = False
    strengths: tuple[float, ...] = ()  # one column each; () = the video job's own strength


def looks(job: PreviewJob) -> list[tuple[str, VideoJob]]:
    """(column header, the job of that look) for each look to compare."""
    v = job.video
    keyed = style_keyed(v)
    if keyed or v.matte is not None or v.signals is not None or v.style_weights or len(v.styles) <= 1:
        name = _matte_look(v) if v.matte else ("keyframes" if keyed else (
            Path(v.signals).stem if v.signals else ("mix" if v.style_weights else v.styles[0].stem)))
        sources = [(name, v)]
    else:
        sources = [(s.stem, dataclasses.replace(v, styles=(s,))) for s in v.styles]
    strengths = job.strengths or (v.strength,)
    return [(name + (f", alpha {a:g}" if len(job.alphas) > 1 else "") + (f", strength {s:g}" if len(strengths) > 1
                                                                          else ""),
             dataclasses.replace(look, alpha=a, strength=s))
            for name, look in sources for a in job.alphas for s in strengths]


def run_preview(job: PreviewJob) -> dict[str, Any]:
    """Stylize ``job.frames`` frames for every look and write the sheet; returns what was written."""
    if not 1 <= job.frames <= 48:
        raise OptionError(f"--frames must be between 1 and 48, got {job.frames}")
    for alpha in job.alphas:
        OPTIONS["alpha"].check(alpha)
    for strength in job.strengths:
        OPTIONS["strength"].check(strength)
    output = job.output or job.video.input.with_name(f"{job.video.input.stem}_preview.png")
    if output.suffix.lower() != ".png":
        raise OptionError(f"preview {shown(output)}: the contact sheet is a PNG image; name it .png")
    v = job.video
    if v.height is None:  # small enough to take seconds, never larger than the clip
        v = dataclasses.replace(v, height=min(PREVIEW_HEIGHT, probe(v.input, fps=Fraction(v.fps).limit_denominator(1001), missing=v.missing).upright_size[1]))
        job = dataclasses.replace(job, video=v)
    with terminate_on_signals():
        columns = looks(job)
        plans = [(name, _plan(look)) for name, look in columns]                 # 1. check every look
        _sheet_plan(plans, output).check(overwrite=job.overwrite)               #    and the sheet's name
        frames = _frames(plans[0][1], job.frames)                               # 2. the frames
        model = load_network(v.network, weights=v.weights, style_model=v.style_model, device=plans[0][1].device,
                             progress=v.progress)
        outputs = [_stylized(plan, model, frames) for _, plan in plans]         # 3. every look
        mattes = _mattes(plans[0][1], frames)
        rows = [[labelled(f.data, f"{f.seconds:.2f} s"), *m, *(o[i].data for o in outputs)]
                for i, (f, m) in enumerate(zip(frames, mattes))]
        sheet = sheet_grid(rows, headers=["input", *(["matte"] if mattes[0] else []), *(name for name, _ in plans)])
        write_bytes(output, png_bytes(sheet), overwrite=job.overwrite, what="preview")  # 4. the sheet
    return {"output": str(output), "frames": [round(f.seconds, 3) for f in frames], "looks": [n for n, _ in plans],
            "size": [sheet.shape[1], sheet.shape[0]]}


def _sheet_plan(plans: list[tuple[str, JobPlan]], output: Path) -> FilePlan:
    """Every file the looks read (clip, styles, keyframe styles, mattes...), and the sheet."""
    files = FilePlan()
    for _, plan in plans:
        files.reads += plan.files.reads
    return files.write("preview", output)


def _plan(look: VideoJob) -> JobPlan:
    """The look's plan, as the video command makes it (its output is never written)."""
    scratch = Path(tempfile.gettempdir()) / "microast-preview.mkv"
    return plan_video(dataclasses.replace(look, output=scratch, overwrite=True, report=None,
                                          encode=EncodeSettings(codec=Codec.ffv1), temporal="off"))


def _frames(plan: JobPlan, count: int) -> list[Frame]:
    """``count`` frames spread over the clip (or its --start/--duration window), at the job's size;
    fewer where the window holds fewer frames (never one frame twice)."""
    job = plan.job
    span = job.duration or (float(plan.info.duration) - job.start if plan.info.duration else None)
    wanted = spread(span, count)
    picked: list[Frame] = []
    for frame in decode_frames(plan.info, start=job.start, duration=job.duration, size=plan.encode.size,
                               deinterlace=plan.deinterlace):
        if wanted and frame.seconds >= wanted[0] - 1e-6:  # each frame once, however many times fall before it
            picked.append(dataclasses.replace(frame, index=len(picked)))
            while wanted and frame.seconds >= wanted[0] - 1e-6:
                wanted.pop(0)
        if not wanted:
            break
    return picked


def _matte_look(v: VideoJob) -> str:
    keyed = style_keyed(v)
    inside = "keyframes" if keyed else (Path(v.signals).stem if v.signals else v.styles[0].stem)
    outside = v.styles[0] if keyed and v.styles else (v.styles[1] if len(v.styles) > 1 else None)
    return f"{inside} in the matte, {outside.stem} outside" if outside else f"{inside} in the matte"


def _mattes(plan: JobPlan, frames: list[Frame]) -> list[list[np.ndarray]]:
    """Each frame's matte as a grey RGB picture (a column of the sheet), or nothing without a matte."""
    if plan.matte is None:
        return [[] for _ in frames]
    return [[np.repeat(f.matte[:, :, None], 3, axis=2)] for f in matted(iter(frames), plan.matte, plan.job.start)]


def _stylized(plan: JobPlan, model: Any, frames: list[Frame]) -> list[Frame]:
    stylizer = build_stylizer(plan, model)
    source = iter(frames) if plan.matte is None else matted(iter(frames), plan.matte, plan.job.start)
    strength, picture = plan.strength, plan.picture
    out = FrameEngine(stylizer, plan.batch_size, keep_source=strength is not None or picture is not None).run(source)
    out = out if strength is None else at_strength(out, strength, plan.job.strength)
    return list(out if picture is None else bars_kept(out, picture))
