"""Shared test helpers: where ../shared is, and the network with its official weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; skip when absent (a user's clone), but fail in CI, which has it."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        rel = "/".join(("..", "shared", *parts))
        if os.environ.get("CI"):
            pytest.fail(f"{rel} is missing: CI must run these tests against ../shared")
        pytest.skip(f"{rel} not found (CI has it; a user's clone does not)")
    return path


def weights_dir() -> Path | None:
    """The folder tests load weights from: $MICROAST_VIDEO_WEIGHTS, else ../shared, else None (download)."""
    env = os.environ.get("MICROAST_VIDEO_WEIGHTS")
    if env:
        return Path(env)
    local = SHARED / "weights" / "microast"
    return local if local.is_dir() else None


@pytest.fixture(scope="session")
def model():
    from microast_video import load_model

    return load_model(weights_dir(), device="cpu", progress=False)


@pytest.fixture(scope="session")
def weights_env(tmp_path_factory):
    """Environment for CLI runs: weights folder set, user cache in a temp folder."""
    env = {"XDG_CACHE_HOME": str(tmp_path_factory.mktemp("cache"))}
    folder = weights_dir()
    if folder is not None:
        env["MICROAST_VIDEO_WEIGHTS"] = str(folder)
    return env


@pytest.fixture()
def env(weights_env, monkeypatch):
    """``weights_env`` set in this process's environment (for CliRunner runs); returned too."""
    for k, v in weights_env.items():
        monkeypatch.setenv(k, v)
    return weights_env
