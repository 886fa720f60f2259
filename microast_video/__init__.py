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
    "load_model": ".style.pretrained",
    "load_network": ".style.networks",
    "Network": ".core.options",
    "resolve_weights": ".style.weights",
    "compute_signals": ".style.signals",
    "save_signals": ".style.signals_file",
    "load_signals": ".style.signals_file",
    # images and colour
    "read_image": ".media.image",
    "load_style_image": ".media.image",
    "load_content_image": ".media.image",
    "write_image": ".media.image_write",
    "preserve_color": ".colour.convert",
    "rgb_to_ycbcr": ".colour.convert",
    "ycbcr_to_rgb": ".colour.convert",
    # the engine
    "Stylizer": ".engine.stylizer",
    "EngineSettings": ".engine.stylizer",
    "engine_settings": ".engine.stylizer",
    "prepare_runtime": ".engine.stylizer",
    "FrameEngine": ".engine.stylizer",
    "resolve_device": ".engine.device",
    "resolve_precision": ".engine.device",
    # video: frames, decoding, the jobs
    "Frame": ".core.frame",
    "VideoInfo": ".media.probe",
    "probe": ".media.probe",
    "decode_frames": ".media.decode",
    "EncodeSettings": ".media.encode_plan",
    "VideoJob": ".jobs.plan",
    "run_video": ".jobs.video",
    "measure_flicker": ".temporal.flicker",
    # batch jobs
    "Manifest": ".batch.manifest",
    "load_manifest": ".batch.manifest",
    "manifest_from_dict": ".batch.manifest",
    "BatchOptions": ".batch.types",
    "run_batch": ".batch.run",
    "contact_sheet": ".jobs.contact",
    "frames_at": ".jobs.contact",
    "sheet_grid": ".jobs.contact",
    "labelled": ".jobs.contact",
    "png_bytes": ".jobs.contact",
    "ImageJob": ".jobs.image",
    "run_image": ".jobs.image",
    # option choices and errors
    "Precision": ".core.options",
    "Codec": ".core.options",
    "CompileMode": ".core.options",
    "Transport": ".core.options",
    "MicroastError": ".core.errors",
    "InputError": ".core.errors",
    "OutputError": ".core.errors",
    "OptionError": ".core.errors",
    "WeightsError": ".core.errors",
    "DeviceError": ".core.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .batch.manifest import Manifest, load_manifest, manifest_from_dict
    from .batch.run import run_batch
    from .batch.types import BatchOptions
    from .colour.convert import preserve_color, rgb_to_ycbcr, ycbcr_to_rgb
    from .core.errors import (
        DeviceError,
        InputError,
        MicroastError,
        OptionError,
        OutputError,
        WeightsError,
    )
    from .core.frame import Frame
    from .core.options import Codec, CompileMode, Network, Precision, Transport
    from .engine.device import resolve_device, resolve_precision
    from .engine.stylizer import (
        EngineSettings,
        FrameEngine,
        Stylizer,
        engine_settings,
        prepare_runtime,
    )
    from .jobs.contact import contact_sheet, frames_at, labelled, png_bytes, sheet_grid
    from .jobs.image import ImageJob, run_image
    from .jobs.plan import VideoJob
    from .jobs.video import run_video
    from .media.decode import decode_frames
    from .media.encode_plan import EncodeSettings
    from .media.image import load_content_image, load_style_image, read_image
    from .media.image_write import write_image
    from .media.probe import VideoInfo, probe
    from .models import MicroAST, StyleSignals, mix_signals
    from .style.networks import load_network
    from .style.pretrained import load_model
    from .style.signals import compute_signals
    from .style.signals_file import load_signals, save_signals
    from .style.weights import resolve_weights
    from .temporal.flicker import measure_flicker


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
