"""An editorial cut (OpenTimelineIO) in: each clip's source range a job; out: the same cut
relinked to the stylized media."""

from __future__ import annotations

import pytest
from helpers import lavfi_clip, make_style, one_line_error, run_cli

from microast_video import probe

otio = pytest.importorskip("opentimelineio", reason="the post extra (CI installs it)")


def cut(tmp_path, clips):
    """A timeline of (media, start frame, frames) at 25 fps; media referenced as file URLs."""
    timeline = otio.schema.Timeline(name="cut")
    track = otio.schema.Track()
    timeline.tracks.append(track)
    for i, (media, start, frames) in enumerate(clips):
        rate = 25
        ref = otio.schema.ExternalReference(target_url=media.resolve().as_uri(), available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(50, rate)))
        track.append(otio.schema.Clip(name=f"c{i}", media_reference=ref, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(frames, rate))))
    path = tmp_path / "cut.otio"
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_a_cut_comes_back_relinked_to_the_stylized_media(tmp_path, weights_env, monkeypatch):
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    a = lavfi_clip(tmp_path / "a.mp4", "testsrc2=size=96x64:rate=25:duration=2")
    b = lavfi_clip(tmp_path / "b.mp4", "testsrc=size=96x64:rate=25:duration=2")
    path = cut(tmp_path, [(a, 10, 8), (b, 0, 6), (a, 30, 5)])  # the same media twice, two ranges
    planned = run_cli("batch", path, "--style", make_style(tmp_path / "look.png"), "--dry-run", "-q")
    assert planned.exit_code == 0 and not (tmp_path / "cut-stylized").exists()  # a dry run writes nothing
    result = run_cli("batch", path, "--style", make_style(tmp_path / "look.png"), "-q")
    assert result.exit_code == 0, result.stderr
    relinked = otio.adapters.read_from_file(str(tmp_path / "cut-stylized" / "cut_look.otio"))
    clips = list(relinked.find_clips())
    assert [c.source_range.duration.value for c in clips] == [8, 6, 5]
    for clip in clips:
        media = clip.media_reference.target_url.removeprefix("file://")
        assert "cut-stylized" in media and probe(media).frames == clip.source_range.duration.value
        assert clip.source_range.start_time.value == 0


def test_a_timeline_needs_a_look_and_a_readable_file(tmp_path):
    a = lavfi_clip(tmp_path / "a.mp4", "testsrc2=size=96x64:rate=25:duration=1")
    one_line_error(run_cli("batch", cut(tmp_path, [(a, 0, 5)])), "--style")
    (tmp_path / "bad.otio").write_text("{ not json")
    one_line_error(run_cli("batch", tmp_path / "bad.otio", "--style", make_style(tmp_path / "s.png")),
                   "OpenTimelineIO cannot read it")


@pytest.mark.parametrize("fmt, adapter", [(".edl", "cmx_3600"), (".xml", "fcp_xml")])
def test_an_edl_and_an_fcp_xml_come_back_in_their_own_format(tmp_path, weights_env, monkeypatch, fmt, adapter):
    """Through OTIO's adapter plugins: the EDL's source timecodes count from the media's own
    timecode (01:00:00:00 here) at the media's rate (an EDL states none), and the relinked cut
    points at stylized media whose timecode is the clip's first frame's."""
    pytest.importorskip(f"otio_{'cmx3600' if adapter == 'cmx_3600' else 'fcp'}_adapter", reason="the post extra")
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    a = lavfi_clip(tmp_path / "a.mov", "testsrc2=size=96x64:rate=25:duration=2",
                   out=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-timecode", "01:00:00:00"))
    rate, origin = 25, 25 * 3600
    timeline = otio.schema.Timeline(name="cut")
    timeline.tracks.append(otio.schema.Track())
    for i, (start, frames) in enumerate([(origin + 10, 8), (origin + 30, 5)]):
        ref = otio.schema.ExternalReference(target_url=a.resolve().as_uri(), available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(origin, rate), otio.opentime.RationalTime(50, rate)))
        timeline.tracks[0].append(otio.schema.Clip(name=f"c{i}", media_reference=ref, source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, rate), otio.opentime.RationalTime(frames, rate))))
    path = tmp_path / f"cut{fmt}"
    path.write_text(otio.adapters.write_to_string(timeline, adapter))
    result = run_cli("batch", path, "--style", make_style(tmp_path / "look.png"), "-q")
    assert result.exit_code == 0, result.stderr
    back = tmp_path / "cut-stylized" / f"cut_look{fmt}"
    clips = list(otio.adapters.read_from_file(str(back), **({"rate": rate} if fmt == ".edl" else {})).find_clips())
    assert [c.source_range.duration.value for c in clips] == [8, 5]
    for clip, first in zip(clips, (origin + 10, origin + 30), strict=True):
        media = probe(clip.media_reference.target_url.removeprefix("file://"))
        assert "cut-stylized" in str(media.path) and media.frames == clip.source_range.duration.value
        assert clip.source_range.start_time.value == first  # the clip's own first frame, by timecode
        assert media.timecode == otio.opentime.to_timecode(otio.opentime.RationalTime(first, rate), rate)


def test_a_cut_with_an_image_sequence_clip(tmp_path, weights_env, monkeypatch):
    """An OTIO ImageSequenceReference (a VFX plate in the cut): its frames at its own rate, the
    clip's range of them, relinked to a stylized movie."""
    monkeypatch.setenv("MICROAST_VIDEO_WEIGHTS", weights_env["MICROAST_VIDEO_WEIGHTS"])
    import cv2
    import numpy as np

    (tmp_path / "plate").mkdir()
    for n in range(1001, 1013):
        cv2.imwrite(str(tmp_path / "plate" / f"sh.{n}.png"), np.full((48, 64, 3), (n - 1000) * 20, np.uint8))
    rate = 25
    ref = otio.schema.ImageSequenceReference(
        target_url_base=(tmp_path / "plate").resolve().as_uri() + "/", name_prefix="sh.", name_suffix=".png",
        start_frame=1001, frame_zero_padding=4, rate=rate,
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(1001, rate), otio.opentime.RationalTime(12, rate)))
    timeline = otio.schema.Timeline(name="vfx")
    timeline.tracks.append(otio.schema.Track())
    timeline.tracks[0].append(otio.schema.Clip(name="sh", media_reference=ref, source_range=otio.opentime.TimeRange(
        otio.opentime.RationalTime(1003, rate), otio.opentime.RationalTime(5, rate))))
    otio.adapters.write_to_file(timeline, str(tmp_path / "vfx.otio"))
    result = run_cli("batch", tmp_path / "vfx.otio", "--style", make_style(tmp_path / "look.png"), "-q")
    assert result.exit_code == 0, result.stderr
    [clip] = otio.adapters.read_from_file(str(tmp_path / "vfx-stylized" / "vfx_look.otio")).find_clips()
    movie = probe(clip.media_reference.target_url.removeprefix("file://"))
    assert movie.frames == 5 and movie.frame_rate == rate and clip.source_range.duration.value == 5
