"""The network with its official weights: the one place where models meet files."""

from __future__ import annotations

import os

import torch

from ..models import MicroAST
from .weights import load_checkpoints, resolve_weights


def load_model(weights: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu", *,
               progress: bool = True) -> MicroAST:
    """:class:`~microast_video.models.MicroAST` in eval mode with the official weights, on ``device``.

    Args:
        weights: a folder holding the four official checkpoint files, or None to resolve
            them (``MICROAST_VIDEO_WEIGHTS``, the user cache, then download).
        device: a torch device (no "auto" here; see ``microast_video.resolve_device``).
        progress: show a progress bar while downloading.

    Raises:
        WeightsError: missing, unreachable or tampered weights (one-line message).
    """
    folder = resolve_weights(weights, progress=progress)
    model = MicroAST().load_upstream_state(load_checkpoints(folder))
    return model.eval().requires_grad_(False).to(device)
