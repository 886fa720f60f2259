"""The commands around the stylizing ones: ``bench``, ``export``, ``flicker`` and ``batch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.errors import OptionError
from ..core.options import FLICKER_HEIGHT, Codec, CompileMode, Network
from ..core.schema import OPTIONS
from ..core.schema import default as default_of
from .app import app, say_error, user_errors
from .options import (
    DebugOpt,
    DeviceOpt,
    OverwriteOpt,
    PrecisionOpt,
    QuietOpt,
    SignalsOpt,
    StyleSizeOpt,
    WeightsOpt,
    declared,
)


@app.command("bench")
def bench_command(
    resolution: Annotated[str, typer.Option(help="Frame size WxH of the synthesized footage.")] = "3840x2160",
    frames: Annotated[int, typer.Option(min=1, help="Measured frames per arm (after the warm-up).")] = 4,
    warmup: Annotated[int, typer.Option(min=0, help="Warm-up frames per arm, not counted.")] = 1,
    peers: Annotated[bool, typer.Option(
        "--peers", help="Also export to ONNX and run ONNX Runtime and OpenVINO (the optional extras).")] = False,
    naive: Annotated[bool, typer.Option(help="Run the upstream-way arms (slow at 4K).")] = True,
    network: Annotated[Optional[list[Network]], typer.Option(
        help="Also measure this seed network on the same frames (repeat): adain (--adain-weights DIR or "
             "$MICROAST_VIDEO_ADAIN_WEIGHTS), johnson (--style-model FILE).")] = None,
    adain_weights: Annotated[Optional[Path], typer.Option(help="AdaIN's vgg_normalised.pth and decoder.pth.")] = None,
    style_model: Annotated[Optional[Path], typer.Option(help="A Johnson network's checkpoint.")] = None,
    repeat: Annotated[int, typer.Option(
        min=1, help="Rounds of every arm, all arms in turn: each arm's median, every ratio's range.")] = 1,
    device: DeviceOpt = default_of("device"),
    precision: PrecisionOpt = default_of("precision"),
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
    with user_errors(debug):
        from ..bench.bench import BenchOptions, format_table, run_bench
        from ..core.files import FilePlan
        from ..core.options import parse_resolution
        from ..core.output import json_bytes, write_bytes
        from ..core.stages import terminate_on_signals

        FilePlan().read("--input", input).read("--style", style).read("--style-model", style_model).write(
            "--json", json_path).check(overwrite=overwrite)
        with terminate_on_signals():
            result = run_bench(BenchOptions(
                resolution=parse_resolution(resolution), frames=frames, warmup=warmup, device=device,
                precision=precision, batch_size=batch_size, input_path=input, style=style, codec=codec,
                preset=preset, weights=weights, compile=compile, peers=peers, naive=naive, repeat=repeat,
                networks=tuple(Network(n).value for n in network or () if Network(n) is not Network.microast),
                adain_weights=adain_weights, style_model=style_model),
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
    with user_errors(debug):
        from ..core.files import FilePlan
        from ..core.stages import terminate_on_signals
        from ..engine.onnx import ExportSpec, check_export, export_onnx
        from ..style.pretrained import load_model
        from ..style.signals import job_signals

        fixed = check_export(style, signals, size, dynamic)
        FilePlan().read("style", style).read("signals", signals).write("ONNX model", onnx).check(overwrite=overwrite)
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
    height: Annotated[int, typer.Option(min=16, max=4320, help="Common height every clip is resized to.")] = FLICKER_HEIGHT,
    frames: Annotated[Optional[int], typer.Option(min=2, help="Measure only the first N frames.")] = None,
    start: declared("start", help="The stylized clips were rendered from this many seconds into the source "
                                  "(the video command's --start).") = default_of("start"),
    duration: declared("duration", help="... for this many seconds (the video command's --duration).") = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the figures as JSON here.")] = None,
    overwrite: OverwriteOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Measure flicker: warping error (Lai et al. 2018), texture ratio and low-pass fidelity."""
    with user_errors(debug):
        from ..core.files import FilePlan
        from ..core.output import json_bytes, write_bytes
        from ..core.stages import terminate_on_signals
        from ..media.probe import probe
        from ..temporal.flicker import format_flicker, measure_flicker

        clips = [source, *stylized, *([reference] if reference else [])]
        for clip in clips:
            probe(clip)  # every clip readable before any work
        FilePlan().read("clip", *clips).write("--json", json_path).check(overwrite=overwrite)
        with terminate_on_signals():
            result = measure_flicker(source, stylized, reference=reference, height=height, frames=frames,
                                     start=OPTIONS["start"].check(start), duration=OPTIONS["duration"].check(duration))
        typer.echo(format_flicker(result))
        if json_path is not None:
            write_bytes(json_path, json_bytes(result), overwrite=overwrite, what="--json")


@app.command("batch")
def batch_command(
    manifest: Annotated[Path, typer.Argument(help="The batch manifest (TOML): inputs x looks -> outputs; or an "
                                                  "editorial timeline (cut.otio) with --style.", show_default=False)],
    style: Annotated[Optional[list[Path]], typer.Option(
        "--style", "-s", help="For a timeline: the look's style image (repeat: one look each).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check everything and print the plan; run nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run only the jobs the last report marks failed.")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes on this machine (spread over its GPUs where it has GPUs).")] = 1,
    workers_per_gpu: Annotated[Optional[int], typer.Option(
        min=1, max=16, help="Workers (or Ray tasks) sharing one GPU [default: from the frame size: 2 at UHD, "
                            "4 at 1080p, 1 at 8K; at most one per 4 CPU cores].", show_default=False)] = None,
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
    with user_errors(debug):
        from ..batch.manifest import ManifestError
        from ..batch.types import BatchOptions

        options = BatchOptions(dry_run=dry_run, overwrite=overwrite, retry_failed=retry_failed, workers=workers,
                               workers_per_gpu=workers_per_gpu, ray=ray, weights=weights, report_dir=report_dir,
                               progress=not quiet, flicker=flicker)
        log = (lambda m: None) if quiet else (lambda m: typer.echo(m, err=True))
        try:
            report = _run_manifest_or_timeline(manifest, list(style or ()), options, log)
        except ManifestError as err:  # every problem, one line each
            for problem in err.problems:
                say_error(problem)
            raise typer.Exit(err.exit_code) from None
        s = report["summary"]
        typer.echo(f"batch: {s['done']} done, {s['failed']} failed, {s['skipped']} up to date"
                   + (" (dry run: nothing run)" if dry_run else ""), err=True)
        if s["failed"]:
            raise typer.Exit(1)


def _run_manifest_or_timeline(path: Path, styles: list[Path], options: Any, log: Any) -> dict[str, Any]:
    """A manifest's batch; or a timeline's: its clips x the --style looks, then the cut relinked
    to the stylized media (``CUT-stylized/CUT_LOOK.otio`` beside the cut)."""
    from ..batch.run import run_batch
    from ..batch.timeline import TIMELINE_EXTS, timeline_manifest, write_relinked

    if path.suffix.lower() not in TIMELINE_EXTS:
        if styles:
            raise OptionError("--style is for a timeline; a manifest names its looks")
        return run_batch(path, options, log=log)
    output_dir = path.parent / f"{path.stem}-stylized"
    if not options.dry_run:  # a dry run writes nothing, not even a folder
        output_dir.mkdir(exist_ok=True)
    manifest, timeline = timeline_manifest(path, styles, output_dir, {})
    report = run_batch(manifest, options, log=log)
    if not options.dry_run and not report["summary"]["failed"]:
        for cut in write_relinked(timeline, manifest, path, output_dir):
            log(f"microast-video: wrote {cut} (the cut relinked to the stylized media)")
    return report
