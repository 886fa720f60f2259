"""Timecode carried from the source and moved by --start, so a conform lands on the same frames."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from helpers import lavfi_clip, make_style, run_cli

from microast_video.media.timecode import frames_before, from_frames, moved, to_frames

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(("tc", "rate", "frames", "want"), [
    ("01:00:10:00", Fraction(25), 10, "01:00:10:10"),
    ("00:59:59;28", NTSC, 2, "01:00:00;00"),      # a tenth minute: no frame number dropped
    ("00:00:59;29", NTSC, 1, "00:01:00;02"),      # other minutes skip ;00 and ;01
    ("23:59:59:24", Fraction(25), 1, "00:00:00:00"),
    ("00:00:00:00", Fraction(24000, 1001), 24, "00:00:01:00"),
])
def test_a_timecode_moves_by_whole_frames(tc, rate, frames, want):
    assert moved(tc, rate, frames) == want


def test_drop_frame_counts_round_trip_over_an_hour():
    for n in range(0, 30 * 3600, 13):
        assert to_frames(from_frames(n, NTSC, True), NTSC) == (n, True)


def test_frames_before_a_start_are_whole_frames():
    assert frames_before(0.4, Fraction(25)) == 10 and frames_before(0.0, Fraction(25)) == 0
    assert frames_before(0.4, NTSC) == 12  # 11.99 frames: the 13th frame is the first at or after 0.4 s


@pytest.mark.parametrize("bad", ["1:00", "01:00:61:00", "01:00:00:25", "ab:cd:ef:gh"])
def test_a_bad_timecode_is_refused(bad):
    with pytest.raises(ValueError):
        to_frames(bad, Fraction(25))


@pytest.mark.parametrize(("rate", "source_tc", "start", "want", "ext"), [
    ("25", "01:00:10:00", "0.4", "01:00:10:10", ".mov"),
    ("30000/1001", "00:59:59;28", "0.4", "01:00:00;10", ".mp4"),
    ("25", "01:00:10:00", "0.4", "01:00:10:10", ".mkv"),
])
def test_the_output_timecode_is_the_sources_moved_by_start(tmp_path, weights_env, monkeypatch, rate, source_tc,
                                                            start, want, ext):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    src = lavfi_clip(tmp_path / f"src{ext if ext != '.mkv' else '.mov'}", f"testsrc2=size=96x64:rate={rate}:duration=1",
                     out=("-timecode", source_tc, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"))
    out = tmp_path / f"out{ext}"
    run_cli("video", src, "--style", make_style(tmp_path / "s.png"), "--start", start, "-o", out, "-q", expect=0)
    with av.open(str(out)) as c:
        tags = [dict(c.metadata), *(dict(s.metadata) for s in c.streams)]
    found = {t.get("timecode", t.get("TIMECODE")) for t in tags} - {None}
    assert found == {want}
