"""How the upstream checkpoints' parameter names map onto this package's modules (pure data)."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

# Upstream checkpoint key prefixes -> this module's, per checkpoint file.
_ENCODER_KEYS = {
    "enc1.0.conv_layer": "conv_in",
    "enc1.2.conv_layer": "down1",
    "enc1.4.conv_layer": "point1",
    "enc1.6.conv_layer": "down2",
    "enc1.8.conv_layer": "point2",
    "enc1.10.conv1.conv_layer": "res1.conv1",
    "enc1.10.conv2.conv_layer": "res1.conv2",
    "enc2.0.conv1.conv_layer": "res2.conv1",
    "enc2.0.conv2.conv_layer": "res2.conv2",
}
KEY_MAPS: dict[str, dict[str, str]] = {
    "content_encoder": _ENCODER_KEYS,
    "style_encoder": _ENCODER_KEYS,
    "modulator": {f"{n}.0.conv_layer": n for n in ("weight1", "bias1", "weight2", "bias2")},
    "decoder": {
        "dec1.conv1.conv_layer": "block1.conv1",
        "dec1.conv2.conv_layer": "block1.conv2",
        "dec2.conv1.conv_layer": "block2.conv1",
        "dec2.conv2.conv_layer": "block2.conv2",
        "dec3.1.conv_layer": "up1_dw",
        "dec3.3.conv_layer": "up1_pw",
        "dec3.6.conv_layer": "up2_dw",
        "dec3.8.conv_layer": "up2_pw",
        "dec3.10.conv_layer": "conv_out",
    },
}


def upstream_to_project_keys(part: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename one upstream checkpoint's keys onto this module layout.

    Args:
        part: ``"content_encoder"``, ``"style_encoder"``, ``"modulator"`` or ``"decoder"``.
        state: the checkpoint's ``state_dict``.

    Raises:
        ValueError: an unknown part, or a key the upstream layout does not have.
    """
    if part not in KEY_MAPS:
        raise ValueError(f"unknown checkpoint part {part = }")
    table = KEY_MAPS[part]
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in table or leaf not in ("weight", "bias"):
            raise ValueError(f"unexpected key in the {part} checkpoint: {key = }")
        out[f"{table[prefix]}.{leaf}"] = value
    return out



#: The four checkpoint parts, in the order the upstream code loads them.
CHECKPOINT_PARTS = tuple(KEY_MAPS)
