"""What reaches the user's terminal besides the tool's results: each of its own notices once
per run, and no third-party messages: Python warnings and the log records of torch, ONNX and
friends (torch.onnx's four "torchvision is not installed" lines, for one) are collected for
the job's report instead, or shown as they come with ``--debug``."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator

#: The loggers whose records are third-party chatter to a user of the tool.
LOGGERS = ("torch", "onnxscript", "onnx_ir", "onnxruntime", "openvino", "ray", "matplotlib", "PIL")
#: How many collected messages a report keeps (the first ones; the rest are counted).
KEPT = 50

_captured: list[str] = []
_said: set[str] = set()


def say_once(message: str) -> None:
    """Print a notice of the tool's own on stderr once per run (a preview of six looks said
    "no CUDA GPU found" six times)."""
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def captured() -> list[str]:
    """The third-party messages collected so far in this process (the first :data:`KEPT`)."""
    return list(_captured)


def _keep(text: str) -> None:
    if len(_captured) < KEPT and text not in _captured:
        _captured.append(text)


@contextlib.contextmanager
def third_party_quiet(debug: bool = False) -> Iterator[None]:
    """Within: third-party warnings and log records below ERROR collected (:func:`captured`),
    not printed; with ``debug``, left alone.

    Log records are caught where every logger hands them to its handlers
    (``logging.Logger.callHandlers``): torch's own logging re-installs its handlers whenever
    it sets itself up (an ONNX export does), so swapping handlers would not hold."""
    if debug:
        yield
        return
    original = logging.Logger.callHandlers

    def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in LOGGERS and record.levelno < logging.ERROR:
            _keep(f"{record.name}: {record.getMessage()}")
            return
        original(logger, record)

    logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda message, category, *_: _keep(f"{category.__name__}: {message}")
            yield
    finally:
        logging.Logger.callHandlers = original  # type: ignore[method-assign]
