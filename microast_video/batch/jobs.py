"""Running a batch's jobs: in order in this process, on local worker processes, or as Ray tasks.

One worker (the default) runs each job's segments in order, the temporal state passing
from one to the next. Several workers or a Ray cluster run segments independently (each
with warm-up frames), and this process assembles a job when all its segments are done. A
job that fails is marked failed with its one-line reason; the others go on.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime
import multiprocessing as mp
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..core import reaper
from ..core.errors import MicroastError, OptionError, Terminated
from ..core.options import Network
from ..core.output import write_bytes
from ..core.process import die_with_parent
from ..jobs.contact import contact_sheet, png_bytes
from ..jobs.video import run_video
from ..media.decode import first_frame_offset
from ..style.pretrained import load_model
from ..style.signals import job_signals
from ..temporal.flicker import measure_flicker
from .chained import finish, finish_frames, run_chained
from .manifest import Manifest, ManifestError
from .segments import WorkFolder, save_figures
from .types import BatchOptions, JobRun
from .workers import FramesTask, SegmentTask, run_task, signals_to_arrays, stylizer_for, use_device


def _signals_key(run: JobRun) -> tuple[str, int | None, int]:
    return (run.job.look.name, run.video.style_size, run.video.max_pixels)


def look_signals(runs: list[JobRun], options: BatchOptions) -> dict[tuple, Any]:
    """Each look's style signals, computed once for the whole batch (on the CPU, float32)."""

    if not runs:
        return {}
    model = None  # loaded only if a MicroAST look needs it
    found, problems = {}, []
    for run in runs:
        key = _signals_key(run)
        if key in found:
            continue
        v = run.video
        if v.style_at or v.matte is not None or Network(v.network) is not Network.microast:
            found[key] = None  # keyframes, mattes, other networks: computed with each job
            continue
        try:
            model = model or load_model(options.weights, device="cpu", progress=options.progress)
            found[key] = job_signals(model, v.styles, v.style_weights, v.signals, v.style_size, v.max_pixels)
        except MicroastError as err:
            problems.append(f"looks.{run.job.look.name}: {err}")
            found[key] = None
    if problems:
        raise ManifestError(problems)
    return found


#: Fixed costs measured on our 2-core machine: starting ffmpeg and its test encode per
#: segment, and per job the assembly, the record and the contact sheet.
SEGMENT_SECONDS, JOB_SECONDS = 0.5, 1.0


def estimate(runs: list[JobRun], signals: dict[tuple, Any], options: BatchOptions) -> float | None:
    """Seconds the batch should take: the network's time per frame measured now at each frame
    size (one warm-up frame, one timed), times the frames, x1.25 for decoding, the temporal
    stage and encoding (their share in our runs), plus the fixed costs per segment and per
    job. None when there is nothing to run (or the work goes to a Ray cluster)."""

    if not runs or options.ray:
        return None
    per_size: dict[tuple, float] = {}
    total = 0.0
    for run in runs:
        plan = run.plan
        key = (plan.encode.size, str(plan.device), plan.engine)
        if key not in per_size:
            stylizer = stylizer_for(plan, signals[_signals_key(run)], options.weights)
            w, h = plan.encode.size
            frame = torch.rand(1, 3, h, w, device=plan.device)
            stylizer(frame)
            t = time.perf_counter()
            stylizer(frame)
            per_size[key] = time.perf_counter() - t
        total += 1.25 * (plan.expected_frames or 0) * per_size[key] + SEGMENT_SECONDS * len(run.segments) + JOB_SECONDS
    return total / max(1, options.workers)


@contextlib.contextmanager
def _isolated(run: JobRun, log: Callable[[str], None]) -> Iterator[None]:
    """A failing job fails alone, with its one-line reason (a bug says it is one)."""
    try:
        yield
    except (KeyboardInterrupt, Terminated):
        raise
    except MicroastError as err:
        run.status, run.error = "failed", " ".join(str(err).split())
    except Exception as err:  # noqa: BLE001 - any other failure is this job's, and a bug
        run.status = "failed"
        run.error = f"internal error (a bug in microast-video): {type(err).__name__}: {' '.join(str(err).split())[:300]}"
    if run.status == "failed":
        log(f"microast-video: job failed: {run.job.entry}: {run.error}")


def run_jobs(runs: list[JobRun], signals: dict[tuple, Any], manifest: Manifest, options: BatchOptions,
             report_dir: Path, log: Callable[[str], None]) -> None:
    """Phase 5: every pending job, by the chosen executor."""
    if options.ray:
        return _run_ray(runs, signals, manifest, options, report_dir, log)
    if options.workers > 1:
        return _run_pool(runs, signals, manifest, options, report_dir, log)
    for run in runs:
        t = time.perf_counter()
        with _isolated(run, log):
            if run.plan.encode.first_number is not None:  # an image sequence
                finish_frames(run, run_video(run.video, log=log))
            else:
                stylizer = stylizer_for(run.plan, signals[_signals_key(run)], options.weights)
                run_chained(run, stylizer, manifest.warmup_frames, options.overwrite)
            run.seconds = time.perf_counter() - t
            after_job(run, report_dir, options, log)


def _run_independent(runs: list[JobRun], signals: dict[tuple, Any], manifest: Manifest, options: BatchOptions,
                     report_dir: Path, log: Callable[[str], None], submit: Callable[[SegmentTask], cf.Future]) -> None:
    """Every segment of every job as an independent task; assemble each job when its segments are in."""
    futures: dict[cf.Future, tuple[JobRun, int]] = {}
    done: dict[int, dict[int, dict]] = {}
    started = {id(run): time.perf_counter() for run in runs}
    for run in runs:
        if run.plan.encode.first_number is not None:  # an image sequence: one task
            futures[submit(FramesTask(run.video))] = (run, -1)
            continue
        with _isolated(run, log):
            WorkFolder(run.plan.output, run.fingerprint).open()
            anchor = first_frame_offset(run.plan.info, run.plan.job.start)
            arrays = signals_to_arrays(signals[_signals_key(run)])
            for segment in run.segments:
                task = SegmentTask(run.video, arrays, segment, run.fingerprint, anchor, manifest.warmup_frames)
                futures[submit(task)] = (run, segment.index)
    for future in cf.as_completed(futures):
        run, index = futures[future]
        if run.status == "failed":
            continue
        with _isolated(run, log):
            if index < 0:
                finish_frames(run, future.result())
                run.seconds = time.perf_counter() - started[id(run)]
                after_job(run, report_dir, options, log)
                continue
            done.setdefault(id(run), {})[index] = future.result()
            if len(done[id(run)]) == len(run.segments):
                for i in sorted(done[id(run)]):
                    run.add(done[id(run)][i])
                finish(run, WorkFolder(run.plan.output, run.fingerprint), options.overwrite)
                run.seconds = time.perf_counter() - started[id(run)]
                after_job(run, report_dir, options, log)


#: Pixels of one UHD frame: the unit :func:`workers_per_gpu` counts in.
UHD_PIXELS = 3840 * 2160


def workers_per_gpu(pixels: int, cpus: int | None = None) -> int:
    """How many workers share one GPU by default: one job keeps a GPU busy only a part of the
    time (its decoder and encoder run on the CPU), so smaller frames get more: 2 at UHD, 4
    at 1080p and below, 1 at 8K; never more than a worker per 4 CPU cores (each worker runs
    a decoder, an encoder and the flow threads)."""
    wanted = max(1, min(4, round(2 * UHD_PIXELS / max(1, pixels))))
    return max(1, min(wanted, (cpus or os.cpu_count() or 1) // 4))


def _worker_devices(workers: int, per_gpu: int) -> list[str | None]:
    """Workers spread over the GPUs (``per_gpu`` at most on one) where there are GPUs, else the CPU."""

    if not torch.cuda.is_available():
        return [None] * workers
    count = torch.cuda.device_count()
    if workers > count * per_gpu:
        raise OptionError(f"--workers {workers} but this machine has {count} GPU(s) and --workers-per-gpu "
                          f"is {per_gpu}: at most {count * per_gpu} workers")
    return [f"cuda:{i % count}" for i in range(workers)]


def _per_gpu(runs: list[JobRun], options: BatchOptions) -> int:
    """``--workers-per-gpu``, or the default for the largest frame of the batch."""
    if options.workers_per_gpu is not None:
        return options.workers_per_gpu
    return workers_per_gpu(max((r.plan.encode.size[0] * r.plan.encode.size[1] for r in runs), default=UHD_PIXELS))


def _init_worker(devices: Any, threads: int, parent: int) -> None:
    die_with_parent(parent)  # a killed batch leaves no worker rendering on alone
    device = devices.get()
    use_device(device)
    if not device:
        torch.set_num_threads(threads)  # the cores shared out between the workers


def _run_pool(runs: list[JobRun], signals: dict[tuple, Any], manifest: Manifest, options: BatchOptions,
              report_dir: Path, log: Callable[[str], None]) -> None:
    devices = _worker_devices(options.workers, _per_gpu(runs, options))
    context = mp.get_context("spawn")
    queue = context.Queue()
    for device in devices:
        queue.put(device)
    threads = max(1, (os.cpu_count() or 1) // options.workers)
    with cf.ProcessPoolExecutor(options.workers, mp_context=context, initializer=_init_worker,
                                initargs=(queue, threads, os.getpid())) as pool:
        _run_independent(runs, signals, manifest, options, report_dir, log, lambda task: pool.submit(run_task, task))


def _run_ray(runs: list[JobRun], signals: dict[tuple, Any], manifest: Manifest, options: BatchOptions,
             report_dir: Path, log: Callable[[str], None]) -> None:
    try:
        import ray
    except ImportError:
        raise OptionError("--ray needs Ray: pip install 'microast-video[ray]'") from None
    if not ray.is_initialized():
        local = options.ray == "local"
        if not local:
            check_ray_address(options.ray)
        if local:  # the local cluster's servers and workers end with this run, even a killed one
            reaper.watch_new_children()
        ray.init(address=None if local else options.ray, num_cpus=options.workers if local else None,
                 include_dashboard=False, log_to_driver=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    remote = ray.remote(_ray_task).options(num_gpus=1 / _per_gpu(runs, options) if gpus else 0, num_cpus=1,
                                           max_retries=3)
    _run_independent(runs, signals, manifest, options, report_dir, log, lambda task: remote.remote(task).future())


def check_ray_address(address: str, timeout: float = 3.0) -> None:
    """A ``host:port`` (or ``ray://host:port``) cluster address must answer within ``timeout``
    seconds; one line otherwise (Ray itself retried, with warnings, for over a minute)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and friends: Ray finds the cluster itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise OptionError(f"--ray {address}: no Ray cluster answers there ({err.strerror or err})") from None


def _ray_task(task: SegmentTask) -> dict[str, Any]:
    """A segment on a Ray worker: one CPU thread per task on CPU nodes (Ray gives each its own GPU)."""

    if not torch.cuda.is_available():
        torch.set_num_threads(1)
    return run_task(task)


def after_job(run: JobRun, report_dir: Path, options: BatchOptions, log: Callable[[str], None]) -> None:
    """A finished job's contact sheet (input | output at four points of the rendered part), its
    flicker figures if asked, and its figures kept in its record."""

    sheet = report_dir / "sheets" / f"{run.job.id}.png"
    sheet.parent.mkdir(parents=True, exist_ok=True)
    picture = contact_sheet(run.job.input, [run.job.output], [run.job.look.name], start=run.video.start,
                            duration=run.video.duration)
    write_bytes(sheet, png_bytes(picture), overwrite=True, what="contact sheet")
    run.sheet = sheet
    if options.flicker:
        run.flicker = flicker_figures(run)
    run.footage_seconds = round(run.frames / float(run.plan.info.frame_rate), 3) if run.plan else 0.0
    run.made = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    save_figures(run.job.output, run.figures())  # what a later, resumed run reports of this job
    fps = run.frames / run.seconds if run.seconds else 0.0
    log(f"microast-video: done: {run.job.entry} -> {run.job.output} ({run.frames} frames, {fps:.2f} fps)")


def flicker_figures(run: JobRun) -> dict[str, Any]:
    """Warping error of the output (vs the source's), and at the segment seams vs the whole clip."""

    figures = measure_flicker(run.job.input, [run.job.output], start=run.video.start,
                      duration=run.video.duration)
    row = figures["clips"][0]
    pairs = row["pair_errors"]  # pair (t-1, t) at index t-1; None where no pixel was reliable
    seams = [pairs[s - 1] for s in run.seams if 0 < s <= len(pairs) and pairs[s - 1] is not None]
    valid = [p for p in pairs if p is not None]
    clip = sum(valid) / len(valid) if valid else 0.0
    seam = sum(seams) / len(seams) if seams else None
    return {"warping_error": row["warping_error"], "source_warping_error": figures["source_warping_error"],
            "vs_source": row["vs_source"], "seams": len(seams), "seam_warping_error": seam,
            "seam_vs_clip": None if seam is None or not clip else seam / clip}
