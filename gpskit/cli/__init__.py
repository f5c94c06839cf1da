"""The ``gpskit`` command line: a thin layer over the library, one module per command.

Errors of the :class:`~gpskit.errors.GpskitError` family become one line on stderr and a
non-zero exit; set ``GPSKIT_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from enum import Enum
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from gpskit import __version__
from gpskit.cli._common import PROGRESS
from gpskit.errors import GpskitError, environment_problem

#: Each command and the CLI module that defines it, in pipeline order. A module is imported
#: only when one of its commands runs (or help lists them), so ``gpskit ingest`` does not pay
#: for pandas, torch or the plotting code of other steps.
COMMANDS = {
    "ingest": "ingest",
    "info": "info",
    "dedup": "dedup",
    "coverage": "coverage",
    "regions": "coverage",
    "split": "split",
    "train": "train",
    "eval": "train",
    "predict": "train",
    "sweep": "sweep",
    "publish": "publish",
    "decisions": "decisions",
    "app": "webapp",
    "synth": "synth",
    "demo": "synth",
}


class _GpskitGroup(TyperGroup):
    """Loads commands lazily, and maps gpskit's errors to one line and an exit code."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"gpskit.cli.{COMMANDS[name]}")
        commands = typer.Typer(rich_markup_mode="markdown")
        module.register(commands)
        return typer.main.get_group(commands).commands[name]

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except GpskitError as exc:
            if os.environ.get("GPSKIT_DEBUG") == "1":
                raise
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.secho(
                "interrupted: earlier outputs were left as they were (an ingest resumes "
                "where it stopped when run again)",
                err=True,
            )
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise
        except BrokenPipeError:
            _pipe_closed()
        except Exception as exc:
            if os.environ.get("GPSKIT_DEBUG") == "1":
                raise
            named = environment_problem(exc)
            if named is not None:  # the machine or the network, not a gpskit bug
                typer.secho(f"error: {named}", err=True, fg=typer.colors.RED)
                raise typer.Exit(named.exit_code) from None
            typer.secho(
                f"internal error: {type(exc).__name__}: {exc} (a gpskit bug: rerun with "
                "GPSKIT_DEBUG=1 for the traceback and report it)",
                err=True,
                fg=typer.colors.RED,
            )
            raise typer.Exit(70) from None


app = typer.Typer(
    name="gpskit",
    cls=_GpskitGroup,
    help=(
        "Turn a folder of phone photos into a clean, leak-free, geotagged image dataset.\n\n"
        "Typical run:\n\n"
        "    gpskit ingest photos/\n\n"
        "    gpskit dedup\n\n"
        "    gpskit coverage\n\n"
        "    gpskit split\n\n"
        "    gpskit train\n\n"
        "    gpskit info"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)


class LogFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gpskit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress on stderr (errors still).")
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            help="Progress as text, or as one JSON object per line (step, done, total, rate, "
            "ETA; train adds epoch and loss) for tools that read logs."
        ),
    ] = LogFormat.TEXT,
) -> None:
    """gpskit: phone photos in, a clean geotagged dataset out. Progress: a bar on a
    terminal; otherwise a plain line every 10 seconds (GPSKIT_PROGRESS_SECONDS)."""
    PROGRESS.quiet = quiet
    PROGRESS.json_lines = log_format is LogFormat.JSON


def _pipe_closed() -> NoReturn:
    """The reader of our output went away (``gpskit ... | head``): stop quietly, as other
    command-line tools do, not with an error about our own output."""
    with contextlib.suppress(OSError, ValueError):  # not a real file (a test's capture)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing to flush
    raise SystemExit(141)  # 128 + SIGPIPE, what a shell reports for such a command


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        _pipe_closed()
