"""What every command shares: consoles, progress, JSON output, the dataset argument."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gpskit.config import DATASET_ENV, DEFAULT_DATASET_DIR
from gpskit.dataset import Dataset

console = Console()
err_console = Console(stderr=True)

DatasetArg = Annotated[
    Path | None,
    typer.Argument(
        help=f"Dataset folder (default: ${DATASET_ENV} or ./{DEFAULT_DATASET_DIR}).",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")
]
WorkersOpt = Annotated[
    int | None, typer.Option(help="Worker processes (default: all cores).", show_default=False)
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace existing outputs.")]


def dataset_at(path: Path | None) -> Dataset:
    """The dataset a command works on (the argument, ``$GPSKIT_DATASET`` or ./gpskit-data)."""
    return Dataset.at(path)


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else, so scripts can parse it."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr, shown from the first ``update(done, total)`` call.

    Starting lazily keeps an argument error to its one line, with no empty bar above it.
    """
    progress: Progress | None = None
    task: Any = None

    def update(done: int, total: int) -> None:
        nonlocal progress, task
        if not enabled:
            return
        if progress is None:
            progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
            )
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if progress is not None:
            progress.stop()
