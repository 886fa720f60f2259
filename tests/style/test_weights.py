"""Tests for microast_video.style.weights: finding, downloading and verifying checkpoints.

Downloads go to a real HTTP server on 127.0.0.1 (no internet needed); it serves the
official checkpoints from the shared test-data folder and can be switched into
failure modes (tampered file, dropped connection, 404).
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from microast_video.core.errors import WeightsError
from microast_video.style import weights as _weights
from microast_video.style.weights import (
    CHECKPOINTS,
    ENV_BASE_URL,
    ENV_WEIGHTS,
    cache_dir,
    load_checkpoints,
    resolve_weights,
    verify_file,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "microast"

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(),
    reason="../shared/weights/microast not found (it is in CI; a user's clone lacks it)",
)

FILE_NAMES = [name for name, _ in CHECKPOINTS.values()]
TAMPER_NAME = CHECKPOINTS["decoder"][0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip_byte(path: Path, offset: int = 1000) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def copy_shared(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILE_NAMES:
        shutil.copyfile(SHARED / name, dest / name)
        (dest / name).chmod(0o644)
    return dest


def final_or_part_files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- server


class WeightsServer:
    """A loopback HTTP server serving the shared checkpoints, with failure modes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mode = "normal"  # normal | tamper | drop | 404
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                path = server.root / name
                if server.mode == "404" or name not in FILE_NAMES or not path.is_file():
                    self.send_error(404, "Not Found")
                    return
                body = path.read_bytes()
                if server.mode == "tamper" and name == TAMPER_NAME:
                    data = bytearray(body)
                    data[1000] ^= 0xFF
                    body = bytes(data)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.mode == "drop":
                    # Promise the full length, send half, then hang up.
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/models/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[WeightsServer]:
    srv = WeightsServer(SHARED)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache under tmp_path; no weights folder or URL from the env."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(ENV_BASE_URL, raising=False)
    folder = cache_dir()
    assert folder == tmp_path / "xdg" / "microast-video"
    return folder


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/models/"


# --------------------------------------------------------------------------- constants


@needs_shared
def test_pinned_digests_match_shared_sha256sums() -> None:
    sums = {}
    for line in (SHARED / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    assert {name: digest for name, digest in CHECKPOINTS.values()} == sums
    assert set(CHECKPOINTS) == {"content_encoder", "style_encoder", "modulator", "decoder"}
    assert _weights.DEFAULT_BASE_URL.endswith(f"/raw/{_weights.UPSTREAM_COMMIT}/models/")


def test_cache_dir_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "microast-video"


# --------------------------------------------------------------------------- 1. folders


@needs_shared
def test_explicit_folder_and_env_folder(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert resolve_weights(SHARED, progress=False) == SHARED
    assert resolve_weights(str(SHARED), progress=False) == SHARED

    monkeypatch.setenv(ENV_WEIGHTS, str(SHARED))
    assert resolve_weights(progress=False) == SHARED

    # An explicit folder wins over the environment variable.
    other = copy_shared(tmp_path / "other")
    assert resolve_weights(other, progress=False) == other
    assert not cache.exists()  # the cache was never touched


@needs_shared
def test_user_folder_missing_file_is_an_error_not_a_download(
    cache: Path, server: WeightsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = copy_shared(tmp_path / "partial")
    (folder / TAMPER_NAME).unlink()
    with pytest.raises(WeightsError, match="not found") as err:
        resolve_weights(folder, base_url=server.url, progress=False)
    assert TAMPER_NAME in str(err.value)
    assert "\n" not in str(err.value)

    monkeypatch.setenv(ENV_WEIGHTS, str(folder))
    with pytest.raises(WeightsError, match=ENV_WEIGHTS):
        resolve_weights(base_url=server.url, progress=False)

    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(tmp_path / "nope", base_url=server.url, progress=False)
    assert server.requests == []
    assert not cache.exists()


# --------------------------------------------------------------------------- 2. download


@needs_shared
def test_download_into_empty_cache_then_reuse(
    cache: Path, server: WeightsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_BASE_URL, server.url)  # base URL from the environment
    folder = resolve_weights(progress=False)
    assert folder == cache
    assert final_or_part_files(cache) == sorted(FILE_NAMES)  # no .part left
    for name, digest in CHECKPOINTS.values():
        assert sha256(cache / name) == digest
    assert sorted(server.requests) == sorted(FILE_NAMES)

    server.requests.clear()
    assert resolve_weights(progress=False) == cache
    assert server.requests == []


@needs_shared
def test_download_with_progress_bar(
    cache: Path, server: WeightsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert resolve_weights(base_url=server.url.rstrip("/"), progress=True) == cache
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "modulator_iter_160000.pth.tar" in captured.err


# --------------------------------------------------------------------------- 3-5. failures


@needs_shared
def test_tampered_download_is_rejected(cache: Path, server: WeightsServer) -> None:
    server.mode = "tamper"
    with pytest.raises(WeightsError, match="SHA-256") as err:
        resolve_weights(base_url=server.url, progress=False)
    assert server.url + TAMPER_NAME in str(err.value)
    assert "\n" not in str(err.value)
    files = final_or_part_files(cache)
    assert TAMPER_NAME not in files
    assert not [f for f in files if f.endswith(".part")]


@needs_shared
def test_dropped_connection_leaves_nothing(cache: Path, server: WeightsServer) -> None:
    server.mode = "drop"
    with pytest.raises(WeightsError, match="cannot download") as err:
        resolve_weights(base_url=server.url, progress=False)
    assert ENV_WEIGHTS in str(err.value)
    assert final_or_part_files(cache) == []


@needs_shared
def test_http_404(cache: Path, server: WeightsServer) -> None:
    server.mode = "404"
    with pytest.raises(WeightsError, match="404"):
        resolve_weights(base_url=server.url, progress=False)
    assert final_or_part_files(cache) == []


def test_offline(cache: Path) -> None:
    url = closed_port_url()
    with pytest.raises(WeightsError, match="cannot download weights from") as err:
        resolve_weights(base_url=url, progress=False)
    message = str(err.value)
    assert ENV_WEIGHTS in message
    assert url in message
    assert "\n" not in message
    assert final_or_part_files(cache) == []


def test_unwritable_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    with pytest.raises(WeightsError, match="cannot write to the weights cache"):
        resolve_weights(base_url=closed_port_url(), progress=False)


# --------------------------------------------------------------------------- 6. tampered folder


@needs_shared
def test_tampered_file_in_explicit_folder_never_reaches_torch_load(
    cache: Path, server: WeightsServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = copy_shared(tmp_path / "weights")
    flip_byte(folder / TAMPER_NAME)

    loaded: list[Path] = []

    def fake_load(path: object, *args: object, **kwargs: object) -> object:
        loaded.append(Path(str(path)))
        raise AssertionError(f"torch.load called on {path}")

    monkeypatch.setattr(torch, "load", fake_load)

    with pytest.raises(WeightsError, match="SHA-256") as err:
        resolve_weights(folder, base_url=server.url, progress=False)
    message = str(err.value)
    assert str(folder / TAMPER_NAME) in message
    assert CHECKPOINTS["decoder"][1] in message
    assert "\n" not in message

    with pytest.raises(WeightsError, match="SHA-256"):
        load_checkpoints(folder)

    with pytest.raises(WeightsError, match="SHA-256"):
        verify_file(folder / TAMPER_NAME, CHECKPOINTS["decoder"][1])

    assert loaded == []
    assert server.requests == []  # no fall-through to a download
    assert (folder / TAMPER_NAME).exists()  # a user's folder is never modified


# --------------------------------------------------------------------------- 7. bad cache file


@needs_shared
def test_corrupted_cache_file_is_replaced(cache: Path, server: WeightsServer) -> None:
    copy_shared(cache)
    flip_byte(cache / TAMPER_NAME)
    assert resolve_weights(base_url=server.url, progress=False) == cache
    assert server.requests == [TAMPER_NAME]
    assert sha256(cache / TAMPER_NAME) == CHECKPOINTS["decoder"][1]
    assert final_or_part_files(cache) == sorted(FILE_NAMES)


# --------------------------------------------------------------------------- 8. loading


@needs_shared
def test_load_checkpoints() -> None:
    states = load_checkpoints(SHARED)
    assert {part: len(state) for part, state in states.items()} == {
        "content_encoder": 18,
        "style_encoder": 18,
        "modulator": 8,
        "decoder": 18,
    }
    for state in states.values():
        assert all(isinstance(t, torch.Tensor) for t in state.values())
    assert states["content_encoder"]["enc1.0.conv_layer.weight"].shape == (16, 3, 9, 9)
    assert states["decoder"]["dec3.10.conv_layer.bias"].shape == (3,)


def test_load_checkpoints_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoints(tmp_path / "missing")
