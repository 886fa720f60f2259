"""Colour management with OpenColorIO: scene-linear or log frames (OpenEXR, an ACEScg render)
are turned into the display-referred sRGB the networks were trained on, and the stylized
result back into the space the frames came in (or ``--output-colorspace``), so an EXR round
trip composites in its original space. The config is ``--ocio-config``, else ``$OCIO``, else
OpenColorIO's built-in CG config (ACES 1.3; nothing to download). Needs the ``post`` extra.
"""

from __future__ import annotations

import dataclasses
import os
from functools import cached_property
from typing import Any

import numpy as np

from ..core.errors import OptionError

#: The space the networks see: sRGB-encoded Rec.709, display-referred, in [0, 1].
DISPLAY = "sRGB Encoded Rec.709 (sRGB)"
#: What an OpenEXR frame is taken as unless told otherwise (what compositing tools assume).
EXR_DEFAULT = "Linear Rec.709 (sRGB)"
#: OpenColorIO's built-in config (OCIO >= 2.2).
BUILT_IN = "ocio://cg-config-latest"
#: Log DPX (transfer "Logarithmic" or "Printing density"): Kodak Cineon printing-density code
#: values over Rec.709 primaries, added to a config that has no such space.
CINEON = "Cineon Log (Linear Rec.709)"
#: Scene-linear spaces by their primaries and white point (OpenEXR's ``chromaticities``
#: attribute: red, green, blue, white as CIE xy), built-in config names.
PRIMARIES: dict[str, tuple[float, ...]] = {
    "Linear Rec.709 (sRGB)": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),
    "ACEScg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
    "ACES2065-1": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767),
    "Linear Rec.2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290),
    "Linear P3-D65": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290),
}


def space_of_chromaticities(chromaticities: tuple[float, ...]) -> str | None:
    """The scene-linear space whose primaries and white an EXR header's ``chromaticities`` are
    (within 0.002 in xy), or None (unknown primaries: the caller keeps its default)."""
    if len(chromaticities) != 8:
        raise ValueError(f"chromaticities must be 8 numbers, got {chromaticities = }")
    return next((name for name, xy in PRIMARIES.items()
                 if max(abs(a - b) for a, b in zip(xy, chromaticities, strict=True)) < 0.002), None)


def _cineon_curve(OCIO: Any, direction: Any) -> Any:
    """Kodak Cineon log (code value 685 white, 95 black, 0.002 density a code, 0.6 negative gamma)
    as OpenColorIO's log-affine transform: forward, linear -> code values in [0, 1]."""
    black = 10 ** ((95 - 685) * 0.002 / 0.6)
    curve = OCIO.LogAffineTransform(logSideSlope=[300 / 1023] * 3, logSideOffset=[685 / 1023] * 3,
                                    linSideSlope=[1 - black] * 3, linSideOffset=[black] * 3, direction=direction)
    curve.setBase(10)
    return curve


def _ocio() -> Any:
    try:
        import PyOpenColorIO as OCIO
    except ImportError:
        raise OptionError("colour management needs OpenColorIO: pip install 'microast-video[post]'") from None
    return OCIO


@dataclasses.dataclass(frozen=True)
class ColourManagement:
    """Frames in ``source`` space to :data:`DISPLAY` and back to ``target``, by ``config`` (the
    config and its two processors are made once per job, on first use)."""

    source: str
    target: str
    config: str | None = None

    @cached_property
    def _config(self) -> Any:
        OCIO = _ocio()
        try:
            if self.where.startswith("ocio://"):
                return OCIO.Config.CreateFromBuiltinConfig(self.where.removeprefix("ocio://"))
            return OCIO.Config.CreateFromFile(self.where)
        except Exception as err:  # noqa: BLE001 - OCIO's own exception types: one line
            raise OptionError(f"OpenColorIO config {self.where!r}: {' '.join(str(err).split())[:200]}") from None

    @property
    def where(self) -> str:
        """The config in use: ``--ocio-config``, else ``$OCIO``, else the built-in CG config."""
        return self.config or os.environ.get("OCIO") or BUILT_IN

    def _named(self, name: str, flag: str) -> str:
        """``name`` as the config calls it: its own name, or the space a studio config holds for a
        built-in one (OpenColorIO's IdentifyBuiltinColorSpace, by the interchange roles)."""
        cfg = self._config
        if name == CINEON or cfg.getColorSpace(name) is not None:
            return name
        OCIO = _ocio()
        try:
            return OCIO.Config.IdentifyBuiltinColorSpace(cfg, OCIO.Config.CreateFromBuiltinConfig(BUILT_IN[7:]), name)
        except Exception:  # noqa: BLE001 - not a built-in name, or the config lacks the roles
            names = sorted(cs.getName() for cs in cfg.getColorSpaces())
            raise OptionError(f"{flag} {name!r}: not a colour space of {self.where} (e.g. {', '.join(names[:6])})"
                              ) from None

    def check(self) -> None:
        """Refuse unknown colour spaces or an unreadable config (one line), before any work."""
        self._to_display, self._from_display  # noqa: B018 - built for their checks

    def _processor(self, source: str, target: str) -> Any:
        """A CPU processor ``source`` -> ``target`` (either may be :data:`CINEON`, built here)."""
        OCIO = _ocio()
        linear = self._named(EXR_DEFAULT, "the linear space of Cineon log") if CINEON in (source, target) else None
        steps = []
        if source == CINEON:
            steps.append(_cineon_curve(OCIO, OCIO.TRANSFORM_DIR_INVERSE))
        steps.append(OCIO.ColorSpaceTransform(linear if source == CINEON else source,
                                              linear if target == CINEON else target))
        if target == CINEON:
            steps.append(_cineon_curve(OCIO, OCIO.TRANSFORM_DIR_FORWARD))
        return self._config.getProcessor(OCIO.GroupTransform(steps)).getDefaultCPUProcessor()

    @cached_property
    def _to_display(self) -> Any:
        display = self._named(DISPLAY, "the networks' display space")
        return self._processor(self._named(self.source, "--input-colorspace"), display)

    @cached_property
    def _from_display(self) -> Any:
        display = self._named(DISPLAY, "the networks' display space")
        return self._processor(display, self._named(self.target, "--output-colorspace"))

    @staticmethod
    def _apply(rgb: np.ndarray, processor: Any) -> np.ndarray:
        out = np.ascontiguousarray(rgb, dtype=np.float32).copy()
        processor.applyRGB(out)
        return out

    def to_display(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 in the source space -> display-referred sRGB in [0, 1] (clipped)."""
        return np.clip(rgb if self.source == DISPLAY else self._apply(rgb, self._to_display), 0.0, 1.0)

    def from_display(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) display-referred sRGB in [0, 1] -> float32 in the target space."""
        return rgb.astype(np.float32) if self.target == DISPLAY else self._apply(rgb, self._from_display)


def in_output_space(frames: Any, cm: ColourManagement, as_float: bool) -> Any:
    """The last colour stage: each frame's display-referred samples in the target space, as
    float32 RGB for an OpenEXR output (``as_float``), else as samples of the frame's own type."""
    for frame in frames:
        top = 65535.0 if frame.data.dtype == np.uint16 else 255.0
        rgb = cm.from_display(frame.data.astype(np.float32) * (1 / top))
        data = rgb if as_float else (np.clip(rgb, 0, 1) * top + 0.5).astype(frame.data.dtype)
        yield frame.with_data(np.ascontiguousarray(data))


def plan_colour(input_colorspace: str | None, output_colorspace: str | None, config: str | None, *,
                declared: str | None = None, float_input: bool = False, output: str = "") -> ColourManagement | None:
    """What colour management a job needs (None: display-referred frames in and out).

    The source space is ``input_colorspace``, else what the frames' headers ``declared``
    (an EXR's chromaticities, a log DPX), else Linear Rec.709 for float frames, else display.
    The output (``output``: "exr", "dpx" or another format's name) is in ``output_colorspace``,
    else in the source's space where its format holds it (an EXR any, a DPX log), else display.
    """
    source = input_colorspace or declared or (EXR_DEFAULT if float_input else DISPLAY)
    if source == DISPLAY and not output_colorspace and output != "exr":
        return None
    keeps = output == "exr" or (output == "dpx" and source == CINEON)
    target = output_colorspace or ((source if source != DISPLAY else EXR_DEFAULT) if keeps else DISPLAY)
    cm = ColourManagement(source, target, config)
    cm.check()
    return cm
