"""A sequence with gaps in its numbering, read with ``--missing hold``: the frame before a gap
stands in for each missing one, on the sequence's own clock."""

from __future__ import annotations

from collections.abc import Iterator

import av

from ..core.errors import InputError, shown
from .probe import VideoInfo, file_url


def held_frames(info: VideoInfo, seek: int | None) -> Iterator[tuple[int, av.VideoFrame]]:
    """A sequence with gaps (``--missing hold``): each run of present frames through its own
    image2 demuxer, on the whole sequence's clock (from frame ``seek`` in the time base on), and
    the frame before a gap repeated, one frame long, for each missing number."""
    seq = info.sequence
    step = max(1, round(1 / (info.frame_rate * info.time_base)))  # time-base ticks a frame
    missing, held = set(seq.missing), None
    number = seq.first + (seek or 0) // step
    while number in missing and number > seq.first:  # a window starting in a gap holds the frame before it
        number -= 1
    while number <= seq.last:
        if number in missing:
            if held is not None:
                yield (number - seq.first) * step, held
            number += 1
            continue
        options = {**info.open_args["options"], "start_number": str(number)}  # it stops at the next gap
        before = number
        with av.open(file_url(seq.pattern), format="image2", options=options, metadata_errors="replace") as run:
            for frame in run.decode(video=0):
                frame.duration, held = step, frame
                yield (number - seq.first) * step, frame
                number += 1
        if number == before:
            raise InputError(f"input {shown(seq.frame(number))}: FFmpeg decodes no picture from it")
