"""What a video job is asked (:class:`VideoJob`) and its keyframes (:class:`Keyframes`): the
options of ``microast-video INPUT``, and the checks of the controls that vary over time
(style, strength and alpha keyframes), before anything is opened."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

from ..core.errors import OptionError
from ..core.options import (
    CompileMode,
    Decode,
    Deinterlace,
    Ease,
    HdrMode,
    KeepBars,
    Missing,
    Network,
    Temporal,
    Transport,
)
from ..core.schema import default
from ..media.encode_plan import EncodeSettings
from ..style.controls import (
    check_keyframes,
    keyed_value,
    load_keyframe_file,
    parse_keyframe,
    seconds,
)
from ..style.signals import check_style_source
from .options import SharedOptions


@dataclasses.dataclass(frozen=True)
class VideoJob(SharedOptions):
    """One video to stylize, with every option of ``microast-video INPUT`` (all but ``input``
    by keyword; defaults and checks from :data:`~microast_video.core.schema.OPTIONS`)."""

    input: Path
    batch_size: int | None = default("batch_size")  # None: by frame size (see auto_batch_size)
    encode: EncodeSettings = EncodeSettings()
    start: float = default("start")
    duration: float | None = default("duration")
    height: int | None = default("height")
    report: Path | None = None
    progress: bool = True
    queue_frames: int | None = None  # None: about 100 MB of frames per queue, 1 to 8 frames
    compile: CompileMode = default("compile")
    transport: Transport = default("transport")
    freeze: bool | None = None  # with compile: fold weights (None: only for very long jobs)
    deinterlace: Deinterlace = default("deinterlace")
    decode: Decode = default("decode")
    keep_bars: KeepBars = default("keep_bars")
    fps: float = default("fps")  # an image-sequence input's rate
    missing: Missing = default("missing")  # a gap in an input sequence: refused, or the frame before it held
    start_number: int | None = default("start_number")  # an image-sequence output's first number
    crop: str | None = default("crop")
    hdr: HdrMode = default("hdr")
    temporal: Temporal = default("temporal")
    temporal_strength: float = default("temporal_strength")
    matte: Path | None = None  # regions: styles[0] where the matte is white, styles[1] (or the original) elsewhere
    style_at: tuple[str, ...] = ()  # style keyframes "TIME:IMAGE"
    alpha_at: tuple[str, ...] = ()  # alpha keyframes "TIME:VALUE"
    strength_at: tuple[str, ...] = ()  # strength keyframes "TIME:VALUE"
    keyframes: Path | None = None  # a keyframe file (TOML)
    chart: Path | None = None  # a PNG chart of the run (needs matplotlib), written with the report
    ease: Ease = default("ease")


@dataclasses.dataclass(frozen=True)
class Keyframes:
    """The job's keyframes in seconds: style images, alpha and strength values, and the easing."""

    style_times: tuple[float, ...] = ()
    style_paths: tuple[Path, ...] = ()
    alpha_times: tuple[float, ...] = ()
    alphas: tuple[float, ...] = ()
    ease: Ease = Ease.linear
    strength_times: tuple[float, ...] = ()
    strengths: tuple[float, ...] = ()

    @property
    def network(self) -> bool:
        """Whether the network itself changes over time (style or alpha keyframes)."""
        return bool(self.style_paths or self.alphas)


def style_keyed(job: VideoJob) -> bool:
    """Whether the look comes from style keyframes (``--style-at``, or a keyframes file's ``style``);
    a keyframes file of strengths or alphas alone leaves the look to ``--style``."""
    return bool(job.style_at) or (job.keyframes is not None and bool(load_keyframe_file(job.keyframes)[0]))


def check_network(job: VideoJob) -> None:
    """What each network takes (one line for what it does not)."""
    network = Network(job.network)
    if network is not Network.johnson:
        if job.style_model is not None:
            raise OptionError(f"--style-model is a Johnson network's checkpoint: pass --network johnson, not {network.value}")
        return
    if job.style_model is None:
        raise OptionError("--network johnson needs --style-model FILE (a fast_neural_style checkpoint)")
    if job.styles or job.signals or job.style_at:
        raise OptionError("--network johnson has its style built in: no --style, --signals or style keyframes")
    if job.alpha != 1.0 or job.alpha_at:
        raise OptionError("--network johnson has no content-style weight: use --strength to dial the look down")


#: Peak memory of a whole-frame pass per megapixel, measured on our CPU with bf16
#: (``python benchmarks/networks.py``: AdaIN 2.54 GB at 1080p and 10.07 at UHD; Johnson 2.50 and
#: 9.27). MicroAST runs in exact strips and needs 0.71 GB at UHD.
GB_PER_MEGAPIXEL = {Network.adain: 1.21, Network.johnson: 1.09}
#: The memory a frame of the seed networks may take: frames larger than this would not fit.
MEMORY_BUDGET_GB = 8.0


def check_network_memory(job: VideoJob, size: tuple[int, int]) -> None:
    """AdaIN and Johnson run whole frames: refuse (one line) a frame whose pass would pass 8 GB."""
    per_mp = GB_PER_MEGAPIXEL.get(Network(job.network))
    w, h = size
    if per_mp is None or w * h * per_mp / 1e6 <= MEMORY_BUDGET_GB:
        return
    most = int(MEMORY_BUDGET_GB / per_mp * 1e6)
    height = int((most * h / w) ** 0.5) // 2 * 2
    raise OptionError(f"--network {Network(job.network).value} at {w}x{h} needs about {w * h * per_mp / 1e6:.1f} GB "
                      f"(whole frames, {per_mp} GB a megapixel); at most {most / 1e6:.1f} MP fit in "
                      f"{MEMORY_BUDGET_GB:.0f} GB: pass --height {height} or less")


def check_controls(job: VideoJob) -> None:
    """Mattes and keyframes: what can go together, and every keyframe's syntax and files."""
    if job.matte is not None:
        if len(job.styles) > 2 or job.style_weights is not None:
            raise OptionError("--matte takes one style (kept inside the matte) or two (inside, outside), not mixed "
                              "with --style-weights")
    keyed = style_keyed(job)
    outside = job.matte is not None and len(job.styles) == 1 and job.signals is None  # keyframes inside, one style out
    if keyed and (job.styles or job.signals) and not outside:
        raise OptionError("give either --style/--signals or style keyframes (--style-at, --keyframes), not both "
                          "(with --matte, one --style is the look outside the matte)")
    if keyed and outside:
        check_style_source(job.styles, None, None, job.max_pixels)
    for text in job.style_at:
        _, image = parse_keyframe(text, "--style-at")
        check_style_source([Path(image)], None, None, job.max_pixels)
    for name, texts in (("alpha", job.alpha_at), ("strength", job.strength_at)):
        for text in texts:
            _, value = parse_keyframe(text, f"--{name}-at")
            keyed_value(name, value, f"--{name}-at {text!r}:")


def plan_keyframes(job: VideoJob, rate: Fraction) -> Keyframes | None:
    """The job's keyframes (options and keyframe file) in seconds, checked."""
    styles = [parse_keyframe(t, "--style-at") for t in job.style_at]
    values = {"alpha": [parse_keyframe(t, "--alpha-at") for t in job.alpha_at],
              "strength": [parse_keyframe(t, "--strength-at") for t in job.strength_at]}
    ease = job.ease
    if job.keyframes is not None:
        more_styles, more_values, file_ease = load_keyframe_file(job.keyframes)
        if more_styles:
            check_style_source([Path(p) for _, p in more_styles], None, None, job.max_pixels)
        styles, ease = styles + more_styles, file_ease or ease
        for key, more in more_values.items():
            values[key] += [(t, str(v)) for t, v in more]
    if not styles and not any(values.values()):
        return None
    styles.sort(key=lambda k: seconds(k[0], rate))
    for keys in values.values():
        keys.sort(key=lambda k: seconds(k[0], rate))
    alphas, strengths = values["alpha"], values["strength"]
    return Keyframes(tuple(check_keyframes([t for t, _ in styles], rate, "style keyframes")),
                     tuple(Path(p) for _, p in styles),
                     tuple(check_keyframes([t for t, _ in alphas], rate, "alpha keyframes")),
                     tuple(float(a) for _, a in alphas), Ease(ease),
                     tuple(check_keyframes([t for t, _ in strengths], rate, "strength keyframes")),
                     tuple(float(v) for _, v in strengths))


#: Below this --alpha the upstream decoder, never trained on mixed features, casts colours.
ALPHA_CAST_BELOW = 0.99


def alpha_notes(job: VideoJob, keyframes: Keyframes | None) -> list[str]:
    """One note when --alpha (or an alpha keyframe) is below :data:`ALPHA_CAST_BELOW`."""
    lowest = min([job.alpha, *(keyframes.alphas if keyframes is not None else ())])
    if lowest >= ALPHA_CAST_BELOW:
        return []
    return [f"--alpha {lowest:g} is the upstream network's own content-style weight, which its decoder was not "
            "trained for (below 0.99 the picture casts blue, then cyan); --strength dials the look down smoothly"]
