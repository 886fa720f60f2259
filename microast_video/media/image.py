"""Reading still images with OpenCV and numpy (writing: :mod:`microast_video.media.image_write`).

Images inside the package are RGB, float32, values in [0, 1]:

* :func:`read_image` -> ``(H, W, 3)`` numpy array;
* :func:`load_style_image` / :func:`load_content_image` -> ``(1, 3, H, W)`` tensors.

Every problem a user can cause is raised as :class:`InputError` with a one-line message
naming the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from ..core.errors import InputError, shown
from ..core.options import DEFAULT_MAX_PIXELS, MAX_STYLE_SIZE, check_pixels
from .image_header import (
    declared_size,
    exif_orientation,
    jpeg_is_complete,
    png_is_complete,
    sniff,
)

__all__ = ["read_image", "load_style_image", "load_content_image"]

_EXPECTED = "JPEG, PNG, WebP or TIFF expected"


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


def _read_bytes(path: str | os.PathLike[str], name: str) -> bytes:
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
    return data


def _checked_header(data: bytes, name: str, max_pixels: int | None) -> tuple[str | None, tuple[int, int] | None]:
    """(format, declared size) of image bytes; refuses truncated files and sizes over ``max_pixels``."""
    kind = sniff(data)
    if kind in ("jpeg", "png") and not (jpeg_is_complete(data) if kind == "jpeg" else png_is_complete(data)):
        raise InputError(f"{name}: truncated or corrupt image data")
    size = declared_size(data, kind)
    if size is not None:
        check_pixels(name, *size, max_pixels)
    return kind, size


def check_image(path: str | os.PathLike[str], *, what: str = "image", max_pixels: int | None = None) -> None:
    """The checks :func:`read_image` makes before decoding (readable, complete, not too large), alone.

    Jobs call it up front, so a bad style image is refused before the network loads.
    """
    _checked_header(_read_bytes(path, f"{what} {shown(path)}"), f"{what} {shown(path)}", max_pixels)


def _draft_flag(size: tuple[int, int] | None, kind: str | None, longest: int | None) -> int:
    """OpenCV's reduced-size JPEG decoding (libjpeg DCT scaling by 1/2, 1/4, 1/8), when the
    picture is wanted at most ``longest`` px long: the largest reduction still that long."""
    if kind != "jpeg" or size is None or longest is None:
        return cv2.IMREAD_UNCHANGED
    for factor, flag in ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2)):
        if max(size) // factor >= longest:
            return flag | cv2.IMREAD_IGNORE_ORIENTATION
    return cv2.IMREAD_UNCHANGED


def read_image(path: str | os.PathLike[str], *, what: str = "image", max_pixels: int | None = None,
               longest: int | None = None) -> np.ndarray:
    """Read an image file as an ``(H, W, 3)`` float32 RGB array in [0, 1].

    Handles JPEG (with EXIF orientation), PNG (gray, palette, alpha, 16-bit), WebP
    and TIFF (8/16-bit, float). Transparent pixels are composited over white.
    ``what`` names the file's role in error messages ("style image", ...).

    Args:
        max_pixels: refuse a picture whose header declares more pixels, before decoding it.
        longest: the caller will shrink the picture to about this longest side: a large
            JPEG is then decoded at 1/2, 1/4 or 1/8 size directly (no larger than needed
            and never smaller than ``longest``).

    Raises:
        InputError: the file is missing, a directory, empty, unreadable, not an
            image, truncated, or over ``max_pixels``.
    """
    name = f"{what} {shown(path)}"
    data = _read_bytes(path, name)
    kind, size = _checked_header(data, name, max_pixels)
    try:
        with _quiet_opencv():
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _draft_flag(size, kind, longest))
    except cv2.error:
        decoded = None
    if decoded is None or decoded.size == 0:
        if kind is not None:
            raise InputError(f"{name}: truncated or corrupt image data")
        raise InputError(f"{name}: not a readable image ({_EXPECTED})")
    image = _to_rgb(decoded, name)
    if kind == "jpeg":
        image = np.ascontiguousarray(_apply_orientation(image, exif_orientation(data)))
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
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> torch.Tensor:
    """Load the style image as a ``(1, 3, H, W)`` float32 tensor in [0, 1].

    ``style_size`` is the longest side to resize to (area interpolation when
    shrinking, cubic when enlarging). ``None`` keeps the size, but images whose
    longest side exceeds ``max_size`` are shrunk to it. Large JPEGs are decoded at a
    reduced size directly; pictures declaring more than ``max_pixels`` are refused.
    """
    if style_size is not None and not 16 <= style_size <= MAX_STYLE_SIZE:
        raise ValueError(f"style_size must be in 16..{MAX_STYLE_SIZE}, got {style_size = }")
    image = read_image(path, what="style image", max_pixels=max_pixels, longest=style_size or max_size)
    if style_size is not None:
        image = _resize_longest(image, int(style_size))
    elif max(image.shape[:2]) > max_size:
        image = _resize_longest(image, int(max_size))
    return _to_tensor(image)


def load_content_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """Load a content image as a ``(1, 3, H, W)`` float32 tensor in [0, 1] (refused over ``max_pixels``)."""
    return _to_tensor(read_image(path, what="content image", max_pixels=max_pixels))
