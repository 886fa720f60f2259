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
        where = self.config or os.environ.get("OCIO") or BUILT_IN
        try:
            if where.startswith("ocio://"):
                cfg = OCIO.Config.CreateFromBuiltinConfig(where.removeprefix("ocio://"))
            else:
                cfg = OCIO.Config.CreateFromFile(where)
        except Exception as err:  # noqa: BLE001 - OCIO's own exception types: one line
            raise OptionError(f"OpenColorIO config {where!r}: {' '.join(str(err).split())[:200]}") from None
        names = {cs.getName() for cs in cfg.getColorSpaces()}
        for flag, name in (("--input-colorspace", self.source), ("--output-colorspace", self.target)):
            if cfg.getColorSpace(name) is None:
                raise OptionError(f"{flag} {name!r}: not a colour space of {where} (e.g. {', '.join(sorted(names)[:6])})")
        return cfg

    def check(self) -> None:
        """Refuse unknown colour spaces or an unreadable config (one line), before any work."""
        self._config  # noqa: B018 - built for its checks

    @cached_property
    def _to_display(self) -> Any:
        return self._config.getProcessor(self.source, DISPLAY).getDefaultCPUProcessor()

    @cached_property
    def _from_display(self) -> Any:
        return self._config.getProcessor(DISPLAY, self.target).getDefaultCPUProcessor()

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


def plan_colour(input_colorspace: str | None, output_colorspace: str | None, config: str | None, float_input: bool,
                float_output: bool) -> ColourManagement | None:
    """What colour management a job needs (None: none: display-referred frames in and out)."""
    if not (float_input or float_output or input_colorspace or output_colorspace):
        return None
    source = input_colorspace or (EXR_DEFAULT if float_input else DISPLAY)
    target = output_colorspace or ((source if source != DISPLAY else EXR_DEFAULT) if float_output else DISPLAY)
    cm = ColourManagement(source, target, config)
    cm.check()
    return cm
