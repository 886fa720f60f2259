"""An image-sequence output that resumes: each frame is written whole (renamed into place when
complete), a record beside the frames says what they are made from, and a run of the same
job after a kill continues at the first missing frame, with :data:`WARMUP_FRAMES` stylized
and dropped before it so the temporal stage is steady again at the seam."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.errors import OutputError, shown
from ..core.output import json_bytes, write_bytes
from ..media.sequence import output_sequence
from .plan import JobPlan
from .records import fingerprint

#: Frames decoded and stylized before a resumed sequence's first missing frame, then dropped.
WARMUP_FRAMES = 24


def record_path(plan: JobPlan) -> Path:
    out = output_sequence(plan.output)
    assert out is not None  # only called for sequence outputs
    return out.folder / f".{out.prefix}{out.suffix}.microast-frames.json"


def frame_print(plan: JobPlan) -> str:
    """What the frames are made from (:func:`~.records.fingerprint`), with their first number."""
    return fingerprint(plan.job, first_number=plan.encode.first_number)


def frames_done(plan: JobPlan, print_: str) -> int:
    """How many of the output's frames an earlier run of this same job completed (0: none, or
    frames of another job that ``--overwrite`` lets this run replace); refused in one line
    when frames of something else are there and ``--overwrite`` is not given."""
    count, same = frames_found(plan, print_)
    if same or count == 0:
        return count
    if not plan.job.overwrite:
        out = output_sequence(plan.output)
        raise OutputError(f"output {shown(out.frame(plan.encode.first_number))} exists and was not made by this "
                          "job; pass --overwrite to replace the frames")
    return 0


def frames_found(plan: JobPlan, print_: str) -> tuple[int, bool]:
    """(how many of the output's frames are there from its first number on, whether the record
    beside them says this job, ``print_``, made them)."""
    out = output_sequence(plan.output)
    first = plan.encode.first_number
    if out is None or first is None:
        return 0, False
    count = 0
    while (plan.expected_frames is None or count < plan.expected_frames) and out.frame(first + count).is_file():
        count += 1
    try:
        same = json.loads(record_path(plan).read_text()).get("fingerprint") == print_
    except (OSError, ValueError, AttributeError):
        same = False
    return count, same


def sweep_partial(plan: JobPlan) -> list[Path]:
    """Remove the frame a killed run's ffmpeg was writing (its temporary ``NAME.tmp``); returns them."""
    out = output_sequence(plan.output)
    if out is None or not out.folder.is_dir():
        return []
    gone = []
    for entry in out.folder.iterdir():
        name = entry.name
        if name.startswith(out.prefix) and name.endswith(f"{out.suffix}.tmp") and name[len(out.prefix):-len(
                out.suffix) - 4].isdigit():
            entry.unlink(missing_ok=True)
            gone.append(entry)
    return gone


def mark(plan: JobPlan, print_: str) -> None:
    """Say, beside the frames, what they are made from (:func:`frame_print`; before the first frame is written)."""
    write_bytes(record_path(plan), json_bytes({"fingerprint": print_, "pattern": str(plan.output)}),
                overwrite=True, what="frames record")


def resumed(done: int, plan: JobPlan) -> dict[str, Any]:
    """The window and first number of a run that continues after ``done`` complete frames."""
    rate = plan.info.nominal_rate or plan.info.frame_rate
    return {"start": float(done / rate), "warmup": float(min(done, WARMUP_FRAMES) / rate),
            "first_number": (plan.encode.first_number or 0) + done}
