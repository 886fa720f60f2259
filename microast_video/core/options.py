"""Option choices shared by the CLI and the library (no heavy imports here)."""

from __future__ import annotations

import enum

from .errors import InputError, OptionError


class Ease(str, enum.Enum):
    """How values move between keyframes (``--ease``)."""

    linear = "linear"
    smooth = "smooth"  # smoothstep: starts and stops gently

    def apply(self, w: float) -> float:
        """The eased share of the way for a share ``w`` of the time."""
        return w if self is Ease.linear else w * w * (3 - 2 * w)


class Network(str, enum.Enum):
    """The style-transfer network (``--network``)."""

    microast = "microast"  # MicroAST (the default): arbitrary styles, the official weights
    adain = "adain"  # AdaIN (Huang & Belongie 2017): arbitrary styles, VGG-19 + trained decoder
    johnson = "johnson"  # a Johnson et al. 2016 feed-forward network: one style each (--style-model)


class Precision(str, enum.Enum):
    """Numeric precision of the content path (the style signals are always float32)."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


class Codec(str, enum.Enum):
    """Output video codecs (``--codec``)."""

    auto = "auto"  # h264 for SDR; for HDR, hevc (Main 10), or prores in .mov
    h264 = "h264"
    hevc = "hevc"
    prores = "prores"
    dnxhr = "dnxhr"
    ffv1 = "ffv1"
    h264_nvenc = "h264_nvenc"
    hevc_nvenc = "hevc_nvenc"


class ProresProfile(str, enum.Enum):
    """Apple ProRes profiles (``--prores-profile``); 4444 and 4444xq carry an input's alpha."""

    proxy = "proxy"
    lt = "lt"
    standard = "standard"
    hq = "hq"
    p4444 = "4444"
    p4444xq = "4444xq"


class DnxhrProfile(str, enum.Enum):
    """Avid DNxHR profiles (``--dnxhr-profile``): lb, sq, hq 8-bit 4:2:2; hqx 10-bit 4:2:2; 444 10-bit 4:4:4."""

    lb = "lb"
    sq = "sq"
    hq = "hq"
    hqx = "hqx"
    p444 = "444"


class KeepBars(str, enum.Enum):
    """Letterbox / pillarbox bars (``--keep-bars``)."""

    auto = "auto"  # found on the source: left black, unpainted
    off = "off"  # painted with the picture


class Missing(str, enum.Enum):
    """A gap in an image sequence's numbering (``--missing``)."""

    error = "error"  # refused, naming the first missing frame
    hold = "hold"  # the frame before the gap is held (repeated) for each missing number


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


class Deinterlace(str, enum.Enum):
    """Deinterlacing of the input (``--deinterlace``)."""

    auto = "auto"  # bwdif when the source is flagged interlaced
    on = "on"  # bwdif on every frame flagged interlaced, whatever the first frame says
    off = "off"  # keep the fields as they are


class Decode(str, enum.Enum):
    """Where the input is decoded (``--decode``)."""

    auto = "auto"  # on the GPU (NVDEC) when the job runs on CUDA and FFmpeg decodes the codec there
    cpu = "cpu"
    gpu = "gpu"  # NVDEC, or an error


class Temporal(str, enum.Enum):
    """Temporal stabilization of video (``--temporal``)."""

    on = "on"  # keep the painted texture steady from frame to frame, reset at scene cuts
    off = "off"  # every frame stylized on its own (the per-frame output, bit for bit)


class HdrMode(str, enum.Enum):
    """What happens to high-dynamic-range (HLG, PQ) input (``--hdr``)."""

    keep = "keep"  # stay HDR: 10-bit output with the source's HDR tags
    tonemap = "tonemap"  # tone-map to SDR BT.709 and tag the output so


#: Default of ``--max-pixels``: the largest picture (video frame, content or style image)
#: decoded. 40 MP holds 8K (7680x4320 = 33.2 MP) and DCI 8K (8192x4320 = 35.4 MP).
DEFAULT_MAX_PIXELS = 40_000_000
def megapixels(pixels: int) -> str:
    """A pixel count as messages show it: "33.2 MP", "0.0192 MP"."""
    return f"{pixels / 1e6:.3g} MP"


def check_pixels(name: str, width: int, height: int, max_pixels: int | None) -> None:
    """Refuse a picture declared ``width`` x ``height`` over ``max_pixels`` (``--max-pixels``),
    before it is decoded: ``InputError("NAME: WxH px (N MP) is over the limit of M MP; ...")``."""
    if max_pixels is not None and width * height > max_pixels:
        raise InputError(f"{name}: {width}x{height} px ({megapixels(width * height)}) is over the limit of "
                         f"{megapixels(max_pixels)}; raise it with --max-pixels")


#: The common height every clip is resized to before flicker is measured (``flicker --height``).
FLICKER_HEIGHT = 270
#: The largest height a preview stylizes and shows its frames at (``preview --height``).
PREVIEW_HEIGHT = 270

#: Largest ``--style-size`` (longest side of the style image the network sees).
MAX_STYLE_SIZE = 4096


def parse_resolution(text: str, option: str = "--resolution") -> tuple[int, int]:
    """A frame size option "WxH" as (width, height), each at least 16."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(f"{option} must look like 3840x2160, got {text!r}") from None
    if w < 16 or h < 16:
        raise OptionError(f"{option} must be at least 16x16, got {text!r}")
    return w, h
