"""What an image file says about itself before it is decoded: its format, whether it is
complete, its EXIF orientation and its declared size (so a 30000 x 30000 PNG is refused
before it takes gigabytes). Pure byte parsing; nothing is decoded here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: JPEG start-of-frame markers (they hold the picture size): C0-CF but DHT, JPG and DAC.
_SOF = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def sniff(data: bytes) -> str | None:
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


def jpeg_is_complete(data: bytes) -> bool:
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


def png_is_complete(data: bytes) -> bool:
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


def exif_orientation(data: bytes) -> int:
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


def declared_size(data: bytes, kind: str | None) -> tuple[int, int] | None:
    """(width, height) as the file's header declares it; None when it cannot tell."""
    try:
        if kind == "png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if kind == "jpeg":
            for marker, start, _end in _jpeg_segments(data):
                if marker in _SOF:
                    h, w = struct.unpack(">HH", data[start + 1 : start + 5])
                    return w, h
        if kind == "webp":
            return _webp_size(data)
        if kind == "tiff":
            return _tiff_size(data)
    except (struct.error, IndexError):
        return None
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        return w, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """Width and height (tags 256, 257) of a classic TIFF's first image."""
    order = "<" if data[:2] == b"II" else ">"
    if struct.unpack(order + "H", data[2:4])[0] != 42:
        return None  # BigTIFF: not parsed here
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for i in range(count):
        entry = ifd + 2 + 12 * i
        tag, typ = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):
            fmt = order + ("H" if typ == 3 else "I")
            found[tag] = struct.unpack(fmt, data[entry + 8 : entry + 8 + struct.calcsize(fmt)])[0]
    return (found[256], found[257]) if len(found) == 2 else None
