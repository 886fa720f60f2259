"""The ``microast-video`` command line.

``microast-video input.mp4 --style art.jpg`` (no sub-command word) is the video job;
``image``, ``signals`` and ``bench`` are sub-commands. Heavy imports happen inside the
commands, so ``--help`` is instant and importing this module does no work.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._errors import InputError, MicroastError, OutputError, Terminated
from ._options import Codec, CompileMode, Precision
from ._paths import check_output

app = typer.Typer(
    name="microast-video",
    help="Restyle video (and images) with the MicroAST style-transfer network.\n\n"
    "Run `microast-video INPUT --style STYLE` for a video; see each command's --help.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Options shared by the commands (typer has no option groups; these aliases keep them equal).
StyleOpt = Annotated[
    Optional[list[Path]],
    typer.Option("--style", "-s", help="Style image (JPEG/PNG/WebP/TIFF). Repeat to mix several styles."),
]
StyleWeightsOpt = Annotated[
    Optional[str],
    typer.Option(help="Comma-separated weights of the styles, summing to 1 (default: equal)."),
]
SignalsOpt = Annotated[
    Optional[Path],
    typer.Option("--signals", help="Precomputed style signals (from `microast-video signals`) instead of --style."),
]
AlphaOpt = Annotated[float, typer.Option(help="Content-style weight: 1 = full style.")]
PreserveColorOpt = Annotated[bool, typer.Option("--preserve-color", help="Keep the content's colours; take only the style's luma.")]
StyleSizeOpt = Annotated[
    Optional[int],
    typer.Option(help="Resize each style image to this longest side (default: its own size, capped at 2048)."),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
PrecisionOpt = Annotated[Precision, typer.Option(help="Numeric precision; auto = fp16 on CUDA, fp32 on CPU.")]
WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(help="Folder with the official MicroAST checkpoints (default: $MICROAST_VIDEO_WEIGHTS, the cache, or download)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output file.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]


def _error(message: str) -> None:
    typer.echo(f"microast-video: error: {message}", err=True)


@contextlib.contextmanager
def _user_errors(debug: bool) -> Iterator[None]:
    """Turn user errors into one line on stderr and a non-zero exit (traceback with --debug)."""
    try:
        yield
    except MicroastError as err:
        if debug:
            traceback.print_exc()
        _error(str(err))
        raise typer.Exit(err.exit_code) from None
    except ValueError as err:  # bad values reaching the library (sizes, weights, ...)
        if debug:
            traceback.print_exc()
        _error(str(err))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        _error("interrupted; nothing was written")
        raise typer.Exit(130) from None
    except Terminated:
        _error("terminated; nothing was written")
        raise typer.Exit(143) from None


def _parse_weights(text: str | None, n: int) -> list[float] | None:
    if text is None:
        return None
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--style-weights must be comma-separated numbers, got {text!r}") from None
    if len(weights) != n:
        raise ValueError(f"--style-weights has {len(weights)} weights for {n} style(s)")
    return weights


@app.command("image")
def image_command(
    content: Annotated[Path, typer.Argument(help="Content image to stylize (any size, 4K included).", metavar="CONTENT")],
    style: StyleOpt = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output image (.png, .jpg, .tif, .webp); default CONTENT_stylized.png.")
    ] = None,
    alpha: AlphaOpt = 1.0,
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = False,
    style_size: StyleSizeOpt = None,
    bit_depth: Annotated[int, typer.Option(help="Bits per channel of PNG/TIFF output: 8 or 16.")] = 8,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize one image."""
    with _user_errors(debug):
        from ._device import resolve_device, resolve_precision
        from ._engine import Stylizer, fast_settings
        from ._image import load_content_image, write_image
        from ._style import job_signals
        from .models import MicroAST

        if bit_depth not in (8, 16):
            raise ValueError(f"--bit-depth must be 8 or 16, got {bit_depth}")
        if not content.is_file():
            raise InputError(f"content image {content}: file not found")
        output = output or content.with_name(f"{content.stem}_stylized.png")
        check_output(output, [content, *(style or []), signals], overwrite=overwrite)
        dev = resolve_device(device)
        dtype = resolve_precision(precision, dev)
        frame = load_content_image(content)
        model = MicroAST.from_pretrained(weights, device=dev)
        sig = job_signals(model, style or [], _parse_weights(style_weights, len(style or [])), signals, style_size)
        settings = fast_settings(dev, dtype, frame.shape[-2], frame.shape[-1], frames=1)
        stylizer = Stylizer(model, sig, dtype=dtype, alpha=alpha, color_matrix="bt601" if preserve_color else None,
                            **settings)
        out = stylizer(frame.to(dev))
        write_image(output, out.cpu(), bit_depth=bit_depth)
        typer.echo(f"wrote {output} ({frame.shape[-1]}x{frame.shape[-2]}, {dev}, {str(dtype).removeprefix('torch.')})", err=True)


@app.command("signals")
def signals_command(
    style: StyleOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Signals file to write (.npz).")] = Path("style.signals.npz"),
    style_weights: StyleWeightsOpt = None,
    style_size: StyleSizeOpt = None,
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compute a style's modulation signals once and save them for batch jobs (--signals)."""
    with _user_errors(debug):
        from ._style import job_signals
        from .models import MicroAST

        check_output(output, list(style or []), overwrite=overwrite)
        model = MicroAST.from_pretrained(weights, device="cpu")
        sig = job_signals(model, style or [], _parse_weights(style_weights, len(style or [])), None, style_size)
        sig.save(output)
        typer.echo(f"wrote {output}", err=True)


@app.command("video")
def video_command(
    input: Annotated[Path, typer.Argument(help="Video file (any container and codec FFmpeg reads).", show_default=False, metavar="INPUT")],
    style: StyleOpt = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Output video (.mp4, .mov, .mkv); default INPUT_stylized.EXT beside the input.")
    ] = None,
    alpha: AlphaOpt = 1.0,
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = False,
    style_size: StyleSizeOpt = None,
    codec: Annotated[Codec, typer.Option(help="Video codec: h264, hevc (10-bit for deep sources), prores (422 HQ), ffv1 (lossless), *_nvenc.")] = Codec.h264,
    crf: Annotated[Optional[int], typer.Option(help="Quality (lower is better); default 18 for h264, 20 for hevc.")] = None,
    preset: Annotated[Optional[str], typer.Option(help="Encoder preset (default medium; p5 for NVENC).")] = None,
    pix_fmt: Annotated[Optional[str], typer.Option(help="Output pixel format (default yuv420p; yuv422p10le for prores; 10-bit for deep sources).")] = None,
    start: Annotated[float, typer.Option(help="Start this many seconds into the clip.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option(help="Process only this many seconds.")] = None,
    height: Annotated[Optional[int], typer.Option(help="Process and output at this height; width follows the display aspect ratio.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Frames per network batch (default: by frame size, 1 at 1080p and above).")] = None,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    compile: Annotated[CompileMode, typer.Option(help="torch.compile the network: auto = when the clip is long enough to pay for it.")] = CompileMode.auto,
    transport: Annotated[str, typer.Option(help="How frames reach the device: rgb, yuv420 (4:2:0 planes, colour converted on the device), auto (yuv420 on CUDA).")] = "auto",
    weights: WeightsOpt = None,
    report: Annotated[Optional[Path], typer.Option(help="Write a JSON report (per-stage and per-frame times) here.")] = None,
    overwrite: OverwriteOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no summary line.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize a video: `microast-video INPUT --style STYLE` (the default command)."""
    with _user_errors(debug):
        from ._encode import EncodeSettings
        from ._pipeline import VideoJob, run_video, summary_line

        job = VideoJob(
            input=input,
            styles=tuple(style or ()),
            output=output,
            style_weights=tuple(_parse_weights(style_weights, len(style or ()))) if style_weights else None,
            signals=signals,
            style_size=style_size,
            alpha=alpha,
            preserve_color=preserve_color,
            device=device,
            precision=precision,
            batch_size=batch_size,
            encode=EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt),
            start=start,
            duration=duration,
            height=height,
            overwrite=overwrite,
            report=report,
            weights=weights,
            progress=not quiet,
            compile=compile,
            transport=transport,
        )
        result = run_video(job)
        if not quiet:
            typer.echo(f"wrote {result['output']}: {summary_line(result)}", err=True)


@app.command("bench")
def bench_command(
    resolution: Annotated[str, typer.Option(help="Frame size WxH of the synthesized footage.")] = "3840x2160",
    frames: Annotated[int, typer.Option(min=1, help="Frames to process.")] = 8,
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = Precision.auto,
    batch_size: Annotated[int, typer.Option(min=1, help="Frames per network batch.")] = 1,
    input: Annotated[Optional[Path], typer.Option("--input", help="Measure on this clip instead of synthesized footage.")] = None,
    style: Annotated[Optional[Path], typer.Option(help="Style image (default: a procedural painting).")] = None,
    naive_frames: Annotated[Optional[int], typer.Option(min=1, help="Frames for the naive baseline (default 2 at 4K, 3 below).")] = None,
    codec: Annotated[Codec, typer.Option(help="Codec of the end-to-end run.")] = Codec.h264,
    compile: Annotated[CompileMode, typer.Option(help="torch.compile the network (its one-off cost is reported apart).")] = CompileMode.on,
    preset: Annotated[Optional[str], typer.Option(help="Encoder preset of the end-to-end run.")] = None,
    weights: WeightsOpt = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON here.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Measure fps, stage times and memory, and compare with a naive per-frame baseline."""
    with _user_errors(debug):
        from ._bench import format_table, parse_resolution, run_bench

        if input is not None and not input.is_file():
            raise InputError(f"input {input}: file not found")
        if style is not None and not style.is_file():
            raise InputError(f"style image {style}: file not found")
        if json_path is not None and not json_path.parent.is_dir():
            raise OutputError(f"--json {json_path}: folder {json_path.parent} does not exist")
        result = run_bench(
            resolution=parse_resolution(resolution), frames=frames, device=device, precision=precision.value,
            batch_size=batch_size, input_path=input, style=style, naive_frames=naive_frames, codec=codec.value,
            preset=preset, weights=weights, compile=compile.value, log=lambda m: typer.echo(m, err=True),
        )
        typer.echo(format_table(result))
        if json_path is not None:
            json_path.write_text(json.dumps(result, indent=1) + "\n")


_COMMANDS = ("image", "signals", "video", "bench")


def route(argv: Sequence[str]) -> list[str]:
    """Insert the ``video`` command when the first word is not a command or a top-level flag."""
    args = list(argv)
    if args and args[0] not in _COMMANDS and args[0] not in ("--help", "-h", "--version"):
        args.insert(0, "video")
    return args


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)  # SIGTERM cleans up like Ctrl-C (exit 143)
    args = route(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from . import __version__

        typer.echo(f"microast-video {__version__}")
        return
    app(args=args, prog_name="microast-video")
