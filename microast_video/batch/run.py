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

import contextlib
import dataclasses
import math
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.errors import MicroastError, OptionError, Terminated, shown
from ..core.files import identity
from ..core.output import check_output
from ..core.stages import terminate_on_signals
from ..jobs.frames import frame_print, frames_done
from ..jobs.plan import plan_video
from ..jobs.records import fingerprint
from ..media.sequence import output_sequence
from .jobs import estimate, look_signals, run_jobs
from .manifest import Manifest, ManifestError, load_manifest
from .report import batch_lock, failed_ids, interrupted_message, report_folder, write_report
from .segments import is_up_to_date, output_exists, plan_segments, record_path
from .types import BatchOptions, JobRun, Log


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def run_batch(manifest_path: str | Path | Manifest, options: BatchOptions = BatchOptions(), *,
              log: Log = _stderr) -> dict[str, Any]:
    """Run a batch manifest (a TOML file, or a :class:`Manifest` built in code); returns the
    report (also written to the report folder).

    Raises:
        ManifestError: problems found before any work (one line each).
        OptionError: options that cannot work here.
    """

    with terminate_on_signals():
        manifest = manifest_path if isinstance(manifest_path, Manifest) else load_manifest(manifest_path)
        report_dir = report_folder(manifest, options)
        with contextlib.nullcontext() if options.dry_run else batch_lock(report_dir):
            return _run_locked(manifest, options, report_dir, log)


def _run_locked(manifest: Manifest, options: BatchOptions, report_dir: Path, log: Log) -> dict[str, Any]:
    """The phases, with this manifest's lock held (a dry run writes nothing and takes none)."""
    runs = select(manifest, options, report_dir)                      # 1. select
    check(runs, manifest, options)                                    # 2. check
    pending = [r for r in runs if r.status == "pending"]
    signals = look_signals(pending, options)                          # 3. style
    seconds = estimate(pending, signals, options)                     # 4. plan
    log(plan_text(runs, manifest, seconds, options))
    if options.dry_run:
        return write_report(runs, manifest, report_dir, options, seconds, wall=0.0, planned=True)
    t0 = time.perf_counter()
    try:
        run_jobs(pending, signals, manifest, options, report_dir, log)  # 5. run
    except (KeyboardInterrupt, Terminated) as stop:  # the report says what finished; the message too
        for run in runs:
            if run.status == "pending":
                run.frames, run.stages = 0, {}  # a job cut short has no figures yet
        report = write_report(runs, manifest, report_dir, options, seconds, wall=time.perf_counter() - t0,
                              interrupted=True)
        stop.message = interrupted_message(report, report_dir)  # type: ignore[union-attr]
        raise
    return write_report(runs, manifest, report_dir, options, seconds, wall=time.perf_counter() - t0)  # 6.


def select(manifest: Manifest, options: BatchOptions, report_dir: Path) -> list[JobRun]:
    """Every job of the manifest, or with ``retry_failed`` the ones the last report marks failed."""

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
    """Phase 2: refuse every problem before any work (all at once); plan the rest. Output
    folders are made for the check; a dry run removes them again (it writes nothing)."""
    made: list[Path] = []
    try:
        _check(runs, manifest, options, made)
    finally:
        for folder in reversed(made) if options.dry_run else ():
            with contextlib.suppress(OSError):  # only folders left empty
                for sub in sorted(folder.rglob("*"), key=lambda p: -len(p.parts)):
                    sub.rmdir()
                folder.rmdir()


def _missing_top(folder: Path) -> Path:
    """The outermost missing folder of ``folder``'s ancestors (what ``mkdir(parents=True)`` makes first)."""
    top = folder
    while not top.parent.exists():
        top = top.parent
    return top


def _check(runs: Iterable[JobRun], manifest: Manifest, options: BatchOptions, made: list[Path]) -> None:
    problems = []
    if options.workers < 1:
        problems.append(f"--workers must be >= 1, got {options.workers}")
    for run in runs:
        output = run.job.output
        if is_up_to_date(output, run.fingerprint):
            run.status = "skipped"
            continue
        try:
            frames = output_sequence(output) is not None
            if output_exists(output) and not options.overwrite and not frames:
                raise MicroastError(f"output {shown(output)} exists (not made from these inputs and settings); "
                                    "pass --overwrite to replace it")
            if not output.parent.is_dir():
                made.append(_missing_top(output.parent))
                output.parent.mkdir(parents=True, exist_ok=True)
            check_output(record_path(output), (run.video.input,), overwrite=True, what="job record")
            run.plan = plan_video(run.video)
            if frames:  # one pass, whose frames resume one by one; others' frames need --overwrite
                frames_done(dataclasses.replace(run.plan, job=dataclasses.replace(
                    run.video, overwrite=options.overwrite)), frame_print(run.plan))
            run.segments = plan_segments(run.plan, math.inf if frames else manifest.segment_seconds)
        except MicroastError as err:
            problems.append(f"{run.job.entry}: {err}")
    problems += _outputs_over_inputs(runs, manifest)
    if problems:
        raise ManifestError(problems)


def _outputs_over_inputs(runs: Iterable[JobRun], manifest: Manifest) -> list[str]:
    """A job's output that another job reads (its clip, a style, a matte, keyframes...) or that
    is the manifest itself: one line each."""
    runs = list(runs)
    reads = {identity(manifest.path): "the manifest"}
    for run in runs:
        for what, path in (run.plan.files.reads if run.plan is not None else ()):
            reads.setdefault(identity(path), f"{run.job.entry}'s {what}")
    outputs = [(run, identity(run.plan.output)) for run in runs if run.plan is not None]
    return [f"{run.job.entry}: output {shown(run.plan.output)} is {reads[key]}; refusing to overwrite an input"
            for run, key in outputs if key in reads]


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
