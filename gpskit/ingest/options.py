"""Ingest's options: how to read and judge photos, and the reader's limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gpskit import arguments, checks
from gpskit.engines import EngineOptions
from gpskit.errors import UsageError

ProgressCallback = Callable[[int, int], None]


#: Default per-file limits of the reader.
DEFAULT_TIMEOUT_S = 60.0


DEFAULT_MAX_PIXELS = 256_000_000  # above a 200 MP phone photo, below a decompression bomb


DEFAULT_MAX_MEMORY = 6 * 1024**3  # address space per worker: a bad file fails, not the machine


#: Keys (of files found, of earlier rows) held in memory before a sorted run of them is
#: spilled to disk: what bounds the memory of ``gpskit ingest`` (~0.2 GB a million).
SORT_ROWS = 1_000_000


#: Files read as tables of photos (by their ending), not as photos.
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson", ".arrow")


def is_table(path: Path) -> bool:
    """Whether a file is read as a table of photos (by its ending)."""
    return path.suffix.lower() in TABLE_SUFFIXES


@dataclass(frozen=True)
class Columns:
    """The columns of a table of photos a user named (``--lat-column`` ...); None: found by
    the usual names (see :mod:`gpskit.ingest.labels`)."""

    latitude: str | None = None
    longitude: str | None = None
    heading: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class IngestOptions:
    """How to read and judge photos; thresholds default to the registered checks' defaults."""

    decode: bool = True
    workers: int | None = None
    timeout: float = DEFAULT_TIMEOUT_S
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_memory: int | None = DEFAULT_MAX_MEMORY
    thresholds: dict[str, float] = field(default_factory=checks.default_thresholds)
    strict_quality: bool = False  # image-quality problems reject, not just warn
    force: bool = False
    prune: bool = False  # drop rows of every file not found, not just in the folders scanned
    journal_rows: int = 256  # rows per journal shard (how much a kill can cost)
    sort_rows: int = SORT_ROWS  # keys held in memory before a sorted run is spilled to disk
    engine: EngineOptions = field(default_factory=EngineOptions)  # where files are read
    labels: tuple[str, ...] = ()  # tables of positions attached to photos by file name
    columns: Columns = field(default_factory=Columns)  # the columns of tables, where named

    def validate(self) -> None:
        arguments.workers("--workers", self.workers)
        arguments.number("--timeout", self.timeout, above=0)
        arguments.number("--max-pixels", self.max_pixels, minimum=1, integer=True)
        arguments.optional_number("--max-memory", self.max_memory, minimum=64 * 1024**2)
        arguments.number("journal_rows", self.journal_rows, minimum=1, integer=True)
        arguments.number("--sort-rows", self.sort_rows, minimum=1, integer=True)
        self.engine.validate()
        unknown = set(self.thresholds) - set(checks.default_thresholds())
        if unknown:
            raise UsageError(f"unknown check thresholds: {sorted(unknown)}")
        for name, value in self.thresholds.items():
            arguments.number(f"--{name.replace('_', '-')}", value, minimum=0)
