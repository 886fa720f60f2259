"""microast-video: restyle video with the MicroAST arbitrary style-transfer network.

The public surface is re-exported here from private modules; importing the package
does no work (torch and the rest are imported on first use of a name).

    >>> from microast_video import load_model, load_style_image
    >>> model = load_model()                    # the official weights, CPU
    >>> signals = model.encode_style(load_style_image("art.jpg"))
    >>> out = model(frames, signals)            # (N, 3, H, W) raw output
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_EXPORTS = {
    # the network and its style signals
    "MicroAST": ".models",
    "StyleSignals": ".models",
    "mix_signals": ".models",
    "load_model": "._pretrained",
    "resolve_weights": "._weights",
    "compute_signals": "._style",
    "save_signals": "._signals",
    "load_signals": "._signals",
    # images and colour
    "read_image": "._image",
    "load_style_image": "._image",
    "load_content_image": "._image",
    "write_image": "._image_write",
    "preserve_color": "._color",
    "rgb_to_ycbcr": "._color",
    "ycbcr_to_rgb": "._color",
    # the engine
    "Stylizer": "._engine",
    "EngineSettings": "._engine",
    "engine_settings": "._engine",
    "prepare_runtime": "._engine",
    "FrameEngine": "._engine",
    "resolve_device": "._device",
    "resolve_precision": "._device",
    # video: frames, decoding, the jobs
    "Frame": "._frame",
    "VideoInfo": "._probe",
    "probe": "._probe",
    "decode_frames": "._decode",
    "EncodeSettings": "._encode_plan",
    "VideoJob": "._job",
    "run_video": "._pipeline",
    "measure_flicker": "._flicker",
    # batch jobs
    "Manifest": "._manifest",
    "load_manifest": "._manifest",
    "manifest_from_dict": "._manifest",
    "BatchOptions": "._batch",
    "run_batch": "._batch",
    "contact_sheet": "._contact",
    "frames_at": "._contact",
    "sheet_grid": "._contact",
    "labelled": "._contact",
    "png_bytes": "._contact",
    "ImageJob": "._image_job",
    "run_image": "._image_job",
    # option choices and errors
    "Precision": "._options",
    "Codec": "._options",
    "CompileMode": "._options",
    "Transport": "._options",
    "MicroastError": "._errors",
    "InputError": "._errors",
    "OutputError": "._errors",
    "OptionError": "._errors",
    "WeightsError": "._errors",
    "DeviceError": "._errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from ._color import preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
    from ._decode import decode_frames
    from ._device import resolve_device, resolve_precision
    from ._encode_plan import EncodeSettings
    from ._engine import EngineSettings, FrameEngine, Stylizer, engine_settings, prepare_runtime
    from ._errors import DeviceError, InputError, MicroastError, OptionError, OutputError, WeightsError
    from ._frame import Frame
    from ._image import load_content_image, load_style_image, read_image
    from ._image_job import ImageJob, run_image
    from ._image_write import write_image
    from ._batch import BatchOptions, run_batch
    from ._contact import contact_sheet, frames_at, labelled, png_bytes, sheet_grid
    from ._flicker import measure_flicker
    from ._job import VideoJob
    from ._manifest import Manifest, load_manifest, manifest_from_dict
    from ._options import Codec, CompileMode, Precision, Transport
    from ._pipeline import run_video
    from ._pretrained import load_model
    from ._probe import VideoInfo, probe
    from ._signals import load_signals, save_signals
    from ._style import compute_signals
    from ._weights import resolve_weights
    from .models import MicroAST, StyleSignals, mix_signals


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
