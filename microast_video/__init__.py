"""microast-video: restyle video with the MicroAST arbitrary style-transfer network.

The public surface is re-exported here from private modules; importing the package
does no work (torch and the rest are imported on first use of a name).

    >>> from microast_video import MicroAST, load_style_image
    >>> model = MicroAST.from_pretrained()
    >>> signals = model.encode_style(load_style_image("art.jpg"))
    >>> out = model(frames, signals)            # (N, 3, H, W) raw output
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "MicroAST": ".models",
    "StyleSignals": "._signals",
    "mix_signals": "._signals",
    "compute_signals": "._style",
    "Stylizer": "._engine",
    "preserve_color": "._color",
    "rgb_to_ycbcr": "._color",
    "ycbcr_to_rgb": "._color",
    "read_image": "._image",
    "write_image": "._image",
    "load_style_image": "._image",
    "load_content_image": "._image",
    "resolve_weights": "._weights",
    "Precision": "._options",
    "Codec": "._options",
    "VideoJob": "._pipeline",
    "run_video": "._pipeline",
    "Frame": "._frame",
    "probe": "._decode",
    "decode_frames": "._decode",
    "resolve_device": "._device",
    "resolve_precision": "._device",
    "MicroastError": "._errors",
    "InputError": "._errors",
    "OutputError": "._errors",
    "WeightsError": "._errors",
    "DeviceError": "._errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from ._color import preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
    from ._decode import decode_frames, probe
    from ._device import resolve_device, resolve_precision
    from ._frame import Frame
    from ._options import Codec, Precision
    from ._pipeline import VideoJob, run_video
    from ._engine import Stylizer
    from ._errors import DeviceError, InputError, MicroastError, OutputError, WeightsError
    from ._image import load_content_image, load_style_image, read_image, write_image
    from ._signals import StyleSignals, mix_signals
    from ._style import compute_signals
    from ._weights import resolve_weights
    from .models import MicroAST


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
