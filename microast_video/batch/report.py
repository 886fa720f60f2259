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

import cv2

from .._version import __version__
from ..core.errors import MicroastError, OutputError, shown
from ..core.options import DEFAULT_MAX_PIXELS
from ..core.output import check_output, json_bytes, write_bytes
from ..media.image import read_image
from .manifest import Manifest
from .segments import recorded_figures
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
        "styles": [str(p) for p in _style_paths(run)],
        "frames": run.frames, "seconds": round(run.seconds, 3),
        "fps": round(run.frames / run.seconds, 3) if run.seconds else None,
        "segments": len(run.segments) or run.recorded_segments, "stages": run.stages, "flicker": run.flicker,
        "notes": run.notes, "contact_sheet": str(run.sheet) if run.sheet else None,
        "footage_seconds": run.footage_seconds,
        "figures_from": run.made if run.status == "skipped" else None,  # an earlier run made the output
    }


def _style_paths(run: JobRun) -> list[Path]:
    """The look's style images (keyframe styles too), for the report's thumbnails."""
    keys = run.plan.keyframes if run.plan is not None else None
    paths = list(run.job.look.styles) + list(keys.style_paths if keys is not None else ())
    return list(dict.fromkeys(paths))


#: The order jobs are listed in: what needs a look first.
_ORDER = {"failed": 0, "pending": 1, "done": 2, "skipped": 3}


def _summary(runs: list[JobRun], wall: float, estimate: float | None) -> dict[str, Any]:
    counts = {s: sum(r.status == s for r in runs) for s in ("done", "failed", "skipped", "pending")}
    compute = sum(r.seconds for r in runs)
    footage = sum(r.footage_seconds for r in runs if r.seconds)
    return {"jobs": len(runs), **counts, "frames": sum(r.frames for r in runs), "wall_seconds": round(wall, 2),
            "estimate_seconds": None if estimate is None else round(estimate, 1),
            "compute_seconds": round(compute, 2), "footage_seconds": round(footage, 2),
            "compute_minutes_per_footage_minute": round(compute / footage, 2) if footage else None}


def write_report(runs: list[JobRun], manifest: Manifest, folder: Path, options: BatchOptions,
                 estimate: float | None, *, wall: float, planned: bool = False,
                 interrupted: bool = False) -> dict[str, Any]:
    """Write ``report.json`` and ``report.html`` into ``folder``; returns the report. A dry run's
    (``planned``) is returned only: it never replaces the last run's report. An up-to-date job
    shows the figures and the sheet of the run that made it (kept in its record)."""
    for run in runs:
        earlier = folder / "sheets" / f"{run.job.id}.png"
        if run.sheet is None and run.status == "skipped" and earlier.is_file():
            run.sheet = earlier
        if run.status == "skipped" and not run.frames and (figures := recorded_figures(run.job.output)):
            run.take_figures(figures)
    report = {
        "report": _MARK, "version": __version__, "manifest": str(manifest.path),
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "dry_run": planned,
        "interrupted": interrupted, "summary": _summary(runs, wall, estimate),
        "jobs": [_job_entry(r) for r in sorted(runs, key=lambda r: _ORDER.get(r.status, 9))],
    }
    if planned:
        return report
    for name, data in (("report.json", json_bytes(report)), ("report.html", render_html(report).encode())):
        check_output(folder / name, [j.input for j in manifest.jobs], overwrite=True, what="batch report")
        write_bytes(folder / name, data, overwrite=True, what="batch report")
    return report


def interrupted_message(report: dict[str, Any], folder: Path) -> str:
    """What a Ctrl-C (or SIGTERM) of a batch says: what finished, what is pending, where the report is."""
    s = report["summary"]
    failed = f", {s['failed']} failed" if s["failed"] else ""
    return (f"interrupted: {s['done'] + s['skipped']} of {s['jobs']} job(s) finished (their outputs are complete), "
            f"{s['pending']} pending{failed}; run the same command again to continue (finished segments are "
            f"kept); report: {shown(folder / 'report.html')}")


_CSS = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}.failed{color:#b00}.done{color:#070}
.skipped{color:#666}.pending{color:#a60}.job{margin:1.5em 0;padding:1em;border:1px solid #ddd;border-radius:6px}
.banner{padding:.6em 1em;background:#fff4e0;border:1px solid #e0b060;border-radius:6px}
.styles img{display:inline-block;height:64px;margin:.3em .3em 0 0;border:1px solid #ccc}
img.sheet{max-width:100%;display:block;margin-top:.5em}code{background:#f4f4f4;padding:1px 4px}
svg text{font:11px system-ui,sans-serif}"""
_SCRIPT = """window.addEventListener('load',()=>{const i=[...document.images];
document.body.dataset.images=i.length;document.body.dataset.loaded=i.filter(x=>x.complete&&x.naturalWidth>0).length;});"""


def _sheet(path: str | None) -> str:
    if not path or not Path(path).is_file():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img class="sheet" alt="contact sheet" src="data:image/png;base64,{data}">'


def _thumbnail(path: str) -> str:
    """A style image 64 px high, inline (size-checked before decoding; nothing where unreadable)."""
    try:
        rgb = read_image(path, what="style image", max_pixels=DEFAULT_MAX_PIXELS, longest=256)
    except MicroastError:
        return ""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(w * 64 / h)), 64), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor((small * 255).round().astype("uint8"), cv2.COLOR_RGB2BGR))
    alt = html.escape(Path(path).name)
    return f'<img alt="{alt}" title="{alt}" src="data:image/jpeg;base64,{base64.b64encode(data.tobytes()).decode()}">' \
        if ok else ""


def stage_chart(stages: dict[str, float], fps: float | None) -> str:
    """Each stage's busy seconds as a bar (the longest bounds the job), the fps beside: inline SVG."""
    if not stages:
        return ""
    top = max(stages.values()) or 1.0
    rows = []
    for i, (name, secs) in enumerate(stages.items()):
        y, width = 4 + 16 * i, max(1.0, 220 * secs / top)
        colour = "#c55" if secs == top else "#69c"
        rows.append(f'<text x="0" y="{y + 11}">{html.escape(name)}</text><rect x="70" y="{y + 2}" width="{width:.1f}" '
                    f'height="11" fill="{colour}"/><text x="{76 + width:.1f}" y="{y + 11}">{secs:.2f} s</text>')
    height = 8 + 16 * len(stages)
    label = f'<text x="360" y="14">{fps:.2f} fps</text>' if fps else ""
    return (f'<svg class="stages" width="440" height="{height}" role="img" aria-label="stage busy time">'
            f'{"".join(rows)}{label}</svg>')


def _figures(j: dict[str, Any]) -> str:
    line = f'{j["frames"]} frames, {j["segments"]} segment(s)' + (f', {j["fps"]:.2f} fps' if j["fps"] else "")
    if j["footage_seconds"] and j["seconds"]:
        line += f', {j["seconds"] / j["footage_seconds"]:.2f} min of compute per min of footage'
    if j["figures_from"]:
        line += f' (up to date: the figures of the run that made it, {html.escape(j["figures_from"])})'
    return f"<div>{line}</div>"


def _flicker(flicker: dict[str, Any] | None) -> str:
    if not flicker:
        return ""
    return (f"<div>warping error {flicker['warping_error']:.6f} ({flicker['vs_source']:.1f}x the source's)"
            + ("" if flicker["seam_vs_clip"] is None else
               f"; at the {flicker['seams']} segment seam(s) {flicker['seam_vs_clip']:.2f}x the clip's mean") + "</div>")


def _job_html(j: dict[str, Any], e: Any) -> str:
    return (f'<div class="job"><h3>{e(j["entry"])} <span class="{e(j["status"])}">{e(_SHOWN.get(j["status"], j["status"]))}'
            f'</span></h3>'
            + (f'<div class="failed">{e(j["error"])}</div>' if j["error"] else "")
            + "".join(f"<div>note: {e(n)}</div>" for n in j.get("notes") or [])
            + f'<div>input <code>{e(j["input"])}</code> look <b>{e(j["look"])}</b> output <code>{e(j["output"])}</code></div>'
            + f'<div class="styles">{"".join(_thumbnail(p) for p in j.get("styles") or [])}</div>'
            + _figures(j) + stage_chart(j["stages"] or {}, j["fps"]) + _flicker(j["flicker"]) + _sheet(j["contact_sheet"])
            + "</div>")


def _summary_html(report: dict[str, Any], e: Any) -> str:
    s = report["summary"]
    rate = s.get("compute_minutes_per_footage_minute")
    rows = [("jobs", f'{s["jobs"]}: {s["failed"]} failed, {s["pending"]} pending, {s["done"]} done, '
                     f'{s["skipped"]} up to date'), ("frames", s["frames"]),
            ("compute", f'{_span(s.get("compute_seconds", 0))} for {_span(s.get("footage_seconds", 0))} of footage'
                        + (f": {rate:.2f} min of compute per min of footage" if rate else "")),
            ("this run", f'{s["wall_seconds"]:.1f} s' + (f' (estimated {s["estimate_seconds"]:.0f} s)'
                                                         if s["estimate_seconds"] else ""))]
    return "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows) + "</table>"


def _span(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


#: How the page names each status (report.json keeps the short names).
_SHOWN = {"skipped": "up to date", "pending": "not finished"}


def render_html(report: dict[str, Any]) -> str:
    """The report as one HTML page with everything inside (opens offline, mails as one file):
    the totals, then each job (failures first) with its style thumbnails, figures, a chart of
    its stages' busy time, its warping error when measured, and its contact sheet.

    Paths are shown relative to the manifest's folder (``report.json`` keeps them whole)."""
    base = Path(report["manifest"]).parent
    e = lambda text: html.escape(str(text).replace(str(base) + os.sep, ""))  # noqa: E731
    banner = ('<p class="banner">Interrupted: the jobs listed as pending did not finish; run the same command again '
              "to continue.</p>" if report.get("interrupted") else "")
    return (f"<!doctype html><!-- {_MARK} --><html><head><meta charset='utf-8'><title>microast-video batch report</title>"
            f"<style>{_CSS}</style></head><body><h1>Batch report</h1><p>{e(Path(report['manifest']).name)}, "
            f"{e(report['finished'])}{' (dry run: planned only)' if report['dry_run'] else ''}</p>{banner}"
            f"{_summary_html(report, e)}{''.join(_job_html(j, e) for j in report['jobs'])}"
            f"<script>{_SCRIPT}</script></body></html>\n")
