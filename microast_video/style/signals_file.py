"""Saving and loading style signals (``microast-video signals``, ``--signals``).

Signals are written as a NumPy ``.npz`` holding no pickled objects, atomically, and read
back with ``allow_pickle=False``, every name, shape and value validated.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..core.errors import InputError, shown
from ..core.output import AtomicFile
from ..models.signals import StyleSignals

_FORMAT = "microast-video/style-signals/1"


def save_signals(signals: StyleSignals, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Write ``signals`` to ``path`` (a NumPy ``.npz`` with no pickled objects), atomically.

    Raises:
        OutputError: the file exists (without ``overwrite``) or cannot be written.
    """
    arrays = {n: t.detach().float().cpu().numpy() for n, t in zip(signals.names(), signals.tensors())}
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array(_FORMAT), **arrays)
    with AtomicFile(path, overwrite=overwrite, what="style signals") as out:
        out.write(buffer.getvalue())
        out.publish()


#: The largest member a signals archive may hold (one (1, 64, 1, 1) float32 vector is 384 bytes).
_MEMBER_BYTES = 64 * 1024


def _check_members(path: Path, name: str) -> None:
    """The archive's members, from its directory, before any is read: only the known names,
    each small (an extra 2 GB member was loaded whole before validation)."""
    known = {f"{k}.npy" for k in ("format", *StyleSignals.names())}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.filename not in known:
                raise InputError(f"{name}: not a style-signals file (unexpected member {info.filename!r})")
            if info.file_size > _MEMBER_BYTES:
                raise InputError(f"{name}: member {info.filename!r} declares {info.file_size} bytes; a signals file "
                                 f"holds a few hundred")


def load_signals(path: str | os.PathLike[str]) -> StyleSignals:
    """Read signals written by :func:`save_signals`, validating names, shapes and values.

    Raises:
        InputError: missing file, not a signals file, wrong shapes or non-finite values.
    """
    path = Path(path)
    name = f"style signals {shown(path)}"
    if not path.is_file():
        raise InputError(f"{name}: file not found")
    try:
        _check_members(path, name)
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"{name}: not a style-signals file ({' '.join(str(err).split())})") from err
    if str(arrays.get("format", "")) != _FORMAT:
        raise InputError(f"{name}: not a style-signals file (format tag missing)")
    tensors = []
    for key in StyleSignals.names():
        a = arrays.get(key)
        if a is None or a.shape != (1, 64, 1, 1) or a.dtype != np.float32:
            got = None if a is None else (a.shape, str(a.dtype))
            raise InputError(f"{name}: {key} must be float32 (1, 64, 1, 1), got {got}")
        if not np.isfinite(a).all():
            raise InputError(f"{name}: {key} holds NaN or infinite values")
        tensors.append(torch.from_numpy(a.copy()))
    return StyleSignals(*tensors)
