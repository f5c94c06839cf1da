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
from gpskit.engines import Engine
from gpskit.errors import UsageError

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
EngineOpt = Annotated[
    Engine,
    typer.Option(
        help="Where per-file work runs: local (this machine's cores) or ray (gpskit[ray]).",
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        help="Ray cluster to use with --engine ray (e.g. auto, ray://HOST:10001); "
        "default: start a local Ray instance.",
        show_default=False,
    ),
]


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


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str, option: str) -> int:
    """'6G', '512M', '1.5G' or a number of bytes; '0' or 'none' is 0 (no limit)."""
    raw = text.strip().upper().removesuffix("IB").removesuffix("B")
    if raw in ("0", "NONE", ""):
        return 0
    unit = raw[-1] if raw[-1] in _UNITS else ""
    try:
        value = float(raw[: len(raw) - len(unit)])
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{option} must be a size like 6G or 512M (or 0 for none), got {text!r}")
    return int(value * _UNITS[unit])


def format_size(value: int | None) -> str:
    """The ``--max-memory`` text for a byte count (0 or None: no limit)."""
    if not value:
        return "0"
    for unit in ("T", "G", "M", "K"):
        if value % _UNITS[unit] == 0:
            return f"{value // _UNITS[unit]}{unit}"
    return str(value)
