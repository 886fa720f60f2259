"""--strength: from the input itself (0) to today's full style (1, bit for bit), smoothly, on the
video, image, preview and batch commands and in keyframes; --alpha below 0.99 gets a note."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest
from helpers import make_clip, one_line_error, run_cli

from microast_video import decode_frames, probe
from microast_video.media.procedural import painting
from microast_video.style.controls import with_strength


def rgb_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("strength")
    make_clip(d / "clip.mp4", size="96x64", seconds=0.4)
    cv2.imwrite(str(d / "art.png"), painting(96, seed=4))
    return d


def render(media, out, *args) -> list[np.ndarray]:
    run_cli("video", media / "clip.mp4", "--style", media / "art.png", "--codec", "ffv1", "-o", out, "--overwrite",
            "-q", *args, expect=0)
    return rgb_frames(out)


def test_the_mix_is_exact_at_both_ends_and_never_clips_what_neither_side_clips():
    rng = np.random.default_rng(0)
    styled, source = (rng.integers(1, 255, (20, 30, 3), np.uint8) for _ in range(2))
    assert with_strength(styled, source, 1.0) is styled and np.array_equal(with_strength(styled, source, 0.0), source)
    half = with_strength(styled, source, 0.5).astype(int)
    assert np.abs(half - (styled.astype(int) + source) / 2).max() <= 0.5 + 1e-9
    assert not ((half == 0) | (half == 255)).any()
    deep = with_strength(styled.astype(np.uint16) * 257, source.astype(np.uint16) * 257, 0.25)
    assert deep.dtype == np.uint16 and abs(int(deep[0, 0, 0]) - (0.25 * styled[0, 0, 0] + 0.75 * source[0, 0, 0]) * 257) <= 1


def test_strength_moves_the_video_from_its_source_to_the_full_style(media, tmp_path):
    full = render(media, tmp_path / "full.mkv")
    assert all(np.array_equal(a, b) for a, b in zip(full, render(media, tmp_path / "one.mkv", "--strength", "1")))
    none = render(media, tmp_path / "none.mkv", "--strength", "0")
    plain = [f.data for f in decode_frames(probe(media / "clip.mp4"))]  # as the tool decodes it
    assert len(none) == len(plain) and all(np.array_equal(a, b) for a, b in zip(none, plain))  # the input itself
    distances = [np.mean([np.abs(a - b).mean() for a, b in zip(render(media, tmp_path / f"{s}.mkv", "--strength", s),
                                                                 none)])
                 for s in ("0.25", "0.5", "0.75")]
    whole = np.mean([np.abs(a - b).mean() for a, b in zip(full, none)])
    assert distances == sorted(distances) and all(abs(d - f * whole) < 0.05 * whole
                                                  for d, f in zip(distances, (0.25, 0.5, 0.75)))


def test_strength_keyframes_fade_the_look_in(media, tmp_path):
    ramp = render(media, tmp_path / "ramp.mkv", "--strength-at", "0:0", "--strength-at", "0.36:1")
    none, full = render(media, tmp_path / "none.mkv", "--strength", "0"), render(media, tmp_path / "full.mkv")
    assert np.array_equal(ramp[0], none[0]) and np.abs(ramp[-1] - full[-1]).mean() < 0.5
    keys = tmp_path / "keys.toml"
    keys.write_text("strength = [[0, 0.0], [0.36, 1.0]]\n")
    assert all(np.array_equal(a, b) for a, b in zip(ramp, render(media, tmp_path / "file.mkv", "--keyframes", keys)))


@pytest.mark.parametrize("args", [["--strength-at", "0:-0.1"], ["--strength-at", "0:x"], ["--strength-at", "1"]])
def test_a_bad_strength_is_one_line(media, tmp_path, args):
    result = run_cli("video", media / "clip.mp4", "--style", media / "art.png", "-o", tmp_path / "o.mp4", *args)
    one_line_error(result, "strength")
    assert not (tmp_path / "o.mp4").exists()


def test_a_strength_out_of_range_is_a_usage_error(media, tmp_path):
    result = run_cli("video", media / "clip.mp4", "--style", media / "art.png", "-o", tmp_path / "o.mp4",
                     "--strength", "1.5")
    assert result.exit_code == 2 and "'--strength': must be between 0 and 1" in " ".join(result.output.split())


def test_a_keyframes_file_with_a_bad_strength_is_one_line(media, tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text("strength = [[0, 2.0]]\n")
    result = run_cli("video", media / "clip.mp4", "--keyframes", keys, "-o", tmp_path / "o.mp4")
    one_line_error(result, "strength[0]")


def test_alpha_below_0_99_gets_one_note_and_strength_none(media, tmp_path):
    report = tmp_path / "r.json"
    render(media, tmp_path / "a.mkv", "--alpha", "0.95", "--report", report)
    notes = json.loads(report.read_text())["notes"]
    assert sum("--alpha 0.95" in n and "--strength" in n for n in notes) == 1
    render(media, tmp_path / "b.mkv", "--strength", "0.5", "--report", report)
    assert not any("--alpha" in n for n in json.loads(report.read_text())["notes"])


def test_the_image_command_takes_strength(media, tmp_path):
    content = tmp_path / "content.png"
    cv2.imwrite(str(content), painting(80, seed=8))
    run_cli("image", content, "--style", media / "art.png", "--strength", "0", "-o", tmp_path / "zero.png", "-q",
            expect=0)
    assert np.abs(cv2.imread(str(tmp_path / "zero.png")).astype(int) - cv2.imread(str(content))).max() <= 1
    run_cli("image", content, "--style", media / "art.png", "--strength", "0.5", "-o", tmp_path / "half.png", "-q",
            expect=0)
    run_cli("image", content, "--style", media / "art.png", "-o", tmp_path / "full.png", "-q", expect=0)
    half, full, src = (cv2.imread(str(tmp_path / n)).astype(int) for n in ("half.png", "full.png", "content.png"))
    assert np.abs(half - (full + src) / 2).max() <= 1


def test_the_preview_compares_strengths_one_column_each(media, tmp_path):
    out = tmp_path / "p.png"
    result = run_cli("preview", media / "clip.mp4", "--style", media / "art.png", "--strength", "0.5", "--strength",
                     "1", "--frames", "2", "-o", out, expect=0)
    assert "2 look(s)" in result.stderr
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[1] > 3 * 96  # input + two looks


def test_a_batch_look_takes_strength_and_its_keyframes(media, tmp_path):
    manifest = tmp_path / "jobs.toml"
    manifest.write_text(f"""output = "{{stem}}_{{look}}.mkv"
output_dir = "{tmp_path / 'out'}"
[defaults]
codec = "ffv1"
[[inputs]]
path = "{media / 'clip.mp4'}"
[looks.half]
style = "{media / 'art.png'}"
strength = 0.5
[looks.fade]
style = "{media / 'art.png'}"
strength_keyframes = [[0, 0.0], [0.36, 1.0]]
""")
    run_cli("batch", manifest, "-q", expect=0)
    half = rgb_frames(tmp_path / "out" / "clip_half.mkv")
    want = render(media, tmp_path / "half.mkv", "--strength", "0.5")
    assert all(np.array_equal(a, b) for a, b in zip(half, want))
    fade = rgb_frames(tmp_path / "out" / "clip_fade.mkv")
    assert np.array_equal(fade[0], render(media, tmp_path / "none.mkv", "--strength", "0")[0])
    manifest.write_text(manifest.read_text().replace("strength = 0.5", "strength = 5"))
    bad = run_cli("batch", manifest, "--dry-run")
    assert bad.exit_code != 0 and "looks.half" in bad.stderr and "strength" in bad.stderr
