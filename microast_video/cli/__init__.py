"""The ``microast-video`` command line: a thin shell over the jobs.

``microast-video input.mp4 --style art.jpg`` (no sub-command word) is the video job;
``image``, ``signals`` and ``bench`` are sub-commands. Heavy imports happen inside the
commands, so ``--help`` is instant and importing this module does no work.

Errors: the project's own user-facing errors (:class:`MicroastError`) and bad command
lines are one line on stderr and a non-zero exit; anything else is a bug and says so
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer

from ..core.errors import Terminated
from . import tools, video  # noqa: F401  (their commands join the app)
from .app import app, say_error

__all__ = ["app", "main", "route"]


_COMMANDS = ("image", "signals", "video", "bench", "flicker", "batch", "preview", "export")


def route(argv: Sequence[str]) -> list[str]:
    """Insert the ``video`` command when the first word is not a command or a top-level flag."""
    args = list(argv)
    if args and args[0] not in _COMMANDS and args[0] not in ("--help", "-h", "--version"):
        args.insert(0, "video")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point; bad command lines are one line too (exit 2)."""
    from ..core.process import quiet_openmp_waits
    from ..core.stages import install_signal_handlers

    quiet_openmp_waits()  # before anything imports torch
    install_signal_handlers()  # SIGTERM/SIGHUP/SIGQUIT clean up like Ctrl-C from the very start
    args = route(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from .._version import __version__

        typer.echo(f"microast-video {__version__}")
        return
    try:
        code = app(args=args, prog_name="microast-video", standalone_mode=False)
    except typer.TyperException as err:  # a bad command line: unknown option, bad value, missing argument
        command = f" {args[0]}" if args and args[0] in _COMMANDS else ""
        say_error(f"{' '.join(err.format_message().split())} (see microast-video{command} --help)")
        sys.exit(getattr(err, "exit_code", 2))
    except typer.Abort:
        say_error("interrupted; nothing was written")
        sys.exit(130)
    except Terminated as err:
        say_error("terminated; nothing was written")
        sys.exit(err.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
