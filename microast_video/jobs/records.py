"""What an output is made from, as its record beside it says: the content of every file the
job reads and every setting that shapes the result (a batch job's movie, a sequence's frames)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .._version import __version__
from ..core.errors import MicroastError
from ..media.sequence import find_sequence
from ..style.controls import load_keyframe_file, parse_keyframe
from .job import VideoJob


def _file_print(path: Path | None) -> dict[str, Any] | None:
    """A file's identity: size, modification time and a hash of its first and last MiB."""
    if path is None or not Path(path).is_file():
        return None
    path = Path(path)
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
        if stat.st_size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            digest.update(f.read())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}


def fingerprint(job: VideoJob, **extra: Any) -> str:
    """What a finished output was made from: the content of every file it reads (clip, styles,
    signals, matte, keyframes file and keyframe styles) and every setting that shapes it."""
    ignore = {"output", "report", "progress", "overwrite", "weights", "queue_frames"}
    settings = {f.name: getattr(job, f.name) for f in dataclasses.fields(job) if f.name not in ignore}
    settings.update(input=_input_print(job.input), styles=[_file_print(s) for s in job.styles],
                    signals=_file_print(job.signals), matte=_file_print(job.matte),
                    keyframes=_file_print(job.keyframes), keyframe_styles=[_file_print(p) for p in _keyframe_styles(job)],
                    style_model=_file_print(job.style_model),
                    version=__version__, **extra)
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _input_print(path: Path) -> Any:
    """A clip's identity (:func:`_file_print`), or every frame's of an image sequence (size and
    modification time: a replaced frame makes the output stale)."""
    try:
        sequence = find_sequence(Path(path))
    except MicroastError:
        sequence = None
    if sequence is None:
        return _file_print(path)
    stats = []
    for n in range(sequence.first, sequence.last + 1):
        st = sequence.frame(n).stat() if sequence.frame(n).exists() else None
        stats.append(None if st is None else (st.st_size, st.st_mtime_ns))
    return {"sequence": str(sequence.pattern), "frames": stats}


def _keyframe_styles(job: VideoJob) -> list[Path]:
    """The style images the job's keyframes name (a broken keyframe is left to the job's check)."""
    try:
        paths = [Path(parse_keyframe(text, "--style-at")[1]) for text in job.style_at]
        if job.keyframes is not None:
            paths += [Path(image) for _, image in load_keyframe_file(job.keyframes)[0]]
    except MicroastError:
        return []
    return [p for p in paths if p.is_file()]
