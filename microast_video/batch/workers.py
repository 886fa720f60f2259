"""One segment as a self-contained task: what local worker processes and Ray tasks run.

A task carries everything a fresh process needs (the job, the look's precomputed signals,
the segment, the fingerprint the work folder was opened with); the network is loaded once
per process and reused. A task whose segment is already finished returns its record.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine.stylizer import Stylizer, prepare_runtime
from ..jobs.plan import VideoJob, plan_video
from ..jobs.video import build_stylizer, run_video
from ..models import StyleSignals
from ..style.networks import load_network
from ..temporal.stabilizer import new_stabilizer
from .segments import Segment, WorkFolder, run_segment

_MODELS: dict[tuple[str, str], Any] = {}  # (weights, device) -> the network, per process


@dataclasses.dataclass(frozen=True)
class SegmentTask:
    """Everything one segment needs, picklable (sent to worker processes and Ray)."""

    job: VideoJob
    signals: dict[str, np.ndarray]
    segment: Segment
    fingerprint: str
    anchor: int | None
    warmup_frames: int


def signals_to_arrays(signals: Any) -> dict[str, np.ndarray]:
    if signals is None:
        return {}
    return {n: t.detach().cpu().numpy() for n, t in zip(signals.names(), signals.tensors())}


def _model(job: Any, weights: Path | None, device: Any) -> Any:
    key = (str(job.network), str(job.style_model), str(weights), str(device))
    if key not in _MODELS:
        _MODELS[key] = load_network(job.network, weights=weights, style_model=job.style_model, device=device,
                                    progress=False)
    return _MODELS[key]


def stylizer_for(plan: Any, signals: Any, weights: Path | None) -> Any:
    """A stylizer for ``plan`` on this process's cached network (signals already computed, except
    for keyframes and mattes, whose several styles are computed here, per job)."""

    model = _model(plan.job, weights, plan.device)
    if plan.keyframes is not None or plan.matte is not None or signals is None:
        return build_stylizer(plan, model)
    prepare_runtime(model, plan.engine)
    job = plan.job
    return Stylizer(model, signals, plan.engine, alpha=job.alpha, color_matrix=plan.color_matrix)


#: This worker process's GPU (None: the job's own device), given once by the pool's initializer.
_DEVICE: list[str | None] = [None]


def use_device(device: str | None) -> None:
    """Run every task of this worker process on ``device`` (``cuda:N``; None: the job's own)."""
    _DEVICE[0] = device


@dataclasses.dataclass(frozen=True)
class FramesTask:
    """A job whose output is an image sequence: one task (its frames resume one by one)."""

    job: VideoJob


def run_task(task: SegmentTask | FramesTask) -> dict[str, Any]:
    """Encode ``task.segment`` (independently: warm-up frames instead of the previous segment's
    state), or a sequence job whole (its report)."""
    job = dataclasses.replace(task.job, device=_DEVICE[0]) if _DEVICE[0] else task.job
    if isinstance(task, FramesTask):
        return run_video(job, log=lambda message: None)
    plan = plan_video(job)
    work = WorkFolder(plan.output, task.fingerprint)
    if (record := work.done(task.segment.index)) is not None:
        return record
    signals = StyleSignals(*(torch.from_numpy(task.signals[n]) for n in StyleSignals.names())) if task.signals else None
    stylizer = stylizer_for(plan, signals, job.weights)
    stabilizer = new_stabilizer(plan.temporal, plan.device)
    warmup = float(Fraction(task.warmup_frames) / plan.info.frame_rate) if stabilizer else 0.0
    return run_segment(plan, stylizer, work, task.segment, anchor=task.anchor, stabilizer=stabilizer, warmup=warmup)
