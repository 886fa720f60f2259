"""Option choices shared by the CLI and the library (no heavy imports here)."""

from __future__ import annotations

import enum


class Precision(str, enum.Enum):
    """Numeric precision of the content path (the style signals are always float32)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Codec(str, enum.Enum):
    """Output video codecs (``--codec``)."""

    h264 = "h264"
    hevc = "hevc"
    prores = "prores"
    ffv1 = "ffv1"
    h264_nvenc = "h264_nvenc"
    hevc_nvenc = "hevc_nvenc"


class CompileMode(str, enum.Enum):
    """Whether to run the network through ``torch.compile`` (``--compile``)."""

    auto = "auto"  # when the job is long enough to amortise compiling
    on = "on"
    off = "off"


class Transport(str, enum.Enum):
    """How frames travel between the host and the device (``--transport``)."""

    auto = "auto"  # yuv420 on CUDA when the clip allows it, rgb otherwise
    rgb = "rgb"
    yuv420 = "yuv420"  # 4:2:0 planes, colour converted on the device


class BitDepth(str, enum.Enum):
    """Bits per channel of PNG/TIFF image output (``--bit-depth``)."""

    b8 = "8"
    b16 = "16"

    @property
    def bits(self) -> int:
        return int(self.value)
