"""The ``microast-video`` command line: a thin shell over the jobs.

``microast-video input.mp4 --style art.jpg`` (no sub-command word) is the video job;
``image``, ``signals`` and ``bench`` are sub-commands. Heavy imports happen inside the
commands, so ``--help`` is instant and importing this module does no work.

Errors: the project's own user-facing errors (:class:`MicroastError`) and bad command
lines are one line on stderr and a non-zero exit; anything else is a bug and says so
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import contextlib
import enum
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .core.errors import MicroastError, Terminated
from .core.options import (
    Codec,
    CompileMode,
)
from .core.schema import OPTIONS

app = typer.Typer(
    name="microast-video",
    help="Restyle video (and images) with the MicroAST style-transfer network.\n\n"
    "Run `microast-video INPUT --style STYLE` for a video; see each command's --help.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)



def _declared(name: str, *names: str, help: str | None = None) -> Any:
    """The typer option of the job option ``name``, from its one declaration
    (:data:`~microast_video.core.schema.OPTIONS`): flag, type and help. Its values are checked by
    the job, as a manifest's and a keyframes file's are, so all refuse the same values alike."""
    option = OPTIONS[name]
    if option.kind is bool:
        return Annotated[bool, typer.Option(option.flag, *names, help=help or option.help_text)]
    return Annotated[option.annotation, typer.Option(
        option.flag, *names, help=help or option.help_text, show_default=option.default is not None,
        parser=_parser(option), metavar=_metavar(option))]


def _parser(option: Any) -> Any:
    def parse(text: Any) -> Any:
        try:
            return option.parse(text)
        except ValueError as err:
            raise typer.BadParameter(str(err)) from None
    return parse


def _metavar(option: Any) -> str:
    if isinstance(option.kind, type) and issubclass(option.kind, enum.Enum):
        return "|".join(str(e.value) for e in option.kind)
    return {int: "INTEGER", float: "FLOAT"}.get(option.kind, "TEXT")


def _default(name: str) -> Any:
    return OPTIONS[name].default


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
AlphaOpt = _declared("alpha")
PreserveColorOpt = _declared("preserve_color")
StyleSizeOpt = _declared("style_size")
MatteOpt = Annotated[Optional[Path], typer.Option(
    help="Regions: a matte clip (grey, or the alpha of ProRes 4444 / PNG / VP9-alpha) or still image; the first "
         "--style where it is white, the second (or the original picture) where it is black, soft edges blended.")]
StyleAtOpt = Annotated[Optional[list[str]], typer.Option(
    "--style-at", help="Style keyframe TIME:IMAGE (seconds, or frames as 120f); repeat; styles are interpolated "
                       "between keyframes.")]
AlphaAtOpt = Annotated[Optional[list[str]], typer.Option(
    "--alpha-at", help="Alpha keyframe TIME:VALUE (e.g. 0:1 --alpha-at 5:0.6); repeat.")]
KeyframesOpt = Annotated[Optional[Path], typer.Option(
    help="Keyframe file (TOML): style = [[0, \"a.jpg\"], [4.5, \"b.jpg\"]], alpha = [[0, 1.0]], ease = \"smooth\".")]
EaseOpt = _declared("ease")
MaxPixelsOpt = _declared("max_pixels")
DeviceOpt = _declared("device")
PrecisionOpt = _declared("precision")
WeightsOpt = Annotated[
    Optional[Path],
    typer.Option(help="Folder with the official MicroAST checkpoints (default: $MICROAST_VIDEO_WEIGHTS, the cache, "
                      "or download)."),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, no summary line and no notices.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]


def _error(message: str) -> None:
    typer.echo(f"microast-video: error: {message}", err=True)


@contextlib.contextmanager
def _user_errors(debug: bool) -> Iterator[None]:
    """User errors: one line and their exit code. Anything else is a bug, shown as one."""
    try:
        yield
    except MicroastError as err:
        if debug:
            traceback.print_exc()
        _error(str(err))
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        _error("interrupted; nothing was written")
        raise typer.Exit(130) from None
    except Terminated as err:
        _error("terminated; nothing was written")
        raise typer.Exit(err.exit_code) from None
    except typer.Exit:
        raise  # a command's own exit code
    except Exception as err:  # noqa: BLE001 - a bug: say so plainly
        if debug:
            traceback.print_exc()
        first = " ".join(str(err).split())[:300]
        _error(f"internal error (a bug in microast-video): {type(err).__name__}: {first}"
               f"{'' if debug else '; run again with --debug for the traceback'}")
        raise typer.Exit(70) from None


@app.command("image")
def image_command(
    content: Annotated[Path, typer.Argument(help="Content image to stylize (any size, 4K included).", metavar="CONTENT")],
    style: StyleOpt = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output image (.png, .jpg, .tif, .webp); default CONTENT_stylized.png.")] = None,
    alpha: AlphaOpt = _default("alpha"),
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = _default("preserve_color"),
    style_size: StyleSizeOpt = None,
    bit_depth: _declared("bit_depth") = _default("bit_depth"),
    device: DeviceOpt = _default("device"),
    precision: PrecisionOpt = _default("precision"),
    weights: WeightsOpt = None,
    max_pixels: MaxPixelsOpt = _default("max_pixels"),
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize one image."""
    with _user_errors(debug):
        from .jobs.image import ImageJob, run_image
        from .style.signals import parse_weights

        done = run_image(ImageJob(
            content=content, styles=tuple(style or ()), output=output, style_weights=parse_weights(style_weights),
            signals=signals, style_size=style_size, alpha=alpha, preserve_color=preserve_color,
            bit_depth=bit_depth.bits, device=device, precision=precision, weights=weights, overwrite=overwrite,
            quiet=quiet, max_pixels=max_pixels))
        if not quiet:
            w, h = done["size"]
            typer.echo(f"wrote {done['output']} ({w}x{h}, {done['device']}, {done['precision']})", err=True)


@app.command("signals")
def signals_command(
    style: StyleOpt = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Signals file to write (.npz).")] = Path(
        "style.signals.npz"),
    style_weights: StyleWeightsOpt = None,
    style_size: StyleSizeOpt = None,
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Compute a style's modulation signals once and save them for batch jobs (--signals)."""
    with _user_errors(debug):
        from .core.output import check_output
        from .core.stages import terminate_on_signals
        from .style.pretrained import load_model
        from .style.signals import check_style_source, job_signals, parse_weights
        from .style.signals_file import save_signals

        mix = parse_weights(style_weights)
        with terminate_on_signals():
            check_style_source(style or [], None, mix)
            check_output(output, list(style or []), overwrite=overwrite, what="style signals")
            model = load_model(weights, device="cpu")
            save_signals(job_signals(model, style or [], mix, None, style_size), output, overwrite=overwrite)
        typer.echo(f"wrote {output}", err=True)


@app.command("video")
def video_command(
    input: Annotated[Path, typer.Argument(help="Video file (any container and codec FFmpeg reads).",
                                          show_default=False, metavar="INPUT")],
    style: StyleOpt = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output video (.mp4, .mov, .mkv); default INPUT_stylized.EXT beside the input.")] = None,
    alpha: AlphaOpt = _default("alpha"),
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = _default("preserve_color"),
    style_size: StyleSizeOpt = None,
    codec: _declared("codec") = _default("codec"),
    crf: _declared("crf") = _default("crf"),
    preset: _declared("preset") = _default("preset"),
    pix_fmt: _declared("pix_fmt") = _default("pix_fmt"),
    start: _declared("start") = _default("start"),
    duration: _declared("duration") = _default("duration"),
    height: _declared("height") = _default("height"),
    batch_size: _declared("batch_size") = _default("batch_size"),
    device: DeviceOpt = _default("device"),
    precision: PrecisionOpt = _default("precision"),
    compile: _declared("compile") = _default("compile"),
    transport: _declared("transport") = _default("transport"),
    temporal: _declared("temporal") = _default("temporal"),
    temporal_strength: _declared("temporal_strength") = _default("temporal_strength"),
    deinterlace: _declared("deinterlace") = _default("deinterlace"),
    hdr: _declared("hdr") = _default("hdr"),
    max_pixels: MaxPixelsOpt = _default("max_pixels"),
    matte: MatteOpt = None,
    style_at: StyleAtOpt = None,
    alpha_at: AlphaAtOpt = None,
    keyframes: KeyframesOpt = None,
    ease: EaseOpt = _default("ease"),
    weights: WeightsOpt = None,
    report: Annotated[Optional[Path], typer.Option(help="Write a JSON report (per-stage and per-frame times) here.")] = None,
    chart: Annotated[Optional[Path], typer.Option(
        help="Draw a PNG chart of per-frame time and stage busy time here (needs the chart extra).")] = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize a video: `microast-video INPUT --style STYLE` (the default command)."""
    with _user_errors(debug):
        from .core.output import check_output
        from .jobs.chart import check_chart_available, write_chart
        from .jobs.plan import VideoJob
        from .jobs.report import summary_line
        from .jobs.video import run_video
        from .media.encode_plan import EncodeSettings
        from .style.signals import parse_weights

        if chart is not None:
            check_chart_available()
            check_output(chart, (input, *(style or ()), signals, matte), overwrite=overwrite, what="--chart")
        result = run_video(VideoJob(
            input=input, styles=tuple(style or ()), output=output, style_weights=parse_weights(style_weights),
            signals=signals, style_size=style_size, alpha=alpha, preserve_color=preserve_color, device=device,
            precision=precision, batch_size=batch_size,
            encode=EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), start=start,
            duration=duration, height=height, overwrite=overwrite, report=report, weights=weights,
            progress=not quiet, compile=compile, transport=transport, deinterlace=deinterlace, hdr=hdr,
            max_pixels=max_pixels, temporal=temporal, temporal_strength=temporal_strength, matte=matte,
            style_at=tuple(style_at or ()), alpha_at=tuple(alpha_at or ()), keyframes=keyframes, ease=ease))
        if chart is not None:
            write_chart(chart, result, overwrite=overwrite)
        if not quiet:
            typer.echo(f"wrote {result['output']}: {summary_line(result)}", err=True)


@app.command("bench")
def bench_command(
    resolution: Annotated[str, typer.Option(help="Frame size WxH of the synthesized footage.")] = "3840x2160",
    frames: Annotated[int, typer.Option(min=1, help="Measured frames per arm (after the warm-up).")] = 4,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up frames per arm, not counted.")] = 1,
    peers: Annotated[bool, typer.Option(
        "--peers", help="Also export to ONNX and run ONNX Runtime and OpenVINO (the optional extras).")] = False,
    naive: Annotated[bool, typer.Option(help="Run the upstream-way arms (slow at 4K).")] = True,
    repeat: Annotated[int, typer.Option(
        min=1, help="Rounds of every arm, all arms in turn: each arm's median, every ratio's range.")] = 1,
    device: DeviceOpt = _default("device"),
    precision: PrecisionOpt = _default("precision"),
    batch_size: Annotated[int, typer.Option(min=1, help="Frames per network batch.")] = 1,
    input: Annotated[Optional[Path], typer.Option("--input", help="Measure on this clip instead of synthesized footage.")] = None,
    style: Annotated[Optional[Path], typer.Option(help="Style image (default: a procedural painting).")] = None,
    codec: Annotated[Codec, typer.Option(help="Codec of the end-to-end runs.")] = Codec.h264,
    compile: Annotated[CompileMode, typer.Option(
        help="torch.compile (a long job's steady state; its one-off cost falls in the warm-up and is reported "
             "apart; not auto: a run with auto is added for a short job's time to first frame).")] = CompileMode.on,
    preset: Annotated[Optional[str], typer.Option(help="Encoder preset of the end-to-end runs.")] = None,
    weights: WeightsOpt = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON here.")] = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Measure every arm the same way: ours, the upstream way, and (--peers) ONNX Runtime and OpenVINO."""
    with _user_errors(debug):
        from .bench.bench import BenchOptions, format_table, run_bench
        from .core.options import parse_resolution
        from .core.output import check_output, json_bytes, write_bytes
        from .core.stages import terminate_on_signals

        if json_path is not None:
            check_output(json_path, (input, style), overwrite=overwrite, what="--json")
        with terminate_on_signals():
            result = run_bench(BenchOptions(
                resolution=parse_resolution(resolution), frames=frames, warmup=warmup, device=device,
                precision=precision.value, batch_size=batch_size, input_path=input, style=style, codec=codec.value,
                preset=preset, weights=weights, compile=compile.value, peers=peers, naive=naive, repeat=repeat),
                log=lambda m: typer.echo(m, err=True))
        typer.echo(format_table(result))
        if json_path is not None:
            write_bytes(json_path, json_bytes(result), overwrite=overwrite, what="--json")


@app.command("export")
def export_command(
    onnx: Annotated[Path, typer.Option("--onnx", help="The ONNX file to write.", show_default=False)],
    style: Annotated[Optional[Path], typer.Option(
        "--style", "-s", help="Fix this style inside the model (input: the frame only).")] = None,
    signals: SignalsOpt = None,
    size: Annotated[Optional[str], typer.Option(help="Fixed frame size WxH  [default: 1920x1080]")] = None,
    dynamic: Annotated[bool, typer.Option(
        "--dynamic", help="Any frame size whose sides are multiples of 4, instead of one fixed size.")] = False,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Content-style weight fixed in the model.")] = 1.0,
    style_size: StyleSizeOpt = None,
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Export the network to ONNX (for ONNX Runtime, OpenVINO, TensorRT, vs-mlrt, FFmpeg's dnn filters)."""
    with _user_errors(debug):
        from .core.output import check_output
        from .core.stages import terminate_on_signals
        from .engine.onnx import ExportSpec, check_export, export_onnx
        from .style.pretrained import load_model
        from .style.signals import job_signals

        fixed = check_export(style, signals, size, dynamic)
        check_output(onnx, [p for p in (style, signals) if p], overwrite=overwrite, what="ONNX model")
        with terminate_on_signals():
            model = load_model(weights, device="cpu", progress=True)
            mix = None if style is None and signals is None else job_signals(
                model, [style] if style else [], None, signals, style_size)
            export_onnx(model, ExportSpec(mix, fixed, alpha), onnx, overwrite=overwrite)
        typer.echo(f"wrote {onnx}", err=True)


@app.command("flicker")
def flicker_command(
    source: Annotated[Path, typer.Argument(help="The source clip the others were stylized from.", show_default=False)],
    stylized: Annotated[list[Path], typer.Argument(help="Stylized clips to measure (same frames as the source).",
                                                   show_default=False)],
    reference: Annotated[Optional[Path], typer.Option(
        help="The per-frame output (--temporal off) to compare with: ratios, texture and low-pass fidelity.")] = None,
    height: Annotated[int, typer.Option(min=16, max=4320, help="Common height every clip is resized to.")] = 270,
    frames: Annotated[Optional[int], typer.Option(min=2, help="Measure only the first N frames.")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON here.")] = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Measure flicker: warping error (Lai et al. 2018), texture ratio and low-pass fidelity."""
    with _user_errors(debug):
        from .core.output import check_output, json_bytes, write_bytes
        from .core.stages import terminate_on_signals
        from .media.probe import probe
        from .temporal.flicker import format_flicker, measure_flicker

        clips = [source, *stylized, *([reference] if reference else [])]
        for clip in clips:
            probe(clip)  # every clip readable before any work
        if json_path is not None:
            check_output(json_path, clips, overwrite=overwrite, what="--json")
        with terminate_on_signals():
            result = measure_flicker(source, stylized, reference=reference, height=height, frames=frames)
        typer.echo(format_flicker(result))
        if json_path is not None:
            write_bytes(json_path, json_bytes(result), overwrite=overwrite, what="--json")


@app.command("batch")
def batch_command(
    manifest: Annotated[Path, typer.Argument(help="The batch manifest (TOML): inputs x looks -> outputs.",
                                             show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check everything and print the plan; run nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run only the jobs the last report marks failed.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine (one per GPU where there are GPUs).")] = 1,
    ray: Annotated[Optional[str], typer.Option(
        help="Run the segments on Ray: 'local' (a cluster of --workers CPUs here), 'auto' or a cluster address.")] = None,
    flicker: Annotated[bool, typer.Option("--flicker", help="Measure each output's warping error (also at segment seams).")] = False,
    report_dir: Annotated[Optional[Path], typer.Option(help="Where report.json, report.html and contact sheets go "
                                                            "(default: MANIFEST-report beside the manifest).")] = None,
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Run many clips x looks from a manifest: resumable by segments, failures isolated, a report to review."""
    with _user_errors(debug):
        from .batch.manifest import ManifestError
        from .batch.run import BatchOptions, run_batch

        options = BatchOptions(dry_run=dry_run, overwrite=overwrite, retry_failed=retry_failed, workers=workers,
                               ray=ray, weights=weights, report_dir=report_dir, progress=not quiet, flicker=flicker)
        try:
            report = run_batch(manifest, options, log=(lambda m: None) if quiet else (lambda m: typer.echo(m, err=True)))
        except ManifestError as err:  # every problem, one line each
            for problem in err.problems:
                _error(problem)
            raise typer.Exit(err.exit_code) from None
        s = report["summary"]
        typer.echo(f"batch: {s['done']} done, {s['failed']} failed, {s['skipped']} up to date"
                   + (" (dry run: nothing run)" if dry_run else ""), err=True)
        if s["failed"]:
            raise typer.Exit(1)


@app.command("preview")
def preview_command(
    input: Annotated[Path, typer.Argument(help="Video file to preview.", show_default=False, metavar="INPUT")],
    style: StyleOpt = None,
    alpha: Annotated[Optional[list[float]], typer.Option(
        help=f"{OPTIONS['alpha'].help_text} Repeat to compare several (one column each).")] = None,
    frames: Annotated[int, typer.Option(min=1, max=48, help="Frames spread over the clip (rows).")] = 6,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The sheet (PNG); default INPUT_preview.png.")] = None,
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = _default("preserve_color"),
    style_size: StyleSizeOpt = None,
    height: Annotated[Optional[int], typer.Option(
        min=16, help="Height the frames are stylized and shown at  [default: the clip's, at most 270]")] = None,
    start: Annotated[float, typer.Option(min=0.0, help="Preview from this many seconds into the clip.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option(help="... over this many seconds.")] = None,
    matte: MatteOpt = None,
    style_at: StyleAtOpt = None,
    alpha_at: AlphaAtOpt = None,
    keyframes: KeyframesOpt = None,
    ease: EaseOpt = _default("ease"),
    device: DeviceOpt = _default("device"),
    precision: PrecisionOpt = _default("precision"),
    max_pixels: MaxPixelsOpt = _default("max_pixels"),
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize a few frames of a clip with every look, in seconds: one contact sheet (rows = frames, columns = looks)."""
    with _user_errors(debug):
        from .jobs.plan import VideoJob
        from .jobs.preview import PreviewJob, run_preview
        from .style.signals import parse_weights

        video = VideoJob(input=input, styles=tuple(style or ()), style_weights=parse_weights(style_weights),
                         signals=signals, style_size=style_size, preserve_color=preserve_color, device=device,
                         precision=precision, start=start, duration=duration, height=height, weights=weights,
                         progress=not quiet, max_pixels=max_pixels, matte=matte, style_at=tuple(style_at or ()),
                         alpha_at=tuple(alpha_at or ()), keyframes=keyframes, ease=ease)
        done = run_preview(PreviewJob(video, tuple(alpha or (1.0,)), frames, output, overwrite))
        if not quiet:
            typer.echo(f"wrote {done['output']} ({len(done['frames'])} frames x {len(done['looks'])} look(s))", err=True)


_COMMANDS = ("image", "signals", "video", "bench", "flicker", "batch", "preview", "export")


def route(argv: Sequence[str]) -> list[str]:
    """Insert the ``video`` command when the first word is not a command or a top-level flag."""
    args = list(argv)
    if args and args[0] not in _COMMANDS and args[0] not in ("--help", "-h", "--version"):
        args.insert(0, "video")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point; bad command lines are one line too (exit 2)."""
    from .core.process import quiet_openmp_waits
    from .core.stages import install_signal_handlers

    quiet_openmp_waits()  # before anything imports torch
    install_signal_handlers()  # SIGTERM/SIGHUP/SIGQUIT clean up like Ctrl-C from the very start
    args = route(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from ._version import __version__

        typer.echo(f"microast-video {__version__}")
        return
    try:
        code = app(args=args, prog_name="microast-video", standalone_mode=False)
    except typer.TyperException as err:  # a bad command line: unknown option, bad value, missing argument
        command = f" {args[0]}" if args and args[0] in _COMMANDS else ""
        _error(f"{' '.join(err.format_message().split())} (see microast-video{command} --help)")
        sys.exit(getattr(err, "exit_code", 2))
    except typer.Abort:
        _error("interrupted; nothing was written")
        sys.exit(130)
    except Terminated as err:
        _error("terminated; nothing was written")
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
