"""Segments: a long clip processed in pieces that survive a crash, then assembled losslessly.

A job's work folder sits beside its output (hidden): ``job.json`` (the fingerprint of the
inputs and settings; a mismatch clears the folder), one file per finished segment
(encoded with the job's codec, video only, its frames on the whole clip's clock) with a
``.json`` marker, and, when segments run one after another, the temporal stage's state
after the last finished segment (so the next one continues exactly where it left off).
Assembly concatenates the segments' packets (no re-encoding) and muxes the source's
audio, subtitles, chapters and metadata once; the output appears by an atomic rename.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..core.errors import InputError, MicroastError, OutputError, shown
from ..core.frame import Frame
from ..core.output import AtomicFile, json_bytes, sweep_stale, write_bytes
from ..core.process import popen
from ..jobs.plan import JobPlan
from ..jobs.video import Window, encode_window
from ..media.encode import FFmpegWriter, mux_command
from ..media.probe import file_url
from ..media.sequence import find_sequence, output_sequence
from ..temporal.stabilizer import Stabilizer


@dataclasses.dataclass(frozen=True)
class Segment:
    """Seconds [start, end) of the job's clip (``end`` None: to the end)."""

    index: int
    start: float
    end: float | None


def plan_segments(plan: JobPlan, seconds: float) -> list[Segment]:
    """Cut the job's clip into segments of ``seconds``; the last one runs to the end, whatever the container says."""
    job, info = plan.job, plan.info
    total = job.duration if job.duration is not None else (
        None if info.duration is None else float(info.duration) - job.start)
    count = 1 if total is None else max(1, math.ceil(total / seconds - 1e-9))
    last = job.duration  # None: to the end of the clip
    return [Segment(k, k * seconds, (k + 1) * seconds if k < count - 1 else last) for k in range(count)]


def _hidden(output: Path, suffix: str) -> Path:
    """A hidden name beside ``output``, short enough for any legal output name."""
    head = os.fsencode(output.name)[:60].decode("utf-8", "ignore")
    return output.with_name(f".{head}.{hashlib.sha256(output.name.encode()).hexdigest()[:8]}{suffix}")


def record_path(output: Path) -> Path:
    """The record of how ``output`` was made (beside it, hidden)."""
    return _hidden(output, ".microast-job.json")


def save_figures(output: Path, figures: dict[str, Any]) -> None:
    """Keep the figures of the run that made ``output`` in its record, so that a later run that
    finds it up to date (after a resume, say) reports them instead of zeros."""
    try:
        record = json.loads(record_path(output).read_text())
    except (OSError, ValueError):
        return  # no record: nothing says the output is complete
    write_bytes(record_path(output), json_bytes({**record, "figures": figures}), overwrite=True, what="job record")


def recorded_figures(output: Path) -> dict[str, Any] | None:
    """The figures :func:`save_figures` kept for ``output`` (None where there are none)."""
    try:
        figures = json.loads(record_path(output).read_text()).get("figures")
    except (OSError, ValueError, AttributeError):
        return None
    return figures if isinstance(figures, dict) else None


def is_up_to_date(output: Path, print_: str) -> bool:
    """``output`` exists and its record says it was made from exactly these inputs and settings
    (a sequence output: every frame its record counts is there)."""
    try:
        record = json.loads(record_path(output).read_text())
        if record["fingerprint"] != print_:
            return False
        frames = output_sequence(output)
        if frames is None:
            return output.is_file()
        first, count = int(record["first_number"]), int(record["frames"])
    except (OSError, ValueError, KeyError, TypeError, MicroastError):
        return False
    return all(frames.frame(first + k).is_file() for k in range(count))


def output_exists(output: Path) -> bool:
    """A movie output is there, or frames of a sequence output are."""
    if output_sequence(output) is None:
        return output.exists()
    try:
        find_sequence(output)
    except InputError:  # no frame matches the pattern
        return False
    return True


class WorkFolder:
    """A job's segments and state, beside its output; cleared when the fingerprint changes."""

    def __init__(self, output: Path, print_: str) -> None:
        self.output, self.fingerprint = output, print_
        self.path = _hidden(output, ".microast-work")

    def open(self) -> WorkFolder:
        marker = self.path / "job.json"
        try:
            same = json.loads(marker.read_text())["fingerprint"] == self.fingerprint
        except (OSError, ValueError, KeyError):
            same = False
        if not same:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True, exist_ok=True)
            write_bytes(marker, json_bytes({"fingerprint": self.fingerprint}), overwrite=True, what="work record")
        sweep_stale(self.path)  # the half-written segment of a killed run
        return self

    def segment(self, index: int) -> Path:
        return self.path / f"seg-{index:05d}{self.output.suffix}"

    def done(self, index: int) -> dict[str, Any] | None:
        """The finished segment's record, or None."""
        try:
            record = json.loads((self.path / f"seg-{index:05d}.json").read_text())
        except (OSError, ValueError):
            return None
        return record if record.get("frames") == 0 or self.segment(index).is_file() else None

    def mark_done(self, index: int, record: dict[str, Any]) -> None:
        write_bytes(self.path / f"seg-{index:05d}.json", json_bytes(record), overwrite=True, what="segment record")

    def save_state(self, index: int, state: dict[str, Any]) -> None:
        """The temporal state after segment ``index`` (a :meth:`Stabilizer.snapshot`, exact float32),
        replacing older ones."""
        arrays = {f"plane{i}": p for i, p in enumerate(state["prev"] or [])}
        if state["gray"] is not None:
            arrays["gray"] = state["gray"]
        buffer = io.BytesIO()
        np.savez(buffer, frames=np.array(state["frames"]), cuts=np.array(state["cuts"], dtype=np.int64), **arrays)
        write_bytes(self.path / f"state-{index:05d}.npz", buffer.getvalue(), overwrite=True, what="temporal state")
        for old in self.path.glob("state-*.npz"):
            if old.name != f"state-{index:05d}.npz":
                old.unlink(missing_ok=True)

    def load_state(self, index: int, stabilizer: Stabilizer) -> bool:
        """Continue ``stabilizer`` from the state saved after segment ``index``; False if there is none."""
        try:
            with np.load(self.path / f"state-{index:05d}.npz", allow_pickle=False) as data:
                planes = sorted(k for k in data.files if k.startswith("plane"))
                stabilizer.restore({"prev": [data[k] for k in planes] or None,
                                    "gray": data["gray"] if "gray" in data.files else None,
                                    "frames": int(data["frames"]), "cuts": [int(c) for c in data["cuts"]]})
        except (OSError, ValueError, KeyError):
            return False
        return True

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class SegmentWriter:
    """The encode stage of one worker's pass over a job: a segment file for each segment, each
    published (and recorded, with the temporal state it ends with) as soon as it is complete.

    Frames arrive in order from one decode of the clip; the first frame at or after a
    segment's start closes the previous segment (it carries the temporal state just before
    it, see :func:`~microast_video.temporal.stabilizer.stabilized`)."""

    def __init__(self, plan: JobPlan, work: WorkFolder, segments: Sequence[Segment], stats: Any) -> None:
        self.plan, self.work, self.segments, self.stats = plan, work, list(segments), stats
        self.k = 0
        self.out: AtomicFile | None = None
        self.writer: FFmpegWriter | None = None
        self.frames = 0
        self.end = 0.0

    def write(self, frame: Frame) -> None:
        while self.k + 1 < len(self.segments) and frame.seconds >= self.segments[self.k + 1].start - 1e-9:
            self._close(frame.state)
            self.k += 1
        if self.writer is None:
            self.out = AtomicFile(self.work.segment(self.segments[self.k].index), overwrite=True, what="segment")
            self.out.__enter__()
            self.writer = FFmpegWriter(self.plan.info, self.plan.encode, self.out.path, exe=self.plan.exe,
                                       label=self.plan.output, carry=False)
        self.writer.write(frame)
        self.frames += 1
        self.end = frame.seconds + (float(frame.duration * frame.time_base) if frame.duration
                                    else 1 / float(self.plan.info.frame_rate))

    def _close(self, state: dict[str, Any] | None) -> None:
        """Publish and record the current segment (an empty one is recorded too)."""
        index = self.segments[self.k].index
        if self.writer is not None:
            self.writer.finish()
            self.out.publish()
            self.out.close()
        if state is not None:  # the state before the record: a record is the commit point
            self.work.save_state(index, state)
        self.work.mark_done(index, {"frames": self.frames, "discarded": self.stats.discarded,
                                    "end_seconds": round(self.end, 6), "stages": {}})
        self.writer, self.out, self.frames = None, None, 0

    def finish(self) -> None:
        if self.writer is None and self.k == 0 and not self.frames:
            raise InputError(f"input {shown(self.plan.job.input)}: no video frames to encode")
        self._close(None)
        for rest in self.segments[self.k + 1:]:  # past the clip's real end: empty
            self.work.mark_done(rest.index, {"frames": 0, "discarded": 0, "end_seconds": 0.0, "stages": {}})

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        if self.out is not None:
            self.out.close()


def run_segment(plan: JobPlan, stylizer: Any, work: WorkFolder, segment: Segment, *, anchor: int | None,
                stabilizer: Stabilizer | None, warmup: float) -> dict[str, Any]:
    """Encode one segment into the work folder (atomically) and record it; returns the record."""
    window = Window(segment.start, segment.end, warmup=warmup if segment.index else 0.0, anchor=anchor, carry=False)
    try:
        with AtomicFile(work.segment(segment.index), overwrite=True, what="segment") as out:
            done = encode_window(plan, stylizer, out.path, window=window, stabilizer=stabilizer)
            out.publish()
    except InputError as err:
        if segment.index == 0 or "no video frames" not in str(err):
            raise
        record = {"frames": 0, "discarded": 0, "end_seconds": 0.0, "stages": {}}  # past the clip's real end
    else:
        record = {"frames": done.counts["encode"], "discarded": done.stats.discarded,
                  "end_seconds": round(done.stats.end_seconds, 6),
                  "stages": {k: round(v, 4) for k, v in done.times.seconds.items()}}
    work.mark_done(segment.index, record)
    return record


def concat_video(parts: Sequence[Path], target: Path, muxer: str) -> int:
    """The video packets of ``parts`` one after another into ``target`` (no re-encoding); returns the packet count.

    Each part's timestamps are already the whole clip's, so they are copied as they are."""
    count = 0
    with av.open(file_url(target), "w", format=muxer) as dst:
        stream = None
        for part in parts:
            with av.open(file_url(part)) as src:
                source = src.streams.video[0]
                if stream is None:
                    stream = dst.add_stream_from_template(source)
                for packet in src.demux(source):
                    if packet.dts is None and packet.pts is None:
                        continue  # the demuxer's end-of-stream packet
                    packet.stream = stream
                    dst.mux(packet)
                    count += 1
    return count


def assemble(plan: JobPlan, work: WorkFolder, segments: Sequence[Segment], overwrite: bool) -> int:
    """The finished segments -> the job's output (audio, subtitles, chapters, metadata muxed once)."""
    parts = [work.segment(s.index) for s in segments if work.segment(s.index).is_file()]
    if not parts:
        raise InputError(f"input {shown(plan.job.input)}: no video frames to encode")
    video = work.path / f"video{plan.output.suffix}"
    try:
        frames = concat_video(parts, video, plan.encode.muxer)
    except (OSError, av.FFmpegError) as err:  # a full disk, above all
        full = getattr(err, "errno", None) == errno.ENOSPC
        raise OutputError(f"assembling {shown(plan.output)} failed: " + (
            f"no space left on the disk of {shown(work.path)}" if full else " ".join(str(err).split())[:200])) from None
    job = plan.job
    with AtomicFile(plan.output, overwrite=overwrite) as out:
        cmd = mux_command(plan.info, plan.encode, video, out.path, exe=plan.exe, start=job.start, duration=job.duration)
        proc = popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate()
        if proc.returncode != 0:
            detail = " ".join((err or "").split())[-300:] or f"exit status {proc.returncode}"
            raise OutputError(f"assembling {shown(plan.output)} failed: {detail}")
        out.publish()
    return frames
