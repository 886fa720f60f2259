"""The three networks a job can run (``--network``): MicroAST with the official weights, AdaIN
with naoto0804/pytorch-AdaIN's published files, and a Johnson feed-forward network from a
pytorch/examples checkpoint; each file loaded with ``torch.load(..., weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..core.errors import InputError, WeightsError, shown
from ..core.options import Network
from ..models.adain import AdaIN, load_adain
from ..models.johnson import NoSignals, TransformerNet, load_johnson
from .pretrained import load_model

#: Where AdaIN's two files are found without --weights.
ADAIN_ENV = "MICROAST_VIDEO_ADAIN_WEIGHTS"
#: AdaIN's published files (naoto0804/pytorch-AdaIN's README links them; no digest is published,
#: so the tool does not download them itself).
ADAIN_FILES = ("vgg_normalised.pth", "decoder.pth")
ADAIN_SOURCE = "https://github.com/naoto0804/pytorch-AdaIN (README: 'Download models')"


def state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors by key (a ``state_dict`` saved with torch.save), safely loaded.

    Raises:
        InputError: missing, not a torch checkpoint, or not a mapping of tensors (one line)."""
    if not Path(path).is_file():
        raise InputError(f"{what} {shown(path)}: file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle, zip and torch errors alike: not a checkpoint
        raise InputError(f"{what} {shown(path)}: not a PyTorch checkpoint ({type(err).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{what} {shown(path)}: not a state dict of tensors")
    return state


def adain_folder(weights: str | os.PathLike[str] | None) -> Path:
    """The folder holding AdaIN's two files: ``--weights``, else ``$MICROAST_VIDEO_ADAIN_WEIGHTS``."""
    folder = weights or os.environ.get(ADAIN_ENV)
    if folder is None:
        raise WeightsError(f"--network adain needs {' and '.join(ADAIN_FILES)}: download them from {ADAIN_SOURCE} "
                           f"into a folder and pass --weights DIR (or set {ADAIN_ENV})")
    missing = [name for name in ADAIN_FILES if not (Path(folder) / name).is_file()]
    if missing:
        raise WeightsError(f"AdaIN weights {shown(folder)}: {', '.join(missing)} missing (from {ADAIN_SOURCE})")
    return Path(folder)


def load_network(network: Network, *, weights: str | os.PathLike[str] | None = None, style_model: str | None = None,
                 device: str | torch.device = "cpu", progress: bool = True) -> Any:
    """The job's network in eval mode on ``device``, weights frozen.

    Raises:
        WeightsError, InputError: weights missing or not the network's (one line)."""
    network = Network(network)
    if network is Network.microast:
        return load_model(weights, device=device, progress=progress)
    if network is Network.adain:
        folder = adain_folder(weights)
        vgg, decoder = (state_dict(folder / name, "AdaIN weights") for name in ADAIN_FILES)
        net: AdaIN | TransformerNet = _checked(lambda: load_adain(vgg, decoder), folder, "AdaIN's")
    else:
        if style_model is None:
            raise InputError("--network johnson needs --style-model FILE (a fast_neural_style checkpoint)")
        if Path(style_model).suffix.lower() == ".onnx":
            return OnnxJohnson(Path(style_model))
        state = state_dict(Path(style_model), "style model")
        net = _checked(lambda: load_johnson(state), style_model, "a fast_neural_style TransformerNet's")
    return net.requires_grad_(False).to(device)


class OnnxJohnson(torch.nn.Module):
    """A Johnson network exported to ONNX (fast_neural_style's ``--export_onnx``), run by ONNX
    Runtime on the CPU: pixels in [0, 255] in, raw pixels out, as the PyTorch network."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError(f"style model {shown(path)}: ONNX models need pip install 'microast-video[onnx]'") from None
        if not path.is_file():
            raise InputError(f"style model {shown(path)}: file not found")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - any ONNX Runtime failure: not a model it can run
            raise InputError(f"style model {shown(path)}: not an ONNX model ONNX Runtime can run ({type(err).__name__})"
                             ) from None
        self.input = self.session.get_inputs()[0].name
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # where the engine's frames go: the CPU

    def forward(self, content: torch.Tensor, signals: Any = None, alpha: Any = 1.0, **engine: Any) -> torch.Tensor:
        x = content.float() if content.dtype == torch.uint8 else content.float() * 255
        h, w = x.shape[-2:]
        out = torch.from_numpy(self.session.run(None, {self.input: x.contiguous().numpy()})[0])
        return (out[..., :h, :w] / 255).clamp(0, 1)

    def use_kernels(self, kernels: Any) -> None:
        """MicroAST's strip kernels do not apply."""


def _checked(load: Any, path: Any, whose: str) -> Any:
    try:
        return load()
    except (KeyError, RuntimeError, ValueError) as err:
        first = " ".join(str(err).split())[:160]
        raise InputError(f"{shown(path)}: not {whose} weights ({first})") from None


def no_signals() -> NoSignals:
    """A Johnson network's style signals (none)."""
    return NoSignals()
