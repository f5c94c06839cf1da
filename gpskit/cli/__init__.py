"""The ``gpskit`` command line: a thin layer over the library, one module per command.

Errors of the :class:`~gpskit.errors.GpskitError` family become one line on stderr and a
non-zero exit; set ``GPSKIT_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from gpskit import __version__
from gpskit.errors import GpskitError


class _GpskitGroup(TyperGroup):
    """Maps gpskit's errors to one line and an exit code, for the console script and tests."""

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
        except Exception as exc:
            if os.environ.get("GPSKIT_DEBUG") == "1":
                raise
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
) -> None:
    """gpskit: phone photos in, a clean geotagged dataset out."""


def _register() -> None:
    from gpskit.cli import coverage, dedup, info, ingest, split, synth, train

    for module in (ingest, dedup, coverage, split, train, info, synth):
        module.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
