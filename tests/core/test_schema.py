"""Every option is declared once: the command line, a manifest and a keyframes file accept and
refuse the same values, with the same words."""

from __future__ import annotations

import enum
import math

import pytest
from conftest import ROOT

from microast_video.batch.manifest import ManifestError, manifest_from_dict
from microast_video.cli import main
from microast_video.core.errors import OptionError
from microast_video.core.schema import KEYFRAME_OPTIONS, KEYFRAME_VALUES, MANIFEST_OPTIONS, OPTIONS
from microast_video.style.controls import load_keyframe_file


def values(option) -> tuple[list, list]:
    """(good, bad) values of an option, as TOML would carry them."""
    if isinstance(option.kind, type) and issubclass(option.kind, enum.Enum):
        return [e.value for e in option.kind], ["nonsense", "ON"]
    if option.kind is bool:
        return [True, False], ["yes", 1]
    if option.kind is str:
        return ["auto", "x"], [5]
    good, bad = [], ["abc", math.nan, math.inf]
    if option.lo is not None:
        good.append(option.kind(option.lo) + (1 if option.lo_open else 0))
        bad.append(option.kind(option.lo) - 1 if not option.lo_open else option.kind(option.lo))
    if option.hi is not None:
        good.append(option.kind(option.hi))
        bad.append(option.kind(option.hi) + 1)
    if option.kind is int:
        bad.append(2.5)
    return good, bad


def cli_text(value) -> str:
    return "nan" if isinstance(value, float) and math.isnan(value) else str(value)


#: Options whose good values depend on another's (a johnson network takes a style model and no
#: style): tests/models/test_seed_networks.py tries those together.
PAIRED = {"network", "style_model"}
CASES = [(name, value, ok) for name in MANIFEST_OPTIONS if name not in PAIRED
         for ok, vals in zip((True, False), values(OPTIONS[name])) for value in vals]


def command_line_problem(name: str, value, capsys) -> str | None:
    """What the video command says of ``--flag value`` (None: the value passed, the job went on)."""
    with pytest.raises(SystemExit):
        main(["video", "no-such-clip.mp4", "-s", "no-such-style.png", OPTIONS[name].flag, cli_text(value), "-q"])
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1, line
    if f"'{OPTIONS[name].flag}'" in line:
        return line.split(f"'{OPTIONS[name].flag}': ", 1)[1].rsplit(" (see ", 1)[0]
    assert "no-such-clip.mp4" in line or "no-such-style.png" in line, line  # refused for the files, after the options
    return None


def manifest_problem(name: str, value, tmp_path) -> str | None:
    (tmp_path / "s.png").write_bytes(b"")
    (tmp_path / "c.mp4").write_bytes(b"")
    data = {"looks": {"a": {"style": "s.png", name: value}}, "inputs": [{"path": "c.mp4"}]}
    try:
        manifest_from_dict(data, tmp_path / "m.toml")
    except ManifestError as err:
        (line,) = err.problems
        assert line.startswith(f"m.toml: looks.a.{name}: ") or f"looks.a.{name}: " in line, line
        return line.split(f"looks.a.{name}: ", 1)[1]
    return None


@pytest.mark.parametrize(("name", "value", "ok"), CASES, ids=[f"{n}={v!r}" for n, v, _ in CASES])
def test_the_command_line_and_a_manifest_agree(name, value, ok, tmp_path, capsys):
    said = manifest_problem(name, value, tmp_path)
    assert (said is None) == ok, said
    if OPTIONS[name].kind is bool or (OPTIONS[name].kind is str and not isinstance(value, str)):
        return  # a flag takes no value, and a command line has only strings
    assert command_line_problem(name, value, capsys) == said


@pytest.mark.parametrize("name", KEYFRAME_OPTIONS)
def test_a_keyframes_file_agrees_with_the_command_line(name, tmp_path, capsys):
    good, bad = values(OPTIONS[name])
    for value, ok in [(v, True) for v in good] + [(v, False) for v in bad]:
        keys = tmp_path / "keys.toml"
        toml = repr(value) if not isinstance(value, float) or math.isfinite(value) else ("nan" if math.isnan(value) else "inf")
        keys.write_text(f"{name} = [[0, {toml}]]\n" if name in KEYFRAME_VALUES
                        else f"ease = {toml if not isinstance(value, str) else repr(value)}\n")
        try:
            load_keyframe_file(keys)
            said = None
        except OptionError as err:
            said = str(err).split(": ", 2)[-1]
        assert (said is None) == ok, (value, said)
        assert said == manifest_problem(name, value, tmp_path)


def test_a_misspelt_keyframes_key_is_refused_with_the_known_ones(tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text('eas = "smooth"\n')
    with pytest.raises(OptionError, match=r"keys.toml: eas: unknown key \(known: alpha, ease, strength, style\)"):
        load_keyframe_file(keys)


def test_an_alpha_of_1_7_in_a_keyframes_file_is_one_line_before_any_work(tmp_path, capsys):
    """It ended in "internal error", exit 70, after the model had loaded."""
    keys = tmp_path / "keys.toml"
    keys.write_text(f'style = [[0, "{ROOT / "samples" / "style.jpg"}"]]\nalpha = [[0, 1.7]]\n')
    with pytest.raises(SystemExit) as exit_:
        main([str(ROOT / "samples" / "clip.mp4"), "--keyframes", str(keys), "-o", str(tmp_path / "o.mp4"), "-q"])
    line = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and len(line.splitlines()) == 1, line
    assert line.startswith("microast-video: error: keyframes ") and line.endswith(
        "keys.toml: alpha[0]: must be between 0 and 1, got 1.7"), line
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize(("flag", "value"), [("--batch-size", "257"), ("--height", "100001")])
def test_the_command_line_caps_what_a_manifest_caps(flag, value, capsys):
    """The manifest capped --batch-size at 256 and --height at 100,000; the command line took any."""
    with pytest.raises(SystemExit) as exit_:
        main(["video", "no-such-clip.mp4", "-s", "x.png", flag, value])
    assert exit_.value.code == 2 and "must be between" in capsys.readouterr().err
