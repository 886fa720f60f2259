"""The command line's options: the job options from their one declaration
(:data:`~microast_video.core.schema.OPTIONS`), and the few that only the command line has."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.schema import OPTIONS


def declared(name: str, *names: str, help: str | None = None) -> Any:
    """The typer option of the job option ``name``, from its one declaration
    (:data:`~microast_video.core.schema.OPTIONS`): flag, type and help. Its values are checked by
    the job, as a manifest's and a keyframes file's are, so all refuse the same values alike."""
    option = OPTIONS[name]
    if option.kind is bool:
        return Annotated[bool, typer.Option(option.flag, *names, help=help or option.help_text)]
    return Annotated[option.annotation, typer.Option(
        option.flag, *names, help=help or option.help_text, show_default=option.default is not None,
        parser=parser_of(option), metavar=metavar_of(option))]


def parser_of(option: Any) -> Any:
    def parse(text: Any) -> Any:
        try:
            return option.parse(text)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    return parse


def metavar_of(option: Any) -> str:
    if isinstance(option.kind, type) and issubclass(option.kind, enum.Enum):
        return "|".join(str(e.value) for e in option.kind)
    return {int: "INTEGER", float: "FLOAT"}.get(option.kind, "TEXT")


# Options shared by the commands (typer has no option groups; these aliases keep them equal).
StyleOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--style", "-s", help="Style image (JPEG/PNG/WebP/TIFF). Repeat to mix several styles."),
]
StyleWeightsOpt = Annotated[
    Optional[str], typer.Option(help="Comma-separated weights of the styles, summing to 1 (default: equal).")]
SignalsOpt = Annotated[
    Optional[Path],
    typer.Option("--signals", help="Precomputed style signals (from `microast-video signals`) instead of --style."),
]
AlphaOpt = declared("alpha")
StrengthOpt = declared("strength")
NetworkOpt = declared("network")
StyleModelOpt = declared("style_model")
PreserveColorOpt = declared("preserve_color")
StyleSizeOpt = declared("style_size")
MatteOpt = Annotated[Optional[Path], typer.Option(
    help="Regions: a matte clip (grey, or the alpha of ProRes 4444 / PNG / VP9-alpha) or still image; the first "
         "--style where it is white, the second (or the original picture) where it is black, soft edges blended.")]
StyleAtOpt = Annotated[Optional[list[str]], typer.Option(
    "--style-at", help="Style keyframe TIME:IMAGE (seconds, or frames as 120f); repeat; styles are interpolated "
                       "between keyframes.")]
AlphaAtOpt = Annotated[Optional[list[str]], typer.Option(
    "--alpha-at", help="Alpha keyframe TIME:VALUE (e.g. 0:1 --alpha-at 5:0.6); repeat.")]
StrengthAtOpt = Annotated[Optional[list[str]], typer.Option(
    "--strength-at", help="Strength keyframe TIME:VALUE (e.g. 0:0 --strength-at 2:1 fades the look in); repeat.")]
KeyframesOpt = Annotated[Optional[Path], typer.Option(
    help="Keyframe file (TOML): style = [[0, \"a.jpg\"], [4.5, \"b.jpg\"]], strength = [[0, 1.0]], alpha = [[0, 1.0]], "
         "ease = \"smooth\".")]
EaseOpt = declared("ease")
MaxPixelsOpt = declared("max_pixels")
DeviceOpt = declared("device")
PrecisionOpt = declared("precision")
WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(help="Folder with the official MicroAST checkpoints (default: $MICROAST_VIDEO_WEIGHTS, the cache, "
                      "or download)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
ChartOpt = Annotated[Optional[Path], typer.Option(
    help="Draw a PNG chart of per-frame time and stage busy time here (needs the chart extra).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary line and no notices.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]
