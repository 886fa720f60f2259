"""Batch manifests: a TOML file of inputs x looks -> outputs, checked in full before any work.

    output = "{stem}_{look}.mkv"      # naming template: {stem} {name} {ext} {look} {index}
    output_dir = "out"                # relative to the manifest's folder
    segment_seconds = 10              # long clips are processed in segments this long

    [defaults]                        # any job option (codec, crf, height, temporal, ...)
    codec = "ffv1"

    [[inputs]]
    path = "shots/*.mp4"              # a file, a glob or a folder (its video files)
    height = 540                      # per-input overrides

    [looks.vangogh]
    style = "styles/vangogh.jpg"      # or styles = [...] with weights = [...], or signals = "x.npz"
    alpha = 0.8

Options apply in order: ``[defaults]``, then the look's, then the input's (the most
specific wins). Every problem found is one line naming its entry; none is fatal alone, so
the whole manifest is checked at once.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import sys
from pathlib import Path
from typing import Any

from ..core.errors import InputError, MicroastError, shown
from ..core.files import read_settings_text, within
from ..core.options import Codec, Network
from ..core.schema import ENCODE_OPTIONS, KEYFRAME_VALUES, MANIFEST_OPTIONS, Option
from ..core.schema import OPTIONS as SCHEMA
from ..jobs.plan import VideoJob
from ..media.encode_plan import EncodeSettings, default_output
from ..media.sequence import ImageSequence, find_sequence, is_pattern, pattern_parts
from .segments import record_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".mts", ".m2ts", ".avi", ".mxf", ".mpg"}


#: The job options a manifest may set: the command line's, checked by their one declaration.
OPTIONS = {name: SCHEMA[name] for name in MANIFEST_OPTIONS}
#: The manifest's own settings (top level).
SEGMENT_SECONDS = Option("segment_seconds", float, 10.0, "Long clips are processed in segments this long.", 0.5, 3600)
WARMUP_FRAMES = Option("warmup_frames", int, 24, "Frames decoded before a segment's first, to settle the temporal "
                       "stage.", 0, 1000)
_TOP = {"output", "output_dir", "segment_seconds", "warmup_frames", "defaults", "inputs", "looks"}
_LOOK_ONLY = {"style", "styles", "weights", "signals", "keyframes", "alpha_keyframes", "strength_keyframes"}


class ManifestError(MicroastError):
    """A manifest with problems; ``problems`` holds one line each (``str`` is all of them)."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class Look:
    """A named look: its style source and its options."""

    name: str
    styles: tuple[Path, ...] = ()
    weights: tuple[float, ...] | None = None
    signals: Path | None = None
    options: tuple[tuple[str, Any], ...] = ()


@dataclasses.dataclass(frozen=True)
class BatchJob:
    """One input x one look, with its output and merged options."""

    id: str
    entry: str  # how messages name it: "inputs[0] shots/a.mp4 x looks.vangogh"
    input: Path
    look: Look
    output: Path
    options: tuple[tuple[str, Any], ...]

    def video_job(self, **changes: Any) -> VideoJob:
        """The :class:`VideoJob` this batch job runs."""
        o = dict(self.options)
        encode = EncodeSettings(**{name: o.pop(name) for name in ENCODE_OPTIONS if name in o})
        return VideoJob(input=self.input, styles=self.look.styles, style_weights=self.look.weights,
                        signals=self.look.signals, output=self.output, encode=encode, **{**o, **changes})


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A checked manifest: the jobs in order, and how to segment them."""

    path: Path
    jobs: tuple[BatchJob, ...]
    looks: tuple[Look, ...]
    segment_seconds: float
    warmup_frames: int


def load_manifest(path: str | Path) -> Manifest:
    """Read and check ``path``; every problem is collected and raised as one :class:`ManifestError`."""
    path = Path(path)
    try:
        data = tomllib.loads(read_settings_text(path, "manifest"))
    except InputError as err:
        raise ManifestError([str(err)]) from None
    except tomllib.TOMLDecodeError as err:
        raise ManifestError([f"manifest {shown(path)}: not a readable TOML file ({' '.join(str(err).split())})"]) from None
    return manifest_from_dict(data, path)


def manifest_from_dict(data: dict[str, Any], path: str | Path) -> Manifest:
    """A manifest from its parsed content (the TOML's tables as dicts); ``path`` is what it is
    called in messages, and relative names are taken from its folder."""
    path = Path(path)
    problems: list[str] = []
    say = lambda where, what: problems.append(f"{shown(path)}: {where}: {what}")  # noqa: E731
    for key in sorted(set(data) - _TOP):
        say(key, f"unknown setting (known: {', '.join(sorted(_TOP))})")
    base = path.parent
    defaults = _options(data.get("defaults", {}), "defaults", say, allow=set())
    looks = _looks(data.get("looks"), base, say)
    inputs = _inputs(data.get("inputs"), base, say)
    segment = _top(data, SEGMENT_SECONDS, say)
    warmup = _top(data, WARMUP_FRAMES, say)
    template = _text(data, "output", "{stem}_{look}{ext}", say)
    out_dir = base / _text(data, "output_dir", ".", say)
    jobs = _jobs(inputs, looks, defaults, template, out_dir, say) if not problems else []
    if problems:
        raise ManifestError(problems)
    return Manifest(path, tuple(jobs), tuple(looks), segment, warmup)


def _text(data: dict, key: str, default: str, say: Any) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        say(key, f"must be a string, got {value!r}")
        return default
    return value


def _top(data: dict, option: Option, say: Any) -> Any:
    value = data.get(option.name, option.default)
    why = option.problem(value)
    if why is not None:
        say(option.name, why)
        return option.default
    return option.kind(value)


def _options(table: Any, where: str, say: Any, allow: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        say(where, "must be a table")
        return {}
    out = {}
    for key, value in table.items():
        if key in allow:
            continue
        if key not in OPTIONS:
            say(f"{where}.{key}", f"unknown option (known: {', '.join(sorted(OPTIONS))})")
            continue
        why = OPTIONS[key].problem(value)
        if why is None:
            out[key] = OPTIONS[key].check(value)
        else:
            say(f"{where}.{key}", why)
    return out


def _looks(table: Any, base: Path, say: Any) -> list[Look]:
    if not isinstance(table, dict) or not table:
        say("looks", "at least one look is needed ([looks.NAME] with style = ...)")
        return []
    looks = []
    for name, entry in table.items():
        where = f"looks.{name}"
        if not isinstance(entry, dict):
            say(where, "must be a table")
            continue
        options = _options(entry, where, say, allow=_LOOK_ONLY)
        styles = entry.get("styles", [entry["style"]] if "style" in entry else [])
        if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
            say(where, "style / styles must be a file name or a list of them")
            styles = []
        weights = entry.get("weights")
        signals = entry.get("signals")
        keys = _keyframes(entry, base, where, say)
        if keys:
            options["style_at"] = tuple(k for k in keys if not k.startswith(("alpha:", "strength:")))
            for number in KEYFRAME_VALUES:
                if any(k.startswith(f"{number}:") for k in keys):
                    options[f"{number}_at"] = tuple(k.removeprefix(f"{number}:") for k in keys
                                                    if k.startswith(f"{number}:"))
        built_in = Network(options.get("network", Network.microast)) is Network.johnson  # its style is built in
        if (bool(styles) + (signals is not None) + bool(options.get("style_at"))) != (0 if built_in else 1):
            say(where, "a johnson look takes style_model, no style" if built_in
                else "give one of style(s), signals or keyframes")
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(styles)
                                    or not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)
                                    or abs(sum(weights) - 1) > 1e-6 or min(weights) < 0):
            say(f"{where}.weights", f"need one weight >= 0 per style, summing to 1, got {weights!r}")
        for style in styles:
            if not (base / style).is_file():
                say(where, f"style image {shown(base / style)}: file not found")
        if signals is not None and not (base / str(signals)).is_file():
            say(where, f"signals {shown(base / str(signals))}: file not found")
        looks.append(Look(name, tuple(base / s for s in styles), tuple(weights) if weights else None,
                          base / str(signals) if signals is not None else None, tuple(options.items())))
    return looks


def _keyframes(entry: dict[str, Any], base: Path, where: str, say: Any) -> list[str]:
    """A look's ``keyframes = [[0, "a.jpg"], [4.5, "b.jpg"]]``, ``strength_keyframes = [[0, 1.0], ...]``
    and ``alpha_keyframes`` as the video command's --style-at / --strength-at / --alpha-at values
    (the numbers marked "strength:" and "alpha:")."""
    found = []
    for key, number in (("keyframes", None), *((f"{name}_keyframes", name) for name in KEYFRAME_VALUES)):
        pairs = entry.get(key, [])
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            say(f"{where}.{key}", "must be a list of [time, value] pairs (times in seconds, or \"120f\" frames)")
            continue
        for time, value in pairs:
            why = OPTIONS[number].problem(value) if number else None
            if why is not None:
                say(f"{where}.{key}", why)
            elif number:
                found.append(f"{number}:{time}:{value}")
            elif not (base / str(value)).is_file():
                say(f"{where}.{key}", f"style image {shown(base / str(value))}: file not found")
            else:
                found.append(f"{time}:{base / str(value)}")
    return found


def _inputs(entries: Any, base: Path, say: Any) -> list[tuple[str, Path, dict[str, Any]]]:
    if not isinstance(entries, list) or not entries:
        say("inputs", "at least one input is needed ([[inputs]] with path = ...)")
        return []
    found = []
    for i, entry in enumerate(entries):
        where = f"inputs[{i}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            say(where, "needs path = a file, a glob or a folder")
            continue
        options = _options(entry, where, say, allow={"path", "matte"})
        if "matte" in entry:
            if not (base / str(entry["matte"])).exists():
                say(f"{where}.matte", f"{shown(base / str(entry['matte']))}: file not found")
            options["matte"] = base / str(entry["matte"])
        paths = expand(base, entry["path"])
        if not paths:
            say(where, f"{entry['path']!r} matches no video file")
        found += [(f"{where} {shown(p.relative_to(base) if p.is_relative_to(base) else p)}", p, options) for p in paths]
    return found


def expand(base: Path, pattern: str) -> list[Path]:
    """A file, a folder (its video files) or a glob, relative to ``base``; sorted. A folder or a
    glob leaves out the outputs of earlier batches (a file with a job record beside it), so a
    batch whose outputs land among its inputs never takes them as new inputs on a rerun."""
    target = base / pattern
    if is_pattern(target) or (target.is_dir() and _numbered_frames(target)):
        return [target]  # an image sequence: one input (a folder of numbered frames, shot.%04d.dpx, shot.####.png)
    if target.is_dir():
        found = [p for p in target.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    elif any(c in pattern for c in "*?[") and not target.exists():  # a file named "[x].mp4" is that file
        found = [Path(p) for p in glob.glob(str(target), recursive=True) if Path(p).is_file()]
    else:
        return [target] if target.exists() else []
    return sorted(p for p in found if not record_path(p).exists())


def _numbered_frames(folder: Path) -> bool:
    """A folder of numbered frames and no video files: a sequence, not a folder of clips."""
    if any(p.suffix.lower() in VIDEO_EXTENSIONS for p in folder.iterdir()):
        return False
    try:
        return find_sequence(folder) is not None
    except MicroastError:
        return False


def input_stem(path: Path) -> str:
    """The ``{stem}`` of an input: a clip's file stem; a sequence's frame prefix (``sh010`` of
    ``sh010.%04d.dpx``) or folder name."""
    if is_pattern(path):
        prefix, suffix, padding = pattern_parts(path)
        return ImageSequence(path.parent, prefix, suffix, padding, 0, -1).stem
    return path.name if path.is_dir() else path.stem


def _jobs(inputs: list, looks: list[Look], defaults: dict, template: str, out_dir: Path, say: Any) -> list[BatchJob]:
    jobs, seen = [], {}
    for index, (entry, path, overrides) in enumerate(inputs):
        for look in looks:
            options = {**defaults, **dict(look.options), **overrides}
            ext = default_output(path, options.get("codec", Codec.auto)).suffix  # the input's, if it fits
            try:
                name = template.format(stem=input_stem(path), name=path.name, ext=ext, look=look.name, index=index)
            except (KeyError, IndexError, ValueError) as err:
                say("output", f"bad naming template {template!r} ({err!r}); use {{stem}} {{name}} {{ext}} {{look}} {{index}}")
                return []
            output = out_dir / name
            label = f"{entry} x looks.{look.name}"
            key = os.path.realpath(output)  # "x" and "d/../x", or a link, are one file
            if not within(Path(key), out_dir) or Path(key) == Path(os.path.realpath(out_dir)):
                say(label, f"writes {shown(output)}, outside output_dir {shown(out_dir)}; keep the template and the "
                           "look names inside it")
                continue
            if key in seen:
                say(label, f"writes {shown(output)}, as {seen[key]} does; make the output template unique")
                continue
            seen[key] = label
            jobs.append(BatchJob(f"{index:03d}-{path.stem}-{look.name}", label, path, look, output, tuple(options.items())))
    return jobs
