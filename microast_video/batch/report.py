"""The batch's report: ``report.json`` and a self-contained ``report.html`` (contact sheets inside).

The report folder belongs to the batch: it is made beside the manifest (``NAME-report``),
its files are replaced by the next run, and a file there that the tool did not write is
never replaced without ``--overwrite``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import html
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._version import __version__
from ..core.errors import OutputError, shown
from ..core.output import check_output, json_bytes, write_bytes
from .manifest import Manifest
from .types import BatchOptions, JobRun

_MARK = "microast-video batch report"
#: The lock a running batch holds in its report folder.
LOCK_NAME = ".microast-batch.lock"


def report_folder(manifest: Manifest, options: BatchOptions) -> Path:
    """The folder the report goes to (made if missing, except by a dry run); never one of the
    batch's inputs."""
    folder = options.report_dir or manifest.path.with_name(f"{manifest.path.stem}-report")
    inputs = {job.input.resolve() for job in manifest.jobs}
    if folder.resolve() in inputs or folder.is_file():
        raise OutputError(f"report folder {shown(folder)} is a file")
    if not options.dry_run:
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("report.json", "report.html"):
        target = folder / name
        if target.exists() and not options.overwrite and _MARK not in target.read_text(errors="replace")[:2000]:
            raise OutputError(f"{shown(target)} exists and is not a batch report; pass --overwrite to replace it")
    return folder


@contextlib.contextmanager
def batch_lock(folder: Path) -> Iterator[None]:
    """Hold this report folder's batch lock (one run of a manifest at a time), or say in one line
    that another run holds it. The kernel releases it when its holder dies, however it dies."""
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise OutputError(f"another batch run of this manifest is running (pid {holder}; lock "
                              f"{shown(path)}); wait for it to end") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def failed_ids(folder: Path) -> set[str] | None:
    """The ids of the jobs the last report marks failed (None: no report there)."""
    try:
        report = json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return None
    return {job["id"] for job in report.get("jobs", []) if job.get("status") == "failed"}


def _job_entry(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.job.id, "entry": run.job.entry, "status": run.status, "error": run.error,
        "input": str(run.job.input), "look": run.job.look.name, "output": str(run.job.output),
        "frames": run.frames, "seconds": round(run.seconds, 3),
        "fps": round(run.frames / run.seconds, 3) if run.seconds else None,
        "segments": len(run.segments), "stages": run.stages, "flicker": run.flicker, "notes": run.notes,
        "contact_sheet": str(run.sheet) if run.sheet else None,
    }


def write_report(runs: list[JobRun], manifest: Manifest, folder: Path, options: BatchOptions,
                 estimate: float | None, *, wall: float, planned: bool = False) -> dict[str, Any]:
    """Write ``report.json`` and ``report.html`` into ``folder``; returns the report. A dry run's
    (``planned``) is returned only: it never replaces the last run's report."""
    for run in runs:  # an up-to-date job shows the sheet the run that made it left
        earlier = folder / "sheets" / f"{run.job.id}.png"
        if run.sheet is None and run.status == "skipped" and earlier.is_file():
            run.sheet = earlier
    counts = {s: sum(r.status == s for r in runs) for s in ("done", "failed", "skipped", "pending")}
    report = {
        "report": _MARK, "version": __version__, "manifest": str(manifest.path),
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "dry_run": planned,
        "summary": {"jobs": len(runs), **counts, "frames": sum(r.frames for r in runs), "wall_seconds": round(wall, 2),
                    "estimate_seconds": None if estimate is None else round(estimate, 1)},
        "jobs": [_job_entry(r) for r in runs],
    }
    if planned:
        return report
    for name, data in (("report.json", json_bytes(report)), ("report.html", render_html(report).encode())):
        check_output(folder / name, [j.input for j in manifest.jobs], overwrite=True, what="batch report")
        write_bytes(folder / name, data, overwrite=True, what="batch report")
    return report


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.failed{color:#b00}.done{color:#070}
.skipped{color:#666}.job{margin:1.5em 0;padding:1em;border:1px solid #ddd;border-radius:6px}
img{max-width:100%;display:block;margin-top:.5em}code{background:#f4f4f4;padding:1px 4px}"""
_SCRIPT = """window.addEventListener('load',()=>{const i=[...document.images];
document.body.dataset.images=i.length;document.body.dataset.loaded=i.filter(x=>x.complete&&x.naturalWidth>0).length;});"""


def _relative(path: str, base: Path) -> str:
    return os.path.relpath(path, base) if os.path.isabs(path) else path


def _image(path: str | None) -> str:
    if not path or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="contact sheet" src="data:image/png;base64,{data}">'


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page with everything inside (opens offline, mails as one file).

    Paths are shown relative to the manifest's folder (``report.json`` keeps them whole)."""
    base = Path(report["manifest"]).parent
    e = lambda text: html.escape(str(text).replace(str(base) + os.sep, ""))  # noqa: E731
    s = report["summary"]
    rows = "".join(
        f"<tr><th>{e(k.replace('_', ' '))}</th><td>{e(str(v))}</td></tr>" for k, v in s.items())
    jobs = []
    for j in report["jobs"]:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in (j["stages"] or {}).items())
        flicker = j["flicker"]
        fl = "" if not flicker else (
            f"<div>warping error {flicker['warping_error']:.6f} ({flicker['vs_source']:.1f}x the source's)"
            + ("" if flicker["seam_vs_clip"] is None else
               f"; at the {flicker['seams']} segment seam(s) {flicker['seam_vs_clip']:.2f}x the clip's mean") + "</div>")
        jobs.append(
            f'<div class="job"><h3>{e(j["entry"])} <span class="{e(j["status"])}">{e(j["status"])}</span></h3>'
            + (f'<div class="failed">{e(j["error"])}</div>' if j["error"] else "")
            + "".join(f"<div>note: {e(n)}</div>" for n in j.get("notes") or [])
            + f'<div>input <code>{e(j["input"])}</code> look <b>{e(j["look"])}</b> output <code>{e(j["output"])}</code></div>'
            f'<div>{j["frames"]} frames, {j["segments"]} segment(s)'
            + (f', {j["fps"]:.2f} fps' if j["fps"] else "") + (f"; {e(stages)}" if stages else "") + "</div>"
            + fl + _image(j["contact_sheet"]) + "</div>")
    return (f"<!doctype html><!-- {_MARK} --><html><head><meta charset='utf-8'><title>microast-video batch report</title>"
            f"<style>{_CSS}</style></head><body><h1>Batch report</h1><p>{e(Path(report['manifest']).name)}, "
            f"{e(report['finished'])}{' (dry run: planned only)' if report['dry_run'] else ''}</p>"
            f"<table>{rows}</table>{''.join(jobs)}<script>{_SCRIPT}</script></body></html>\n")
