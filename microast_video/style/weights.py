"""Finding, downloading and verifying the official MicroAST checkpoints.

The network needs four small checkpoint files released with the MicroAST paper
(``EndyWon/MicroAST``, folder ``models/``, MIT license). :func:`resolve_weights`
returns a folder that holds all four, each checked against the SHA-256 digest
pinned in :data:`CHECKPOINTS`. It looks, in order, at:

1. the folder passed explicitly (``--weights``);
2. the folder named by the environment variable ``MICROAST_VIDEO_WEIGHTS``;
3. the user cache (``$XDG_CACHE_HOME/microast-video`` or ``~/.cache/microast-video``),
   downloading any missing or bad file into it from the upstream repository
   (or from ``MICROAST_VIDEO_WEIGHTS_URL`` when set).

A folder the user named explicitly is never silently replaced by a download: if it
lacks a file or holds a bad one, that is an error. Downloads are streamed into a
temporary file (:class:`~microast_video.core.output.AtomicFile`), hashed on the fly and
moved into place only once the digest matches, so the cache never holds a partial or unverified file under a
checkpoint's name. :func:`load_checkpoints` verifies every file again before
handing it to :func:`torch.load` (with ``weights_only=True``).

Every failure is raised as :class:`~microast_video.core.errors.WeightsError` with a
one-line message naming the file or address, the problem and what to do.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import pickle
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import torch
from tqdm import tqdm

from ..core.errors import OutputError, WeightsError, shown
from ..core.output import AtomicFile
from ..core.paths import cache_dir

__all__ = [
    "CHECKPOINTS",
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "ENV_WEIGHTS",
    "UPSTREAM_COMMIT",
    "cache_dir",
    "load_checkpoints",
    "resolve_weights",
    "verify_file",
]

#: Upstream commit the checkpoints are pinned to (they were added in d2796c7 and
#: are unchanged at this commit).
UPSTREAM_COMMIT = "5a6c9050d8c408191cb9db12c697f3e4c7ebe137"

#: Base address the four checkpoint files are downloaded from (ends with ``/``).
DEFAULT_BASE_URL = f"https://github.com/EndyWon/MicroAST/raw/{UPSTREAM_COMMIT}/models/"

#: Human-readable page listing the files, quoted in error messages.
UPSTREAM_PAGE = f"https://github.com/EndyWon/MicroAST/tree/{UPSTREAM_COMMIT}/models"

#: Part name -> (file name, pinned SHA-256 of the file).
CHECKPOINTS: dict[str, tuple[str, str]] = {
    "content_encoder": (
        "content_encoder_iter_160000.pth.tar",
        "c8d895c0eec52507c157e102fab217c37f0c399ef3e168ef8b0b2677714660a4",
    ),
    "style_encoder": (
        "style_encoder_iter_160000.pth.tar",
        "94f6b3fa386828692c20809a0af8bd0eba9c04e90a7d8842086976e4d223c5af",
    ),
    "modulator": (
        "modulator_iter_160000.pth.tar",
        "8588055baf7d5ad8398d595d5518c6f030e3ff8dbb6007a7c1779776e11da28b",
    ),
    "decoder": (
        "decoder_iter_160000.pth.tar",
        "32e04a46b953fd9f94ec9e20f351511305a5260e000c18f9aef6570d5f1e23d9",
    ),
}

#: Environment variable naming a folder that holds the four checkpoint files.
ENV_WEIGHTS = "MICROAST_VIDEO_WEIGHTS"

#: Environment variable overriding :data:`DEFAULT_BASE_URL` (mirrors, tests).
ENV_BASE_URL = "MICROAST_VIDEO_WEIGHTS_URL"

#: Network timeout for connecting and for each read, in seconds.
DOWNLOAD_TIMEOUT = 30.0

_CHUNK_SIZE = 64 * 1024

_MANUAL_HINT = (
    f"download the four files from {UPSTREAM_PAGE} (listed in the README) "
    f"and set {ENV_WEIGHTS} to their folder"
)


# --------------------------------------------------------------------------- helpers


def _one_line(reason: object) -> str:
    """Collapse an exception or message into a single line of text."""
    text = " ".join(str(reason).split())
    return text or type(reason).__name__


def _sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of the file at *path* (raises OSError)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cache_error(folder: Path, exc: BaseException) -> WeightsError:
    return WeightsError(
        f"cannot write to the weights cache {shown(folder)}: {_one_line(exc)}. "
        "Make that folder writable (or set XDG_CACHE_HOME to a writable folder), "
        f"or {_MANUAL_HINT}"
    )


def _download_error(url: str, reason: object) -> WeightsError:
    return WeightsError(
        f"cannot download weights from {url}: {_one_line(reason)}. "
        f"Check your internet connection, or {_MANUAL_HINT}"
    )


# --------------------------------------------------------------------------- public API


def verify_file(path: Path, sha256: str, *, hint: str | None = None) -> None:
    """Check that *path* exists and its SHA-256 equals *sha256*.

    *hint* replaces the default advice at the end of the "not found" message.
    Raises :class:`WeightsError` if the file is missing, unreadable or differs.
    """
    path = Path(path)
    if not path.is_file():
        advice = hint or _MANUAL_HINT
        raise WeightsError(f"weights file {shown(path)} not found: {advice}")
    try:
        actual = _sha256_of(path)
    except OSError as exc:
        raise WeightsError(
            f"cannot read weights file {shown(path)}: {_one_line(exc)}. "
            f"Check its permissions, or point {ENV_WEIGHTS} to a readable copy"
        ) from exc
    if actual != sha256.lower():
        raise WeightsError(
            f"weights file {shown(path)} fails its SHA-256 check "
            f"(expected {sha256.lower()}, got {actual}): the file is corrupt or tampered; "
            f"delete it and run again, or point {ENV_WEIGHTS} to a good copy"
        )


def _verify_user_folder(folder: Path, source: str) -> Path:
    """Verify a folder the user named; never fall back to downloading."""
    folder = folder.expanduser()
    if not folder.is_dir():
        raise WeightsError(
            f"weights folder {shown(folder)} ({source}) not found or not a folder: "
            f"give a folder holding the four checkpoint files, or {_MANUAL_HINT}"
        )
    hint = (
        f"the weights folder given by {source} must hold all four checkpoint files "
        f"({', '.join(name for name, _ in CHECKPOINTS.values())}); "
        f"download them from {UPSTREAM_PAGE}, or unset {ENV_WEIGHTS} and drop the "
        "--weights option to download them automatically"
    )
    for file_name, digest in CHECKPOINTS.values():
        verify_file(folder / file_name, digest, hint=hint)
    return folder


def _download(url: str, dest: Path, sha256: str, *, progress: bool) -> None:
    """Download *url* to *dest*, atomically and only if its SHA-256 matches."""
    folder = dest.parent
    try:
        with AtomicFile(dest, overwrite=True, what="weights file") as out:
            actual = _stream(url, out.file, folder, progress=progress, label=dest.name)
            if actual != sha256:
                raise WeightsError(
                    f"download of {url} fails its SHA-256 check "
                    f"(expected {sha256}, got {actual}): the server sent a corrupt or "
                    f"tampered file, which was discarded; try again later, or {_MANUAL_HINT}"
                )
            out.publish()
    except OutputError as exc:  # creating, syncing or renaming the file in the cache
        raise _cache_error(folder, exc) from exc


def _stream(url: str, out: IO[bytes], folder: Path, *, progress: bool, label: str) -> str:
    """Stream *url* into *out*; return the hex SHA-256 of what was received."""
    request = urllib.request.Request(url, headers={"User-Agent": "microast-video"})
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT)
    except urllib.error.HTTPError as exc:
        raise _download_error(url, f"HTTP error {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise _download_error(url, exc.reason) from exc
    except (http.client.HTTPException, OSError, ValueError) as exc:
        # RemoteDisconnected, BadStatusLine, TimeoutError, ConnectionError, bad URL ...
        raise _download_error(url, exc) from exc

    digest = hashlib.sha256()
    received = 0
    with response:
        expected: int | None
        try:
            header = response.headers.get("Content-Length")
            expected = int(header) if header is not None else None
        except ValueError:
            expected = None
        with tqdm(
            total=expected,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=label,
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK_SIZE)
                except http.client.IncompleteRead as exc:
                    raise _download_error(
                        url,
                        f"the connection was closed after {received + len(exc.partial)} "
                        f"of {expected if expected is not None else '?'} bytes",
                    ) from exc
                except (http.client.HTTPException, OSError) as exc:
                    raise _download_error(url, exc) from exc
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _cache_error(folder, exc) from exc
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise _download_error(
            url, f"the connection was closed after {received} of {expected} bytes"
        )
    return digest.hexdigest()


def resolve_weights(
    weights: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Return a folder holding all four checkpoint files, each verified.

    Order: the explicit *weights* folder, then ``$MICROAST_VIDEO_WEIGHTS``, then the
    user cache (:func:`cache_dir`), downloading missing or bad cache files from
    *base_url* (default ``$MICROAST_VIDEO_WEIGHTS_URL`` or :data:`DEFAULT_BASE_URL`).
    A folder named explicitly or by the environment must be complete and intact; it
    is never replaced by a download. A cache file with a wrong digest is deleted
    and downloaded again. *progress* shows a progress bar on stderr for downloads.

    Raises :class:`WeightsError` on any failure.
    """
    if weights is not None and os.fspath(weights) != "":
        folder = Path(os.fspath(weights))
        return _verify_user_folder(folder, "the weights argument (--weights)")
    env_folder = os.environ.get(ENV_WEIGHTS, "")
    if env_folder:
        return _verify_user_folder(Path(env_folder), f"the {ENV_WEIGHTS} variable")

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(folder, exc) from exc

    base = base_url or os.environ.get(ENV_BASE_URL, "") or DEFAULT_BASE_URL
    if not base.endswith("/"):
        base += "/"

    for file_name, digest in CHECKPOINTS.values():
        target = folder / file_name
        if target.exists():
            try:
                verify_file(target, digest)
                continue
            except WeightsError:
                try:
                    target.unlink()
                except OSError as exc:
                    raise _cache_error(folder, exc) from exc
        _download(base + file_name, target, digest, progress=progress)
    return folder


def load_checkpoints(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Verify and load the four checkpoints in *folder*.

    Returns ``{part: state_dict}`` for the parts in :data:`CHECKPOINTS`. Every file
    is checked against its pinned SHA-256 *before* any of them is loaded, so a
    tampered file never reaches :func:`torch.load` (which is called with
    ``weights_only=True`` anyway). Raises :class:`WeightsError` on any failure.
    """

    folder = Path(folder)
    for file_name, digest in CHECKPOINTS.values():
        verify_file(folder / file_name, digest)

    result: dict[str, dict[str, torch.Tensor]] = {}
    for part, (file_name, digest) in CHECKPOINTS.items():
        path = folder / file_name
        # Load the very bytes that were hashed, so a file swapped after the check
        # above is still never unpickled.
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise WeightsError(f"cannot read weights file {shown(path)}: {_one_line(exc)}") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise WeightsError(
                f"weights file {shown(path)} changed while being loaded and fails its SHA-256 check; "
                f"run again, or point {ENV_WEIGHTS} to a good copy"
            )
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except (RuntimeError, pickle.UnpicklingError, EOFError, OSError, ValueError) as exc:
            raise WeightsError(
                f"cannot load weights file {shown(path)}: {_one_line(exc)}. "
                f"Delete it and run again, or point {ENV_WEIGHTS} to a good copy"
            ) from exc
        if not isinstance(state, dict) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor)
            for key, value in state.items()
        ):
            raise WeightsError(
                f"weights file {shown(path)} is not a state_dict of tensors: "
                f"delete it and run again, or point {ENV_WEIGHTS} to a good copy"
            )
        result[part] = state
    return result
