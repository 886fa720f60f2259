"""A batch manifest on a Ray cluster: every segment of every job a Ray task.

    python pipelines/ray_batch.py jobs.toml --address auto        # an existing cluster
    python pipelines/ray_batch.py jobs.toml --address local --cpus 4

Each task writes its segment to the job's work folder beside the output, so the outputs'
folder must be storage every node sees. A lost node's tasks are retried by Ray; running
the same command again continues where the batch stopped. Needs
``pip install 'microast-video[ray]'`` on every node.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from microast_video import BatchOptions, MicroastError, run_batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="the batch manifest (TOML)")
    parser.add_argument("--address", default="auto", help="'auto', a cluster address, or 'local' (default auto)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of a 'local' cluster (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace outputs made with other settings")
    parser.add_argument("--flicker", action="store_true", help="measure the warping error, also at segment seams")
    args = parser.parse_args(argv)

    # 1. The options: Ray for the segments, this process for the checks, assembly and report.
    options = BatchOptions(ray=args.address, workers=args.cpus, overwrite=args.overwrite, flicker=args.flicker)
    # 2. Run: checked in full first, then the segments as Ray tasks.
    report = run_batch(args.manifest, options)
    # 3. Say how it went (the report is beside the manifest).
    s = report["summary"]
    print(f"{s['done']} done, {s['skipped']} up to date, {s['failed']} failed in {s['wall_seconds']} s")
    return 1 if s["failed"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MicroastError as err:
        sys.exit(f"ray_batch: error: {err}")
