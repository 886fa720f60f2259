"""Every job option declared once: its name, type, default, range and help.

The command line's options (:mod:`microast_video.cli`), a batch manifest's keys
(:mod:`microast_video.batch.manifest`), a keyframes file's values
(:mod:`microast_video.style.controls`) and a job's own checks (:mod:`microast_video.jobs.plan`)
all come from :data:`OPTIONS`, and every value goes through :meth:`Option.problem`: the four
accept and refuse the same values, in the same words.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, Optional

from .errors import OptionError
from .options import (
    DEFAULT_MAX_PIXELS,
    MAX_STYLE_SIZE,
    BitDepth,
    Codec,
    CompileMode,
    Decode,
    Deinterlace,
    DnxhrProfile,
    Ease,
    HdrMode,
    KeepBars,
    Missing,
    Network,
    Precision,
    ProresProfile,
    Temporal,
    Transport,
)


@dataclasses.dataclass(frozen=True)
class Option:
    """One option: ``name`` as Python spells it (``temporal_strength``; ``--temporal-strength``).

    Attributes:
        kind: float, int, bool, str or an :class:`enum.Enum` of choices.
        default: its value when not given (None: decided by the job, see ``help``).
        help: one sentence for ``--help``.
        lo, hi: the range of a number (inclusive; either may be None); ``lo_open``: above ``lo``.
    """

    name: str
    kind: type
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    short: str | None = None

    @property
    def flag(self) -> str:
        """The command line's spelling: ``--temporal-strength``."""
        return "--" + self.name.replace("_", "-")

    @property
    def annotation(self) -> Any:
        """The Python type of its values (``Optional`` when the default is None)."""
        return Optional[self.kind] if self.default is None else self.kind

    @property
    def help_text(self) -> str:
        """``help`` with the range, as ``--help`` shows it."""
        return f"{self.help} ({self.range_text()})" if self.lo is not None or self.hi is not None else self.help

    def range_text(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"between {_num(self.lo)} and {_num(self.hi)}"
        if self.lo is not None:
            return f"greater than {_num(self.lo)}" if self.lo_open else f"at least {_num(self.lo)}"
        return f"at most {_num(self.hi)}"

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is refused, in the words every caller shows, or None when it is good."""
        if value is None:
            return None if self.default is None else "must be given"
        if isinstance(self.kind, type) and issubclass(self.kind, enum.Enum):
            try:
                self.kind(value.value if isinstance(value, enum.Enum) else str(value))
            except ValueError:
                return f"must be one of {', '.join(str(e.value) for e in self.kind)}, got {value!r}"
            return None
        if self.kind in (bool, str):
            return None if isinstance(value, self.kind) else f"must be {'true or false' if self.kind is bool else 'a string'}, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.kind is int and not isinstance(value, int)):
            return f"must be {'an integer' if self.kind is int else 'a number'}, got {value!r}"
        bad_lo = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        if not math.isfinite(value) or bad_lo or (self.hi is not None and value > self.hi):
            return f"must be {self.range_text()}, got {value!r}"
        return None

    def parse(self, text: Any) -> Any:
        """A value as typed on a command line (``"0.5"``), checked: the value, or ValueError(problem)."""
        value = text
        if isinstance(text, str) and self.kind in (int, float):
            for kind in (self.kind, float):  # "2.5" for an integer: refused as the number 2.5
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        why = self.problem(value)
        if why is not None:
            raise ValueError(why)
        return self.check(value)

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` as the option's type; :class:`OptionError` ``"WHERE PROBLEM"`` (WHERE: the flag)."""
        why = self.problem(value)
        if why is not None:
            raise OptionError(f"{where or self.flag} {why}")
        if value is None or isinstance(value, (bool, str)) and self.kind in (bool, str):
            return value
        if issubclass(self.kind, enum.Enum):
            return self.kind(value.value if isinstance(value, enum.Enum) else str(value))
        return self.kind(value)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _declare(*options: Option) -> dict[str, Option]:
    return {o.name: o for o in options}


#: Every option of the jobs, by name.
OPTIONS: dict[str, Option] = _declare(
    Option("network", Network, Network.microast, "The style-transfer network: microast; adain (VGG-19 encoder, "
           "AdaIN, decoder: --weights DIR with vgg_normalised.pth and decoder.pth); johnson (one network per style: "
           "--style-model FILE)."),
    Option("style_model", str, None, "A Johnson network's checkpoint (pytorch/examples fast_neural_style "
           "TransformerNet .pth or .model), for --network johnson."),
    Option("strength", float, 1.0, "How strongly the look applies: 0 = the input itself, 1 = the full style, "
           "moving smoothly between (the styled picture mixed with the source).", 0, 1),
    Option("alpha", float, 1.0, "The upstream network's own content-style weight, reproduced exactly; its decoder "
           "was not trained below 1 (0.98 casts blue, 0.9 turns cyan): use --strength to dial a look down.", 0, 1),
    Option("preserve_color", bool, False, "Keep the content's colours; take only the style's luma."),
    Option("style_size", int, None, "Resize each style image to this longest side (default: its own size, capped "
           "at 2048).", 16, MAX_STYLE_SIZE),
    Option("codec", Codec, Codec.auto, "Video codec: auto (h264; for HDR sources hevc Main 10, or prores in .mov), "
           "h264, hevc (10-bit for deep sources), prores (--prores-profile), dnxhr (.mov/.mxf, --dnxhr-profile), "
           "ffv1 (lossless), *_nvenc."),
    Option("prores_profile", ProresProfile, ProresProfile.hq, "ProRes profile: proxy, lt, standard, hq (4:2:2), "
           "4444, 4444xq (4:4:4, keeping the input's alpha)."),
    Option("dnxhr_profile", DnxhrProfile, DnxhrProfile.hq, "DNxHR profile: lb, sq, hq (8-bit 4:2:2), hqx (10-bit "
           "4:2:2), 444 (10-bit 4:4:4)."),
    Option("crf", int, None, "Quality (lower is better); default 18 for h264, 20 for hevc.", 0, 51),
    Option("preset", str, None, "Encoder preset (default fast for h264, medium for hevc, p5 for NVENC)."),
    Option("pix_fmt", str, None, "Output pixel format (default yuv420p; yuv422p10le for prores; 10-bit for deep "
           "sources)."),
    Option("start", float, 0.0, "Start this many seconds into the clip.", 0),
    Option("duration", float, None, "Process only this many seconds.", 0, lo_open=True),
    Option("height", int, None, "Process and output at this height; width follows the display aspect ratio.",
           5, 100_000),
    Option("batch_size", int, None, "Frames per network batch (default: by frame size, 1 at 1080p and above).",
           1, 256),
    Option("device", str, "auto", "auto, cpu, cuda or cuda:N."),
    Option("precision", Precision, Precision.auto, "Numeric precision: fp32 is exact; auto = fp16 on CUDA, bf16 on "
           "CPUs that run it natively, else fp32."),
    Option("compile", CompileMode, CompileMode.auto, "torch.compile the network: auto = when the clip is long "
           "enough to pay for it."),
    Option("transport", Transport, Transport.auto, "How frames reach the device: rgb, yuv420 (4:2:0 planes, colour "
           "converted on the device), auto (yuv420 on CUDA)."),
    Option("temporal", Temporal, Temporal.on, "Keep the painted texture steady from frame to frame (reset at scene "
           "cuts); off = every frame on its own."),
    Option("temporal_strength", float, 0.95, "How much of the previous frame's texture carries over where motion "
           "is tracked (0 = per-frame).", 0, 1),
    Option("deinterlace", Deinterlace, Deinterlace.auto, "auto: deinterlace (bwdif) sources flagged interlaced; "
           "on: every interlaced frame; off: keep fields."),
    Option("decode", Decode, Decode.auto, "Where the input is decoded: auto = on the GPU (NVDEC) when the job "
           "runs on CUDA and FFmpeg decodes the codec there, else on the CPU (with a note on a GPU job); cpu; gpu "
           "(an error where NVDEC cannot)."),
    Option("fps", float, 24.0, "Frames a second of an image-sequence input (frames carry no rate; stated in the "
           "report).", 0, 1000, lo_open=True),
    Option("missing", Missing, Missing.error, "A gap in an image sequence's numbering: error = refused, naming the "
           "first missing frame; hold = the frame before the gap repeated for each missing number (a note says how "
           "many)."),
    Option("start_number", int, None, "First frame number of an image-sequence output (default: the input "
           "sequence's own numbers; a movie's frames count from 1).", 0),
    Option("input_colorspace", str, None, "The input's colour space, by its OpenColorIO name (default: what an "
           "EXR's chromaticities or a DPX's transfer field declare, else Linear Rec.709 (sRGB) for float frames, "
           "everything else display-referred sRGB / its own video tags)."),
    Option("output_colorspace", str, None, "The output's colour space, by its OpenColorIO name (default: the "
           "input's where the output holds it: any in OpenEXR, log in DPX; else display-referred)."),
    Option("ocio_config", str, None, "An OpenColorIO config file (default: $OCIO, else OpenColorIO's built-in CG "
           "config with the ACES colour spaces)."),
    Option("keep_bars", KeepBars, KeepBars.auto, "Letterbox / pillarbox bars: auto = constant black bars found on the "
           "source stay black, unpainted; off = painted with the picture."),
    Option("crop", str, None, "The picture area by hand, W:H:X:Y in the source's pixels (ffmpeg's crop syntax): "
           "outside it the source stays as it is."),
    Option("hdr", HdrMode, HdrMode.keep, "HDR (HLG/PQ) input: keep = 10-bit output with its HDR tags; tonemap = "
           "SDR BT.709."),
    Option("max_pixels", int, DEFAULT_MAX_PIXELS, "Largest picture decoded (input frames, content and style "
           "images), in pixels; larger ones are refused before decoding. The default holds 8K.", 1),
    Option("ease", Ease, Ease.linear, "How values move between keyframes."),
    Option("bit_depth", BitDepth, BitDepth.b8, "Bits per channel of PNG/TIFF output."),
)

#: The options of the encoder (:class:`~microast_video.media.encode_plan.EncodeSettings`).
ENCODE_OPTIONS = ("codec", "prores_profile", "dnxhr_profile", "crf", "preset", "pix_fmt")
#: The options a batch manifest's ``[defaults]``, looks and inputs may set.
MANIFEST_OPTIONS = ("network", "style_model", "strength", "alpha", "preserve_color", "style_size", *ENCODE_OPTIONS, "height", "start", "duration",
                    "temporal", "temporal_strength", "deinterlace", "decode", "keep_bars", "crop", "fps", "missing", "start_number", "input_colorspace", "output_colorspace",
                    "ocio_config", "hdr", "max_pixels", "device", "precision",
                    "batch_size", "transport", "compile", "ease")
#: The values a keyframes file holds besides its style keyframes (each checked as its option).
KEYFRAME_OPTIONS = ("strength", "alpha", "ease")
#: The keyframed numbers (``--strength-at``, ``--alpha-at``; ``strength = [[0, 1.0]]`` in a keyframes file).
KEYFRAME_VALUES = ("strength", "alpha")


def default(name: str) -> Any:
    """The default of the option ``name``."""
    return OPTIONS[name].default
