"""The typer app every command joins, and how errors reach the user: one line and an exit code."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator

import typer

from ..core.errors import MicroastError, Terminated

app = typer.Typer(
    name="microast-video",
    help="Restyle video (and images) with the MicroAST style-transfer network.\n\n"
    "Run `microast-video INPUT --style STYLE` for a video; see each command's --help.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)



def say_error(message: str) -> None:
    typer.echo(f"microast-video: error: {message}", err=True)


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """User errors: one line and their exit code. Anything else is a bug, shown as one."""
    try:
        yield
    except MicroastError as err:
        if debug:
            traceback.print_exc()
        say_error(str(err))
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt as err:
        say_error(getattr(err, "message", "interrupted; nothing was written"))  # a batch says what finished
        raise typer.Exit(130) from None
    except Terminated as err:
        say_error(getattr(err, "message", "interrupted; nothing was written").replace("interrupted", "terminated", 1))
        raise typer.Exit(err.exit_code) from None
    except typer.Exit:
        raise  # a command's own exit code
    except Exception as err:  # noqa: BLE001 - a bug: say so plainly
        if debug:
            traceback.print_exc()
        first = " ".join(str(err).split())[:300]
        say_error(f"internal error (a bug in microast-video): {type(err).__name__}: {first}"
               f"{'' if debug else '; run again with --debug for the traceback'}")
        raise typer.Exit(70) from None
