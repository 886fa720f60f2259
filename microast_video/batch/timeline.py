"""Editorial timelines through OpenTimelineIO: each clip of a cut (``cut.otio``; an EDL or FCP
XML where OTIO's adapter for it is installed) becomes a batch job over its media's source
range, and the same cut comes back relinked to the stylized media, so an editor reopens it
with the look in place. Needs ``pip install 'microast-video[post]'``.
"""

from __future__ import annotations

import copy
import re
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..core.errors import InputError, OptionError, shown
from ..core.output import check_output, write_bytes
from ..media.probe import probe
from ..media.timecode import to_frames
from .manifest import Manifest, manifest_from_dict

#: What OpenTimelineIO reads here (EDL and FCP XML through its adapter plugins).
TIMELINE_EXTS = (".otio", ".otioz", ".edl", ".xml", ".fcpxml")

_INPUT = re.compile(r"^inputs\[(\d+)\]")


def _otio() -> Any:
    try:
        import opentimelineio as otio
    except ImportError:
        raise OptionError("editorial timelines need OpenTimelineIO: pip install 'microast-video[post]'") from None
    return otio


def read_timeline(path: Path) -> Any:
    """The cut, read by OpenTimelineIO (one line where it cannot be). An EDL states no frame
    rate: its timecodes are read at its first clip's media's rate."""
    cut = _read(path)
    if path.suffix.lower() == ".edl" and (rate := _media_rate(cut, path.parent)) is not None:
        cut = _read(path, rate=rate)
    return cut


def _read(path: Path, **options: Any) -> Any:
    otio = _otio()
    try:
        return otio.adapters.read_from_file(str(path), **options)
    except Exception as err:  # noqa: BLE001 - OTIO's adapters raise many kinds: one line naming the file
        raise InputError(f"timeline {shown(path)}: OpenTimelineIO cannot read it ({' '.join(str(err).split())[:200]})"
                         ) from None


def _media_rate(cut: Any, base: Path) -> float | None:
    """The frame rate of the first clip's media that exists (None: none does)."""
    for clip in cut.find_clips():
        if getattr(clip.media_reference, "target_url", None) and (media := media_path(clip, base)).is_file():
            info = probe(media)
            return float(info.nominal_rate or info.frame_rate)
    return None


def media_path(clip: Any, base: Path) -> Path:
    """A clip's media file (a ``file://`` URL or a path, relative to the cut's folder), or its
    image sequence's printf pattern (an OTIO ImageSequenceReference)."""
    ref = clip.media_reference
    url = getattr(ref, "target_url", None) or getattr(ref, "target_url_base", None)
    if not url:
        raise InputError(f"timeline clip {clip.name!r}: no media file (a gap or a generated clip)")
    parsed = urlparse(url)
    path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(url)
    if hasattr(ref, "target_url_base"):
        path = path / f"{ref.name_prefix}%0{ref.frame_zero_padding}d{ref.name_suffix}"
    return path if path.is_absolute() else base / path


def _media_fields(clip: Any) -> dict[str, Any]:
    """A job's own options for a clip's media: an image sequence's frame rate."""
    rate = getattr(clip.media_reference, "rate", None)
    return {"fps": float(rate)} if hasattr(clip.media_reference, "target_url_base") and rate else {}


def clip_window(clip: Any, media: Path) -> tuple[float, float]:
    """(seconds into the media file, seconds long) of the clip's source range, which counts from
    the media's available range, else (an EDL's source timecodes) from the media's own timecode."""
    source = clip.source_range or clip.available_range()
    available = clip.media_reference.available_range
    origin = available.start_time.to_seconds() if available is not None else _timecode_frames(media, source.duration.rate
                                                                                             ) / source.duration.rate
    return max(0.0, source.start_time.to_seconds() - origin), source.duration.to_seconds()


def _timecode_frames(media: Path, rate: float) -> int:
    """The media's first timecode in frames at ``rate`` (0 where it has none)."""
    info = probe(media)
    if not info.timecode:
        return 0
    try:
        return to_frames(info.timecode, Fraction(rate).limit_denominator(1001))[0]
    except ValueError:
        return 0


def timeline_manifest(path: Path, styles: list[Path], output_dir: Path, defaults: dict[str, Any]) -> tuple[Manifest, Any]:
    """(a manifest of the cut's clips x one look per style, the cut) for :func:`run_batch`."""
    if not styles:
        raise OptionError(f"timeline {shown(path)}: give the look with --style IMAGE (repeat for several looks)")
    timeline = read_timeline(path)
    clips = list(timeline.find_clips())
    if not clips:
        raise InputError(f"timeline {shown(path)}: no clips")
    inputs = []
    for clip in clips:
        media = media_path(clip, path.parent)
        start, duration = clip_window(clip, media)
        inputs.append({"path": str(media), "start": start, "duration": duration, **_media_fields(clip)})
    looks = {style.stem: {"style": str(style)} for style in styles}
    data = {"output": "{index:03d}_{stem}_{look}{ext}", "output_dir": str(output_dir), "defaults": defaults,
            "inputs": inputs, "looks": looks}
    return manifest_from_dict(data, path.with_suffix(".microast.toml")), timeline


def relinked(timeline: Any, manifest: Manifest, look: str) -> Any:
    """The cut with each clip's media replaced by its stylized output for ``look``, which starts
    at the clip's first frame: its source range starts there, at the output's own timecode (the
    source's, moved on by the clip's start) or at 0 where it has none."""
    otio = _otio()
    outputs = {int(m.group(1)): job.output for job in manifest.jobs
               if job.look.name == look and (m := _INPUT.match(job.entry))}
    cut = copy.deepcopy(timeline)
    for index, clip in enumerate(cut.find_clips()):
        source = clip.source_range or clip.available_range()
        rate = source.duration.rate
        zero = otio.opentime.RationalTime(_timecode_frames(Path(outputs[index]), rate), rate)
        clip.source_range = otio.opentime.TimeRange(zero, source.duration)
        clip.media_reference = otio.schema.ExternalReference(
            target_url=Path(outputs[index]).resolve().as_uri(), available_range=otio.opentime.TimeRange(zero, source.duration))
    return cut


def relinked_format(path: Path) -> tuple[str, str]:
    """(extension, OpenTimelineIO adapter) a relinked cut is written in: the cut's own format
    (an EDL comes back an EDL, FCP 7 XML as such), OTIO's JSON for the others."""
    return {".edl": (".edl", "cmx_3600"), ".xml": (".xml", "fcp_xml")}.get(path.suffix.lower(), (".otio", "otio_json"))


def write_relinked(timeline: Any, manifest: Manifest, path: Path, output_dir: Path) -> list[Path]:
    """One relinked cut per look, ``CUT_LOOK.otio`` (``.edl``, ``.xml`` for those) in ``output_dir``
    (written whole, then renamed)."""
    otio = _otio()
    written = []
    reads = [path, *(job.input for job in manifest.jobs)]
    ext, adapter = relinked_format(path)
    for look in manifest.looks:
        target = output_dir / f"{path.stem}_{look.name}{ext}"
        check_output(target, reads, overwrite=True, what="relinked timeline")  # never the cut or a clip
        text = otio.adapters.write_to_string(relinked(timeline, manifest, look.name), adapter)
        write_bytes(target, text.encode(), overwrite=True, what="relinked timeline")
        written.append(target)
    return written
