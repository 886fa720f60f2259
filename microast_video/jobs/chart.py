"""``--chart``: a PNG of a run's per-frame time and stage busy time (matplotlib, an optional extra).

matplotlib because it is the standard way to draw such a plot headless (the Agg backend,
no display), it writes PNG directly, and as an optional extra
(``pip install 'microast-video[chart]'``) it costs nothing to users who never ask for a chart.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..core.errors import OptionError
from ..core.output import write_bytes


def check_chart_available() -> None:
    """Refuse ``--chart`` up front where matplotlib is missing (before any work)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise OptionError("--chart needs matplotlib: pip install 'microast-video[chart]'") from None


def write_chart(path: Path, report: dict[str, Any], *, overwrite: bool) -> None:
    """:func:`chart_png` written to ``path`` (atomically)."""
    write_bytes(path, chart_png(report), overwrite=overwrite, what="--chart")


def chart_png(report: dict[str, Any]) -> bytes:
    """A PNG of two panels: seconds between finished frames over the run, and each stage's busy time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [f.get("encode") for f in report["per_frame"]]
    done = [t for t in done if t is not None]
    gaps = [b - a for a, b in zip(done, done[1:])]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), gridspec_kw={"height_ratios": [2, 1]})
    top.plot(range(1, len(done)), gaps, lw=1)
    top.set_xlabel("frame")
    top.set_ylabel("seconds since the previous frame")
    top.set_title(f"{Path(report['input']).name}: {report['frames']} frames, {report['fps']:.2f} fps "
                  f"({report['output_resolution'][0]}x{report['output_resolution'][1]}, {report['device']})")
    stages = report["stages"]
    bottom.barh(list(stages), list(stages.values()))
    bottom.set_xlabel("busy seconds")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()
