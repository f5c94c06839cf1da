"""What every command shares: consoles, progress, JSON output, the dataset argument."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from gpskit.config import DATASET_ENV, DEFAULT_DATASET_DIR
from gpskit.engines import Engine
from gpskit.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from gpskit.dataset import Dataset


class _Console:
    """rich's Console, made on first use: importing rich is ~40 ms of every start, and a
    quick answer (``--version``, an ingest with nothing new) may print without it."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            # no markup: names, paths, EXIF and authors may hold [brackets]; colour goes
            # through styled()
            self._console = Console(stderr=self._stderr, markup=False)
        return getattr(self._console, name)


console = cast("Console", _Console())
err_console = cast("Console", _Console(stderr=True))


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text with some parts in a style (``("note:", "yellow")``), the rest as given: never
    read as markup, so a folder named ``[/b]`` prints as it is."""
    from rich.text import Text

    return Text.assemble(*parts)


def new_table(*args: Any, **kwargs: Any) -> Table:
    """A rich Table (rich loaded when a table is drawn)."""
    from rich.table import Table

    return Table(*args, **kwargs)


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
    from gpskit.dataset import Dataset  # Arrow loads only for commands that read tables

    return Dataset.at(path)


def print_json(data: Any) -> None:
    """JSON on stdout, nothing else, so scripts can parse it."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


@dataclass
class ProgressSettings:
    """How long work reports itself (set by the root options ``--quiet``, ``--log-format``)."""

    quiet: bool = False
    json_lines: bool = False
    #: seconds between plain progress lines when stderr is not a terminal
    every: float = float(os.environ.get("GPSKIT_PROGRESS_SECONDS", "10"))


PROGRESS = ProgressSettings()


class PlainProgress:
    """Progress for a log, a notebook, CI or ``nohup``: a line every ``every`` seconds (and
    at the end), as text or as one JSON object per line; never a redrawn bar."""

    def __init__(self, description: str, settings: ProgressSettings) -> None:
        self.description, self.settings = description, settings
        self.started = time.monotonic()
        self.last = -float("inf")

    def update(self, done: int, total: int | None, **fields: Any) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - self.last < self.settings.every and not finished:
            return
        self.last = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if total and rate > 0 else None
        if self.settings.json_lines:
            record = {"step": self.description, "done": done, "total": total,
                      "rate_per_s": round(rate, 2), "eta_s": None if eta is None else round(eta, 1),
                      "elapsed_s": round(elapsed, 1), **fields}  # fmt: skip
            line = json.dumps(record, sort_keys=True, default=str)
        else:
            share = f" ({100 * done / total:.0f}%)" if total else ""
            extra = "".join(f" {k} {v}" for k, v in fields.items())
            left = f", ETA {_clock(eta)}" if eta is not None else ""
            line = (
                f"{self.description}: {done}/{total if total is not None else '?'}{share}{extra}, "
                f"{rate:.1f}/s, {_clock(elapsed)} elapsed{left}"
            )
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _clock(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def on_terminal() -> bool:
    """Whether stderr is a terminal a bar can be redrawn on."""
    return err_console.is_terminal and not PROGRESS.json_lines


@contextmanager
def progress_bar(description: str, *, enabled: bool = True) -> Iterator[Any]:
    """``update(done, total)`` shows progress on stderr: a rich bar on a terminal (from the
    first call, so an argument error stays one line with no empty bar above it), else plain
    lines at a steady pace; nothing with ``--quiet``."""
    progress: Any = None
    task: Any = None
    plain = PlainProgress(description, PROGRESS)
    enabled = enabled and not PROGRESS.quiet

    def update(done: int, total: int, **fields: Any) -> None:
        nonlocal progress, task
        if not enabled:
            return
        if not on_terminal():
            plain.update(done, total, **fields)
            return
        if progress is None:
            from rich.progress import (  # loaded on a terminal only, when work starts
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

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
