"""One file plan per job: an output is never an input, never another output, never outside its
folder; each clash is one line before any work, and every input is left as it was."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers import make_clip, make_style, one_line_error, png_declaring, run_cli

from microast_video.batch.manifest import ManifestError, manifest_from_dict
from microast_video.core.errors import OutputError
from microast_video.core.files import FilePlan


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan")
    make_clip(folder / "in.mp4", size="64x48", seconds=0.2)
    make_clip(folder / "m.mp4", size="64x48", seconds=0.2, source="testsrc")
    make_style(folder / "a.png", 1)
    make_style(folder / "b.png", 2)
    (folder / "keys.toml").write_text(f'style = [[0, "{folder / "a.png"}"], [0.1, "{folder / "b.png"}"]]\n')
    return folder


def refused(files: Path, *args: object, needle: str) -> None:
    """The command is refused in one line naming the clash, and no file in the folder changed."""
    before = {p.name: digest(p) for p in files.iterdir() if p.is_file()}
    one_line_error(run_cli(*args, "-q"), needle)
    assert {p.name: digest(p) for p in files.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("args", [
    ["-s", "a.png", "-s", "b.png", "--matte", "m.mp4", "-o", "m.mp4"],         # the matte
    ["--keyframes", "keys.toml", "--report", "keys.toml"],                      # the keyframes file
    ["--style-at", "0:a.png", "--report", "a.png"],                              # a keyframe style
    ["--style-at", "0:a.png", "--chart", "a.png"],
    ["--keyframes", "keys.toml", "--chart", "b.png"],                            # a style the keyframes file names
], ids=["output-is-matte", "report-is-keyframes", "report-is-keyframe-style", "chart-is-keyframe-style",
        "chart-is-style-in-keyframes-file"])
def test_overwrite_never_replaces_an_input(files, args):
    args = [files / a if a.endswith((".png", ".mp4", ".toml")) and ":" not in a else
            (f"0:{files / a[2:]}" if a.startswith("0:") else a) for a in args]
    refused(files, "video", files / "in.mp4", *args, "--overwrite", needle="input")


@pytest.mark.parametrize("pair", [("-o", "--chart"), ("--report", "--chart"), ("-o", "--report")])
def test_two_outputs_are_never_one_file(files, tmp_path, pair):
    same = tmp_path / "same.mp4"
    line = one_line_error(run_cli("video", files / "in.mp4", "-s", files / "a.png", pair[0], same, pair[1], same,
                                  "--overwrite", "-q"), "same file")
    assert "same.mp4" in line and not same.exists()


def test_a_link_or_dotdot_to_an_input_is_that_input(files, tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to(files / "a.png")
    (files / "sub").mkdir(exist_ok=True)
    refused(files, "video", files / "in.mp4", "-s", link, "--report", files / "sub" / ".." / "a.png", "--overwrite",
            needle="input")
    refused(files, "video", files / "in.mp4", "-s", files / "a.png", "--report", link, "--overwrite", needle="input")


def test_a_preview_never_replaces_its_keyframe_style_and_is_a_png(files, tmp_path):
    refused(files, "preview", files / "in.mp4", "--style-at", f"0:{files / 'a.png'}", "-o", files / "a.png",
            "--overwrite", needle="input")
    one_line_error(run_cli("preview", files / "in.mp4", "-s", files / "a.png", "-o", tmp_path / "p.jpg", "-q"),
                   "PNG")
    assert not (tmp_path / "p.jpg").exists()


def test_the_image_command_never_replaces_its_style(files):
    refused(files, "image", files / "a.png", "-s", files / "b.png", "-o", files / "b.png", "--overwrite",
            needle="input")


def batch_problems(tmp_path: Path, files: Path, **top) -> list[str]:
    data = {"inputs": [{"path": str(files / "in.mp4")}], "looks": {"a": {"style": str(files / "a.png")}}, **top}
    with pytest.raises(ManifestError) as err:
        manifest_from_dict(data, tmp_path / "m.toml")
    return err.value.problems


@pytest.mark.parametrize("template", ["../../escaped_{stem}_{look}.mp4", "/tmp/absolute_{stem}.mp4"])
def test_a_batch_output_stays_in_its_folder(files, tmp_path, template):
    (line,) = batch_problems(tmp_path, files, output=template)
    assert "outside output_dir" in line


def test_a_look_name_cannot_leave_the_folder_or_alias_another(files, tmp_path):
    looks = {"x": {"style": str(files / "a.png")}, "d/../x": {"style": str(files / "a.png")},
             "../../../y": {"style": str(files / "a.png")}}
    data = {"inputs": [{"path": str(files / "in.mp4")}], "looks": looks, "output": "{look}.mp4"}
    with pytest.raises(ManifestError) as err:
        manifest_from_dict(data, tmp_path / "m.toml")
    problems = err.value.problems
    assert len(problems) == 2 and any("as inputs[0]" in p and "make the output template unique" in p for p in problems)
    assert any("looks.../../../y" in p and "outside output_dir" in p for p in problems)


@pytest.mark.parametrize(("top", "key"), [({"output": 5}, "output"), ({"output_dir": 5}, "output_dir")])
def test_a_manifest_setting_of_the_wrong_type_is_one_line(files, tmp_path, top, key):
    (line,) = batch_problems(tmp_path, files, **top)
    assert f": {key}: must be a string, got 5" in line


def test_look_weights_that_are_not_numbers_are_one_line(files, tmp_path):
    data = {"inputs": [{"path": str(files / "in.mp4")}],
            "looks": {"a": {"styles": [str(files / "a.png"), str(files / "b.png")], "weights": ["x", "y"]}}}
    with pytest.raises(ManifestError) as err:
        manifest_from_dict(data, tmp_path / "m.toml")
    assert any("looks.a.weights: need one weight" in p for p in err.value.problems)


def test_a_batch_output_that_is_its_input_matte_is_refused(files, tmp_path):
    (tmp_path / "out").mkdir()
    matte = tmp_path / "out" / "in_a.mp4"
    make_clip(matte, size="64x48", seconds=0.2, source="testsrc")
    before = digest(matte)
    text = (f'output = "{{stem}}_{{look}}.mp4"\noutput_dir = "out"\n[[inputs]]\npath = "{files / "in.mp4"}"\n'
            f'matte = "{matte}"\n[looks.a]\nstyle = "{files / "a.png"}"\n')
    (tmp_path / "m.toml").write_text(text)
    result = run_cli("batch", tmp_path / "m.toml", "--overwrite", "-q")
    assert result.exit_code != 0 and "input" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert digest(matte) == before


def test_the_plan_itself_refuses_each_clash(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"x")
    with pytest.raises(OutputError, match="is an input file"):
        FilePlan().read("style", a).write("report", a).check(overwrite=True)
    with pytest.raises(OutputError, match="same file as the output"):
        FilePlan().write("output", b).write("report", tmp_path / "." / "b").check(overwrite=True)
    with pytest.raises(OutputError, match="outside its folder"):
        FilePlan().write("output", tmp_path / "b").check(overwrite=True, inside=tmp_path / "sub")
    FilePlan().read("style", a).write("output", b).check(overwrite=False)  # nothing in the way


def test_a_folder_input_leaves_out_earlier_outputs_of_a_batch(files, tmp_path):
    """inputs.path = "." with output_dir = ".": each rerun took its own outputs as new inputs."""
    from microast_video.batch.segments import record_path

    make_clip(tmp_path / "c.mp4", size="64x48", seconds=0.2)
    make_clip(tmp_path / "c_a.mp4", size="64x48", seconds=0.2)  # what the first run wrote...
    record_path(tmp_path / "c_a.mp4").write_text("{}")            # ...with its record beside it
    data = {"inputs": [{"path": "."}], "output_dir": ".", "looks": {"a": {"style": str(files / "a.png")}}}
    manifest = manifest_from_dict(data, tmp_path / "m.toml")
    assert [job.input.name for job in manifest.jobs] == ["c.mp4"]


def test_a_file_named_like_a_glob_is_that_file(files, tmp_path):
    (tmp_path / "gl").mkdir()
    make_clip(tmp_path / "gl" / "[x].mp4", size="64x48", seconds=0.2)
    make_clip(tmp_path / "gl" / "x.mp4", size="64x48", seconds=0.2, source="testsrc")
    data = {"inputs": [{"path": "gl/[x].mp4"}], "looks": {"a": {"style": str(files / "a.png")}}}
    manifest = manifest_from_dict(data, tmp_path / "m.toml")
    assert [job.input.name for job in manifest.jobs] == ["[x].mp4"]


# --- every picture size-checked before decoding ----------------------------------------------

def test_a_matte_still_declaring_a_huge_picture_is_refused_before_decoding(files, tmp_path):
    bomb = png_declaring(tmp_path / "bomb.png", 30000, 30000)
    one_line_error(run_cli("video", files / "in.mp4", "-s", files / "a.png", "--matte", bomb, "-o", tmp_path / "o.mp4",
                           "-q"), "bomb.png", "30000x30000", "--max-pixels")
    one_line_error(run_cli("preview", files / "in.mp4", "-s", files / "a.png", "--matte", bomb, "-o",
                           tmp_path / "p.png", "-q"), "bomb.png", "--max-pixels")


def test_a_matte_clip_over_max_pixels_is_refused_before_decoding(files, tmp_path):
    matte = make_clip(tmp_path / "big.mp4", size="640x480", seconds=0.2)
    one_line_error(run_cli("video", files / "in.mp4", "-s", files / "a.png", "--matte", matte, "--max-pixels", "300000",
                           "-o", tmp_path / "o.mp4", "-q"), "matte", "640x480", "--max-pixels")


def test_the_bench_checks_its_style_and_clip_before_decoding(files, tmp_path, weights_env):
    bomb = png_declaring(tmp_path / "bomb.png", 30000, 30000)
    one_line_error(run_cli("bench", "--style", bomb, "--resolution", "64x64"), "bomb.png", "30000x30000")
    short = run_cli("bench", "--input", files / "in.mp4", "--frames", "50", "--no-naive")  # a user's own clip
    one_line_error(short, "in.mp4", "frames")


# --- settings files read with a bound ------------------------------------------------------

@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge"])
def test_a_keyframes_file_or_manifest_that_is_not_a_small_file_is_one_line(files, tmp_path, kind):
    """/dev/zero was read without bound (MemoryError, exit 70); a FIFO with no writer blocked for ever."""
    if kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "fifo":
        path = tmp_path / "keys.toml"
        os.mkfifo(path)
    else:
        path = tmp_path / "keys.toml"
        path.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    needle = "not a regular file" if kind != "huge" else "bytes"
    one_line_error(run_cli("video", files / "in.mp4", "--keyframes", path, "-o", tmp_path / "o.mp4", "-q"), needle)
    one_line_error(run_cli("batch", path, "-q"), needle)


@pytest.mark.parametrize("height", [5, 7])
def test_frames_too_small_for_the_flow_are_one_line(tmp_path, height):
    """--height 5 to 10 of a 16:9 clip with the temporal stage on ended in OpenCV's error, exit 70."""
    clip = make_clip(tmp_path / "wide.mp4", size="128x72", seconds=0.12)
    style = make_style(tmp_path / "s.png")
    one_line_error(run_cli("video", clip, "-s", style, "--height", height, "-o", tmp_path / "o.mp4", "-q"),
                   "--temporal off")
    assert run_cli("video", clip, "-s", style, "--height", height, "--temporal", "off", "-o", tmp_path / "o.mp4",
                   "-q").exit_code == 0


def test_an_export_size_over_the_picture_limit_is_one_line(tmp_path):
    """export --size 16000x16000 took 3.5 GB, with no cap."""
    one_line_error(run_cli("export", "--onnx", tmp_path / "m.onnx", "--size", "16000x16000"), "--size", "--dynamic")
    assert not (tmp_path / "m.onnx").exists()


def test_a_dry_run_writes_nothing(files, tmp_path, weights_env):
    """A dry run rewrote report.json (so --retry-failed then found no failed job) and made folders."""
    text = (f'output = "deep/er/{{stem}}_{{look}}.mp4"\noutput_dir = "out"\n[[inputs]]\npath = "{files / "in.mp4"}"\n'
            f'[looks.a]\nstyle = "{files / "a.png"}"\n')
    (tmp_path / "m.toml").write_text(text)
    result = run_cli("batch", tmp_path / "m.toml", "--dry-run")
    assert result.exit_code == 0 and "dry run" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml"]  # no out/, no report folder
    (tmp_path / "m-report").mkdir()
    earlier = b'{"report": "microast-video batch report", "jobs": [{"status": "failed"}]}'
    (tmp_path / "m-report" / "report.json").write_bytes(earlier)
    assert run_cli("batch", tmp_path / "m.toml", "--dry-run").exit_code == 0
    assert (tmp_path / "m-report" / "report.json").read_bytes() == earlier


# --- records that fingerprint every input's content --------------------------------------

@pytest.mark.parametrize("changed", ["keyframe style", "style in keyframes file", "matte"])
def test_a_record_changes_with_any_input_content(tmp_path, changed):
    """A rerun after replacing a keyframe style image or a matte's content said "up to date"."""
    from microast_video.jobs.records import fingerprint
    from microast_video.jobs.plan import VideoJob

    clip = make_clip(tmp_path / "c.mp4", size="64x48", seconds=0.12)
    a, b = make_style(tmp_path / "a.png", 1), make_style(tmp_path / "b.png", 2)
    keys = tmp_path / "keys.toml"
    keys.write_text(f'style = [[0, "{b}"]]\n')
    matte = make_style(tmp_path / "m.png", 3)
    job = {"keyframe style": VideoJob(input=clip, style_at=(f"0:{a}",)),
           "style in keyframes file": VideoJob(input=clip, keyframes=keys),
           "matte": VideoJob(input=clip, styles=(a,), matte=matte)}[changed]
    before = fingerprint(job)
    assert fingerprint(job) == before
    target = {"keyframe style": a, "style in keyframes file": b, "matte": matte}[changed]
    make_style(target, 7)  # another picture under the same name
    assert fingerprint(job) != before


def test_a_second_run_of_a_batch_says_another_holds_it(files, tmp_path):
    """Two runs of one manifest started 2 s apart both rendered everything; the second failed late."""
    from microast_video.batch.report import batch_lock

    text = (f'output_dir = "out"\n[[inputs]]\npath = "{files / "in.mp4"}"\n[looks.a]\nstyle = "{files / "a.png"}"\n')
    (tmp_path / "m.toml").write_text(text)
    (tmp_path / "m-report").mkdir()
    with batch_lock(tmp_path / "m-report"):  # a run in progress
        one_line_error(run_cli("batch", tmp_path / "m.toml", "-q"), "another batch run", "pid")
    assert not (tmp_path / "out").exists()


# --- sweeping what killed runs left -------------------------------------------------------

def test_a_run_right_after_a_kill_sweeps_the_dead_runs_file(files, tmp_path):
    """The sweep waited until a leftover was 5 s old: a run started at once left it for good."""
    from helpers import temp_files

    from microast_video.core.output import TEMP_SUFFIX

    out = tmp_path / "out"
    out.mkdir()
    leftover = out / f".o.mp4.0123456789ab{TEMP_SUFFIX}"  # a killed run's, just written: unlocked
    leftover.write_bytes(b"half a video")
    result = run_cli("video", files / "in.mp4", "-s", files / "a.png", "-o", out / "o.mp4", "--temporal", "off")
    assert result.exit_code == 0, result.stderr
    assert "left by an interrupted run" in result.stderr and temp_files(out) == []


def test_every_writer_sweeps_its_folder(tmp_path):
    """Batch outputs and exports were never swept: every atomic write sweeps its folder once."""
    from microast_video.core.output import TEMP_SUFFIX, AtomicFile, sweep_once

    leftover = tmp_path / f".x.onnx.0123456789ab{TEMP_SUFFIX}"
    leftover.write_bytes(b"half a model")
    with AtomicFile(tmp_path / "report.json", overwrite=False) as f:
        f.write(b"{}")
        f.publish()
    assert not leftover.exists() and (tmp_path / "report.json").read_bytes() == b"{}"
    assert sweep_once(tmp_path) == []  # once per folder per process (and again at exit)


# --- every output option against every input option ------------------------------------------

INPUTS = {"clip": None, "--style": "a.png", "--matte": "m.mp4", "--keyframes": "keys.toml",
          "keyframe style": "b.png"}
OUTPUTS = ["-o", "--report", "--chart"]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("source", list(INPUTS))
def test_each_output_option_against_each_input_option(files, output, source):
    """Whatever names an input, no output may: refused in one line, with --overwrite, before any work."""
    args = ["video", files / "in.mp4", "--matte", files / "m.mp4", "--keyframes", files / "keys.toml",
            "-s", files / "a.png"]
    target = files / "in.mp4" if INPUTS[source] is None else files / INPUTS[source]
    refused(files, *args, output, target, "--overwrite", needle="input")


# --- honest notes -----------------------------------------------------------------------------

def test_a_damaged_clip_is_stylized_with_a_note(tmp_path):
    """A bit-flipped H.264 clip decoded with FFmpeg's concealed errors, and the run said nothing."""
    import random

    clip = make_clip(tmp_path / "c.mp4", size="160x96", seconds=1)
    data = bytearray(clip.read_bytes())
    rng = random.Random(1)
    for _ in range(40):
        data[rng.randrange(len(data) // 3, len(data) * 9 // 10)] ^= 0xFF
    (tmp_path / "flipped.mp4").write_bytes(bytes(data))
    result = run_cli("video", tmp_path / "flipped.mp4", "-s", make_style(tmp_path / "s.png"), "--temporal", "off",
                     "-o", tmp_path / "o.mp4", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.stderr
    assert "are damaged" in result.stderr
    assert any("are damaged" in note for note in json.loads((tmp_path / "r.json").read_text())["notes"])


def test_the_summary_says_which_stage_bounds_the_run():
    from microast_video.jobs.report import bound_by, summary_line

    stages = {"decode": 0.2, "network": 4.4, "temporal": 2.1, "encode": 0.5}
    assert bound_by(stages) == "network" and bound_by({"decode": 0.0}) is None
    report = {"frames": 25, "wall_seconds": 5.0, "fps": 5.0, "output_resolution": [64, 48], "device": "cpu",
              "precision": "float32", "batch_size": 1, "stages": {**stages, "encode": 4.9}, "bound_by": "encode"}
    assert summary_line(report).endswith("; bound by the encoder")


def test_on_a_file_system_without_locks_a_live_file_keeps_its_young_name(tmp_path, monkeypatch):
    """Unlocked files under the swept name are removed at once, so one that cannot be locked
    keeps the name a sweep leaves alone while it is young."""
    from microast_video.core import output

    def no_locks(fd, op):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(output.fcntl, "flock", no_locks)  # the writer's and the sweeper's locks fail
    with output.AtomicFile(tmp_path / "o.bin", overwrite=False) as live:
        assert live.path.name.endswith(output.FRESH_SUFFIX)
        assert output.sweep_stale(tmp_path) == [] and live.path.exists()
        live.write(b"data")
        live.publish()
    assert (tmp_path / "o.bin").read_bytes() == b"data"


def test_a_clip_with_a_long_gap_expects_the_frames_its_container_lists(tmp_path, weights_env):
    """Three frames spread over 10,000 s were expected as 250,001: --compile auto compiled, and the
    progress bar promised 2,090 hours."""
    from helpers import ffmpeg

    from microast_video.jobs.plan import VideoJob, plan_video

    clip = tmp_path / "gap.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=0.12", "-vf",
           "setpts='if(lt(N,2),N*0.04,10000+(N-2)*0.04)/TB'", "-fps_mode", "vfr", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", clip)
    plan = plan_video(VideoJob(input=clip, styles=(make_style(tmp_path / "s.png"),), output=tmp_path / "o.mp4"))
    assert plan.expected_frames == 3 and not plan.engine.compile
