"""Reliability of the video job: interrupts, bad inputs and outputs, failing stages, bounded
memory, and the engine's batching and ordering.

Every clip is generated in a temp folder with the ffmpeg program the package uses; every
run is on the CPU at a tiny size, and anything that could hang runs under a deadline.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import weights_dir
from helpers import make_clip as _make_clip
from helpers import make_style, one_line_error
from typer.testing import CliRunner

from microast_video import EncodeSettings, VideoJob, run_video
from microast_video.cli import app
from microast_video.core import stages as _stages
from microast_video.core.errors import InputError, OutputError
from microast_video.core.frame import Frame
from microast_video.core.output import TEMP_SUFFIX
from microast_video.engine.stylizer import FrameEngine, Stylizer, batched, pipelined
from microast_video.jobs import video as _pipeline
from microast_video.media.encode import FFmpegWriter
from microast_video.media.encode_plan import ffmpeg_exe

make_clip = functools.partial(_make_clip, faststart=True)  # the reliability cases' clips keep their index in front

FFMPEG = ffmpeg_exe()
runner = CliRunner()

# An exception escaping any thread (a stage, ffmpeg's stderr reader) is a failure here.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


# --------------------------------------------------------------------------------------
# Helpers




def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def count_frames(path: Path) -> int:
    """Frames PyAV decodes from ``path`` (stopping quietly at the first decode error)."""
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for packet in container.demux(stream):
                n += len(packet.decode())
        except av.FFmpegError:
            pass
    return n


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(f".*{TEMP_SUFFIX}"))


def procs_with(text: str) -> list[int]:
    """Pids of live processes (other than this one) whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def wait_for(predicate, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Hang(BaseException):
    """Raised by :func:`deadline` in the main thread; a BaseException so no handler eats it."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail (instead of blocking the suite) if the block runs longer than ``seconds``."""

    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except Hang as err:
        pytest.fail(f"hang: {err}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("decode", "encode", "ffmpeg-stderr")]




def assert_nothing_left(target: Path) -> None:
    assert not target.exists(), f"{target} was written"
    assert parts(target.parent) == [], f"temporary files left: {parts(target.parent)}"


# --------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Small clips and a style image, made once for the module (read-only for the tests)."""
    d = tmp_path_factory.mktemp("media")
    return {
        "clip": make_clip(d / "clip.mp4"),  # 96x64, 50 frames, faststart
        "plain": make_clip(d / "plain.mp4", faststart=False),  # moov at the end
        "mkv": make_clip(d / "clip.mkv"),
        "ts": make_clip(d / "clip.ts"),
        "style": make_style(d / "style.png"),
    }


def video(*args):
    """Run ``microast-video video ARGS`` in-process on the CPU at a tiny size."""
    return runner.invoke(app, ["video", *map(str, args), "--device", "cpu", "--preset", "ultrafast", "-q"])


@pytest.fixture()
def job_model(model, monkeypatch):
    """Make run_video reuse the session's CPU model instead of loading one per job."""

    monkeypatch.setattr(_pipeline, "load_network", lambda network, **kw: model)
    return model


def tiny_job(media, out: Path, **kw) -> VideoJob:
    base = dict(input=media["clip"], styles=(media["style"],), output=out, device="cpu", height=32,
                encode=EncodeSettings(preset="ultrafast"), progress=False, weights=weights_dir())
    base.update(kw)
    return VideoJob(**base)


# --------------------------------------------------------------------------------------
# 1. Interrupts: Ctrl-C and SIGTERM on the real console script


def _cli_command() -> list[str]:
    script = Path(sys.executable).with_name("microast-video")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from microast_video.cli import main; main()"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    # ~1500 frames: at --height 120 the CPU needs well over 10 s, so the run is still going
    # when the signal arrives (it is sent as soon as ffmpeg is writing).
    return make_clip(tmp_path_factory.mktemp("long") / "long.mp4", size="320x180", seconds=60, audio=True)


@pytest.mark.parametrize(("signum", "code", "word"), [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated"),
])
def test_interrupt_kills_ffmpeg_and_leaves_nothing(signum, code, word, long_clip, media, weights_env, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "styled.mp4"
    before = sha256(long_clip)
    env = {**os.environ, **weights_env}
    proc = subprocess.Popen(
        [*_cli_command(), str(long_clip), "--style", str(media["style"]), "-o", str(target),
         "--height", "120", "--preset", "ultrafast", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        start_new_session=True,  # its own process group, as a shell job would have
        # Where Ctrl-C is ignored here (a background job of a script), the child would
        # inherit that; a terminal's foreground job has it at its default.
        preexec_fn=_default_sigint if signal.getsignal(signal.SIGINT) == signal.SIG_IGN else None,
    )
    try:
        assert wait_for(lambda: parts(out_dir) or proc.poll() is not None, 60), "no temp file"
        assert proc.poll() is None, proc.communicate()[1].decode()
        tmp_name = parts(out_dir)[0].name
        # ffmpeg is writing the temp file: the interrupt lands mid-encode.
        assert wait_for(lambda: procs_with(tmp_name) or proc.poll() is not None, 30), "ffmpeg never started"
        assert proc.poll() is None, proc.communicate()[1].decode()
        ffmpeg_pids = procs_with(tmp_name)
        assert ffmpeg_pids
        time.sleep(0.3)
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)  # Ctrl-C: the terminal signals the foreground group
        else:
            os.kill(proc.pid, signum)  # kill PID
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = err.decode("utf-8", "replace")
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and word in errors[0], stderr
    assert not target.exists()
    assert parts(out_dir) == [] and list(out_dir.iterdir()) == []
    assert wait_for(lambda: not procs_with(tmp_name), 5), f"ffmpeg still running: {procs_with(tmp_name)}"
    assert sha256(long_clip) == before


# --------------------------------------------------------------------------------------
# 2. Bad inputs and outputs: one line, the right exit code, nothing written


def test_missing_input(env, media, tmp_path):
    out = tmp_path / "o.mp4"
    result = video(tmp_path / "nope.mp4", "-s", media["style"], "-o", out)
    assert result.exit_code == 1
    one_line_error(result, "nope.mp4", "not found")
    assert_nothing_left(out)


def test_directory_as_input(env, media, tmp_path):
    folder = tmp_path / "folder.mp4"
    folder.mkdir()
    out = tmp_path / "o.mp4"
    result = video(folder, "-s", media["style"], "-o", out)
    assert result.exit_code == 1
    one_line_error(result, "folder.mp4", "not a file")
    assert_nothing_left(out)


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("empty.mp4", b"", "empty"),
    ("text.mp4", b"this is not a video\n" * 50, "not a media file"),
])
def test_not_a_video(env, media, tmp_path, name, content, needle):
    bad = tmp_path / name
    bad.write_bytes(content)
    out = tmp_path / "o.mp4"
    result = video(bad, "-s", media["style"], "-o", out)
    assert result.exit_code == 1
    one_line_error(result, name, needle)
    assert_nothing_left(out)


def test_audio_only_input(env, media, tmp_path):
    audio = tmp_path / "audio.m4a"
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=duration=1",
                    "-c:a", "aac", str(audio)], check=True, timeout=60)
    out = tmp_path / "o.mp4"
    result = video(audio, "-s", media["style"], "-o", out)
    assert result.exit_code == 1
    one_line_error(result, "audio.m4a", "no video stream")
    assert_nothing_left(out)


def test_truncated_faststart_mp4(env, media, tmp_path):
    """The moov lists 50 frames but the data stops at 60%: an error, not a short output."""
    data = media["clip"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "o.mp4"
    with deadline(60):
        result = video(cut, "-s", media["style"], "-o", out, "--height", "32")
    assert result.exit_code == 1
    one_line_error(result, "cut.mp4", "truncated")  # found by the decoder or by the frame count
    assert_nothing_left(out)


def test_non_faststart_mp4_cut_in_half(env, media, tmp_path):
    data = media["plain"].read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov (at the end) is gone
    out = tmp_path / "o.mp4"
    result = video(cut, "-s", media["style"], "-o", out, "--height", "32")
    assert result.exit_code == 1
    one_line_error(result, "half.mp4", "not a media file")
    assert_nothing_left(out)


@pytest.mark.parametrize("kind", ["mkv", "ts"])
@pytest.mark.parametrize("seed", [0, 1])
def test_corrupt_data_is_success_or_one_clean_error(env, media, tmp_path, kind, seed):
    """Random bytes over a block in the middle: either every decodable frame comes out, or
    one clean error line; never a traceback or a hang."""
    data = bytearray(media[kind].read_bytes())
    rng = random.Random(seed)
    at = len(data) // 2 + rng.randrange(-2000, 2000)
    data[at: at + 4096] = rng.randbytes(4096)
    bad = tmp_path / f"bad.{kind}"
    bad.write_bytes(bytes(data))
    out = tmp_path / "o.mp4"
    with deadline(90):
        result = video(bad, "-s", media["style"], "-o", out, "--height", "32")
    assert "Traceback" not in result.output and "Traceback" not in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 0:
        assert parts(tmp_path) == []
        assert count_frames(out) == count_frames(bad) > 0
    else:
        assert result.exit_code == 1, result.stderr
        one_line_error(result, f"bad.{kind}")
        assert_nothing_left(out)


@pytest.mark.parametrize(("kind", "needle"), [
    ("missing", "file not found"),
    ("folder", "style image"),
    ("text", "not a readable image"),
    ("truncated", "truncated or corrupt"),
    ("unreadable", "style.jpg"),
])
def test_bad_style_image(env, media, tmp_path, kind, needle):
    style = tmp_path / "style.jpg"
    if kind == "unreadable":
        cv2.imwrite(str(style), cv2.imread(str(media["style"])))
        style.chmod(0)
        if os.access(style, os.R_OK):
            style.chmod(0o644)
            pytest.skip("running as root: chmod 0 does not stop reads")
    elif kind == "folder":
        style.mkdir()
    elif kind == "text":
        style.write_text("not an image\n")
    elif kind == "truncated":
        ok = tmp_path / "ok.jpg"
        cv2.imwrite(str(ok), cv2.resize(cv2.imread(str(media["style"])), (200, 160)))
        style.write_bytes(ok.read_bytes()[:600])
    out = tmp_path / "o.mp4"
    result = video(media["clip"], "-s", style, "-o", out, "--height", "32")
    assert result.exit_code == 1
    one_line_error(result, "style.jpg", needle)
    assert_nothing_left(out)


def test_output_folder_missing(env, media, tmp_path):
    out = tmp_path / "missing" / "o.mp4"
    result = video(media["clip"], "-s", media["style"], "-o", out)
    assert result.exit_code == 1
    one_line_error(result, "missing", "does not exist")
    assert not out.parent.exists()


def test_output_parent_is_a_file(env, media, tmp_path):
    parent = tmp_path / "file.txt"
    parent.write_text("x")
    out = parent / "o.mp4"
    result = video(media["clip"], "-s", media["style"], "-o", out)
    assert result.exit_code == 1
    one_line_error(result, "file.txt")
    assert parent.read_text() == "x"


def test_output_folder_that_takes_no_files(env, media):
    """/proc accepts no new files, even from root: refused when the temp file is made."""
    out = Path("/proc/microast-test-output.mp4")
    if not Path("/proc").is_dir() or out.exists():
        pytest.skip("no /proc here")
    with deadline(60):
        result = video(media["clip"], "-s", media["style"], "-o", out, "--height", "32")
    assert result.exit_code == 1
    one_line_error(result, "/proc")
    assert not out.exists()


def test_output_folder_chmod_read_only(env, media, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod 0o555 does not stop writes (see the read-only mount test)")
        out = folder / "o.mp4"
        result = video(media["clip"], "-s", media["style"], "-o", out, "--height", "32")
        assert result.exit_code == 1
        one_line_error(result, "ro", "not writable")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A tmpfs mounted on ``folder`` (skips the test where mounting is not permitted)."""
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        pytest.skip(f"cannot mount a tmpfs here ({err})")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, timeout=20).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=20)


def test_output_folder_on_read_only_mount(env, media, tmp_path):
    """Read-only even for root: the check (or the early temp file) refuses it."""
    with tmpfs(tmp_path / "ro", "ro,size=64k") as folder:
        out = folder / "o.mp4"
        with deadline(60):
            result = video(media["clip"], "-s", media["style"], "-o", out, "--height", "32")
        assert result.exit_code == 1
        one_line_error(result, str(folder))
        assert list(folder.iterdir()) == []


def test_disk_full(env, media, tmp_path):
    clip = make_clip(tmp_path / "big.mp4", size="320x180", seconds=4)
    with tmpfs(tmp_path / "small", "size=100k") as folder:
        out = folder / "o.mp4"
        with deadline(90):
            result = video(clip, "-s", media["style"], "-o", out, "--height", "120")
        assert result.exit_code == 1, result.stderr
        line = one_line_error(result)
        assert "disk full" in line or "No space left" in line, line
        assert list(folder.iterdir()) == []
        assert procs_with(str(folder)) == []


def test_output_equal_to_input_is_refused(env, media, tmp_path):
    clip = tmp_path / "in.mp4"
    clip.write_bytes(media["clip"].read_bytes())
    before = sha256(clip)
    for args in ((), ("--overwrite",)):
        result = video(clip, "-s", media["style"], "-o", clip, *args)
        assert result.exit_code == 1
        one_line_error(result, "in.mp4", "input file")
        assert sha256(clip) == before
        assert parts(tmp_path) == []


def test_existing_output_needs_overwrite(env, media, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"precious")
    result = video(media["clip"], "-s", media["style"], "-o", out, "--height", "32")
    assert result.exit_code == 1
    one_line_error(result, "o.mp4", "--overwrite")
    assert out.read_bytes() == b"precious"

    with deadline(60):
        result = video(media["clip"], "-s", media["style"], "-o", out, "--height", "32", "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert count_frames(out) == 50
    assert parts(tmp_path) == []


def test_start_past_the_end(env, media, tmp_path):
    out = tmp_path / "o.mp4"
    result = video(media["clip"], "-s", media["style"], "-o", out, "--start", "5")
    assert result.exit_code == 2
    one_line_error(result, "--start", "past the end", "clip.mp4")
    assert_nothing_left(out)


@pytest.mark.parametrize(("option", "value"), [("--height", "3"), ("--batch-size", "0")])
def test_out_of_range_options(env, media, tmp_path, option, value):
    out = tmp_path / "o.mp4"
    result = video(media["clip"], "-s", media["style"], "-o", out, option, value)
    assert result.exit_code == 2
    assert option in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert_nothing_left(out)


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("batch_size", 0, "--batch-size"),
    ("height", 3, "--height"),
])
def test_library_rejects_bad_values(job_model, media, tmp_path, field, value, needle):
    out = tmp_path / "o.mp4"
    with pytest.raises(ValueError, match=needle):
        run_video(tiny_job(media, out, **{field: value}))
    assert_nothing_left(out)


@pytest.mark.parametrize(("args", "name", "needle"), [
    (("--codec", "prores"), "o.mp4", "cannot be stored in .mp4"),
    ((), "o.avi", "unsupported extension"),
])
def test_bad_codec_or_container(env, media, tmp_path, args, name, needle):
    out = tmp_path / name
    result = video(media["clip"], "-s", media["style"], "-o", out, *args)
    assert result.exit_code == 1
    one_line_error(result, name, needle)
    assert_nothing_left(out)


def test_clip_without_audio_encodes(env, media, tmp_path):
    """Regression: with no audio or subtitle stream the ffmpeg command still finds its source."""
    out = tmp_path / "o.mkv"
    with deadline(60):
        result = video(media["clip"], "-s", media["style"], "-o", out, "--height", "32")
    assert result.exit_code == 0, result.stderr
    assert count_frames(out) == 50


# --------------------------------------------------------------------------------------
# 3. A failing stage reaches the caller promptly; nothing hangs or stays behind


def _check_cleaned_up(out: Path) -> None:
    assert_nothing_left(out)
    tmp_name = f".{out.name}.{os.getpid()}.part"
    assert wait_for(lambda: not procs_with(tmp_name), 5), "ffmpeg still running"
    assert wait_for(lambda: not stage_threads(), 5), f"stage threads alive: {stage_threads()}"


def _assert_fails_promptly(job: VideoJob, error: type[BaseException], match: str) -> None:
    """The injected failure reaches the caller within 10 s, and nothing stays behind."""
    t = time.monotonic()
    with deadline(20), pytest.raises(error, match=match):
        run_video(job)
    assert time.monotonic() - t < 10
    _check_cleaned_up(job.output)


def test_decode_error_stops_the_job(job_model, media, tmp_path, monkeypatch):
    real = _pipeline.decode_frames

    def failing(*args, **kwargs):
        for i, frame in enumerate(real(*args, **kwargs)):
            if i == 12:
                raise InputError("input clip.mp4: corrupt video data (injected)")
            yield frame

    monkeypatch.setattr(_pipeline, "decode_frames", failing)
    _assert_fails_promptly(tiny_job(media, tmp_path / "o.mp4"), InputError, "injected")


def test_encode_error_stops_the_job(job_model, media, tmp_path, monkeypatch):
    real = FFmpegWriter.write

    def failing(self, frame):
        if frame.index == 9:
            raise OutputError("ffmpeg failed writing (injected)")
        real(self, frame)

    monkeypatch.setattr(FFmpegWriter, "write", failing)
    _assert_fails_promptly(tiny_job(media, tmp_path / "o.mp4"), OutputError, "injected")


def test_engine_error_stops_the_job(job_model, media, tmp_path, monkeypatch):
    real = Stylizer.__call__
    calls = itertools.count()

    def failing(self, content, *controls):
        if next(calls) == 3:
            raise RuntimeError("engine failed (injected)")
        return real(self, content, *controls)

    monkeypatch.setattr(Stylizer, "__call__", failing)
    _assert_fails_promptly(tiny_job(media, tmp_path / "o.mp4", batch_size=2), RuntimeError, "injected")


def test_ffmpeg_dying_mid_run_is_an_output_error(job_model, media, tmp_path, monkeypatch):
    """ffmpeg killed from outside: a one-line OutputError, not a hang on a dead pipe."""
    real = FFmpegWriter.write

    def write(self, frame):
        if frame.index == 10:
            os.kill(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        real(self, frame)

    monkeypatch.setattr(FFmpegWriter, "write", write)
    out = tmp_path / "o.mp4"
    with deadline(30), pytest.raises(OutputError, match="ffmpeg"):
        run_video(tiny_job(media, out))
    _check_cleaned_up(out)


def test_a_clean_run_leaves_only_the_target(job_model, media, tmp_path):
    out = tmp_path / "o.mp4"
    with deadline(60):
        report = run_video(tiny_job(media, out, batch_size=3))
    assert report["frames"] == 50 == count_frames(out)
    assert [p.name for p in tmp_path.iterdir()] == ["o.mp4"]
    assert wait_for(lambda: not stage_threads(), 5)


# --------------------------------------------------------------------------------------
# 4. Memory stays bounded: a slow stage holds the others back


@pytest.mark.parametrize(("slow", "temporal"), [("engine", "off"), ("encoder", "off"), ("encoder", "on")])
def test_frames_in_flight_stay_bounded(job_model, media, tmp_path, monkeypatch, slow, temporal):
    queue_frames, batch_size = 4, 2
    lock = threading.Lock()
    counts = {"decoded": 0, "encoded": 0, "most": 0}
    real_decode, real_write = _pipeline.decode_frames, FFmpegWriter.write

    def decode(*args, **kwargs):
        for frame in real_decode(*args, **kwargs):
            with lock:
                counts["decoded"] += 1
                counts["most"] = max(counts["most"], counts["decoded"] - counts["encoded"])
            yield frame

    def write(self, frame):
        if slow == "encoder":
            time.sleep(0.01)
        real_write(self, frame)
        with lock:
            counts["encoded"] += 1

    def stylize(self, content, *controls):
        if slow == "engine":
            time.sleep(0.02)
        return content.clone()

    monkeypatch.setattr(_pipeline, "decode_frames", decode)
    monkeypatch.setattr(FFmpegWriter, "write", write)
    monkeypatch.setattr(Stylizer, "__call__", stylize)
    out = tmp_path / "o.mp4"
    with deadline(60):
        report = run_video(tiny_job(media, out, batch_size=batch_size, queue_frames=queue_frames, temporal=temporal))
    assert report["frames"] == counts["decoded"] == counts["encoded"] == 50
    # Where a frame can be: held by the decode thread (1), the decoded queue, the batch in
    # the engine, the stylized queue, and the encode thread (1).
    queues = 3 if temporal == "on" else 2  # decode | engine | (temporal |) encode
    bound = queues * queue_frames + batch_size + queues
    assert counts["most"] <= bound, counts
    assert counts["most"] >= queue_frames, counts  # the slow stage really held the rest back


# --------------------------------------------------------------------------------------
# 5. The engine: batching and ordering


def _frames(n, shape=(4, 6, 3), dtype=np.uint8, start=0):
    return [Frame(i, 100 + 512 * i, 512 if i % 2 else None, Fraction(1, 12800), np.full(shape, i % 200, dtype))
            for i in range(start, start + n)]


def test_batched_sizes_and_order():
    frames = _frames(10)
    groups = list(batched(frames, 4))
    assert [len(g) for g in groups] == [4, 4, 2]
    assert [f.index for g in groups for f in g] == list(range(10))
    assert [len(g) for g in batched(frames, 1)] == [1] * 10
    assert [len(g) for g in batched(frames, 10)] == [10]
    assert [len(g) for g in batched(frames, 50)] == [10]
    assert list(batched([], 3)) == []


def test_batched_splits_on_shape_and_dtype_changes():
    a = _frames(3)
    b = _frames(2, shape=(6, 4, 3), start=3)
    c = _frames(3, dtype=np.uint16, start=5)
    d = _frames(1, start=8)
    groups = list(batched([*a, *b, *c, *d], 2))
    assert [[f.index for f in g] for g in groups] == [[0, 1], [2], [3, 4], [5, 6], [7], [8]]
    for g in groups:
        assert len({(f.data.shape, f.data.dtype) for f in g}) == 1


@pytest.mark.parametrize("size", [0, -1])
def test_batched_rejects_sizes_below_one(size):
    with pytest.raises(ValueError, match="batch size"):
        list(batched(_frames(3), size))


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_pipelined_bounds_in_flight_batches_and_keeps_order(depth):
    events: list[str] = []
    state = {"in_flight": 0, "most": 0}

    def submit(batch):
        state["in_flight"] += 1
        state["most"] = max(state["most"], state["in_flight"])
        events.append(f"S{batch[0].index}")
        return batch

    def collect(batch):
        state["in_flight"] -= 1
        events.append(f"C{batch[0].index}")
        return [f.with_data(f.data + 1) for f in batch]  # new objects, as the engine returns

    frames = _frames(14)
    out = list(pipelined(batched(frames, 3), submit, collect, depth))
    assert [f.index for f in out] == list(range(14))
    assert [f.pts for f in out] == [f.pts for f in frames]
    assert all((o.data == f.data + 1).all() for o, f in zip(out, frames))
    assert state["in_flight"] == 0
    assert state["most"] == min(depth + 1, 5)  # never more than depth + 1, and it is used
    # Collection lags submission by exactly ``depth`` batches until the input ends.
    starts = [0, 3, 6, 9, 12]
    expected = []
    for k, s in enumerate(starts):
        expected.append(f"S{s}")
        if k >= depth:
            expected.append(f"C{starts[k - depth]}")
    expected += [f"C{s}" for s in starts[max(0, len(starts) - depth):]]
    assert events == expected


def test_pipelined_is_lazy():
    submitted = []

    def submit(batch):
        submitted.append(batch[0].index)
        return batch

    it = pipelined(batched(_frames(30), 2), submit, list, 2)
    first = next(it)
    assert first.index == 0
    assert submitted == [0, 2, 4]  # depth + 1 batches, not the whole stream


@pytest.fixture(scope="module")
def stylizer(model):
    torch.manual_seed(0)
    signals = model.encode_style(torch.rand(1, 3, 32, 32))
    return Stylizer(model, signals)


@pytest.mark.parametrize(("batch_size", "n"), [(1, 5), (3, 7), (3, 9), (4, 7)])
def test_frame_engine_keeps_timing_and_order(stylizer, batch_size, n):
    rng = np.random.default_rng(batch_size * 10 + n)
    frames = [Frame(i, 3 + 1001 * i, None if i == n - 1 else 1001, Fraction(1, 30000),
                    rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)) for i in range(n)]
    out = list(FrameEngine(stylizer, batch_size).run(iter(frames)))
    assert [(f.index, f.pts, f.duration, f.time_base) for f in out] == \
        [(f.index, f.pts, f.duration, f.time_base) for f in frames]
    for o, f in zip(out, frames):
        assert o.data.shape == f.data.shape and o.data.dtype == np.uint8 and o.data.flags.c_contiguous
    # A frame's pixels do not depend on its batch mates: compare with one-by-one results.
    alone = list(FrameEngine(stylizer, 1).run(iter(frames)))
    for o, a in zip(out, alone):
        assert np.abs(o.data.astype(int) - a.data.astype(int)).max() <= 1
    assert np.abs(out[0].data.astype(int) - frames[0].data).mean() > 5  # restyled


def test_frame_engine_mixed_sizes_and_deep_frames(stylizer):
    rng = np.random.default_rng(5)
    frames = []
    for i, (shape, dtype, top) in enumerate([((20, 28, 3), np.uint8, 256)] * 3 + [((24, 16, 3), np.uint16, 65536)] * 4
                                            + [((20, 28, 3), np.uint8, 256)] * 2):
        frames.append(Frame(i, i, 1, Fraction(1, 25), rng.integers(0, top, shape).astype(dtype)))
    out = list(FrameEngine(stylizer, 3).run(iter(frames)))
    assert [f.index for f in out] == list(range(9))
    for o, f in zip(out, frames):
        assert o.data.shape == f.data.shape and o.data.dtype == f.data.dtype
    deep = np.stack([f.data for f in out[3:7]])
    assert deep.dtype == np.uint16 and deep.max() > 255  # real 16-bit values, not 8-bit ones
    # 16-bit output is the 8-bit result at finer steps.
    as8 = [f.with_data((f.data // 257).astype(np.uint8)) for f in frames[3:7]]
    out8 = list(FrameEngine(stylizer, 3).run(iter(as8)))
    for d, e in zip(out[3:7], out8):
        assert np.abs(d.data.astype(float) / 257 - e.data).mean() < 2


def test_frame_engine_rejects_batch_size_zero(stylizer):
    with pytest.raises(ValueError, match="batch size"):
        FrameEngine(stylizer, 0)


# --------------------------------------------------------------------------------------
# Interrupts at awkward moments (in-process, deterministic)


@pytest.mark.parametrize("where", ["progress bar", "writer", "sigterm handler", "spawn", "first decode"])
def test_interrupt_at_any_point_leaves_nothing(job_model, media, tmp_path, monkeypatch, where):
    """Ctrl-C can land anywhere, also right after the temp file was created."""

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "progress bar":
        monkeypatch.setattr(_pipeline, "tqdm", interrupt)
    elif where == "writer":
        monkeypatch.setattr(FFmpegWriter, "__init__", interrupt)
    elif where == "sigterm handler":
        monkeypatch.setattr(_pipeline, "terminate_on_signals", interrupt)
    elif where == "spawn":
        monkeypatch.setattr(_stages._Chain, "spawn", interrupt)
    else:
        monkeypatch.setattr(_pipeline, "decode_frames", interrupt)
    handler = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "o.mp4"
    with deadline(30), pytest.raises(KeyboardInterrupt):
        run_video(tiny_job(media, out))
    _check_cleaned_up(out)
    assert signal.getsignal(signal.SIGTERM) is handler


def test_sigterm_handler_is_restored(job_model, media, tmp_path):
    handler = signal.getsignal(signal.SIGTERM)
    with deadline(60):
        run_video(tiny_job(media, tmp_path / "o.mp4"))
    assert signal.getsignal(signal.SIGTERM) is handler


def test_failure_while_ffmpeg_is_starting_leaves_no_ffmpeg(job_model, media, tmp_path, monkeypatch):
    """The engine fails while the encode thread is still starting ffmpeg for the first
    frame: the abort must not miss the process that is about to exist."""
    from microast_video.media import encode as _encode

    real_popen = _encode.subprocess.Popen
    starting = threading.Event()
    started: list = []

    class SlowPopen(real_popen):
        def __init__(self, *args, **kwargs):
            starting.set()
            time.sleep(0.5)  # the main thread fails and aborts meanwhile
            super().__init__(*args, **kwargs)
            started.append(self)

    real_call = Stylizer.__call__
    calls = itertools.count()

    def stylize(self, content, *controls):
        if next(calls) == 1:
            assert starting.wait(10)
            raise RuntimeError("engine failed (injected)")
        return real_call(self, content, *controls)

    monkeypatch.setattr(_encode.subprocess, "Popen", SlowPopen)
    monkeypatch.setattr(Stylizer, "__call__", stylize)
    out = tmp_path / "o.mp4"
    try:
        with deadline(30), pytest.raises(RuntimeError, match="injected"):
            run_video(tiny_job(media, out, batch_size=2))
        time.sleep(0.6)  # let a leaked ffmpeg, if any, start writing
        _check_cleaned_up(out)
        assert all(p.poll() is not None for p in started), "ffmpeg left running"
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()
