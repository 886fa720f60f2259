"""Checks on output paths, shared by every command: never overwrite an input, never clobber."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ._errors import OutputError


def check_output(output: Path, inputs: Iterable[Path | None], *, overwrite: bool) -> None:
    """Raise a one-line :class:`OutputError` if ``output`` cannot or must not be written.

    Refuses an output that is one of ``inputs`` (even with ``overwrite``), a directory, an
    existing file without ``overwrite``, and a missing or unwritable folder.
    """
    resolved = output.resolve()
    for path in inputs:
        if path is not None and path.exists() and resolved == path.resolve():
            raise OutputError(f"output {output} is an input file; refusing to overwrite it")
    if output.is_dir():
        raise OutputError(f"output {output} is a directory")
    if output.exists() and not overwrite:
        raise OutputError(f"output {output} exists; pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise OutputError(f"output folder {output.parent} does not exist")
    if not os.access(output.parent, os.W_OK):
        raise OutputError(f"output folder {output.parent} is not writable")
