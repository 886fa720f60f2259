"""Reading and writing still images with OpenCV and numpy.

Images inside the package are RGB, float32, values in [0, 1]:

* :func:`read_image` -> ``(H, W, 3)`` numpy array;
* :func:`load_style_image` / :func:`load_content_image` -> ``(1, 3, H, W)`` tensors;
* :func:`write_image` writes an array or tensor atomically (temp file + ``os.replace``).

Every problem a user can cause is raised as :class:`InputError` or
:class:`OutputError` with a one-line message naming the file.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from collections.abc import Iterator

import cv2
import numpy as np
import torch

from ._errors import InputError, OutputError

__all__ = ["read_image", "load_style_image", "load_content_image", "write_image"]

_EXPECTED = "JPEG, PNG, WebP or TIFF expected"

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

# Output extension -> (cv2 encoder extension, allowed bit depths)
_WRITE_FORMATS: dict[str, tuple[str, tuple[int, ...]]] = {
    ".png": (".png", (8, 16)),
    ".jpg": (".jpg", (8,)),
    ".jpeg": (".jpg", (8,)),
    ".tif": (".tiff", (8, 16)),
    ".tiff": (".tiff", (8, 16)),
    ".webp": (".webp", (8,)),
}


def _display(path: str | os.PathLike[str]) -> str:
    """The path as the user gave it, on a single line."""
    text = os.fsdecode(path)
    return text.replace("\r", "\\r").replace("\n", "\\n")


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
    name = f"{what} {_display(path)}"
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


# --------------------------------------------------------------------------- writing


def _to_hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """(H, W, 3) array or (3, H, W) / (1, 3, H, W) tensor -> (H, W, 3) float32 in [0, 1]."""
    if isinstance(image, torch.Tensor):
        t = image.detach().to("cpu", torch.float32)
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(
                f"image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}"
            )
        arr = t.permute(1, 2, 0).numpy()
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"image array must be (H, W, 3), got {arr.shape}")
        arr = arr.astype(np.float32, copy=False)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(arr, 0.0, 1.0)


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray | torch.Tensor,
    *,
    bit_depth: int = 8,
    jpeg_quality: int = 95,
) -> None:
    """Write an RGB image (values clamped to [0, 1]) atomically.

    The format comes from the extension: ``.png`` (8/16-bit), ``.jpg``/``.jpeg``
    (8-bit), ``.tif``/``.tiff`` (8/16-bit), ``.webp`` (8-bit; ``jpeg_quality`` is
    used as its quality too). The data goes to a hidden ``.part`` file in the same
    folder which then replaces ``path``; nothing is left behind on failure.

    Raises:
        OutputError: unknown extension, missing or unwritable folder, disk full...
        ValueError: bad ``bit_depth``/``jpeg_quality`` or image shape.
    """
    shown = _display(path)
    name = f"output image {shown}"
    ext = os.path.splitext(os.fsdecode(path))[1].lower()
    if ext not in _WRITE_FORMATS:
        known = ", ".join(sorted(_WRITE_FORMATS))
        raise OutputError(f"{name}: unknown image format {ext or '(no extension)'!r} ({known})")
    encoder_ext, depths = _WRITE_FORMATS[ext]
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth = }")
    if bit_depth not in depths:
        raise ValueError(f"{ext} images cannot be {bit_depth}-bit (use .png or .tiff)")
    if not 0 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 0..100, got {jpeg_quality = }")

    rgb = _to_hwc(image)
    if bit_depth == 16:
        pixels = np.rint(rgb * 65535.0).astype(np.uint16)
    else:
        pixels = np.rint(rgb * 255.0).astype(np.uint8)
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])

    params: list[int] = []
    if encoder_ext == ".jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif encoder_ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, max(1, int(jpeg_quality))]
    try:
        ok, encoded = cv2.imencode(encoder_ext, bgr, params)
    except cv2.error as err:
        detail = str(err).strip().splitlines()[-1]
        raise OutputError(f"{name}: cannot encode image ({detail})") from None
    if not ok:
        raise OutputError(f"{name}: cannot encode image as {ext}")

    target = os.path.abspath(os.fsdecode(path))
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        raise OutputError(f"{name}: folder {_display(folder)} does not exist")
    if os.path.isdir(target):
        raise OutputError(f"{name}: is a directory")

    base = os.path.basename(target)
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=folder, delete=False, prefix=f".{base}.", suffix=".part"
        ) as tmp:
            tmp_name = tmp.name
            tmp.write(encoded.tobytes())
        # NamedTemporaryFile creates 0600 files; give the output normal permissions.
        try:
            mode = os.stat(target).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~_current_umask()
        with contextlib.suppress(OSError):
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
        tmp_name = None
    except PermissionError:
        raise OutputError(f"{name}: permission denied (folder not writable?)") from None
    except OSError as err:
        reason = err.strerror or str(err)
        raise OutputError(f"{name}: cannot write file ({reason})") from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
