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
