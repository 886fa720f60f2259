"""Choosing the device and the numeric precision a job runs in."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

import cv2
import torch

from ..core.errors import DeviceError
from ..core.options import Precision
from ..core.quiet import say_once

_DTYPES = {Precision.fp32: torch.float32, Precision.bf16: torch.bfloat16, Precision.fp16: torch.float16}


def resolve_device(spec: str | torch.device = "auto", *, quiet: bool = False) -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable ``torch.device``.

    ``auto`` takes the first CUDA GPU when there is one, else the CPU, and says so on
    stderr (unless ``quiet``); an explicit ``cuda`` that is not there is an error, never a
    silent fall-back to the CPU.

    Raises:
        DeviceError: unknown device, or a CUDA device this machine does not have.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if not quiet:
            say_once("microast-video: no CUDA GPU found; running on the CPU")
        return torch.device("cpu")
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise DeviceError(f"unsupported device {spec!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(
            f"device {spec!r} requested but no CUDA GPU is usable here "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); use --device cpu"
        )
    index = 0 if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise DeviceError(f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA GPU(s) exist")
    return torch.device("cuda", index)


def cpu_supports_bf16() -> bool:
    """Whether this CPU runs bf16 natively (AVX512-BF16 or AMX), per oneDNN."""
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


def resolve_precision(spec: Precision | str, device: torch.device) -> torch.dtype:
    """The compute dtype for ``spec`` on ``device``.

    ``auto`` is fp16 on CUDA, and on the CPU bf16 where the processor runs it natively
    (AVX512-BF16 or AMX), else fp32. fp32 is the exact path. fp16 on the CPU is refused
    (slow and unsupported by many CPU kernels): use bf16 there.
    """
    try:
        precision = Precision(spec)
    except ValueError as err:
        raise DeviceError(f"unknown precision {spec!r}: use auto, fp32, bf16 or fp16") from err
    if precision is Precision.auto:
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    if precision is Precision.fp16 and device.type == "cpu":
        raise DeviceError("precision fp16 needs a CUDA device; on the CPU use bf16 or fp32")
    if precision is Precision.bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise DeviceError(f"precision bf16 is not supported by {torch.cuda.get_device_name(device)}; use fp16")
    return _DTYPES[precision]


_ALLOCATOR_TUNED = False
#: glibc's ``mallopt`` parameters (malloc.h), for :func:`tune_cpu_allocator` and the benchmarks
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -3, -4, -8


def allocator_tuned() -> bool:
    """Whether :func:`tune_cpu_allocator` has been applied in this process."""
    return _ALLOCATOR_TUNED


def tune_cpu_allocator() -> bool:
    """Keep freed memory in the process instead of returning it to the OS after every op.

    glibc serves large blocks (the frame-sized activations) with ``mmap`` and unmaps them
    on free, so every layer pays fresh page faults: on our 2-core machine that made whole
    frames ~2x slower. With mmap off and trimming raised, freed blocks are reused. One
    arena for all threads: kept memory is then reusable by every stage's thread instead of
    staying in the arena of the thread that freed it (a UHD job with the temporal stage
    peaked at 1.50-1.57 GB instead of 1.82-1.99 GB, at the same speed).
    Returns True if applied (Linux with glibc), False elsewhere. Idempotent; process-wide.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 and mallopt(M_ARENA_MAX, 1) == 1
    _ALLOCATOR_TUNED = ok
    return ok


def side_threads(device: torch.device) -> int:
    """Threads for each library pool beside the network (FFmpeg's decoder, OpenCV in the
    temporal stage): 1 on a CPU job, 0 (the library's own choice) on a GPU.

    A CPU job's network already keeps every core busy, so those pools' extra threads only
    take turns with it and add their own overhead: at 1080p on our 2 cores the temporal
    stage took 74 instead of 107 CPU-ms a frame (71 instead of 85 in a second run), and
    decoding 27 instead of 29 (``python benchmarks/side_costs.py``).
    """
    return 1 if device.type == "cpu" else 0


@contextlib.contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread pool at ``count`` threads within the block (0: left as it is), restored
    after. OpenCV's setting is process-wide."""
    if count <= 0:
        yield
        return

    before = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)
