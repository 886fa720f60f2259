"""The colour vocabulary: one table for every fact about colour tags and YCbCr matrices.

FFmpeg numbers its colour tags (``AVColorSpace``, ``AVColorPrimaries``,
``AVColorTransferCharacteristic``), the ffmpeg program and its ``scale`` filter name them,
swscale (through PyAV's reformatter) takes its own ``SWS_CS_*`` constants, and the YCbCr
maths needs each matrix's luma coefficients (Kr, Kb). This module is the only place that
knows how these relate; every other module asks it. No torch, no PyAV imports here.

Matrices are named as FFmpeg's ``-colorspace`` option names them (``"bt709"``,
``"smpte170m"``, ``"fcc"``...). Two short aliases are accepted where a caller means the
coefficients rather than a tag: ``"bt601"`` (= ``smpte170m``) and ``"bt2020"``
(= ``bt2020nc``).
"""

from __future__ import annotations

import dataclasses

#: AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic value for "unspecified".
UNSPECIFIED = 2
#: AVColorSpace value for RGB samples (FFmpeg's "gbr": no YCbCr matrix).
RGB_CODE = 0


@dataclasses.dataclass(frozen=True)
class Matrix:
    """One YCbCr matrix.

    Attributes:
        name: FFmpeg's ``-colorspace`` name, written as the output's tag.
        code: its ``AVColorSpace`` value (how frames and streams are tagged).
        kr, kb: luma coefficients of red and blue (Kg = 1 - Kr - Kb).
        sws: the swscale ``SWS_CS_*`` constant that converts with it (PyAV's
            ``Colorspace`` values).
        scale: the ``scale`` filter's ``in_color_matrix`` / ``out_color_matrix`` value.
        linear: False for BT.2020 constant luminance, which is not a plain 3x3 matrix
            (swscale and this project convert it as non-constant luminance).
        hd: HD-era matrix (BT.709 and later): untagged primaries and transfer default to
            BT.709 rather than SMPTE 170M.
    """

    name: str
    code: int
    kr: float
    kb: float
    sws: int
    scale: str
    linear: bool = True
    hd: bool = True


_TABLE = (
    Matrix("bt709", 1, 0.2126, 0.0722, 1, "bt709"),
    Matrix("fcc", 4, 0.30, 0.11, 4, "fcc", hd=False),
    Matrix("bt470bg", 5, 0.299, 0.114, 5, "bt601", hd=False),
    Matrix("smpte170m", 6, 0.299, 0.114, 5, "bt601", hd=False),
    Matrix("smpte240m", 7, 0.212, 0.087, 7, "smpte240m"),
    Matrix("bt2020nc", 9, 0.2627, 0.0593, 9, "bt2020"),
    Matrix("bt2020c", 10, 0.2627, 0.0593, 9, "bt2020", linear=False),
)
MATRICES: dict[str, Matrix] = {m.name: m for m in _TABLE}
_BY_CODE: dict[int, Matrix] = {m.code: m for m in _TABLE}
ALIASES = {"bt601": "smpte170m", "bt2020": "bt2020nc"}

#: Every ``AVColorSpace`` FFmpeg names, supported or not (for reading tags as found).
COLORSPACE_NAMES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
                    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
                    13: "chroma-derived-c", 14: "ictcp"}
#: ``AVColorPrimaries`` -> the ffmpeg program's ``-color_primaries`` name.
PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
             9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "jedec-p22"}
#: ``AVColorTransferCharacteristic`` -> the ffmpeg program's ``-color_trc`` name.
TRANSFERS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
             14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67"}
#: Transfer characteristics of high-dynamic-range material (PQ and HLG).
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})


def matrix(name: str) -> Matrix:
    """The matrix called ``name`` (an FFmpeg ``-colorspace`` name or an alias).

    Raises:
        ValueError: an unknown name, or one that is not a YCbCr matrix (such as "gbr").
    """
    key = ALIASES.get(name, name)
    if key not in MATRICES:
        known = sorted([*MATRICES, *ALIASES])
        raise ValueError(f"unknown colour matrix {name = }; choose from {known}")
    return MATRICES[key]


def from_code(code: int | None) -> Matrix | None:
    """The matrix an ``AVColorSpace`` value names; None when unspecified, RGB or unsupported."""
    return None if code is None else _BY_CODE.get(int(code))


def default_for_size(width: int, height: int) -> Matrix:
    """The matrix an untagged stream of this size most likely uses.

    HD and larger (width > 1024 or height > 576) is BT.709, as players assume; SD is
    SMPTE 170M (BT.601). Never BT.601 for HD, which converters that ignore the size do.
    """
    return MATRICES["bt709"] if width > 1024 or height > 576 else MATRICES["smpte170m"]


def tag_name(table: dict[int, str], code: int | None) -> str | None:
    """A tag's FFmpeg name as found in a stream, or None when absent or unspecified."""
    if code is None or int(code) == UNSPECIFIED:
        return None
    return table.get(int(code))


def luma_weights(name: str) -> tuple[float, float, float]:
    """(Kr, Kg, Kb) of the matrix ``name``: luma = Kr R + Kg G + Kb B, Kg = 1 - Kr - Kb."""
    m = matrix(name)
    return m.kr, 1.0 - m.kr - m.kb, m.kb


def rgb_to_ycbcr_rows(name: str) -> tuple[tuple[float, float, float], ...]:
    """The (3, 3) float64 matrix (as rows) with (Y, Cb, Cr) = it @ RGB; RGB and Y in [0, 1],
    Cb and Cr in [-0.5, 0.5]."""
    kr, kg, kb = luma_weights(name)
    return ((kr, kg, kb),
            (-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5),
            (0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))))


def levels(bits: int, full: bool) -> tuple[float, float, float, float]:
    """(luma offset, luma range, chroma centre, chroma range) in code values of ``bits``-bit
    samples, full ("pc") or limited ("tv") range."""
    k = float(1 << (bits - 8))
    if full:
        top = float((1 << bits) - 1)
        return 0.0, top, 128.0 * k, top
    return 16.0 * k, 219.0 * k, 128.0 * k, 224.0 * k


def ycbcr_to_rgb_rows(name: str) -> tuple[tuple[float, float, float], ...]:
    """The inverse of :func:`rgb_to_ycbcr_rows` (closed form): RGB = it @ (Y, Cb, Cr)."""
    kr, kg, kb = luma_weights(name)
    return ((1.0, 0.0, 2 * (1 - kr)),
            (1.0, -2 * kb * (1 - kb) / kg, -2 * kr * (1 - kr) / kg),
            (1.0, 2 * (1 - kb), 0.0))
