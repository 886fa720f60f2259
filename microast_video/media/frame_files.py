"""Writing an OpenEXR or DPX sequence with OpenImageIO, each frame with its header: its SMPTE
timecode, the frame rate, and its colour (an EXR's chromaticities, a DPX's transfer field).

FFmpeg's EXR and DPX encoders write pixels only, and its DPX header ends before the
television header that holds a timecode; OpenImageIO writes the formats' own headers. Each
frame goes to a temporary name (``NAME.tmp``, which a rerun sweeps) and is renamed when whole.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..colour.ocio import CINEON, PRIMARIES
from ..core.errors import OutputError, shown
from ..core.frame import Frame
from .frame_header import HEADER_FORMATS, oiio
from .sequence import output_sequence
from .timecode import moved, packed


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
    """

    def __init__(self, pattern: Path, first_number: int, *, rate: Fraction, timecode: str | None = None,
                 space: str | None = None, bits: int = 16) -> None:
        out = output_sequence(pattern)
        if out is None or out.suffix.lower() not in HEADER_FORMATS:
            raise ValueError(f"not an OpenEXR or DPX pattern: {pattern = }")
        if bits not in (8, 10, 12, 16):
            raise ValueError(f"{bits = } is not a DPX depth")
        self.out, self.number, self.rate, self.timecode = out, first_number, rate, timecode
        self.space, self.bits, self.written = space, bits, 0
        self.format = HEADER_FORMATS[out.suffix.lower()]
        self._stopped = False

    def _spec(self, frame: Frame) -> object:
        OIIO = oiio()
        h, w = frame.data.shape[:2]
        exr = self.format == "openexr"
        spec = OIIO.ImageSpec(w, h, 3, "half" if exr else ("uint8" if self.bits == 8 else "uint16"))
        spec.attribute("FramesPerSecond", OIIO.TypeRational, (self.rate.numerator, self.rate.denominator))
        if self.timecode is not None:
            code = moved(self.timecode, self.rate, self.written)
            spec.attribute("smpte:TimeCode", OIIO.TypeTimeCode, packed(code))
        if exr:
            spec.attribute("compression", "zip")
            if self.space in PRIMARIES:
                spec.attribute("chromaticities", OIIO.TypeDesc("float[8]"), PRIMARIES[self.space])
        else:
            spec.attribute("oiio:BitsPerSample", self.bits)
            transfer = ("Logarithmic" if self.space == CINEON else "Linear" if self.space in PRIMARIES
                        else "Unspecified video")
            spec.attribute("dpx:Transfer", transfer)
            spec.attribute("dpx:Colorimetric", "Printing density" if self.space == CINEON else "Unspecified video")
        return spec

    def write(self, frame: Frame) -> None:
        """Write one frame whole under its number (a temporary name, then renamed)."""
        if self._stopped:
            raise OutputError(f"output {shown(self.out.pattern)}: stopped")
        target = self.out.frame(self.number + self.written)
        temp = target.with_name(target.name + ".tmp")
        data = np.ascontiguousarray(frame.data)
        image = oiio().ImageOutput.create(self.format)
        try:
            if not (image.open(str(temp), self._spec(frame)) and image.write_image(data) and image.close()):
                raise OutputError(f"output {shown(target)}: {' '.join((image.geterror() or 'cannot write').split())}")
            os.replace(temp, target)
        except OSError as err:
            raise OutputError(f"output {shown(target)}: {err.strerror or err}") from err
        finally:
            temp.unlink(missing_ok=True)
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
