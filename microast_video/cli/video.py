"""The commands that stylize: ``video`` (the default), ``image``, ``signals`` and ``preview``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..core.options import PREVIEW_HEIGHT
from ..core.schema import OPTIONS
from ..core.schema import default as default_of
from .app import app, user_errors
from .options import (
    AlphaAtOpt,
    AlphaOpt,
    ChartOpt,
    DebugOpt,
    DeviceOpt,
    EaseOpt,
    KeyframesOpt,
    MatteOpt,
    MaxPixelsOpt,
    NetworkOpt,
    OverwriteOpt,
    PrecisionOpt,
    PreserveColorOpt,
    QuietOpt,
    SignalsOpt,
    StrengthAtOpt,
    StrengthOpt,
    StyleAtOpt,
    StyleModelOpt,
    StyleOpt,
    StyleSizeOpt,
    StyleWeightsOpt,
    WeightsOpt,
    declared,
)


@app.command("image")
def image_command(
    content: Annotated[Path, typer.Argument(help="Content image to stylize (any size, 4K included).", metavar="CONTENT")],
    style: StyleOpt = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output image (.png, .jpg, .tif, .webp, .exr, .dpx); default CONTENT_stylized.png "
        "(.exr, .dpx for those).")] = None,
    network: NetworkOpt = default_of("network"),
    style_model: StyleModelOpt = default_of("style_model"),
    strength: StrengthOpt = default_of("strength"),
    alpha: AlphaOpt = default_of("alpha"),
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = default_of("preserve_color"),
    style_size: StyleSizeOpt = None,
    bit_depth: declared("bit_depth") = default_of("bit_depth"),
    input_colorspace: declared("input_colorspace") = default_of("input_colorspace"),
    output_colorspace: declared("output_colorspace") = default_of("output_colorspace"),
    ocio_config: declared("ocio_config") = default_of("ocio_config"),
    device: DeviceOpt = default_of("device"),
    precision: PrecisionOpt = default_of("precision"),
    weights: WeightsOpt = None,
    max_pixels: MaxPixelsOpt = default_of("max_pixels"),
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize one image."""
    with user_errors(debug):
        from ..jobs.image import ImageJob, run_image
        from ..style.signals import parse_weights

        done = run_image(ImageJob(
            content=content, styles=tuple(style or ()), output=output, style_weights=parse_weights(style_weights),
            signals=signals, style_size=style_size, alpha=alpha, strength=strength, preserve_color=preserve_color,
            network=network, style_model=style_model, bit_depth=bit_depth.bits, device=device, precision=precision, weights=weights, overwrite=overwrite,
            quiet=quiet, max_pixels=max_pixels, input_colorspace=input_colorspace,
            output_colorspace=output_colorspace, ocio_config=ocio_config))
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
    with user_errors(debug):
        from ..core.files import FilePlan
        from ..core.stages import terminate_on_signals
        from ..style.pretrained import load_model
        from ..style.signals import check_style_source, job_signals, parse_weights
        from ..style.signals_file import save_signals

        mix = parse_weights(style_weights)
        with terminate_on_signals():
            check_style_source(style or [], None, mix)
            FilePlan().read("style", *(style or ())).write("style signals", output).check(overwrite=overwrite)
            model = load_model(weights, device="cpu")
            save_signals(job_signals(model, style or [], mix, None, style_size), output, overwrite=overwrite)
        typer.echo(f"wrote {output}", err=True)


@app.command("video")
def video_command(
    input: Annotated[Path, typer.Argument(help="Video file (any container and codec FFmpeg reads), or an image "
                                               "sequence: a folder, shot.%04d.png, shot.####.dpx or one frame.",
                                          show_default=False, metavar="INPUT")],
    style: StyleOpt = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="Output video (.mp4, .mov, .mkv, .mxf), or frames (renders/shot.%04d.png, .tif, "
                                ".dpx; or shot.####.png); default INPUT_stylized.EXT beside the input.")] = None,
    network: NetworkOpt = default_of("network"),
    style_model: StyleModelOpt = default_of("style_model"),
    strength: StrengthOpt = default_of("strength"),
    alpha: AlphaOpt = default_of("alpha"),
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = default_of("preserve_color"),
    style_size: StyleSizeOpt = None,
    codec: declared("codec") = default_of("codec"),
    prores_profile: declared("prores_profile") = default_of("prores_profile"),
    dnxhr_profile: declared("dnxhr_profile") = default_of("dnxhr_profile"),
    crf: declared("crf") = default_of("crf"),
    preset: declared("preset") = default_of("preset"),
    pix_fmt: declared("pix_fmt") = default_of("pix_fmt"),
    start: declared("start") = default_of("start"),
    duration: declared("duration") = default_of("duration"),
    height: declared("height") = default_of("height"),
    batch_size: declared("batch_size") = default_of("batch_size"),
    device: DeviceOpt = default_of("device"),
    precision: PrecisionOpt = default_of("precision"),
    compile: declared("compile") = default_of("compile"),
    transport: declared("transport") = default_of("transport"),
    temporal: declared("temporal") = default_of("temporal"),
    temporal_strength: declared("temporal_strength") = default_of("temporal_strength"),
    deinterlace: declared("deinterlace") = default_of("deinterlace"),
    decode: declared("decode") = default_of("decode"),
    keep_bars: declared("keep_bars") = default_of("keep_bars"),
    crop: declared("crop") = default_of("crop"),
    fps: declared("fps") = default_of("fps"),
    missing: declared("missing") = default_of("missing"),
    start_number: declared("start_number") = default_of("start_number"),
    input_colorspace: declared("input_colorspace") = default_of("input_colorspace"),
    output_colorspace: declared("output_colorspace") = default_of("output_colorspace"),
    ocio_config: declared("ocio_config") = default_of("ocio_config"),
    hdr: declared("hdr") = default_of("hdr"),
    max_pixels: MaxPixelsOpt = default_of("max_pixels"),
    matte: MatteOpt = None,
    style_at: StyleAtOpt = None,
    strength_at: StrengthAtOpt = None,
    alpha_at: AlphaAtOpt = None,
    keyframes: KeyframesOpt = None,
    ease: EaseOpt = default_of("ease"),
    weights: WeightsOpt = None,
    report: Annotated[Optional[Path], typer.Option(help="Write a JSON report (per-stage and per-frame times) here.")] = None,
    chart: ChartOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize a video: `microast-video INPUT --style STYLE` (the default command)."""
    with user_errors(debug):
        _run_video(video_job(dict(locals())))


def video_job(given: dict[str, Any]) -> Any:
    """The :class:`~microast_video.jobs.plan.VideoJob` of the video command's options (by name:
    the encoder's in its settings, lists as tuples, ``--quiet`` as no progress)."""
    from ..core.schema import ENCODE_OPTIONS
    from ..jobs.plan import VideoJob
    from ..media.encode_plan import EncodeSettings
    from ..style.signals import parse_weights

    given.pop("debug")
    encode = EncodeSettings(**{name: given.pop(name) for name in ENCODE_OPTIONS})
    keyed = {name: tuple(given.pop(name) or ()) for name in ("style_at", "alpha_at", "strength_at")}
    return VideoJob(styles=tuple(given.pop("style") or ()), style_weights=parse_weights(given.pop("style_weights")),
                    progress=not given.pop("quiet"), encode=encode, **keyed, **given)


def _run_video(job: Any) -> None:
    """The video job (its chart and report written with it), then its summary line."""
    from ..jobs.report import summary_line
    from ..jobs.video import run_video

    result = run_video(job)
    if job.progress:
        typer.echo(f"wrote {result['output']}: {summary_line(result)}", err=True)


@app.command("preview")
def preview_command(
    input: Annotated[Path, typer.Argument(help="Video file to preview.", show_default=False, metavar="INPUT")],
    style: StyleOpt = None,
    network: NetworkOpt = default_of("network"),
    style_model: StyleModelOpt = default_of("style_model"),
    strength: Annotated[Optional[list[float]], typer.Option(
        help=f"{OPTIONS['strength'].help_text} Repeat to compare several (one column each).")] = None,
    alpha: Annotated[Optional[list[float]], typer.Option(
        help=f"{OPTIONS['alpha'].help_text} Repeat to compare several (one column each).")] = None,
    frames: Annotated[int, typer.Option(min=1, max=48, help="Frames spread over the clip (rows).")] = 6,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The sheet (PNG); default INPUT_preview.png.")] = None,
    style_weights: StyleWeightsOpt = None,
    signals: SignalsOpt = None,
    preserve_color: PreserveColorOpt = default_of("preserve_color"),
    style_size: StyleSizeOpt = None,
    height: Annotated[Optional[int], typer.Option(
        min=16, help=f"Height the frames are stylized and shown at (default: the clip's, at most {PREVIEW_HEIGHT}).")] = None,
    start: Annotated[float, typer.Option(min=0.0, help="Preview from this many seconds into the clip.")] = 0.0,
    duration: Annotated[Optional[float], typer.Option(help="... over this many seconds.")] = None,
    matte: MatteOpt = None,
    keep_bars: declared("keep_bars") = default_of("keep_bars"),
    crop: declared("crop") = default_of("crop"),
    style_at: StyleAtOpt = None,
    strength_at: StrengthAtOpt = None,
    alpha_at: AlphaAtOpt = None,
    keyframes: KeyframesOpt = None,
    ease: EaseOpt = default_of("ease"),
    device: DeviceOpt = default_of("device"),
    precision: PrecisionOpt = default_of("precision"),
    max_pixels: MaxPixelsOpt = default_of("max_pixels"),
    weights: WeightsOpt = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Stylize a few frames of a clip with every look, in seconds: one contact sheet (rows = frames, columns = looks)."""
    with user_errors(debug):
        from ..jobs.plan import VideoJob
        from ..jobs.preview import PreviewJob, run_preview
        from ..style.signals import parse_weights

        video = VideoJob(input=input, styles=tuple(style or ()), style_weights=parse_weights(style_weights),
                         signals=signals, style_size=style_size, preserve_color=preserve_color, device=device,
                         precision=precision, start=start, duration=duration, height=height, weights=weights,
                         progress=not quiet, max_pixels=max_pixels, matte=matte, style_at=tuple(style_at or ()),
                         alpha_at=tuple(alpha_at or ()), strength_at=tuple(strength_at or ()), keyframes=keyframes,
                         ease=ease, keep_bars=keep_bars, crop=crop, network=network, style_model=style_model)
        done = run_preview(PreviewJob(video, tuple(alpha or (1.0,)), frames, output, overwrite, tuple(strength or ())))
        if not quiet:
            typer.echo(f"wrote {done['output']} ({len(done['frames'])} frames x {len(done['looks'])} look(s))", err=True)
