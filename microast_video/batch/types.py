"""What a batch run is told (:class:`BatchOptions`) and what it tracks of each job (:class:`JobRun`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..jobs.plan import JobPlan, VideoJob
from .manifest import BatchJob
from .segments import Segment

#: Where a batch's messages go (one line each).
Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """How to run a manifest (``microast-video batch``'s options)."""

    dry_run: bool = False
    overwrite: bool = False
    retry_failed: bool = False
    workers: int = 1
    workers_per_gpu: int | None = None  # workers sharing one GPU; None: chosen from the frame size
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
    footage_seconds: float = 0.0  # how long the output runs
    made: str | None = None  # when the run whose figures these are finished (an earlier run's, if skipped)
    recorded_segments: int = 0  # segments of the run that made the output (a skipped job has none of its own)

    #: What a job's record keeps of the run that made its output (:meth:`figures`).
    KEPT = ("frames", "seconds", "stages", "flicker", "notes", "footage_seconds", "made")

    def figures(self) -> dict[str, Any]:
        """This run's figures, as the job's record keeps them (with the number of segments)."""
        return {**{k: getattr(self, k) for k in self.KEPT}, "segments": len(self.segments)}

    def take_figures(self, figures: dict[str, Any]) -> None:
        """An up-to-date job: the figures of the run that made its output."""
        for key in self.KEPT:
            if key in figures:
                setattr(self, key, figures[key])
        self.recorded_segments = int(figures.get("segments", 0))

    def add(self, record: dict[str, Any]) -> None:
        if self.frames and record["frames"]:
            self.seams.append(self.frames)
        if not self.frames:
            self.discarded = record.get("discarded", 0)
        self.end_seconds = max(self.end_seconds, record.get("end_seconds", 0.0))
        self.frames += record["frames"]
        for stage, seconds in record.get("stages", {}).items():
            self.stages[stage] = round(self.stages.get(stage, 0.0) + seconds, 4)
