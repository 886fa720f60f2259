"""The image job: one still image stylized, as ``microast-video image`` runs it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..core.errors import OptionError
from ..core.files import FilePlan
from ..core.options import Network
from ..core.stages import terminate_on_signals
from ..engine.device import resolve_device, resolve_precision
from ..engine.stylizer import Stylizer, engine_settings, prepare_runtime
from ..media.image import check_image, load_content_image
from ..media.image_write import check_image_output, write_image
from ..style.networks import load_network, no_signals
from ..style.signals import check_style_source, job_signals
from .options import SharedOptions, check_declared


@dataclasses.dataclass(frozen=True)
class ImageJob(SharedOptions):
    """One image to stylize, with every option of ``microast-video image`` (all but ``content``
    by keyword)."""

    content: Path
    bit_depth: int = 8
    quiet: bool = False


def default_image_output(content: Path) -> Path:
    """``CONTENT_stylized.png`` beside the content image."""
    return content.with_name(f"{content.stem}_stylized.png")


def run_image(job: ImageJob) -> dict[str, Any]:
    """Stylize one image; returns what was done (output, size, device, precision).

    Phases: 1. check everything (options, files, output path); 2. load the network and the
    style signals; 3. stylize; 4. write the image atomically.

    Raises:
        InputError, OutputError, WeightsError, DeviceError, OptionError: one line each.
    """
    with terminate_on_signals():
        output = _check(job)                                                    # 1. check
        device = resolve_device(job.device, quiet=job.quiet)
        dtype = resolve_precision(job.precision, device)
        content = load_content_image(job.content, max_pixels=job.max_pixels)
        model = load_network(job.network, weights=job.weights, style_model=job.style_model, device=device,
                             progress=not job.quiet)                                  # 2. network, style
        signals = no_signals() if Network(job.network) is Network.johnson else job_signals(
            model, job.styles, job.style_weights, job.signals, job.style_size, job.max_pixels)
        h, w = content.shape[-2:]
        settings = engine_settings(device, dtype, h, w, frames=1)
        prepare_runtime(model, settings)
        stylizer = Stylizer(model, signals, settings, alpha=job.alpha,       # 3. stylize
                            color_matrix="bt601" if job.preserve_color else None)
        out = stylizer(content.to(device))
        if job.strength < 1.0:  # as a video frame: the look mixed with the content
            out = job.strength * out.clamp(0, 1) + (1.0 - job.strength) * content.to(out.device, out.dtype)
        write_image(output, out.cpu(), bit_depth=job.bit_depth, overwrite=job.overwrite)  # 4. write
    return {"output": str(output), "size": [w, h], "device": str(device),
            "precision": str(dtype).removeprefix("torch.")}


def _check(job: ImageJob) -> Path:
    check_declared(job)
    if Network(job.network) is Network.johnson:
        if job.style_model is None or job.styles or job.signals:
            raise OptionError("--network johnson takes --style-model FILE (its style is built in), no --style")
    else:
        check_style_source(job.styles, job.signals, job.style_weights, job.max_pixels)
    check_image(job.content, what="content image", max_pixels=job.max_pixels)
    output = job.output or default_image_output(job.content)
    check_image_output(output, job.bit_depth)
    files = FilePlan().read("content image", job.content).read("style", *job.styles).read("signals", job.signals)
    files.write("output", output).check(overwrite=job.overwrite)
    return output
