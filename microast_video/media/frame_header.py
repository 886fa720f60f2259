"""What an OpenEXR or DPX frame's header says, read with OpenImageIO (the ``post`` extra): its
timecode, and the colour space its chromaticities (EXR) or transfer field (DPX) declare.

FFmpeg's image2 demuxer decodes these frames faithfully but passes on none of this, so the
first frame of a sequence is opened once more here, for its header only (no pixels).
"""

from __future__ import annotations

import contextlib
import dataclasses
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..colour.ocio import CINEON, EXR_DEFAULT, space_of_chromaticities
from ..core.errors import InputError, OptionError, shown
from ..core.options import check_pixels
from .sequence import ImageSequence

#: Formats whose headers carry timecode and colour: read and written with OpenImageIO.
HEADER_FORMATS = {".exr": "openexr", ".dpx": "dpx"}
#: DPX transfer characteristics (SMPTE 268M, as OpenImageIO names them) -> the space they declare;
#: the video ones (Rec.709, unspecified video...) are display-referred, as movies are.
DPX_TRANSFERS = {"Logarithmic": CINEON, "Printing density": CINEON, "Linear": EXR_DEFAULT}
#: Where a DPX file's television header (and its timecode) ends: a shorter header has none.
_DPX_TV_HEADER_END = 2048


def oiio() -> Any:
    """The OpenImageIO module, or a one-line error naming the extra that installs it."""
    try:
        import OpenImageIO
    except ImportError:
        raise OptionError("OpenEXR and DPX headers need OpenImageIO: pip install 'microast-video[post]'") from None
    return OpenImageIO


def available() -> bool:
    """OpenImageIO can be imported (the ``post`` extra is installed)."""
    try:
        oiio()
    except OptionError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class FrameHeader:
    """A frame header's timecode ("hh:mm:ss:ff", None if it has none) and declared colour space
    (an OpenColorIO name; None: nothing declared, or primaries this tool does not know)."""

    timecode: str | None = None
    colour_space: str | None = None
    declared_by: str | None = None  # "chromaticities" or "transfer Logarithmic": what said so


@contextlib.contextmanager
def _opened(path: Path, name: str) -> Iterator[Any]:
    """The frame open in OpenImageIO (closed after), or one line saying why it cannot be."""
    found = oiio().ImageInput.open(str(path))
    if not found:
        raise InputError(f"{name}: not a readable {path.suffix[1:].upper()} frame "
                         f"({' '.join(oiio().geterror().split())[:160]})")
    try:
        yield found
    finally:
        found.close()


def read_header(path: Path, what: str = "input") -> FrameHeader:
    """The header of one OpenEXR or DPX frame (an empty one where OpenImageIO is not installed).

    Raises:
        InputError: OpenImageIO cannot read the file.
    """
    if path.suffix.lower() not in HEADER_FORMATS or not available():
        return FrameHeader()
    with _opened(path, f"{what} {shown(path)}") as found:
        return _declared(path, found.spec())


def _declared(path: Path, spec: Any) -> FrameHeader:
    """What a frame's header ``spec`` says: its timecode and colour space."""
    timecode = spec.get_string_attribute("smpte:TimeCode") or None
    if path.suffix.lower() == ".dpx":
        timecode = timecode if _dpx_has_tv_header(path) else None
        transfer = spec.get_string_attribute("dpx:Transfer")
        space = DPX_TRANSFERS.get(transfer)
        return FrameHeader(timecode, space, f"transfer {transfer}" if space else None)
    chroma = spec.getattribute("chromaticities")
    space = space_of_chromaticities(tuple(chroma)) if chroma is not None and len(chroma) == 8 else None
    return FrameHeader(timecode, space, "chromaticities" if space else None)


def read_frame(path: Path, *, what: str = "image", max_pixels: int | None = None) -> tuple[np.ndarray, FrameHeader]:
    """One OpenEXR or DPX frame: ((H, W, 3) float32 RGB in the frame's own space: an EXR's scene
    values, a DPX's code values in [0, 1]; alpha dropped, grey made RGB) and its header. The size
    its header declares is checked against ``max_pixels`` before any pixel is read.

    Raises:
        InputError: unreadable, or over ``max_pixels``.
    """
    name = f"{what} {shown(path)}"
    with _opened(path, name) as found:
        spec = found.spec()
        check_pixels(name, spec.width, spec.height, max_pixels)
        pixels = found.read_image(0, 0, 0, min(3, spec.nchannels), "float")
        head = _declared(path, spec)
    if pixels is None:
        raise InputError(f"{name}: truncated or corrupt {path.suffix[1:].upper()} data")
    rgb = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]
    return np.ascontiguousarray(rgb, dtype=np.float32), head


def read_alpha(path: Path, what: str = "input") -> np.ndarray:
    """A frame's alpha channel ((H, W) float32 in [0, 1]; 1 where it has none), read alone."""
    with _opened(path, f"{what} {shown(path)}") as found:
        spec = found.spec()
        if spec.alpha_channel < 0:
            return np.ones((spec.height, spec.width), np.float32)
        alpha = found.read_image(0, 0, spec.alpha_channel, spec.alpha_channel + 1, "float")
    if alpha is None:
        raise InputError(f"{what} {shown(path)}: truncated or corrupt {path.suffix[1:].upper()} data")
    return np.clip(alpha[..., 0], 0.0, 1.0).astype(np.float32)


def sequence_alpha(sequence: ImageSequence, first: int) -> Callable[[int], np.ndarray]:
    """The alpha of a sequence's k-th frame from number ``first`` on, read when asked for (a held
    gap's: the frame's before it; see :func:`read_alpha`)."""
    missing = set(sequence.missing)

    def alpha(k: int) -> np.ndarray:
        number = first + k
        while number in missing and number > sequence.first:
            number -= 1
        return read_alpha(sequence.frame(number))

    return alpha


def _dpx_has_tv_header(path: Path) -> bool:
    """The image data starts after the television header, so its timecode field is a header's
    (FFmpeg writes 1664-byte headers: what OpenImageIO reads there is picture data)."""
    with open(path, "rb") as f:
        head = f.read(8)
    order = {b"SDPX": ">", b"XPDS": "<"}.get(head[:4])
    return order is not None and struct.unpack(order + "I", head[4:8])[0] >= _DPX_TV_HEADER_END
