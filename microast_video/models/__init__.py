"""The MicroAST network as pure ``nn.Module``s: no file, network or device I/O here."""

from .checkpoint_keys import CHECKPOINT_PARTS, upstream_to_project_keys
from .kernels import PYTORCH, MiddleKernels, StripKernels
from .microast import (
    ContentEncoder,
    Decoder,
    Encoder,
    MicroAST,
    ModulatedResBlock,
    Modulator,
    ResBlock,
    StyleEncoder,
    featmod,
    mean_std,
)
from .signals import StyleSignals, mix_signals
from .strip_runner import KeptMap

__all__ = [
    "CHECKPOINT_PARTS",
    "ContentEncoder",
    "Decoder",
    "Encoder",
    "KeptMap",
    "MiddleKernels",
    "PYTORCH",
    "StripKernels",
    "MicroAST",
    "ModulatedResBlock",
    "Modulator",
    "ResBlock",
    "StyleEncoder",
    "StyleSignals",
    "featmod",
    "mix_signals",
    "mean_std",
    "upstream_to_project_keys",
]
