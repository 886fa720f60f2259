"""Writing an OpenEXR or DPX sequence with OpenImageIO, each frame with its header: its SMPTE
timecode, the frame rate, and its colour (an EXR's chromaticities, a DPX's transfer field).

FFmpeg's EXR and DPX encoders write pixels only, and its DPX header ends before the
television header that holds a timecode; OpenImageIO writes the formats' own headers. Each
frame goes to a hidden temporary name (which a rerun sweeps) and is renamed when whole.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..colour.ocio import CINEON, PRIMARIES
from ..core.errors import OutputError, shown
from ..core.frame import Frame
from ..core.output import AtomicFile
from .frame_header import HEADER_FORMATS, oiio
from .sequence import output_sequence
from .timecode import moved, packed


def frame_spec(fmt: str, width: int, height: int, *, space: str | None, bits: int = 16, timecode: str | None = None,
               rate: Fraction | None = None, channels: int = 3) -> object:
    """The header of an OpenEXR (``fmt`` "openexr": half-float, ZIP) or DPX frame (``bits`` per
    sample) of ``channels`` (3: RGB, 4: RGBA): the timecode and frame rate where given, the colour
    of ``space`` (an OpenColorIO name; None: display-referred video): an EXR's chromaticities, a
    DPX's transfer field."""
    OIIO = oiio()
    exr = fmt == "openexr"
    spec = OIIO.ImageSpec(width, height, channels, "half" if exr else ("uint8" if bits == 8 else "uint16"))
    if rate is not None:
        spec.attribute("FramesPerSecond", OIIO.TypeRational, (rate.numerator, rate.denominator))
    if timecode is not None:
        spec.attribute("smpte:TimeCode", OIIO.TypeTimeCode, packed(timecode))
    if exr:
        spec.attribute("compression", "zip")
        if space in PRIMARIES:
            spec.attribute("chromaticities", OIIO.TypeDesc("float[8]"), PRIMARIES[space])
        return spec
    spec.attribute("oiio:BitsPerSample", bits)
    spec.attribute("dpx:Transfer", "Logarithmic" if space == CINEON else "Linear" if space in PRIMARIES
                   else "Unspecified video")
    spec.attribute("dpx:Colorimetric", "Printing density" if space == CINEON else "Unspecified video")
    return spec


def write_frame(target: Path, data: np.ndarray, spec: object, *, overwrite: bool = True) -> None:
    """``data`` ((H, W, 3): float for an EXR, uint8/uint16 for a DPX) as ``target`` with the header
    ``spec`` (:func:`frame_spec`), through the one atomic writer (:class:`AtomicFile`: a hidden
    temporary name, renamed when whole; a killed run's is swept by the next)."""
    fmt = HEADER_FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(f"not an OpenEXR or DPX file name: {target = }")
    image = oiio().ImageOutput.create(fmt)
    with AtomicFile(target, overwrite=overwrite) as out:
        if not (image.open(str(out.path), spec) and image.write_image(np.ascontiguousarray(data)) and image.close()):
            raise OutputError(f"output {shown(target)}: {' '.join((image.geterror() or 'cannot write').split())}")
        out.publish()


class FrameFiles:
    """Writes :class:`Frame` s (in order) as ``pattern``'s frames from ``first_number`` on, with
    the writer interface of :class:`~microast_video.media.encode.FFmpegWriter`.

    Args:
        pattern: ``shot.%04d.exr`` or ``.dpx``.
        first_number: the first frame's number.
        rate: frames a second (the header's frame rate; timecode counts at it).
        timecode: the first frame's timecode ("01:00:10:00"), or None for none.
        space: the OpenColorIO space the samples are in (None: display-referred video).
        bits: a DPX's bits per sample (8, 10, 12 or 16); an EXR is half-float, ZIP-compressed.
        alpha: the alpha channel of the k-th frame written ((H, W) float in [0, 1]: the source's,
            beside the stylized RGB), or None for RGB frames.
    """

    def __init__(self, pattern: Path, first_number: int, *, rate: Fraction, timecode: str | None = None,
                 space: str | None = None, bits: int = 16, alpha: Callable[[int], np.ndarray] | None = None) -> None:
        out = output_sequence(pattern)
        if out is None or out.suffix.lower() not in HEADER_FORMATS:
            raise ValueError(f"not an OpenEXR or DPX pattern: {pattern = }")
        if bits not in (8, 10, 12, 16):
            raise ValueError(f"{bits = } is not a DPX depth")
        self.out, self.number, self.rate, self.timecode = out, first_number, rate, timecode
        self.space, self.bits, self.alpha, self.written = space, bits, alpha, 0
        self.format = HEADER_FORMATS[out.suffix.lower()]
        self._stopped = False

    def write(self, frame: Frame) -> None:
        """Write one frame whole under its number (a temporary name, then renamed)."""
        if self._stopped:
            raise OutputError(f"output {shown(self.out.pattern)}: stopped")
        h, w = frame.data.shape[:2]
        code = None if self.timecode is None else moved(self.timecode, self.rate, self.written)
        data = frame.data
        if self.alpha is not None:
            top = 1.0 if data.dtype == np.float32 else float(np.iinfo(data.dtype).max)
            alpha = cv2.resize(self.alpha(self.written), (w, h), interpolation=cv2.INTER_AREA)
            data = np.concatenate([data, (alpha[..., None] * top + (0 if top == 1.0 else 0.5)).astype(data.dtype)], -1)
        spec = frame_spec(self.format, w, h, space=self.space, bits=self.bits, timecode=code, rate=self.rate,
                          channels=data.shape[2])
        write_frame(self.out.frame(self.number + self.written), data, spec)
        self.written += 1

    def finish(self) -> None:
        """Nothing is pending (every frame was renamed into place as it was written); refuses a
        run that wrote none."""
        if not self.written:
            raise OutputError(f"output {shown(self.out.pattern)}: no frames to write (an empty clip or --start "
                              "past the end)")

    def abort(self) -> None:
        """Write no more frames (the one being written is left as its temporary name: swept)."""
        self._stopped = True

    def __enter__(self) -> FrameFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.abort()
