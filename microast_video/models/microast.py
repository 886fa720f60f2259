"""MicroAST (Wang et al., AAAI 2023) at inference, as the official checkpoints expect it.

The computation follows the project's design note (``design/microast-architecture.md``
in the shared folder): reflection padding everywhere, unbiased variance with
``eps = 1e-5`` in the statistics, dual modulation (FeatMod + FilterMod) in the decoder,
the deeper style level driving the first decoder block.

Everything here is a pure ``nn.Module``: tensors in, tensors out, no file, network or
device I/O. Loading the official weights from disk is
:func:`microast_video.load_model`'s job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoint_keys import CHECKPOINT_PARTS, upstream_to_project_keys
from .kernels import PYTORCH, StripKernels
from .regions import Regions, featmod_regions, mixed
from .samples import full_precision, to_samples, to_unit
from .signals import EPS, StyleSignals
from .strip_blocks import Modulate, Residual, strip_mean_std
from .strip_runner import KeptMap, run_strips, strip_bounds
from .strips import Conv, Op, UpConv, centred_conv

#: Channels of the quarter-resolution feature maps.
FEATURES = 64
#: Frames smaller than this on either side cannot be reflection-padded by the 9x9 conv.
MIN_SIDE = 5


def _conv(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A conv with bias whose input is reflection-padded by ``k // 2`` on every side."""
    return nn.Conv2d(
        cin, cout, k, stride=stride, padding=k // 2, padding_mode="reflect", groups=groups
    )


def mean_std(f: Tensor, eps: float = EPS) -> tuple[Tensor, Tensor]:
    """Per-sample, per-channel mean and ``sqrt(unbiased var + eps)``.

    Args:
        f: (N, C, H, W) features with ``H * W > 1``. Computed in float32 whatever
            ``f``'s dtype, because reduced precision ruins these statistics.

    Returns:
        ``(mean, std)``, each (N, C, 1, 1) float32.
    """
    n, c = f.shape[:2]
    if f.is_contiguous() or not f.is_contiguous(memory_format=torch.channels_last):
        var, mean = torch.var_mean(f.reshape(n, c, -1).float(), dim=2, unbiased=True)
    else:  # NHWC: two passes over a (N, H*W, C) view (6x faster than var_mean here)
        flat = f.permute(0, 2, 3, 1).reshape(n, -1, c).float()
        mean = flat.mean(dim=1)
        var = (flat - mean[:, None]).square_().sum(dim=1) / (flat.shape[1] - 1)
    return mean.view(n, c, 1, 1), (var + eps).sqrt().view(n, c, 1, 1)


def featmod(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """AdaIN-form feature modulation: normalise ``x`` per channel, then apply ``std, mean``.

    ``mean`` and ``std`` are (N or 1, C, 1, 1) target statistics. The arithmetic runs in
    float32 and so is the result, whatever ``x``'s dtype.
    """
    x_mean, x_std = mean_std(x)
    # (x - m) / s * t + u  ==  x * (t / s) + (u - m * t / s); kept in the design's form
    # for bit-level agreement with the upstream code (in place: the same roundings, one
    # frame-sized temporary instead of four).
    return (x.float() - x_mean).div_(x_std).mul_(std).add_(mean)


class ResBlock(nn.Module):
    """Plain residual block: ``x + conv2(relu(conv1(x)))``."""

    def __init__(self, channels: int = FEATURES) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, 3)
        self.conv2 = _conv(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return centred_conv(self.conv2, F.relu(centred_conv(self.conv1, x), inplace=True)).add_(x)


class ModulatedResBlock(ResBlock):
    """Residual block with filter modulation by per-channel ``w, b`` of shape (N, C, 1, 1).

    ``h1 = w*conv1(x) + b*x``; ``h2 = relu(h1)``; ``h3 = w*conv2(h2) + b*h2``; ``x + h3``.
    """

    def forward(self, x: Tensor, w: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        # w, b are float32: the modulation arithmetic runs in float32 even when the convs
        # run in reduced precision (type promotion), and so does the residual sum.
        # In place on fresh tensors: the same roundings as w * c + b * x, fewer temporaries.
        h = F.relu(centred_conv(self.conv1, x).mul_(w).add_(b * x), inplace=True)
        return centred_conv(self.conv2, h).mul_(w).add_(b * h).add_(x)


class Encoder(nn.Module):
    """MicroAST encoder: (N, 3, H, W) image -> two (N, 64, H/4, W/4) feature maps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_in = _conv(3, 16, 9)
        self.down1 = _conv(16, 32, 3, stride=2, groups=16)
        self.point1 = _conv(32, 32, 1)
        self.down2 = _conv(32, 64, 3, stride=2, groups=32)
        self.point2 = _conv(64, 64, 1)
        self.res1 = ResBlock()
        self.res2 = ResBlock()

    def forward_head(self, x: Tensor) -> Tensor:
        """The local layers from the image to the quarter-resolution map (always float32)."""
        with full_precision(x):
            h = F.relu(self.conv_in(x.float()))
            h = F.relu(self.down1(h))
            h = F.relu(self.point1(h))
            h = F.relu(self.down2(h))
            return F.relu(self.point2(h))

    def forward_res(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """The two residual blocks at quarter resolution: ``(f1, f2)``."""
        f1 = self.res1(h)
        return f1, self.res2(f1)

    def head_ops(self) -> list[Op]:
        """The local layers from the image to the quarter-resolution map, as strip ops."""
        return [Conv(self.conv_in, True), Conv(self.down1, True), Conv(self.point1, True),
                Conv(self.down2, True), Conv(self.point2, True)]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.forward_res(self.forward_head(x))


class ContentEncoder(Encoder):
    """The content encoder E_c (weights of ``content_encoder_iter_160000.pth.tar``)."""


class StyleEncoder(Encoder):
    """The style encoder E_s (same architecture as E_c, its own weights)."""


class Modulator(nn.Module):
    """Four depthwise 3x3 convs + global average pooling: style features -> ``w1, b1, w2, b2``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight1 = _conv(FEATURES, FEATURES, 3, groups=FEATURES)
        self.bias1 = _conv(FEATURES, FEATURES, 3, groups=FEATURES)
        self.weight2 = _conv(FEATURES, FEATURES, 3, groups=FEATURES)
        self.bias2 = _conv(FEATURES, FEATURES, 3, groups=FEATURES)

    def forward(self, s1: Tensor, s2: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        def pool(t: Tensor) -> Tensor:
            return t.float().mean(dim=(2, 3), keepdim=True)

        return (
            pool(self.weight1(s1)),
            pool(self.bias1(s1)),
            pool(self.weight2(s2)),
            pool(self.bias2(s2)),
        )


class Decoder(nn.Module):
    """MicroAST decoder with dual modulation; (N, 64, H/4, W/4) -> raw (N, 3, H, W)."""

    def __init__(self) -> None:
        super().__init__()
        self.block1 = ModulatedResBlock()
        self.block2 = ModulatedResBlock()
        self.up1_dw = _conv(64, 32, 3, groups=32)
        self.up1_pw = _conv(32, 32, 1)
        self.up2_dw = _conv(32, 16, 3, groups=16)
        self.up2_pw = _conv(16, 16, 1)
        self.conv_out = _conv(16, 3, 9)

    def forward_low_res(self, c2: Tensor, s: StyleSignals, alpha: float | Tensor = 1.0,
                        regions: Regions | None = None) -> Tensor:
        """Steps 1-4 of the design (the modulated quarter-resolution blocks).

        ``alpha`` is a number or an (N, 1, 1, 1) tensor (one per frame); ``regions`` puts
        ``s`` where the matte is 1 and ``regions.background`` where it is 0 (see
        :mod:`.regions`)."""
        whole = isinstance(alpha, float) and alpha == 1.0
        if regions is None:
            x = featmod(c2, s.mean2, s.std2)
            w2, b2, w1, b1 = s.w2, s.b2, s.w1, s.b1
        else:
            bg = regions.background
            x = featmod_regions(c2, s.mean2, s.std2, regions, *((bg.mean2, bg.std2) if bg else (None, None)))
            w2, b2, w1, b1 = (mixed(getattr(s, n), getattr(bg, n) if bg else None, regions)
                              for n in ("w2", "b2", "w1", "b1"))
        if not whole:
            x = alpha * x + (1.0 - alpha) * c2.float()
        x = self.block1(x, w2, b2)
        if regions is None:
            y = featmod(x, s.mean1, s.std1)
        else:
            y = featmod_regions(x, s.mean1, s.std1, regions, *((bg.mean1, bg.std1) if bg else (None, None)))
        x = y if whole else alpha * y + (1.0 - alpha) * x
        return self.block2(x, w1, b1)

    def forward_half(self, x: Tensor) -> Tensor:
        """Quarter -> half resolution: upsample x2, depthwise 3x3, pointwise 1x1."""
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = F.relu(self.up1_dw(x))
        return F.relu(self.up1_pw(x))

    def forward_full_res(self, x: Tensor) -> Tensor:
        """Half -> full resolution: upsample x2, depthwise 3x3, pointwise 1x1, 9x9 to RGB."""
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = F.relu(self.up2_dw(x))
        x = F.relu(self.up2_pw(x))
        return self.conv_out(x)

    def tail_ops(self, up_dw: Callable[..., Tensor | None] | None = None) -> list[Op]:
        """The upsampling tail (quarter resolution -> RGB), as strip ops (``up_dw``: the fused
        upsampling + grouped conv kernel, :attr:`.kernels.StripKernels.up_dw`)."""
        # Both depthwise convs read two inputs per group; the second's come in blocked order
        # (strips.blocked_order) from the 1x1 conv's reordered weights.
        return [UpConv(Conv(self.up1_dw, True), up_dw), Conv(self.up1_pw, True, blocks_out=2),
                UpConv(Conv(self.up2_dw, True, blocked_in=True), up_dw), Conv(self.up2_pw, True),
                Conv(self.conv_out, False, phases=4)]

    def forward(self, c2: Tensor, s: StyleSignals, alpha: float = 1.0) -> Tensor:
        return self.forward_full_res(self.forward_half(self.forward_low_res(c2, s, alpha)))


def _checked_alpha(alpha: float | Tensor) -> float | Tensor:
    """``alpha`` (a number, or (N, 1, 1, 1) per frame) as the network takes it, in [0, 1]."""
    low, high = (alpha, alpha) if isinstance(alpha, (int, float)) else (float(alpha.min()), float(alpha.max()))
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha = }")
    return float(alpha) if isinstance(alpha, (int, float)) else alpha


def _pad_to_multiple(x: Tensor, m: int = 4) -> tuple[Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w


def check_frame_size(h: int, w: int, what: str = "image") -> None:
    """Raise ``ValueError`` if an (h, w) frame is too small for the network."""
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(
            f"{what} of {w}x{h} px is too small for MicroAST: each side needs at least "
            f"{MIN_SIDE} px ({h = }, {w = })"
        )


class MicroAST(nn.Module):
    """The whole network: content encoder, style encoder, modulator and decoder.

    Use :func:`microast_video.load_model` for the official weights. Then::

        signals = model.encode_style(style)      # once per style
        out = model(content, signals, alpha=1)   # per frame (batch)
    """

    def __init__(self) -> None:
        super().__init__()
        self.content_encoder = ContentEncoder()
        self.style_encoder = StyleEncoder()
        self.modulator = Modulator()
        self.decoder = Decoder()
        self.kernels: StripKernels = PYTORCH  # the native kernels its strip ops try first

    def use_kernels(self, kernels: StripKernels) -> None:
        """The native kernels this model's strip ops try first (:data:`.kernels.PYTORCH`: none)."""
        self.kernels = kernels

    def load_upstream_state(self, checkpoints: Mapping[str, Mapping[str, Tensor]]) -> MicroAST:
        """Load the four upstream state dicts (keyed by part name), strictly."""
        for part in CHECKPOINT_PARTS:
            module: nn.Module = getattr(self, part)
            module.load_state_dict(upstream_to_project_keys(part, checkpoints[part]), strict=True)
        return self

    def encode_style(self, style: Tensor) -> StyleSignals:
        """The style's modulation signals, computed once and reused for every frame.

        Args:
            style: (1, 3, H, W) float tensor in [0, 1], any size with H, W >= 5.

        Returns:
            :class:`StyleSignals` (eight (1, 64, 1, 1) float32 vectors) on the model's device.
        """
        if style.ndim != 4 or style.shape[:2] != (1, 3):
            raise ValueError(f"style must be a (1, 3, H, W) tensor, got {tuple(style.shape) = }")
        check_frame_size(*style.shape[-2:], what="style image")
        s1, s2 = self.style_encoder(style)
        mean1, std1 = mean_std(s1)
        mean2, std2 = mean_std(s2)
        w1, b1, w2, b2 = self.modulator(s1, s2)
        return StyleSignals(mean1, std1, mean2, std2, w1, b1, w2, b2)

    def forward(
        self, content: Tensor, signals: StyleSignals, alpha: float | Tensor = 1.0, *, strip_rows: int | None = None,
        matte: Tensor | None = None, background: StyleSignals | None = None, strip_middle: bool = True,
        quantize: bool = False, kept: KeptMap | None = None,
    ) -> Tensor:
        """Stylize a batch of frames.

        Args:
            content: (N, 3, H, W) float tensor in [0, 1], or uint8 samples in [0, 255] (any
                strides: an NHWC frame permuted is read as it is; in strips each strip is
                converted as it is read, so no float copy of the frame exists); any H, W >= 5
                (padded to a multiple of 4 by reflection inside, cropped back).
            signals: from :meth:`encode_style` (or a mix of several).
            alpha: content-style weight in [0, 1], as upstream computes it; or an (N, 1, 1, 1)
                tensor, one per frame.
            matte: (N, 1, H, W) in [0, 1]: spatial control (:mod:`.regions`): ``signals``
                where the matte is 1, ``background`` where it is 0, soft edges blended; each
                region's content statistics are its own. Without ``background`` the matte
                only decides where the content statistics come from (the caller keeps the
                original picture outside it).
            strip_rows: None runs every layer on the whole frame. A number runs the
                full-resolution layers in horizontal strips of about that many rows
                (exact: same result up to float rounding) so that no full-resolution
                feature map exists in full.
            strip_middle: with ``strip_rows``, run the quarter-resolution middle in strips
                too (its statistics in passes of their own; :mod:`.strip_blocks`), so only
                one quarter-resolution map exists whole. False keeps the middle whole (fewer,
                larger operations: what ``torch.compile`` handles best). With a matte the
                middle is always whole.

            quantize: return uint8 samples (:func:`to_samples`: clamped, rounded), made
                strip by strip in strips (NHWC memory), instead of the raw float output.
            kept: with ``strip_middle``, the quarter-resolution map is this
                :class:`~.strip_runner.KeptMap`'s (allocated once for a stream of frames, not per call).

        Returns:
            (N, 3, H, W) raw output, not clamped (``alpha < 1`` can leave [0, 1] far); with
            ``quantize``, uint8 samples.
        """
        if content.ndim != 4 or content.shape[1] != 3:
            raise ValueError(f"content must be (N, 3, H, W), got {tuple(content.shape) = }")
        alpha = _checked_alpha(alpha)
        check_frame_size(*content.shape[-2:], what="frame")
        if content.dtype == torch.uint8 and (strip_rows is None or content.shape[2] % 4 or content.shape[3] % 4):
            content = to_unit(content)  # whole frames, or reflection padding: float up front
        x, h, w = _pad_to_multiple(content)
        regions = None if matte is None else Regions.from_matte(
            _pad_to_multiple(matte)[0], (x.shape[2] // 4, x.shape[3] // 4), background)
        if strip_rows is None:
            _, c2 = self.content_encoder(x)
            out = self.decoder.forward_full_res(self.decoder.forward_half(
                self.decoder.forward_low_res(c2, signals, alpha, regions)))
            out = to_samples(out) if quantize else out
        else:
            if strip_rows < 1:
                raise ValueError(f"strip_rows must be >= 1, got {strip_rows = }")
            out = self._forward_strips(x, signals, alpha, strip_rows, regions, strip_middle, quantize, kept)
        return out[..., :h, :w]

    @torch.compiler.disable  # compiled, the strips would unroll into many small graphs (minutes to build)
    def _middle_strips(self, feat: Tensor, s: StyleSignals, alpha: float | Tensor,
                       bounds: list[tuple[int, int]]) -> Tensor:
        """The quarter-resolution middle in strips (:mod:`.strip_blocks`), each FeatMod's
        statistics in a pass of their own, every step written over ``feat`` (in place): only
        that one quarter-resolution map exists whole."""
        enc, dec, k = self.content_encoder, self.decoder, self.kernels.middle
        c2 = run_strips([Residual(enc.res1.conv1, enc.res1.conv2, middle=k),
                         Residual(enc.res2.conv1, enc.res2.conv2, middle=k)], feat, bounds, in_place=True)
        b1, b2 = dec.block1, dec.block2
        x = run_strips([Modulate(*strip_mean_std(c2, bounds, EPS, k), s.mean2, s.std2, alpha, k),
                        Residual(b1.conv1, b1.conv2, s.w2, s.b2, k)], c2, bounds, in_place=True)
        return run_strips([Modulate(*strip_mean_std(x, bounds, EPS, k), s.mean1, s.std1, alpha, k),
                           Residual(b2.conv1, b2.conv2, s.w1, s.b1, k)], x, bounds, in_place=True)

    def _forward_strips(self, x: Tensor, signals: StyleSignals, alpha: float | Tensor, rows: int,
                        regions: Regions | None = None, strip_middle: bool = True, quantize: bool = False,
                        kept: KeptMap | None = None) -> Tensor:
        enc, dec = self.content_encoder, self.decoder
        head, tail = enc.head_ops(), dec.tail_ops(self.kernels.up_dw)
        quarter = x.shape[2] // 4
        with full_precision(x):
            feat = run_strips(head, x, strip_bounds(quarter, max(1, rows // 4)), prepare=to_unit,
                              empty=kept if kept is not None and strip_middle and regions is None else torch.empty)
        if regions is None and strip_middle:
            low = self._middle_strips(feat, signals, alpha, strip_bounds(quarter, max(1, rows // 4)))
        else:  # the middle on the whole map (per-region statistics, or for torch.compile)
            c2 = enc.forward_res(feat)[1]
            del feat  # free what is done with
            low = dec.forward_low_res(c2, signals, alpha, regions)
            del c2
        tail = [op.prepared() if isinstance(op, Conv) else op for op in tail]  # polyphase and reordered weights once
        if not quantize:
            return run_strips(tail, low, strip_bounds(x.shape[2], rows))
        return run_strips(tail, low, strip_bounds(x.shape[2], rows), finish=to_samples,
                          memory_format=torch.channels_last)
