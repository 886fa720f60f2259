"""Where the tool keeps what it makes for itself: the per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return the per-user cache folder (downloaded weights, built native kernels, compiled graphs).

    ``$XDG_CACHE_HOME/microast-video`` when ``XDG_CACHE_HOME`` is set to an absolute
    path (relative values are ignored, as the XDG spec asks), otherwise
    ``~/.cache/microast-video``. The folder is not created here.
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        base = Path.home() / ".cache"
    return base / "microast-video"
