"""The MicroAST network as pure ``nn.Module``s: no file, network or device I/O here."""

from .microast import (
    ContentEncoder,
    Decoder,
    Encoder,
    MicroAST,
    Modulator,
    ModulatedResBlock,
    ResBlock,
    StyleEncoder,
    featmod,
    mean_std,
    upstream_to_project_keys,
)

__all__ = [
    "ContentEncoder",
    "Decoder",
    "Encoder",
    "MicroAST",
    "ModulatedResBlock",
    "Modulator",
    "ResBlock",
    "StyleEncoder",
    "featmod",
    "mean_std",
    "upstream_to_project_keys",
]
