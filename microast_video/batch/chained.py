"""One batch job in this process: its segments in order, the temporal state passing from one
to the next, then assembly (:func:`run_chained`); and what every job does once its segments
are done, however they ran (:func:`finish`)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from ..core.errors import MicroastError, shown
from ..core.output import json_bytes, write_bytes
from ..jobs.plan import early_end_note
from ..jobs.video import Window, encode_window
from ..media.decode import first_frame_offset
from ..temporal.stabilizer import new_stabilizer
from .segments import SegmentWriter, WorkFolder, assemble, record_path
from .types import JobRun


def run_chained(run: JobRun, stylizer: Any, warmup_frames: int, overwrite: bool) -> None:
    """One job in this process: a single pass over the clip from its first unfinished segment,
    each segment published and recorded as soon as it is complete, the temporal state passing
    through unbroken (and saved at each segment's end, so a resumed run continues exactly).
    Then assembly."""
    plan = run.plan
    work = WorkFolder(plan.output, run.fingerprint).open()
    pending = [s for s in run.segments if work.done(s.index) is None]
    if pending:
        first = pending[0]
        stabilizer = new_stabilizer(plan.temporal, plan.device)
        warmup = 0.0
        if stabilizer is not None and first.index and not work.load_state(first.index - 1, stabilizer):
            warmup = float(Fraction(warmup_frames) / plan.info.frame_rate)  # no saved state: warm up instead
        rest = run.segments[first.index:]
        sink = SegmentWriter(plan, work, rest, stats=None)
        window = Window(first.start, None, warmup=warmup, anchor=first_frame_offset(plan.info, plan.job.start),
                        carry=False)
        done = encode_window(plan, stylizer, None, window=window, stabilizer=stabilizer, sink=sink,
                             boundaries=tuple(s.start for s in rest[1:]), stats_sink=sink)
        last = work.done(rest[-1].index) or {}
        work.mark_done(rest[-1].index, {**last, "stages": {k: round(v, 4) for k, v in done.times.seconds.items()}})
    for segment in run.segments:
        run.add(work.done(segment.index))
    finish(run, work, overwrite)


def finish_frames(run: JobRun, report: dict[str, Any]) -> None:
    """Take a sequence job's figures from the report of its one pass (``run_video``: its frames
    written whole and resumed one by one) and record what its frames were made from."""
    run.frames = int(report["frames"])
    run.stages = {k: round(v, 4) for k, v in report.get("stages", {}).items()}
    run.notes += [n for n in report.get("notes", []) if n not in run.plan.notes]
    write_bytes(record_path(run.job.output), json_bytes({"fingerprint": run.fingerprint, "frames": run.frames,
                                                          "first_number": run.plan.encode.first_number}),
                overwrite=True, what="job record")
    run.status = "done"


def finish(run: JobRun, work: WorkFolder, overwrite: bool) -> None:
    """Assemble a job whose segments are all done; record what it was made from; clear its work folder."""
    plan, info = run.plan, run.plan.info
    listed = (info.frames or 0) - run.discarded
    if info.frames_listed and plan.job.start == 0 and plan.job.duration is None and run.frames < listed:
        raise MicroastError(f"input {shown(plan.job.input)}: truncated or corrupt: the container lists "
                            f"{listed} frames but only {run.frames} could be decoded")
    run.notes += early_end_note(plan.job, info, run.end_seconds)  # as a single run says it
    assemble(plan, work, run.segments, overwrite=overwrite)
    write_bytes(record_path(plan.output), json_bytes({"fingerprint": run.fingerprint, "frames": run.frames}),
                overwrite=True, what="job record")
    work.remove()
    run.status = "done"
