"""Reading still images with OpenCV and numpy (writing: :mod:`microast_video._image_write`).

Images inside the package are RGB, float32, values in [0, 1]:

* :func:`read_image` -> ``(H, W, 3)`` numpy array;
* :func:`load_style_image` / :func:`load_content_image` -> ``(1, 3, H, W)`` tensors.

Every problem a user can cause is raised as :class:`InputError` with a one-line message
naming the file.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from ._errors import InputError, shown

__all__ = ["read_image", "load_style_image", "load_content_image"]

_EXPECTED = "JPEG, PNG, WebP or TIFF expected"

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own messages while decoding (e.g. "PNG input buffer is
    incomplete", libtiff errors): a bad file is reported as an InputError instead."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    get_level = getattr(logging, "getLogLevel", None)
    set_level = getattr(logging, "setLogLevel", None)
    quiet_level = getattr(logging, "LOG_LEVEL_SILENT", getattr(logging, "LOG_LEVEL_ERROR", None))
    if get_level is None or set_level is None or quiet_level is None:
        yield
        return
    try:
        previous = get_level()
        set_level(quiet_level)
    except cv2.error:
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(cv2.error):
            set_level(previous)


# --------------------------------------------------------------------------- reading


def _sniff(data: bytes) -> str | None:
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in _TIFF_MAGICS:
        return "tiff"
    return None


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(marker, payload_start, payload_end)`` for the header segments of a
    JPEG, up to and including the first SOS (start of scan) segment."""
    pos = 2  # after SOI
    size = len(data)
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            return
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # stand-alone markers
            pos += 2
            continue
        if marker == 0xD9:  # EOI before any scan
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            return
        yield marker, pos + 4, min(pos + 2 + length, size)
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return
        pos += 2 + length


def _jpeg_is_complete(data: bytes) -> bool:
    """True if the JPEG has its EOI marker (FFD9).

    A truncated JPEG is decoded by OpenCV without complaint (grey fill), so this is
    checked by hand. The usual case is a file ending in FFD9 (after trailing zero or
    whitespace padding); files with extra data appended after the image (maker
    trailers, MPF) are accepted when an EOI follows the first scan.
    """
    if data.rstrip(b"\x00 \t\r\n").endswith(b"\xff\xd9"):
        return True
    scan_start = None
    for marker, _start, end in _jpeg_segments(data):
        if marker == 0xDA:
            scan_start = end
    # Inside entropy-coded data 0xFF is always stuffed (FF00) or a restart marker,
    # so FFD9 after the scan header is a real EOI, not part of a thumbnail.
    return scan_start is not None and data.find(b"\xff\xd9", scan_start) != -1


def _png_is_complete(data: bytes) -> bool:
    """True if walking the PNG chunks reaches an IEND chunk."""
    pos = len(_PNG_MAGIC)
    size = len(data)
    while pos + 8 <= size:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length  # length, type, data, crc
        if end > size:
            return False
        if ctype == b"IEND":
            return True
        pos = end
    return False


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a JPEG, 1 when absent or unreadable."""
    try:
        for marker, start, end in _jpeg_segments(data):
            if marker != 0xE1 or data[start : start + 6] != b"Exif\x00\x00":
                continue
            tiff = data[start + 6 : end]
            if tiff[:2] == b"II":
                order = "<"
            elif tiff[:2] == b"MM":
                order = ">"
            else:
                continue
            magic, ifd = struct.unpack(order + "HI", tiff[2:8])
            if magic != 42:
                continue
            (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
            for i in range(count):
                entry = ifd + 2 + 12 * i
                tag, typ, n = struct.unpack(order + "HHI", tiff[entry : entry + 8])
                if tag != 0x0112:
                    continue
                if typ == 3:  # SHORT
                    (value,) = struct.unpack(order + "H", tiff[entry + 8 : entry + 10])
                elif typ == 4:  # LONG (non-standard but seen in the wild)
                    (value,) = struct.unpack(order + "I", tiff[entry + 8 : entry + 12])
                else:
                    return 1
                return value if 1 <= value <= 8 and n >= 1 else 1
            return 1
    except struct.error:  # truncated or malformed EXIF: ignore it
        return 1
    return 1


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Transform a stored image so it displays upright (EXIF orientation 1-8)."""
    if orientation == 2:  # mirrored horizontally
        return image[:, ::-1]
    if orientation == 3:  # rotated 180
        return image[::-1, ::-1]
    if orientation == 4:  # mirrored vertically
        return image[::-1, :]
    if orientation == 5:  # transposed
        return image.swapaxes(0, 1)
    if orientation == 6:  # needs 90 degrees clockwise
        return np.rot90(image, k=-1)
    if orientation == 7:  # transversed
        return image[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:  # needs 90 degrees counter-clockwise
        return np.rot90(image, k=1)
    return image


def _to_unit_float(image: np.ndarray, name: str) -> np.ndarray:
    """Any decoded sample type -> float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(image.dtype, np.floating):
        out = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.clip(out, 0.0, 1.0)
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = image.astype(np.float64) / float(info.max)
        return np.clip(out, 0.0, 1.0).astype(np.float32)
    raise InputError(f"{name}: unsupported sample type {image.dtype}")


def _to_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """Decoded OpenCV image (gray / gray+alpha / BGR / BGRA) -> (H, W, 3) RGB over
    white, float32 in [0, 1]."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3:
        raise InputError(f"{name}: unsupported image layout (shape {image.shape})")
    channels = image.shape[2]
    image = _to_unit_float(image, name)
    if channels == 1:
        rgb, alpha = np.repeat(image, 3, axis=2), None
    elif channels == 2:
        rgb, alpha = np.repeat(image[:, :, :1], 3, axis=2), image[:, :, 1:2]
    elif channels == 3:
        rgb, alpha = image[:, :, ::-1], None
    elif channels == 4:
        rgb, alpha = image[:, :, 2::-1], image[:, :, 3:4]
    else:
        raise InputError(f"{name}: unsupported number of channels ({channels})")
    if alpha is not None:
        rgb = rgb * alpha + (1.0 - alpha)
    return np.ascontiguousarray(np.clip(rgb, 0.0, 1.0), dtype=np.float32)


def read_image(path: str | os.PathLike[str], *, what: str = "image") -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` float32 RGB array in [0, 1].

    Handles JPEG (with EXIF orientation), PNG (gray, palette, alpha, 16-bit), WebP
    and TIFF (8/16-bit, float). Transparent pixels are composited over white.
    ``what`` names the file's role in error messages ("style image", ...).

    Raises:
        InputError: the file is missing, a directory, empty, unreadable, not an
            image, or truncated.
    """
    name = f"{what} {shown(path)}"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not an image file") from None
    except PermissionError:
        if os.path.isdir(path):
            raise InputError(f"{name}: is a directory, not an image file") from None
        raise InputError(f"{name}: permission denied (file is not readable)") from None
    except OSError as err:
        raise InputError(f"{name}: cannot read file ({err.strerror or err})") from None

    if not data:
        raise InputError(f"{name}: file is empty (0 bytes)")

    kind = _sniff(data)
    if kind == "jpeg" and not _jpeg_is_complete(data):
        raise InputError(f"{name}: truncated or corrupt image data")
    if kind == "png" and not _png_is_complete(data):
        raise InputError(f"{name}: truncated or corrupt image data")

    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        with _quiet_opencv():
            decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        decoded = None
    if decoded is None or decoded.size == 0:
        if kind is not None:
            raise InputError(f"{name}: truncated or corrupt image data")
        raise InputError(f"{name}: not a readable image ({_EXPECTED})")

    image = _to_rgb(decoded, name)
    if kind == "jpeg":
        image = np.ascontiguousarray(_apply_orientation(image, _exif_orientation(data)))
    return image


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw).unsqueeze(0).contiguous()


def _resize_longest(image: np.ndarray, longest: int) -> np.ndarray:
    """Resize so the longest side is exactly ``longest``, keeping the aspect ratio."""
    h, w = image.shape[:2]
    current = max(h, w)
    if current == longest:
        return image
    if h >= w:
        new_h, new_w = longest, max(1, round(w * longest / h))
    else:
        new_h, new_w = max(1, round(h * longest / w)), longest
    interp = cv2.INTER_AREA if longest < current else cv2.INTER_CUBIC
    out = cv2.resize(image, (new_w, new_h), interpolation=interp)
    if out.ndim == 2:  # cv2 drops a singleton channel axis; never for 3 channels
        out = out[:, :, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def load_style_image(
    path: str | os.PathLike[str],
    style_size: int | None = None,
    *,
    max_size: int = 2048,
) -> torch.Tensor:
    """Load the style image as a ``(1, 3, H, W)`` float32 tensor in [0, 1].

    ``style_size`` is the longest side to resize to (area interpolation when
    shrinking, cubic when enlarging). ``None`` keeps the size, but images whose
    longest side exceeds ``max_size`` are shrunk to it.
    """
    if style_size is not None and style_size < 16:
        raise ValueError(f"style_size must be >= 16, got {style_size = }")
    image = read_image(path, what="style image")
    if style_size is not None:
        image = _resize_longest(image, int(style_size))
    elif max(image.shape[:2]) > max_size:
        image = _resize_longest(image, int(max_size))
    return _to_tensor(image)


def load_content_image(path: str | os.PathLike[str]) -> torch.Tensor:
    """Load a content image as a ``(1, 3, H, W)`` float32 tensor in [0, 1]."""
    return _to_tensor(read_image(path, what="content image"))
