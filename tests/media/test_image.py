"""Tests for microast_video.media.image (all test images are generated here)."""

from __future__ import annotations

import os
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch

from microast_video import load_content_image, load_style_image, read_image, write_image
from microast_video.core.errors import InputError, OutputError

# ----------------------------------------------------------------------------- helpers


def _png_chunk(ctype: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(ctype + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc)


def _handmade_png(
    width: int, height: int, color_type: int, rows: list[bytes], extra: bytes = b""
) -> bytes:
    """A minimal 8-bit PNG (filter type 0 on every row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _encode(ext: str, bgr: np.ndarray, params: list[int] | None = None) -> bytes:
    ok, buf = cv2.imencode(ext, bgr, params or [])
    assert ok
    return buf.tobytes()


def _block_pattern(h: int = 64, w: int = 96, block: int = 16, seed: int = 0) -> np.ndarray:
    """Asymmetric RGB uint8 image of flat 16x16 blocks (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(0, 2, size=(h // block, w // block, 3)).astype(np.uint8) * 255
    return np.kron(cells, np.ones((block, block, 1), dtype=np.uint8))


def _exif_app1(orientation: int, big_endian: bool = False) -> bytes:
    """APP1 segment holding an EXIF TIFF structure with IFD0 -> Orientation."""
    o = ">" if big_endian else "<"
    header = (b"MM" if big_endian else b"II") + struct.pack(o + "HI", 42, 8)
    entries = [
        struct.pack(o + "HHI", 0x010F, 2, 4) + b"Cam\x00",  # Make, inline ASCII
        struct.pack(o + "HHIHH", 0x0112, 3, 1, orientation, 0),  # Orientation SHORT
    ]
    ifd = struct.pack(o + "H", len(entries)) + b"".join(entries) + struct.pack(o + "I", 0)
    payload = b"Exif\x00\x00" + header + ifd
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _jpeg_with_orientation(rgb: np.ndarray, orientation: int, big_endian: bool = False) -> bytes:
    jpeg = _encode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + _exif_app1(orientation, big_endian) + jpeg[2:]


# Display transform for each EXIF orientation value.
_ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: np.rot90(a, 2),
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


# ----------------------------------------------------------------------------- reading


def test_png8_round_trip_exact(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    path = tmp_path / "a.png"
    path.write_bytes(_encode(".png", rgb[:, :, ::-1]))
    out = read_image(path)
    assert out.shape == (17, 23, 3) and out.dtype == np.float32
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), rgb)


def test_png16_round_trip_keeps_16_bit_precision(tmp_path):
    rng = np.random.default_rng(2)
    rgb16 = rng.integers(0, 65536, size=(8, 9, 3), dtype=np.uint16)
    rgb16[0, 0] = (1000, 1100, 1200)  # differ by < 1/255
    path = tmp_path / "a16.png"
    path.write_bytes(_encode(".png", rgb16[:, :, ::-1]))
    out = read_image(path)
    assert np.abs(out.astype(np.float64) - rgb16 / 65535.0).max() <= 1 / 65535
    r, g, b = out[0, 0]
    assert r < g < b
    assert abs(g - r - 100 / 65535) < 1e-6


def test_grayscale_png_gives_three_equal_channels(tmp_path):
    gray = np.arange(0, 240, 2, dtype=np.uint8).reshape(10, 12)
    path = tmp_path / "g.png"
    path.write_bytes(_encode(".png", gray))
    out = read_image(path)
    assert out.shape == (10, 12, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_allclose(out[..., 0], gray / 255.0, atol=1e-6)


def test_rgba_png_composited_over_white(tmp_path):
    bgra = np.zeros((1, 3, 4), dtype=np.uint8)
    bgra[..., :3] = (200, 100, 50)  # BGR -> RGB (50, 100, 200)
    bgra[0, :, 3] = (0, 255, 128)
    path = tmp_path / "rgba.png"
    path.write_bytes(_encode(".png", bgra))
    out = read_image(path)
    colour = np.array([50, 100, 200]) / 255.0
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], colour, atol=1e-6)
    a = 128 / 255.0
    np.testing.assert_allclose(out[0, 2], colour * a + (1 - a), atol=1e-6)


def test_gray_alpha_png(tmp_path):
    # three pixels: gray 100 fully transparent, gray 200 opaque, gray 0 half transparent
    data = _handmade_png(3, 1, 4, [bytes([100, 0, 200, 255, 0, 128])])
    path = tmp_path / "ga.png"
    path.write_bytes(data)
    out = read_image(path)
    assert out.shape == (1, 3, 3)
    np.testing.assert_allclose(out[0, 0], [1.0] * 3, atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [200 / 255.0] * 3, atol=1e-6)
    np.testing.assert_allclose(out[0, 2], [1 - 128 / 255.0] * 3, atol=1e-6)


def test_palette_png(tmp_path):
    palette = [(255, 0, 0), (0, 128, 255), (10, 20, 30)]
    plte = _png_chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
    rows = [bytes([0, 1, 2, 1]), bytes([2, 2, 0, 1])]
    path = tmp_path / "pal.png"
    path.write_bytes(_handmade_png(4, 2, 3, rows, plte))
    out = read_image(path)
    expected = np.array([[palette[i] for i in row] for row in rows]) / 255.0
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_palette_png_with_transparency(tmp_path):
    plte = _png_chunk(b"PLTE", bytes([255, 0, 0, 0, 0, 255]))
    extra = plte + _png_chunk(b"tRNS", bytes([0, 255]))
    path = tmp_path / "palt.png"
    path.write_bytes(_handmade_png(2, 1, 3, [bytes([0, 1])], extra))
    out = read_image(path)
    np.testing.assert_allclose(out[0], [[1, 1, 1], [0, 0, 1]], atol=1e-6)


def test_webp_lossless_read(tmp_path):
    rgb = _block_pattern(32, 48)
    path = tmp_path / "a.webp"
    path.write_bytes(_encode(".webp", rgb[:, :, ::-1], [cv2.IMWRITE_WEBP_QUALITY, 101]))
    out = read_image(path)
    np.testing.assert_allclose(out, rgb / 255.0, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_read(tmp_path, dtype):
    rng = np.random.default_rng(3)
    unit = rng.random((6, 7, 3))
    if dtype == np.uint8:
        stored, expected = np.rint(unit * 255).astype(np.uint8), np.rint(unit * 255) / 255
    elif dtype == np.uint16:
        stored, expected = np.rint(unit * 65535).astype(np.uint16), np.rint(unit * 65535) / 65535
    else:
        stored = (unit * 1.4 - 0.2).astype(np.float32)  # out of range -> clipped
        expected = np.clip(stored, 0, 1)
    path = tmp_path / "a.tif"
    path.write_bytes(_encode(".tiff", np.ascontiguousarray(stored[:, :, ::-1])))
    out = read_image(path)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation(tmp_path, orientation):
    rgb = _block_pattern()
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(_jpeg_with_orientation(rgb, orientation, big_endian=orientation % 2 == 0))
    out = read_image(path)
    base = rgb / 255.0
    expected = _ORIENT[orientation](base)
    assert out.shape == expected.shape
    assert np.abs(out - expected).mean() < 0.05
    for other, fn in _ORIENT.items():
        wrong = fn(base)
        if other == orientation or wrong.shape != out.shape:
            continue
        assert np.abs(out - wrong).mean() > 0.2, other


def test_non_ascii_path(tmp_path):
    rgb = _block_pattern(16, 16)
    path = tmp_path / "stílus_画像.png"
    path.write_bytes(_encode(".png", rgb[:, :, ::-1]))
    np.testing.assert_allclose(read_image(str(path)), rgb / 255.0, atol=1e-6)


def test_jpeg_with_trailing_padding_or_data_is_accepted(tmp_path):
    jpeg = _encode(".jpg", _block_pattern())
    for i, tail in enumerate([b"\x00" * 10 + b"\n", b"TRAILER-DATA" * 5]):
        path = tmp_path / f"tail{i}.jpg"
        path.write_bytes(jpeg + tail)
        assert read_image(path).shape == (64, 96, 3)


# ----------------------------------------------------------------------------- bad input


def _noise_jpeg() -> bytes:
    rng = np.random.default_rng(4)
    return _encode(".jpg", rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        ("missing.png", None, "file not found"),
        ("folder.png", "dir", "directory"),
        ("empty.png", b"", "file is empty (0 bytes)"),
        ("text.jpg", b"this is not an image at all\n" * 3, "not a readable image"),
        ("trunc.jpg", "half-jpeg", "truncated or corrupt"),
        ("trunc.png", "half-png", "truncated or corrupt"),
    ],
)
def test_bad_inputs_raise_input_error(tmp_path, name, make, fragment):
    path = tmp_path / name
    if make == "dir":
        path.mkdir()
    elif make == "half-jpeg":
        data = _noise_jpeg()
        path.write_bytes(data[: len(data) // 2])
    elif make == "half-png":
        data = _encode(".png", _block_pattern())
        path.write_bytes(data[: len(data) // 2])
    elif isinstance(make, bytes):
        path.write_bytes(make)
    with pytest.raises(InputError) as info:
        read_image(path, what="style image")
    message = str(info.value)
    assert name in message
    assert message.startswith("style image ")
    assert fragment in message
    assert "\n" not in message


def test_png_missing_iend_is_truncated(tmp_path):
    data = _encode(".png", _block_pattern())
    path = tmp_path / "noiend.png"
    path.write_bytes(data[:-12])  # drop exactly the IEND chunk
    with pytest.raises(InputError, match="truncated"):
        read_image(path)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything"
)
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(_encode(".png", _block_pattern(16, 16)))
    path.chmod(0)
    try:
        with pytest.raises(InputError, match="secret.png: permission denied"):
            read_image(path)
    finally:
        path.chmod(0o644)


# ----------------------------------------------------------------------------- loaders


def _write_png(path, h, w):
    rng = np.random.default_rng(5)
    path.write_bytes(_encode(".png", rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)))
    return path


def test_load_style_image_resizes_longest_side(tmp_path):
    path = _write_png(tmp_path / "s.png", 100, 200)
    small = load_style_image(path, 64)
    assert small.shape == (1, 3, 32, 64) and small.dtype == torch.float32
    assert small.is_contiguous()
    big = load_style_image(path, 300)
    assert big.shape == (1, 3, 150, 300)
    assert float(big.min()) >= 0.0 and float(big.max()) <= 1.0
    tall = load_style_image(_write_png(tmp_path / "t.png", 90, 30), 45)
    assert tall.shape == (1, 3, 45, 15)
    same = load_style_image(path)
    assert same.shape == (1, 3, 100, 200)


def test_load_style_image_default_cap(tmp_path):
    path = _write_png(tmp_path / "wide.png", 100, 3000)
    out = load_style_image(path)
    assert out.shape == (1, 3, 68, 2048)
    assert load_style_image(path, max_size=1000).shape == (1, 3, 33, 1000)


def test_load_style_image_rejects_tiny_size(tmp_path):
    path = _write_png(tmp_path / "s.png", 20, 20)
    with pytest.raises(ValueError, match=r"style_size must be in 16\.\.4096, got style_size = 4"):
        load_style_image(path, 4)
    with pytest.raises(ValueError, match="style_size = 100000"):  # would allocate ~95 GB
        load_style_image(path, 100_000)


def test_load_style_image_error_names_role(tmp_path):
    with pytest.raises(InputError, match="^style image .*art.jpg: file not found$"):
        load_style_image(tmp_path / "art.jpg")


def test_load_content_image(tmp_path):
    path = _write_png(tmp_path / "c.png", 37, 41)
    out = load_content_image(path)
    assert out.shape == (1, 3, 37, 41) and out.dtype == torch.float32 and out.is_contiguous()
    with pytest.raises(InputError, match="^content image "):
        load_content_image(tmp_path / "nope.png")


# ----------------------------------------------------------------------------- writing


def test_write_png8_exact_and_clamped(tmp_path):
    rng = np.random.default_rng(6)
    levels = rng.integers(0, 256, size=(12, 13, 3))
    img = (levels / 255.0).astype(np.float32)
    img[0, 0] = (-0.5, 1.7, 0.5)
    path = tmp_path / "out.png"
    write_image(path, img)
    back = read_image(path)
    expected = levels / 255.0
    expected[0, 0] = (0.0, 1.0, 128 / 255.0)  # 0.5 * 255 = 127.5 rounds to 128
    np.testing.assert_allclose(back, expected, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_write_png16_from_tensor(tmp_path):
    rng = np.random.default_rng(7)
    t = torch.from_numpy(rng.random((1, 3, 9, 11)).astype(np.float32))
    t[0, :, 0, 0] = torch.tensor([1000, 1100, 1200]) / 65535.0
    path = tmp_path / "out16.png"
    write_image(path, t, bit_depth=16)
    back = read_image(path)
    expected = t[0].permute(1, 2, 0).numpy()
    assert np.abs(back - expected).max() <= 0.6 / 65535 + 1e-7
    r, g, b = back[0, 0]
    assert r < g < b
    # (3, H, W) tensors work too
    write_image(tmp_path / "chw.png", t[0])
    assert read_image(tmp_path / "chw.png").shape == (9, 11, 3)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp", ".tif", ".tiff"])
def test_write_other_formats(tmp_path, ext):
    rgb = _block_pattern() / 255.0
    path = tmp_path / f"out{ext}"
    write_image(path, rgb)
    back = read_image(path)
    assert back.shape == rgb.shape
    assert np.abs(back - rgb).mean() < 0.03


def test_write_tiff16(tmp_path):
    rng = np.random.default_rng(8)
    img = rng.random((5, 6, 3)).astype(np.float32)
    write_image(tmp_path / "o.tif", img, bit_depth=16)
    assert np.abs(read_image(tmp_path / "o.tif") - img).max() <= 0.6 / 65535 + 1e-7


def test_write_overwrites_existing_file(tmp_path):
    path = tmp_path / "o.png"
    write_image(path, np.zeros((4, 4, 3)))
    write_image(path, np.ones((4, 4, 3)))
    np.testing.assert_array_equal(read_image(path), np.ones((4, 4, 3)))
    assert os.stat(path).st_mode & 0o600 == 0o600


def test_write_into_missing_folder(tmp_path):
    path = tmp_path / "no" / "such" / "out.png"
    with pytest.raises(OutputError, match="out.png"):
        write_image(path, np.zeros((4, 4, 3)))
    assert list(tmp_path.iterdir()) == []


def test_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OutputError, match="out.png: disk full"):
        write_image(tmp_path / "out.png", np.zeros((4, 4, 3)))
    assert list(tmp_path.iterdir()) == []


def test_write_unknown_extension(tmp_path):
    with pytest.raises(OutputError, match="out.bmpx"):
        write_image(tmp_path / "out.bmpx", np.zeros((4, 4, 3)))
    with pytest.raises(OutputError):
        write_image(tmp_path / "noext", np.zeros((4, 4, 3)))


def test_write_bad_bit_depth(tmp_path):
    with pytest.raises(ValueError):
        write_image(tmp_path / "out.jpg", np.zeros((4, 4, 3)), bit_depth=16)
    with pytest.raises(ValueError):
        write_image(tmp_path / "out.webp", np.zeros((4, 4, 3)), bit_depth=16)
    with pytest.raises(ValueError):
        write_image(tmp_path / "out.png", np.zeros((4, 4, 3)), bit_depth=12)
    with pytest.raises(ValueError):
        write_image(tmp_path / "out.png", np.zeros((4, 4)))
    assert list(tmp_path.iterdir()) == []
