"""The typer app every command joins, and how errors reach the user: one line and an exit code."""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperCommand

from ..core.errors import MicroastError, Terminated
from ..core.quiet import third_party_quiet

class PlainCommand(TyperCommand):
    """A command whose help names each value in one plain word: ``--strength FLOAT``, ``--style
    PATH``, ``--codec h264|hevc|...``, ``INPUT``; a flag takes none (click's own words for
    these read ``<list[Path]>``, ``<int range>``, ``{INPUT}``)."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for param in self.params:
            if param.metavar is None and not getattr(param, "is_flag", False):
                param.metavar = _plain_metavar(param, ctx)
            if getattr(param, "param_type_name", "") == "argument":  # its name says it: INPUT, MANIFEST
                param.display_type_rich = lambda ctx=None: ""
        super().format_help(ctx, formatter)


#: typer's words for a value's type -> the one plain word the help shows.
_PLAIN = {"path": "PATH", "str": "TEXT", "int": "INTEGER", "int range": "INTEGER", "float": "FLOAT",
          "float range": "FLOAT", "bool": ""}


def _plain_metavar(param: Any, ctx: Any) -> str:
    if getattr(param, "param_type_name", "") == "argument":
        return (param.name or "value").upper()
    shown = str(param.display_type(ctx)).strip("<>")
    if shown.startswith("list[") and shown.endswith("]"):
        shown = shown[5:-1]
    return _PLAIN.get(shown.lower(), shown)


class _App(typer.Typer):
    """Every command a :class:`PlainCommand`."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", PlainCommand)
        return super().command(*args, **kwargs)


app = _App(
    name="microast-video",
    help="Restyle video (and images) with the MicroAST style-transfer network.\n\n"
    "Run `microast-video INPUT --style STYLE` for a video; see each command's --help.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # click's own help layout: a flag is shown as a flag (typer's rich layout labels every
    # flag "<bool>", which reads as if it took a value, and "--overwrite true" is refused)
    rich_markup_mode=None,
)



def say_error(message: str) -> None:
    typer.echo(f"microast-video: error: {message}", err=True)


@contextlib.contextmanager
def user_errors(debug: bool) -> Iterator[None]:
    """User errors: one line and their exit code. Anything else is a bug, shown as one.
    Third-party warnings stay out of the terminal (in the report; shown with ``--debug``)."""
    try:
        with third_party_quiet(debug):
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
