"""``microast-video batch``: many clips x looks, resumable by segments, a report to review.

:func:`run_batch` runs these phases:

1. **select**: the manifest's jobs (with ``retry_failed``: only those the last run failed);
2. **check** everything before any work: every input probes, every style loads, every
   output is free (or ``--overwrite``, or already made from the same inputs and settings:
   then the job is skipped), codec and container fit; each problem is one line naming its
   manifest entry;
3. **style**: each look's signals, once for the whole batch;
4. **plan**: jobs, frames, segments and a time estimate measured on this machine;
5. **run**: one worker in order (the temporal state passes from segment to segment and is
   saved with each), several local workers, or a Ray cluster (independent segments, each
   with warm-up frames); a failing job fails alone, the batch goes on;
6. **report**: ``report.json`` and a self-contained ``report.html`` with contact sheets.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterable
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..media.decode import first_frame_offset
from ..core.errors import MicroastError, OptionError, shown
from ..jobs.plan import JobPlan, VideoJob, plan_video
from .manifest import BatchJob, Manifest, ManifestError, load_manifest
from ..core.output import check_output
from .segments import Segment, WorkFolder, assemble, fingerprint, is_up_to_date, plan_segments, record_path
from ..core.stages import terminate_on_signals
from ..temporal.stabilizer import new_stabilizer

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """How to run a manifest (``microast-video batch``'s options)."""

    dry_run: bool = False
    overwrite: bool = False
    retry_failed: bool = False
    workers: int = 1
    ray: str | None = None  # None (no Ray), "local", "auto" or a cluster address
    weights: Path | None = None
    report_dir: Path | None = None
    progress: bool = True
    flicker: bool = False  # measure each output's warping error (and at segment seams)


@dataclasses.dataclass
class JobRun:
    """One job's state through the batch (what the report says of it)."""

    job: BatchJob
    video: VideoJob
    fingerprint: str
    plan: JobPlan | None = None
    segments: list[Segment] = dataclasses.field(default_factory=list)
    status: str = "pending"  # pending, skipped, done, failed
    error: str | None = None
    frames: int = 0
    discarded: int = 0  # packets the first segment's edit list hid
    seconds: float = 0.0
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    seams: list[int] = dataclasses.field(default_factory=list)  # first frame of each segment after the first
    end_seconds: float = 0.0  # where the last frame decoded ends, on the clip's clock
    notes: list[str] = dataclasses.field(default_factory=list)
    sheet: Path | None = None
    flicker: dict[str, Any] | None = None

    def add(self, record: dict[str, Any]) -> None:
        if self.frames and record["frames"]:
            self.seams.append(self.frames)
        if not self.frames:
            self.discarded = record.get("discarded", 0)
        self.end_seconds = max(self.end_seconds, record.get("end_seconds", 0.0))
        self.frames += record["frames"]
        for stage, seconds in record.get("stages", {}).items():
            self.stages[stage] = round(self.stages.get(stage, 0.0) + seconds, 4)


def run_batch(manifest_path: str | Path | Manifest, options: BatchOptions = BatchOptions(), *,
              log: Log = _stderr) -> dict[str, Any]:
    """Run a batch manifest (a TOML file, or a :class:`Manifest` built in code); returns the
    report (also written to the report folder).

    Raises:
        ManifestError: problems found before any work (one line each).
        OptionError: options that cannot work here.
    """
    from .jobs import estimate, look_signals, run_jobs
    from .report import report_folder, write_report

    with terminate_on_signals():
        manifest = manifest_path if isinstance(manifest_path, Manifest) else load_manifest(manifest_path)
        report_dir = report_folder(manifest, options)
        runs = select(manifest, options, report_dir)                      # 1. select
        check(runs, manifest, options)                                    # 2. check
        pending = [r for r in runs if r.status == "pending"]
        signals = look_signals(pending, options)                          # 3. style
        seconds = estimate(pending, signals, options)                     # 4. plan
        log(plan_text(runs, manifest, seconds, options))
        if options.dry_run:
            return write_report(runs, manifest, report_dir, options, seconds, wall=0.0, planned=True)
        t0 = time.perf_counter()
        run_jobs(pending, signals, manifest, options, report_dir, log)   # 5. run
        return write_report(runs, manifest, report_dir, options, seconds, wall=time.perf_counter() - t0)  # 6.


def select(manifest: Manifest, options: BatchOptions, report_dir: Path) -> list[JobRun]:
    """Every job of the manifest, or with ``retry_failed`` the ones the last report marks failed."""
    from .report import failed_ids

    wanted = failed_ids(report_dir) if options.retry_failed else None
    if wanted is not None and not wanted:
        raise OptionError(f"--retry-failed: the last report in {shown(report_dir)} lists no failed job")
    runs = []
    for job in manifest.jobs:
        if wanted is not None and job.id not in wanted:
            continue
        video = job.video_job(overwrite=True, progress=False, weights=options.weights)
        mode = "chained" if options.workers == 1 and options.ray is None else "independent"
        print_ = fingerprint(video, segment_seconds=manifest.segment_seconds, warmup=manifest.warmup_frames, mode=mode)
        runs.append(JobRun(job, video, print_))
    return runs


def check(runs: Iterable[JobRun], manifest: Manifest, options: BatchOptions) -> None:
    """Phase 2: refuse every problem before any work (all at once); plan the rest."""
    problems = []
    if options.workers < 1:
        problems.append(f"--workers must be >= 1, got {options.workers}")
    for run in runs:
        output = run.job.output
        if is_up_to_date(output, run.fingerprint):
            run.status = "skipped"
            continue
        try:
            if output.exists() and not options.overwrite:
                raise MicroastError(f"output {shown(output)} exists (not made from these inputs and settings); "
                                    "pass --overwrite to replace it")
            if not output.parent.is_dir():
                output.parent.mkdir(parents=True, exist_ok=True)
            check_output(record_path(output), (run.video.input,), overwrite=True, what="job record")
            run.plan = plan_video(run.video)
            run.segments = plan_segments(run.plan, manifest.segment_seconds)
        except MicroastError as err:
            problems.append(f"{run.job.entry}: {err}")
    if problems:
        raise ManifestError(problems)


def plan_text(runs: list[JobRun], manifest: Manifest, seconds: float | None, options: BatchOptions) -> str:
    pending = [r for r in runs if r.status == "pending"]
    frames = sum(r.plan.expected_frames or 0 for r in pending)
    where = f"Ray ({options.ray})" if options.ray else f"{options.workers} local worker(s)"
    lines = [f"batch {shown(manifest.path)}: {len(runs)} job(s), {len(pending)} to run, "
             f"{len(runs) - len(pending)} up to date; {frames} frames in "
             f"{sum(len(r.segments) for r in pending)} segment(s) of {manifest.segment_seconds:g} s on {where}"]
    for r in runs:
        tail = "up to date, skipped" if r.status == "skipped" else (
            f"{r.plan.expected_frames} frames, {len(r.segments)} segment(s), {r.plan.encode.size[0]}x{r.plan.encode.size[1]}")
        lines.append(f"  {r.job.entry} -> {shown(r.job.output)}: {tail}")
    if seconds is not None:
        lines.append(f"estimate: {_duration(seconds)} (network time per frame measured now at each size, x1.25 for "
                     "decoding, the temporal stage and encoding, plus ~0.5 s per segment and ~1 s per job)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    h, rest = divmod(int(round(seconds)), 3600)
    return f"{h} h {rest // 60:02d} min" if h else f"{rest // 60} min {rest % 60:02d} s"


def run_chained(run: JobRun, stylizer: Any, warmup_frames: int, overwrite: bool) -> None:
    """One job in this process: a single pass over the clip from its first unfinished segment,
    each segment published and recorded as soon as it is complete, the temporal state passing
    through unbroken (and saved at each segment's end, so a resumed run continues exactly).
    Then assembly."""
    from ..jobs.video import Window, encode_window
    from .segments import SegmentWriter

    plan = run.plan
    work = WorkFolder(plan.output, run.fingerprint).open()
    pending = [s for s in run.segments if work.done(s.index) is None]
    if pending:
        first = pending[0]
        stabilizer = new_stabilizer(plan.temporal)
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


def finish(run: JobRun, work: WorkFolder, overwrite: bool) -> None:
    """Assemble a job whose segments are all done; record what it was made from; clear its work folder."""
    from ..core.output import json_bytes, write_bytes

    plan, info = run.plan, run.plan.info
    listed = (info.frames or 0) - run.discarded
    if info.frames_listed and plan.job.start == 0 and plan.job.duration is None and run.frames < listed:
        raise MicroastError(f"input {shown(plan.job.input)}: truncated or corrupt: the container lists "
                            f"{listed} frames but only {run.frames} could be decoded")
    if info.duration is not None:  # as a single run says it: a source that ends early is noted
        job = plan.job
        end = float(info.duration) - job.start if job.duration is None else min(job.duration,
                                                                               float(info.duration) - job.start)
        if run.end_seconds < end - max(2.0 / float(info.frame_rate), 0.1):
            run.notes.append(f"the input {shown(job.input)} ends early: frames stop at {run.end_seconds:.2f} s of "
                             f"the {end:.2f} s expected (truncated file?); the output is that long")
    assemble(plan, work, run.segments, overwrite=overwrite)
    write_bytes(record_path(plan.output), json_bytes({"fingerprint": run.fingerprint, "frames": run.frames}),
                overwrite=True, what="job record")
    work.remove()
    run.status = "done"
