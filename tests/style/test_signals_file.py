"""A signals archive is checked member by member, from its directory, before anything is loaded."""

from __future__ import annotations

import zipfile

import pytest
import torch

from microast_video.core.errors import InputError
from microast_video.models import StyleSignals
from microast_video.style.signals_file import load_signals, save_signals


@pytest.fixture
def signals_file(tmp_path):
    path = tmp_path / "s.npz"
    save_signals(StyleSignals(*(torch.rand(1, 64, 1, 1) for _ in range(8))), path)
    return path


def test_a_saved_file_loads(signals_file):
    assert load_signals(signals_file).w2.shape == (1, 64, 1, 1)


def test_an_extra_large_member_is_refused_before_it_is_read(signals_file):
    with zipfile.ZipFile(signals_file, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mean1.npy.extra", b"\0" * 8_000_000)  # 8 MB of zeros: a few kB on disk
    with pytest.raises(InputError, match="unexpected member"):
        load_signals(signals_file)


def test_a_known_member_declaring_many_bytes_is_refused(tmp_path, signals_file):
    bloated = tmp_path / "b.npz"
    with zipfile.ZipFile(signals_file) as src, zipfile.ZipFile(bloated, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name) if name != "w1.npy" else b"\0" * 2_000_000)
    with pytest.raises(InputError, match="'w1.npy' declares 2000000 bytes"):
        load_signals(bloated)
