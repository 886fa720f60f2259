"""The image job: one still image stylized, as ``microast-video image`` runs it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..colour.ocio import DISPLAY, ColourManagement, plan_colour
from ..core.errors import OptionError
from ..core.files import FilePlan
from ..core.options import Network
from ..core.stages import terminate_on_signals
from ..engine.device import resolve_device, resolve_precision
from ..engine.stylizer import Stylizer, engine_settings, prepare_runtime
from ..media.frame_files import frame_spec, write_frame
from ..media.frame_header import HEADER_FORMATS, FrameHeader, read_frame, read_header
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
    """``CONTENT_stylized.png`` beside the content image (``.exr``, ``.dpx`` for those)."""
    ext = content.suffix.lower() if content.suffix.lower() in HEADER_FORMATS else ".png"
    return content.with_name(f"{content.stem}_stylized{ext}")


def run_image(job: ImageJob) -> dict[str, Any]:
    """Stylize one image; returns what was done (output, size, device, precision).

    Phases: 1. check everything (options, files, output path); 2. load the network and the
    style signals; 3. stylize; 4. write the image atomically.

    Raises:
        InputError, OutputError, WeightsError, DeviceError, OptionError: one line each.
    """
    with terminate_on_signals():
        output, colour = _check(job)                                            # 1. check
        device = resolve_device(job.device, quiet=job.quiet)
        dtype = resolve_precision(job.precision, device)
        content, head = _content(job, colour)
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
        _write(job, output, out.cpu(), colour, head)                                      # 4. write
    return {"output": str(output), "size": [w, h], "device": str(device),
            "precision": str(dtype).removeprefix("torch.")}


def _content(job: ImageJob, colour: ColourManagement | None) -> tuple[torch.Tensor, FrameHeader | None]:
    """The content as the network sees it ((1, 3, H, W) float in [0, 1], display-referred) and,
    for an OpenEXR or DPX frame, its header."""
    if job.content.suffix.lower() not in HEADER_FORMATS:
        return load_content_image(job.content, max_pixels=job.max_pixels), None
    rgb, head = read_frame(job.content, what="content image", max_pixels=job.max_pixels)
    shown_rgb = colour.to_display(rgb) if colour is not None else np.clip(rgb, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(shown_rgb.transpose(2, 0, 1)))[None].float(), head


def _write(job: ImageJob, output: Path, out: torch.Tensor, colour: ColourManagement | None,
           head: FrameHeader | None) -> None:
    """The stylized image: an OpenEXR or DPX frame in the output's space (with the content's
    timecode), or a picture file, display-referred."""
    if output.suffix.lower() not in HEADER_FORMATS:
        return write_image(output, out, bit_depth=job.bit_depth, overwrite=job.overwrite)
    rgb = out[0].clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float32)
    rgb = colour.from_display(rgb) if colour is not None else rgb
    exr = output.suffix.lower() == ".exr"
    data = rgb if exr else (np.clip(rgb, 0, 1) * 65535 + 0.5).astype(np.uint16)
    space = colour.target if colour is not None and colour.target != DISPLAY else None
    spec = frame_spec(HEADER_FORMATS[output.suffix.lower()], rgb.shape[1], rgb.shape[0], space=space,
                      timecode=head.timecode if head is not None else None)
    write_frame(output, data, spec, overwrite=job.overwrite)


def _check(job: ImageJob) -> tuple[Path, ColourManagement | None]:
    check_declared(job)
    if Network(job.network) is Network.johnson:
        if job.style_model is None or job.styles or job.signals:
            raise OptionError("--network johnson takes --style-model FILE (its style is built in), no --style")
    else:
        check_style_source(job.styles, job.signals, job.style_weights, job.max_pixels)
    output = job.output or default_image_output(job.content)
    frames = [p.suffix.lower() for p in (job.content, output) if p.suffix.lower() in HEADER_FORMATS]
    if job.content.suffix.lower() not in HEADER_FORMATS:
        check_image(job.content, what="content image", max_pixels=job.max_pixels)
    if output.suffix.lower() not in HEADER_FORMATS:
        check_image_output(output, job.bit_depth)
    files = FilePlan().read("content image", job.content).read("style", *job.styles).read("signals", job.signals)
    files.write("output", output).check(overwrite=job.overwrite)
    declared = read_header(job.content).colour_space if job.content.suffix.lower() in HEADER_FORMATS else None
    colour = plan_colour(job.input_colorspace, job.output_colorspace, job.ocio_config, declared=declared,
                         float_input=job.content.suffix.lower() == ".exr",
                         output={".exr": "exr", ".dpx": "dpx"}.get(output.suffix.lower(), "")) if frames or (
        job.input_colorspace or job.output_colorspace) else None
    return output, colour
