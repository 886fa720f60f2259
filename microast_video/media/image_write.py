"""Writing still images (PNG, JPEG, TIFF, WebP) atomically, through the one atomic writer."""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch

from ..core.errors import OptionError, OutputError, shown
from ..core.output import AtomicFile

#: Output extension -> (cv2 encoder extension, allowed bit depths).
FORMATS: dict[str, tuple[str, tuple[int, ...]]] = {
    ".png": (".png", (8, 16)),
    ".jpg": (".jpg", (8,)),
    ".jpeg": (".jpg", (8,)),
    ".tif": (".tiff", (8, 16)),
    ".tiff": (".tiff", (8, 16)),
    ".webp": (".webp", (8,)),
}


def _to_hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """(H, W, 3) array or (3, H, W) / (1, 3, H, W) tensor -> (H, W, 3) float32 in [0, 1]."""
    if isinstance(image, torch.Tensor):
        t = image.detach().to("cpu", torch.float32)
        if t.ndim == 4 and t.shape[0] == 1:
            t = t[0]
        if t.ndim != 3 or t.shape[0] != 3:
            raise ValueError(f"image tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
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


def check_image_output(path: str | os.PathLike[str], bit_depth: int = 8) -> str:
    """The encoder extension for ``path``; refuses unknown formats and impossible depths."""
    name = f"output image {shown(path)}"
    ext = os.path.splitext(os.fsdecode(path))[1].lower()
    if ext not in FORMATS:
        raise OutputError(f"{name}: unknown image format {ext or '(no extension)'!r} ({', '.join(sorted(FORMATS))})")
    encoder_ext, depths = FORMATS[ext]
    if bit_depth not in (8, 16):
        raise OptionError(f"bit_depth must be 8 or 16, got {bit_depth = }")
    if bit_depth not in depths:
        raise OptionError(f"{ext} images cannot be {bit_depth}-bit (use .png or .tiff)")
    return encoder_ext


def encode_image(image: np.ndarray | torch.Tensor, encoder_ext: str, *, bit_depth: int = 8,
                 jpeg_quality: int = 95) -> bytes:
    """An RGB image (values clamped to [0, 1]) encoded as ``encoder_ext`` (".png", ".jpg"...)."""
    if not 0 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 0..100, got {jpeg_quality = }")
    rgb = _to_hwc(image)
    pixels = np.rint(rgb * 65535.0).astype(np.uint16) if bit_depth == 16 else np.rint(rgb * 255.0).astype(np.uint8)
    bgr = np.ascontiguousarray(pixels[:, :, ::-1])
    params: list[int] = []
    if encoder_ext == ".jpg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif encoder_ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, max(1, int(jpeg_quality))]
    try:
        ok, encoded = cv2.imencode(encoder_ext, bgr, params)
    except cv2.error as err:
        raise OutputError(f"cannot encode the image as {encoder_ext} ({str(err).strip().splitlines()[-1]})") from None
    if not ok:
        raise OutputError(f"cannot encode the image as {encoder_ext}")
    return encoded.tobytes()


def write_image(
    path: str | os.PathLike[str],
    image: np.ndarray | torch.Tensor,
    *,
    bit_depth: int = 8,
    jpeg_quality: int = 95,
    overwrite: bool = True,
) -> None:
    """Write an RGB image (values clamped to [0, 1]) atomically.

    The format comes from the extension: ``.png`` (8/16-bit), ``.jpg``/``.jpeg``
    (8-bit), ``.tif``/``.tiff`` (8/16-bit), ``.webp`` (8-bit; ``jpeg_quality`` is
    used as its quality too). The data goes to a hidden temporary file in the same folder
    which then replaces ``path`` (or, without ``overwrite``, becomes it only if it does
    not exist); nothing is left behind on failure.

    Raises:
        OutputError: unknown extension, missing or unwritable folder, disk full...
        ValueError: bad ``bit_depth``/``jpeg_quality`` or image shape.
    """
    encoder_ext = check_image_output(path, bit_depth)
    data = encode_image(image, encoder_ext, bit_depth=bit_depth, jpeg_quality=jpeg_quality)
    target = os.path.abspath(os.fsdecode(path))
    if not os.path.isdir(os.path.dirname(target)):
        raise OutputError(f"output image {shown(path)}: folder {shown(os.path.dirname(target))} does not exist")
    if os.path.isdir(target):
        raise OutputError(f"output image {shown(path)}: is a directory")
    with AtomicFile(target, overwrite=overwrite, what="output image") as out:
        out.write(data)
        out.publish()
