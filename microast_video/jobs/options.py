"""The options the video and the image job share (the look, the runtime, the output), with
their defaults and checks taken from the one declaration of every option
(:data:`microast_video.core.schema.OPTIONS`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..core.options import Network, Precision
from ..core.schema import OPTIONS, default


@dataclasses.dataclass(frozen=True, kw_only=True)
class SharedOptions:
    """What ``microast-video INPUT`` and ``microast-video image`` both take (keywords only)."""

    styles: tuple[Path, ...] = ()
    output: Path | None = None
    style_weights: tuple[float, ...] | None = None
    signals: Path | None = None
    style_size: int | None = default("style_size")
    alpha: float = default("alpha")
    strength: float = default("strength")  # 0 = the input itself, 1 = the full style
    network: Network = default("network")
    style_model: str | None = default("style_model")  # a Johnson network's checkpoint
    preserve_color: bool = default("preserve_color")
    device: str = default("device")
    precision: Precision = default("precision")
    weights: Path | None = None
    overwrite: bool = False
    max_pixels: int = default("max_pixels")  # largest picture decoded (frames, content and style images)
    input_colorspace: str | None = default("input_colorspace")  # OpenColorIO names
    output_colorspace: str | None = default("output_colorspace")
    ocio_config: str | None = default("ocio_config")


def check_declared(values: Any, names: Iterable[str] | None = None) -> None:
    """Check every declared option among the fields of ``values`` (or ``names`` of them):
    :class:`~microast_video.core.errors.OptionError` ``"--flag problem"`` for the first bad one."""
    fields = [f.name for f in dataclasses.fields(values)] if names is None else list(names)
    for name in fields:
        if name in OPTIONS:
            OPTIONS[name].check(getattr(values, name))
