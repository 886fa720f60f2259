"""The run's report: what was done, how fast, with what (JSON-friendly), and its one-line summary."""

from __future__ import annotations

import platform
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import torch

from .._version import __version__
from ..core.quiet import captured

if TYPE_CHECKING:
    from ..core.stages import StageTimes
    from ..engine.stylizer import Stylizer
    from .plan import JobPlan

#: Stages in the order a frame passes them (reports list these first, then any others).
STAGE_ORDER = ("decode", "upload", "network", "download", "temporal", "encode")


def versions(exe: str) -> dict[str, str]:
    """Versions of everything that shaped the output."""


    return {
        "microast_video": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "av": av.__version__,
        "ffmpeg_libs": str(getattr(av, "ffmpeg_version_info", "")),
        "ffmpeg_program": exe,
        "numpy": np.__version__,
    }


def stage_seconds(times: StageTimes) -> dict[str, float]:
    """Busy seconds per stage, in flow order, every known stage listed (0 when idle)."""
    names = [*STAGE_ORDER, *(k for k in times.seconds if k not in STAGE_ORDER)]
    return {k: round(times.seconds.get(k, 0.0), 4) for k in names}


#: How the summary line names the stage that bounds a run.
_STAGE_NAMES = {"decode": "the decoder", "network": "the network", "encode": "the encoder",
                "temporal": "the temporal stage", "upload": "the upload", "download": "the download"}


def bound_by(stages: dict[str, float]) -> str | None:
    """The stage that bounds the run: the busiest, whose busy time is closest to the wall time
    (the stages overlap, so the run can go no faster than it)."""
    return max(stages, key=stages.get) if stages and max(stages.values()) > 0 else None


def video_report(plan: JobPlan, stylizer: Stylizer, times: StageTimes, frames: int, wall: float,
                 first_frame_at: float | None) -> dict[str, Any]:
    """The report of a finished video job (also what ``--report`` writes)."""
    job, info, enc = plan.job, plan.info, plan.encode
    return {
        "input": str(job.input),
        "output": str(plan.output),
        "frames": frames,
        "wall_seconds": round(wall, 4),
        "fps": round(frames / wall, 4) if wall > 0 else None,
        "time_to_first_frame_s": None if first_frame_at is None else round(first_frame_at, 4),
        "stages": stage_seconds(times),
        "bound_by": bound_by(stage_seconds(times)),
        "device": str(plan.device),
        "precision": str(plan.engine.dtype).removeprefix("torch."),
        "batch_size": plan.batch_size,
        "engine": {**plan.engine.describe(), "transport": plan.transport.name},
        "compile_seconds": None if stylizer.compile_seconds is None else round(stylizer.compile_seconds, 3),
        "input_resolution": list(info.upright_size),
        "output_resolution": list(enc.size),
        "padding": list(enc.pad),
        "codec": plan.encode.codec.value,
        "encoder": enc.encoder,
        "pix_fmt": enc.pix_fmt,
        "color": {"matrix": enc.matrix, "primaries": enc.color_primaries, "trc": enc.color_trc,
                  "range": enc.color_range},
        "frame_rate": str(info.frame_rate),
        "alpha": job.alpha,
        "styles": [str(s) for s in job.styles] or None,
        "signals": str(job.signals) if job.signals else None,
        "notes": [*plan.notes, *(n for n in (stylizer.compile_note, stylizer.native_note) if n)],
        "third_party_messages": captured(),  # warnings kept out of the terminal (--debug shows them)
        "versions": versions(plan.exe),
        "per_frame": [{"index": i, **times.per_frame.get(i, {})} for i in range(frames)],
    }


def summary_line(report: dict[str, Any]) -> str:
    """One line: frames, wall time, fps and the busy time of each stage."""
    if report.get("up_to_date"):
        return f"{report['frames']} frames, up to date (made by an earlier run of this job); nothing to do"
    stages = ", ".join(f"{k} {v:.2f}s" for k, v in report["stages"].items())
    w, h = report["output_resolution"]
    return (f"{report['frames']} frames in {report['wall_seconds']:.2f} s = {report['fps']:.2f} fps "
            f"({w}x{h}, {report['device']}, {report['precision']}, batch {report['batch_size']}); "
            f"stage busy time: {stages}"
            + (f"; bound by {_STAGE_NAMES.get(report['bound_by'], report['bound_by'])}" if report.get("bound_by") else ""))
