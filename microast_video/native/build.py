"""Builds the native kernels' sources into one library (once per machine) and loads it.

The sources ship with the package and are compiled on first use with the machine's C++
compiler (the one ``torch.compile`` needs too; ~3 s, ``-O3 -march=native -fopenmp``) into the
cache folder, keyed by the sources, compiler and CPU, and loaded with :mod:`ctypes`. Loaded
after torch, its OpenMP runtime is torch's own (the same ``libgomp.so.1``). Every exported
function's parameters are declared once, in :data:`SIGNATURES` (a test reads the C++ sources
and checks each declaration against its function). No torch, no numpy here.
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

SOURCES = tuple(Path(__file__).parent / name
                for name in ("up_dw.cpp", "temporal.cpp", "centre.cpp", "colour.cpp"))
HEADERS = (Path(__file__).parent / "bf16.h",)  # included by the sources: part of the build's key
#: -fno-trapping-math: float -> int conversions vectorize (nothing here reads FP exceptions)
_FLAGS = ("-O3", "-std=c++17", "-shared", "-fPIC", "-pthread", "-fno-trapping-math")
_state: dict[str, object] = {}  # "lib": the loaded library (or None), "why": why not
_build_lock = threading.Lock()


_P, _I, _I64, _F = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64, ctypes.c_float
#: Every exported C function's parameters, (name, ctypes type) in the C++ order; each returns
#: an int (0: done). The one place the bindings are written: ``tests/native`` reads the C++
#: sources and checks every name and type here against its function.
SIGNATURES: dict[str, tuple[tuple[str, type], ...]] = {
    "microast_up_dw": (
        ("x", _P), ("in_bf16", _I), ("row_stride", _I64), ("a", _I), ("h", _I), ("w", _I), ("groups", _I),
        ("per", _I), ("blocked", _I), ("wt", _P), ("bias", _P), ("out", _P), ("out_bf16", _I),
        ("out_row_stride", _I64), ("o0", _I), ("o1", _I), ("relu", _I), ("threads", _I)),
    "microast_warp": (
        ("prev", _P), ("h", _I), ("w", _I), ("ch", _I), ("coords", _P), ("fh", _I), ("out", _P), ("r0", _I),
        ("r1", _I)),
    "microast_compose": (
        ("c", _P), ("c_u16", _I), ("warped", _P), ("h", _I), ("w", _I), ("ch", _I), ("ac", _P), ("aw", _P), ("k", _P),
        ("fh", _I), ("c_scale", _F), ("w_scale", _F), ("state", _P), ("samples", _P), ("s_u16", _I), ("top", _F),
        ("r0", _I), ("r1", _I)),
    "microast_centre_pad": (
        ("x", _P), ("row_stride", _I64), ("rows", _I), ("w", _I), ("channels", _I), ("top", _I), ("bottom", _I),
        ("left", _I), ("right", _I), ("mu_out", _P), ("out", _P), ("threads", _I)),
    "microast_epilogue": (
        ("y", _P), ("rows", _I), ("w", _I), ("channels", _I), ("shift", _P), ("wt", _P), ("bt", _P), ("z", _P),
        ("z_stride", _I64), ("res", _P), ("res_stride", _I64), ("relu", _I), ("out", _P), ("threads", _I)),
    "microast_channel_sums": (
        ("x", _P), ("row_stride", _I64), ("rows", _I), ("w", _I), ("channels", _I), ("mean", _P), ("sums", _P),
        ("threads", _I)),
    "microast_modulate": (
        ("x", _P), ("row_stride", _I64), ("rows", _I), ("w", _I), ("channels", _I), ("m", _P), ("s", _P),
        ("mean", _P), ("std_", _P), ("alpha", _F), ("out", _P), ("threads", _I)),
    "microast_yuv420_to_rgb8": (
        ("y", _P), ("y_stride", _I64), ("u", _P), ("v", _P), ("c_stride", _I64), ("h", _I), ("w", _I), ("m", _P),
        ("y0", _F), ("yr", _F), ("c0", _F), ("cr", _F), ("out", _P), ("r0", _I), ("r1", _I)),
    "microast_rgb8_to_yuv420": (
        ("rgb", _P), ("row_stride", _I64), ("h", _I), ("w", _I), ("m", _P), ("y0", _F), ("yr", _F), ("c0", _F),
        ("cr", _F), ("y", _P), ("u", _P), ("v", _P)),
}

def library(cache: Path) -> tuple[ctypes.CDLL | None, str | None]:
    """The native library, built and loaded once per process: (it, None) or (None, why not).

    Thread-safe: the decoder's thread and the engine may ask at the same time."""
    with _build_lock:
        if "lib" not in _state:
            try:
                _state["lib"] = _load(_build(cache / "native"))
            except (OSError, RuntimeError, subprocess.SubprocessError) as err:
                _state["lib"] = None
                _state["why"] = f"native kernels unavailable, PyTorch / numpy instead ({' '.join(str(err).split())[:200]})"
    return _state["lib"], _state.get("why")  # type: ignore[return-value]


def cxx_compiler() -> str | None:
    """The machine's C++ compiler (``$CXX``, else g++, c++, clang++), or None: the one lookup
    for this kernel and for ``torch.compile`` (:func:`~microast_video.engine.stylizer.compile_unavailable`)."""
    for name in (os.environ.get("CXX", ""), "g++", "c++", "clang++"):
        found = shutil.which(name) if name else None
        if found:
            return found
    return None


def _cpu_identity() -> str:
    """What ``-march=native`` depends on: the architecture and, on Linux, the CPU's flags."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        pass
    return platform.machine() + flags


def _build(folder: Path) -> Path:
    """The compiled library for this source, compiler and CPU (built now if not cached)."""
    cxx = cxx_compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found")
    source = b"".join(path.read_bytes() for path in (*SOURCES, *HEADERS))
    key = hashlib.sha256(source + cxx.encode() + " ".join(_FLAGS).encode() + _cpu_identity().encode()).hexdigest()
    target = folder / f"native-{key[:20]}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    last = ""
    # x86 / Arm spelling of "this CPU", then portable; OpenMP (torch's runtime), then threads.
    for arch, omp in itertools.product((("-march=native",), ("-mcpu=native",), ()), (("-fopenmp",), ())):
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
        os.close(fd)
        cmd = [cxx, *_FLAGS, *arch, *omp, *map(str, SOURCES), "-o", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode == 0:
            os.replace(tmp, target)  # atomic: a concurrent build of the same key is harmless
            for stale in [*folder.glob("native-*.so"), *folder.glob("up_dw-*.so")]:  # older sources, another CPU
                if stale != target:
                    stale.unlink(missing_ok=True)  # a process that loaded it keeps its mapping
            return target
        os.unlink(tmp)
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    raise RuntimeError(f"{Path(cxx).name} failed: {last}")


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for name, params in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = ctypes.c_int
        fn.argtypes = [kind for _, kind in params]
    return lib


def loaded() -> ctypes.CDLL:
    """The library :func:`library` loaded, for kernels called only after it succeeded."""
    lib = _state.get("lib")
    if lib is None:
        raise RuntimeError("the native library is not loaded")
    return lib  # type: ignore[return-value]
