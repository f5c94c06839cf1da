"""``gpskit ingest``: walk folders of photos and write one validated Parquet manifest.

Every file found appears in the manifest, accepted or rejected with reason codes. Files are
read in isolated worker processes (:mod:`gpskit.pool`), so a decoder crash, a huge
allocation or a hang costs one row, not the run. Re-runs re-read only new or changed
files (same path, size and mtime are reused), and the manifest is replaced atomically.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gpskit import arguments, checks, storage
from gpskit.dataset import Dataset
from gpskit.engines import Engine, EngineOptions, map_isolated
from gpskit.errors import InputError, SchemaError, UsageError
from gpskit.extsort import KEY, RunFile, RunSorter, RunWriter, aligned, merge, sort_key
from gpskit.imaging import (
    SUPPORTED_FORMATS,
)
from gpskit.pool import TIMED_OUT, start_forkserver
from gpskit.reader import WorkerInit, read_file
from gpskit.schema import (
    RowGroupReader,
    Schema,
    coerce_row,
    file_metadata,
    load_schema,
    read_table,
    table_writer,
)
from gpskit.shards import SHARD_GLOB, RowGather, ShardWriter, remove_shards

ProgressCallback = Callable[[int, int], None]

#: Default per-file limits of the reader.
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_PIXELS = 256_000_000  # above a 200 MP phone photo, below a decompression bomb
DEFAULT_MAX_MEMORY = 6 * 1024**3  # address space per worker: a bad file fails, not the machine
#: Keys (of files found, of earlier rows) held in memory before a sorted run of them is
#: spilled to disk: what bounds the memory of ``gpskit ingest`` (~0.2 GB a million).
SORT_ROWS = 1_000_000


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


@dataclass(frozen=True, slots=True)
class FileRef:
    """A file found by the scan (slots: a million of them are a few hundred MB less)."""

    root: str
    path: str
    size: int
    mtime_ns: int

    @property
    def absolute(self) -> str:
        return storage.join(self.root, self.path)


@dataclass
class IngestReport:
    """What a run did, for the summary table and ``--json``."""

    dataset_dir: str
    manifest: str
    files: int
    images: int
    accepted: int
    rejected: int
    read: int
    reused: int
    removed: int
    reasons: dict[str, int]
    warnings: dict[str, int]
    formats: dict[str, int]
    kept: int = 0  # rows of folders not named in this run
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- scanning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one input covers: one file, or every path under ``prefix`` within ``root``."""

    root: str
    prefix: str  # "" for the whole root, "day2/" for a folder inside it, a path for a file
    exact: bool

    def covers(self, root: str, path: str) -> bool:
        if root != self.root:
            return False
        return path == self.prefix if self.exact else path.startswith(self.prefix)


class Roots:
    """Root folders as small numbers: keys of millions of rows hold each root once."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.ids: dict[str, int] = {}

    def id(self, root: str) -> int:
        if root not in self.ids:
            self.ids[root] = len(self.names)
            self.names.append(root)
        return self.ids[root]

    def encode(self, column: pa.Array | pa.ChunkedArray) -> npt.NDArray[np.int32]:
        """The id of every root string of ``column`` (new roots are added)."""
        for root in pc.unique(column).to_pylist():
            self.id(root)
        found = pc.index_in(column, value_set=pa.array(self.names, pa.string()))
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int32)

    def strings(self, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The root strings of ``ids``."""
        return pa.array(self.names, pa.string()).take(ids)


class ScannedFiles:
    """The files a scan found, sorted by (root, path) without duplicates, as Arrow batches
    (``key``, ``root_id``, ``path``, ``size``, ``mtime_ns``, ``named``: the name is valid
    UTF-8). They wait in sorted runs (:class:`~gpskit.extsort.RunSorter`), spilled to disk
    past ``run_rows`` files: ~50 bytes a file in memory, and never more than a run."""

    def __init__(self, sorter: RunSorter, roots: Roots, root_ids: set[int]) -> None:
        self.sorter, self.roots, self.root_ids = sorter, roots, root_ids

    def batches(self) -> Iterator[pa.Table]:
        """The files in order (once)."""
        return self.sorter.merged()

    def refs(self) -> Iterator[FileRef]:
        """The files in order as :class:`FileRef` (once)."""
        for batch in self.batches():
            yield from _refs(batch, self.roots)

    def root_names(self) -> list[str]:
        """The roots that hold the files, sorted."""
        return sorted(self.roots.names[i] for i in self.root_ids)


def _refs(table: pa.Table, roots: Roots) -> Iterator[FileRef]:
    columns = table.select(["root_id", "path", "size", "mtime_ns"]).to_pydict()
    for root_id, path, size, mtime_ns in zip(*columns.values(), strict=True):
        yield FileRef(roots.names[root_id], path, size, mtime_ns)


#: Files found per Arrow batch of a scan.
SCAN_BATCH = 65_536

_SCANNED = pa.schema(
    [
        (KEY, pa.string()), ("root_id", pa.int32()), ("path", pa.string()), ("size", pa.int64()),
        ("mtime_ns", pa.int64()), ("named", pa.bool_()),
    ]
)  # fmt: skip


class _ScanBuffer:
    """Files as they are found, turned into Arrow every 64k files (Python objects for one
    file apiece would be most of the memory of a scan of millions) and sorted in runs."""

    def __init__(self, roots: Roots, sorter: RunSorter) -> None:
        self.roots, self.sorter = roots, sorter
        self.root_ids: list[int] = []
        self.paths: list[str] = []
        self.sizes: list[int] = []
        self.mtimes: list[int] = []
        self.named: list[bool] = []
        self.used: set[int] = set()

    def add(self, root_id: int, path: str, size: int, mtime_ns: int, named: bool = True) -> None:
        self.root_ids.append(root_id)
        self.paths.append(path)
        self.sizes.append(size)
        self.mtimes.append(mtime_ns)
        self.named.append(named)
        if len(self.paths) >= SCAN_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.paths:
            return
        root_ids = pa.array(self.root_ids, pa.int32())
        paths = pa.array(self.paths, pa.string())
        self.used.update(pc.unique(root_ids).to_pylist())
        columns = [
            sort_key(self.roots.strings(root_ids), paths), root_ids, paths, self.sizes,
            self.mtimes, self.named,
        ]  # fmt: skip
        self.sorter.add(pa.table(dict(zip(_SCANNED.names, columns, strict=True)), _SCANNED))
        self.root_ids, self.paths, self.sizes, self.mtimes, self.named = [], [], [], [], []

    def files(self) -> ScannedFiles:
        """Sorted by (root, path); a file found twice (inputs that overlap) once."""
        self._flush()
        return ScannedFiles(self.sorter, self.roots, self.used)


def _root_for(base: Path, known_roots: Iterable[str]) -> Path | None:
    """The outermost known root that holds ``base`` (so one file keeps one row)."""
    holders = [Path(r) for r in known_roots if base == Path(r) or Path(r) in base.parents]
    return min(holders, key=lambda p: len(p.parts)) if holders else None


def scan_scoped(
    inputs: Sequence[Path | str],
    spill: Path,
    exclude: Iterable[Path] = (),
    roots: Roots | None = None,
    run_rows: int | None = None,
) -> tuple[ScannedFiles, list[Scope]]:
    """Every regular file under the inputs (local paths or fsspec URLs), sorted, without
    duplicates, and what each input covers; sorted runs of more than ``run_rows`` files
    wait in ``spill``. A folder inside a root ``roots`` knows already, or inside another
    input, is filed under that root."""
    excluded = [p.resolve() for p in exclude]
    roots = roots or Roots()
    # a folder inside another folder of this run, or one the manifest has, is filed under
    # the outermost: one file, one row, however the inputs overlap
    known = list(roots.names) + [
        str(given).rstrip("/") if storage.is_url(given) else str(Path(given).resolve())
        for given in inputs
        if storage.is_url(given) or Path(given).is_dir()
    ]
    sorter = RunSorter(spill, _SCANNED, run_rows=run_rows or SORT_ROWS)
    found = _ScanBuffer(roots, sorter)
    scopes: list[Scope] = []
    for given in inputs:
        if storage.is_url(given):
            scopes.append(_scan_url(str(given), known, found))
            continue
        given = Path(given)
        if not given.exists():
            raise InputError(f"{given}: no such file or folder", hint="check the path")
        base = given.resolve()
        root = _root_for(base, known) or (base.parent if base.is_file() else base)
        if not _utf8(str(root)):
            raise InputError(
                f"{_shown(str(root))}: the folder's name is not valid UTF-8, which the manifest "
                "cannot record",
                hint="rename the folder (or give a folder above it that is named in UTF-8)",
            )
        root_id = roots.id(str(root))
        rel = base.relative_to(root).as_posix() if base != root else ""
        if base.is_file():
            _add(found, root_id, str(base), rel)
            scopes.append(Scope(str(root), rel, exact=True))
            continue
        scopes.append(Scope(str(root), f"{rel}/" if rel else "", exact=False))
        for folder, dirnames, filenames in os.walk(base):
            here = Path(folder)
            dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in excluded)
            inside = here.relative_to(root).as_posix()
            prefix = "" if inside == "." else inside + "/"
            for name in sorted(filenames):
                _add(found, root_id, os.path.join(folder, name), prefix + name)
    return found.files(), scopes


def _scan_url(url: str, known: list[str], found: _ScanBuffer) -> Scope:
    """Every object under a URL into ``found``; filed under a known root that holds it."""
    listed_root, listed = storage.list_remote(url)
    holders = [r for r in known if listed_root == r or listed_root.startswith(r + "/")]
    root = min(holders, key=len) if holders else listed_root
    root_id = found.roots.id(root)
    inside = listed_root[len(root) + 1 :] + "/" if root != listed_root else ""
    last = ""
    for item in listed:
        last = inside + item.relative
        found.add(root_id, last, item.size, item.mtime_ns)
    if url.rstrip("/") != listed_root:  # one object
        return Scope(root, last, exact=True)
    return Scope(root, inside, exact=False)


def scan(inputs: Sequence[Path | str], exclude: Iterable[Path] = ()) -> list[FileRef]:
    """Every regular file under the inputs (recursively), sorted, without duplicates."""
    with tempfile.TemporaryDirectory(prefix="gpskit-scan-") as spill:
        return list(scan_scoped(inputs, Path(spill), exclude)[0].refs())


def _add(found: _ScanBuffer, root_id: int, absolute: str, rel: str) -> None:
    try:
        info = os.stat(absolute)
    except OSError:
        return  # a dangling symlink or a file removed while scanning
    if stat.S_ISREG(info.st_mode):
        named = _utf8(rel)  # if not, its row says so, under a name shown with \x escapes
        found.add(root_id, rel if named else _shown(rel), info.st_size, info.st_mtime_ns, named)


def _utf8(name: str) -> bool:
    """Whether a name from the file system is valid UTF-8 (Python keeps the bytes of one
    that is not as lone surrogates, which Arrow strings cannot hold)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A name whose bytes are not all UTF-8, with those bytes as ``\\xff`` escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


#: The reader's error for a file whose name the manifest cannot hold as it is.
NOT_UTF8 = "the file name is not valid UTF-8 (shown with \\x escapes): rename the file to read it"


# --- the run ------------------------------------------------------------------------------


#: Rows per row group of manifest.parquet, and per step of its assembly: what bounds the
#: memory of a run, whatever the number of rows (about 2 KB a row with every hash).
MANIFEST_ROW_GROUP = 16_384

# what a re-run needs to know of an earlier row to decide whether to read its file again
_KEY_SOURCE_COLUMNS = [
    "root", "path", "file_size", "mtime_ns", "read_status", "format", "decoded", "sharpness",
    "dihedral_hashes",
]  # fmt: skip


_PREVIOUS = pa.schema(
    [
        (KEY, pa.string()), ("root_id", pa.int32()), ("path", pa.string()),
        ("file_size", pa.int64()), ("mtime_ns", pa.int64()), ("stale", pa.bool_()),
        ("source", pa.int32()), ("row", pa.int64()),
    ]
)  # fmt: skip

# an earlier row in the manifest again: where it lives (``source``: a file registered with
# the run's RowGather; ``row``: its number there), in key order
_KEPT = pa.schema(
    [
        (KEY, pa.string()), ("root_id", pa.int32()), ("path", pa.string()),
        ("source", pa.int32()), ("row", pa.int64()),
    ]
)  # fmt: skip

_TO_READ = pa.schema(
    [
        ("root_id", pa.int32()), ("path", pa.string()), ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
    ]
)  # fmt: skip


def _previous_keys(
    dataset: Dataset, notes: list[str], gather: RowGather, roots: Roots, spill: Path, run_rows: int
) -> RunSorter:
    """Rows known already, as sorted keys (root, path, size, mtime, stale) and where each
    lives: the manifest's, and the journal of an interrupted run (newer, so it wins for a
    file in both). The rows themselves stay on disk until the manifest is assembled."""

    def sorter() -> RunSorter:
        return RunSorter(spill, _PREVIOUS, run_rows=run_rows, newest="source")

    keys = sorter()
    if dataset.manifest_path.exists():
        try:
            for part in _file_keys(dataset.manifest_path, gather, roots):
                keys.add(part)
        except SchemaError as exc:
            notes.append(
                f"the existing manifest cannot be reused ({exc}); every file is read again"
            )
            keys = sorter()
    journaled = 0
    for shard in sorted(dataset.journal_dir.glob(SHARD_GLOB)):
        try:
            found = list(_file_keys(shard, gather, roots))  # a shard is a few hundred rows
        except SchemaError:
            continue  # cut short by a crash while being written: its rows are read again
        for part in found:
            keys.add(part)
            journaled += part.num_rows
    if journaled:
        notes.append(f"resumed an interrupted run: {journaled} files were read already")
    return keys


def _file_keys(path: Path, gather: RowGather, roots: Roots) -> Iterator[pa.Table]:
    """The keys of every row of one manifest or journal file, a row group at a time."""
    reader = RowGroupReader(path, _manifest_schema())
    source = gather.add(path, reader)
    start = 0
    for index, count in enumerate(reader.row_counts):
        part = reader.read(index, columns=_KEY_SOURCE_COLUMNS)
        yield _key_table(
            _PREVIOUS,
            key=sort_key(part["root"], part["path"]), root_id=roots.encode(part["root"]),
            path=part["path"], file_size=part["file_size"], mtime_ns=part["mtime_ns"],
            stale=_needs_decoding(part), source=np.full(count, source, dtype=np.int32),
            row=np.arange(start, start + count, dtype=np.int64),
        )  # fmt: skip
        start += count


def _key_table(schema: pa.Schema, **columns: Any) -> pa.Table:
    return pa.table({f.name: columns[f.name] for f in schema}, schema=schema)


def _refiled(scopes: list[Scope], roots: Roots, known: int) -> dict[int, tuple[int, str]]:
    """Earlier roots (ids below ``known``) that lie inside a folder scanned now: the root
    their rows move to and the prefix their paths get, so a file never has two rows
    (``photos/day1`` then ``photos``)."""
    folders = [s.root.rstrip("/") or "/" for s in scopes if not s.exact]
    moves = {}
    for old_id in range(known):
        old = roots.names[old_id]
        outer = [f for f in folders if old.startswith(f + "/")]
        if outer:
            new_root = min(outer, key=len)
            moves[old_id] = (roots.id(new_root), old[len(new_root) + 1 :] + "/")
    return moves


def _refile(keys: pa.Table, moves: dict[int, tuple[int, str]], roots: Roots) -> pa.Table:
    """Rows of ``keys`` under the roots they move to (see :func:`_refiled`)."""
    root_id, path = keys["root_id"], keys["path"]
    for old_id, (new_id, prefix) in moves.items():
        moved = pc.equal(root_id, old_id)
        path = pc.if_else(moved, pc.binary_join_element_wise(prefix, path, ""), path)
        root_id = pc.if_else(moved, pa.scalar(new_id, pa.int32()), root_id)
    changes = {"root_id": root_id, "path": path, KEY: sort_key(roots.strings(root_id), path)}
    for name, column in changes.items():
        keys = keys.set_column(keys.schema.get_field_index(name), name, column)
    return keys


def _needs_decoding(previous: pa.Table) -> pa.Array:
    """Rows a full run must read again: from a ``--no-decode`` run, or decoded by an older
    gpskit that did not keep every measure this one keeps (dihedral hashes, quality)."""
    readable = pc.and_(
        pc.equal(previous["read_status"], checks.READ_OK),
        pc.is_in(previous["format"], pa.array(sorted(SUPPORTED_FORMATS))),
    )
    no_hashes = pc.or_(
        pc.fill_null(pc.equal(pc.list_value_length(previous["dihedral_hashes"]), 0), True),
        pc.is_null(previous["sharpness"]),
    )
    incomplete = pc.or_(pc.invert(pc.fill_null(previous["decoded"], False)), no_hashes)
    return pc.fill_null(pc.and_(readable, incomplete), False)


def _failure_row(status: str, detail: str | None) -> dict[str, Any]:
    return {"read_status": status, "decoded": False, "has_exif": False, "error": detail}


class _ReadTasks(Sequence[tuple[str, bool, int]]):
    """The reader's arguments for each file to read, made from the spilled list of files
    when a worker asks for them (a million tuples made up front would be a few hundred MB)."""

    def __init__(self, files: RunFile, roots: Roots, options: IngestOptions):
        self.files, self.roots, self.options = files, roots, options
        self._batches: dict[int, list[FileRef]] = {}  # a few, by number: asked in rough order

    def __len__(self) -> int:
        return len(self.files)

    def ref(self, index: int) -> FileRef:
        number, offset = self.files.locate(index)
        refs = self._batches.get(number)
        if refs is None:
            if len(self._batches) >= 4:
                del self._batches[next(iter(self._batches))]
            refs = self._batches[number] = list(_refs(self.files.batch(number), self.roots))
        return refs[offset]

    @overload
    def __getitem__(self, index: int) -> tuple[str, bool, int]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, bool, int]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> tuple[str, bool, int] | list[tuple[str, bool, int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return (self.ref(index).absolute, self.options.decode, self.options.max_pixels)


def _read_files(
    plan: _Plan,
    roots: Roots,
    options: IngestOptions,
    sink: Callable[[dict[str, Any]], None],
    log: Path | None,
) -> None:
    """Read the files the plan lists in isolated workers; hand each row to ``sink``. A
    file whose name is not UTF-8 is not read: its row says why."""
    for batch in plan.unnamed.batches():
        for ref in _refs(batch, roots):
            sink(manifest_row(ref, _failure_row(checks.READ_UNREADABLE, NOT_UTF8)))
    tasks = _ReadTasks(plan.to_read, roots, options)
    for outcome in map_isolated(
        read_file,
        tasks,
        engine=options.engine,
        workers=options.workers,
        timeout=options.timeout,
        max_memory=options.max_memory,
        initializer=WorkerInit(options.max_pixels, str(log) if log else None),
    ):
        if outcome.failure is None:
            assert outcome.value is not None
            extracted = outcome.value
        else:
            crashed = outcome.failure != TIMED_OUT
            status = checks.READ_WORKER_CRASHED if crashed else checks.READ_TIMEOUT
            extracted = _failure_row(status, outcome.detail)
        sink(manifest_row(tasks.ref(outcome.index), extracted))


def manifest_row(ref: FileRef, extracted: dict[str, Any]) -> dict[str, Any]:
    """A manifest row from what the reader extracted: every value made to fit its column.

    This is the one place values from a file cross into the manifest; one that does not fit
    (an Orientation of 36865, a year past 9999) becomes empty and is named in
    ``unfit_tags``, never an error at the final write.
    """
    row = {
        **extracted,
        "root": ref.root,
        "path": ref.path,
        "file_size": ref.size,
        "mtime_ns": ref.mtime_ns,
        "status": "accepted",
        "reasons": [],
        "warnings": [],
    }
    unfit = coerce_row(row, _manifest_schema())
    row["unfit_tags"] = unfit
    return row


def judge(row: dict[str, Any], thresholds: dict[str, float], strict_quality: bool = False) -> None:
    """Run the checks on one row: fill ``reasons``, ``warnings`` and ``status``."""
    reasons, warns = checks.evaluate(row, thresholds, strict_quality)
    row["reasons"], row["warnings"] = reasons, warns
    row["status"] = "rejected" if reasons else "accepted"


def manifest_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Manifest rows (each made by :func:`manifest_row`) as an Arrow table."""
    schema = _manifest_schema()
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema.arrow_schema())


def judge_table(
    table: pa.Table, thresholds: dict[str, float], strict_quality: bool = False, batch: int = 65_536
) -> pa.Table:
    """:func:`judge` every row of a table, a batch at a time (the checks read the scalar
    columns only, never the hashes, so those are not turned into Python objects)."""
    fields = [name for name in table.column_names if "hash" not in name]
    reasons: list[list[str]] = []
    warns: list[list[str]] = []
    for part in table.select(fields).to_batches(max_chunksize=batch):
        for row in part.to_pylist():
            found, warned = checks.evaluate(row, thresholds, strict_quality)
            reasons.append(found)
            warns.append(warned)
    arrow = _manifest_schema().arrow_schema()
    status = ["rejected" if found else "accepted" for found in reasons]
    for name, values in (("reasons", reasons), ("warnings", warns), ("status", status)):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, arrow.field(name), pa.array(values, arrow.field(name).type))
    return table


def _verdicts(options: IngestOptions) -> dict[str, Any]:
    """What a row's verdict depends on besides the row (kept in the manifest's metadata)."""
    return {
        "thresholds": options.thresholds,
        "strict_quality": options.strict_quality,
        "checks": checks.fingerprint(),
    }


def _judged_alike(path: Path, options: IngestOptions) -> bool:
    """Whether the verdicts in an earlier manifest are the ones this run would give."""
    try:
        settings = json.loads(file_metadata(path).get("gpskit.ingest", "{}"))
    except (OSError, ValueError, pa.ArrowException):
        return False
    mine = _verdicts(options)
    return isinstance(settings, dict) and all(settings.get(k) == v for k, v in mine.items())


def _rebatched(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """``tables`` cut and joined into tables of ``rows`` rows (the last one shorter)."""
    held: list[pa.Table] = []
    count = 0
    for table in tables:
        held.append(table)
        count += table.num_rows
        while count >= rows:
            joined = pa.concat_tables(held)
            yield joined.slice(0, rows)
            held, count = [joined.slice(rows)], count - rows
    if count:
        yield pa.concat_tables(held)


def _assemble_manifest(
    dataset: Dataset,
    kept: RunFile,
    gather: RowGather,
    written: list[Path],
    files: ScannedFiles,
    options: IngestOptions,
    judged: set[int],
    spill: Path,
) -> ManifestCounts:
    """Write manifest.parquet from the kept earlier rows (``kept``, in key order) and this
    run's journal shards (``written``, their keys sorted in runs), merged in (root, path)
    order and judged, a row group at a time: memory holds a run of keys and one row
    group, never the whole manifest. Rows of the files in ``judged`` (and of this run's
    shards, judged as they were read) keep their verdicts; the others are judged again."""
    roots = files.roots
    judged = set(judged)
    fresh = RunSorter(spill, _KEPT, run_rows=options.sort_rows)
    for shard in written:
        found = read_table(shard, _manifest_schema(), columns=["root", "path"])
        source = gather.add(shard)
        judged.add(source)
        fresh.add(
            _key_table(
                _KEPT,
                key=sort_key(found["root"], found["path"]), root_id=roots.encode(found["root"]),
                path=found["path"], source=np.full(found.num_rows, source, dtype=np.int32),
                row=np.arange(found.num_rows, dtype=np.int64),
            )
        )  # fmt: skip
    settings = {
        "inputs": files.root_names(),
        "decode": options.decode,
        "max_pixels": options.max_pixels,
        **_verdicts(options),
    }
    metadata = {"gpskit.ingest": json.dumps(settings, sort_keys=True)}
    counts = ManifestCounts()
    schema = _manifest_schema()
    steps = _rebatched(merge([kept.batches(), fresh.merged()]), MANIFEST_ROW_GROUP)
    with table_writer(
        dataset.manifest_path,
        schema,
        extra_metadata=metadata,
        row_group_rows=MANIFEST_ROW_GROUP,
        ordered=True,
    ) as write:
        for step in steps:
            try:
                rows = gather.take(step["source"].to_numpy(), step["row"].to_numpy())
            except SchemaError as exc:  # keys read fine, the rest of a row group did not
                raise SchemaError(
                    exc.message,
                    hint=f"move {dataset.manifest_path.name} away and run ingest again: the "
                    "rows this run read are journaled and will be reused",
                ) from None
            # rows re-filed under a new root (see _refiled)
            rows = rows.set_column(
                rows.schema.get_field_index("root"), "root", roots.strings(step["root_id"])
            )
            rows = rows.set_column(rows.schema.get_field_index("path"), "path", step["path"])
            if not np.isin(step["source"].to_numpy(), list(judged)).all():
                rows = judge_table(rows, options.thresholds, options.strict_quality)
            counts.add(rows)
            write(rows)
        if not counts.files:
            write(schema.arrow_schema().empty_table())
    return counts


def _manifest_schema() -> Schema:
    return load_schema("manifest")


@dataclass
class _Plan:
    """What a run does with each file and earlier row, in spilled lists in key order:
    the files to read (and those not read for their names), the earlier rows that stay
    (reused, or of folders not named); and how many of each."""

    to_read: RunFile
    unnamed: RunFile  # names that are not UTF-8: recorded, not read
    kept: RunFile  # earlier rows in the manifest again
    files: int  # files scanned
    reused: int
    kept_rows: int  # rows kept from folders not named in this run
    removed: int

    @property
    def read(self) -> int:
        return len(self.to_read) + len(self.unnamed)


def _plan(
    scanned: Iterable[pa.Table],
    previous: Iterable[pa.Table],
    scopes: list[Scope],
    roots: Roots,
    options: IngestOptions,
    spill: Path,
) -> _Plan:
    """Match the scanned files against the earlier rows, both in key order, a stretch of
    keys at a time (a merge join: memory holds one stretch, not either side)."""
    to_read, unnamed = RunWriter(spill, _TO_READ), RunWriter(spill, _TO_READ)
    kept = RunWriter(spill, _KEPT)
    files = reused = kept_rows = removed = 0
    for found, known in aligned([scanned, previous]):
        found = found if found is not None else _SCANNED.empty_table()
        known = known if known is not None else _PREVIOUS.empty_table()
        files += found.num_rows
        at = np.full(found.num_rows, -1, dtype=np.int64)  # the earlier row of each file
        if known.num_rows and found.num_rows:
            index = pc.index_in(found[KEY], value_set=known[KEY])
            at = np.asarray(pc.fill_null(index, -1).to_numpy(), dtype=np.int64)
        hit = at >= 0
        rows = at[hit]
        same = np.zeros(found.num_rows, dtype=bool)
        if not options.force and len(rows):
            alike = (found["size"].to_numpy()[hit] == known["file_size"].to_numpy()[rows]) & (
                found["mtime_ns"].to_numpy()[hit] == known["mtime_ns"].to_numpy()[rows]
            )
            if options.decode:
                alike &= ~known["stale"].to_numpy(zero_copy_only=False)[rows]
            same[hit] = alike
        named = found["named"].to_numpy(zero_copy_only=False)
        to_read.write(found.filter(pa.array(~same & named)))
        unnamed.write(found.filter(pa.array(~same & ~named)))
        found_again = np.zeros(known.num_rows, dtype=bool)
        found_again[rows] = True
        gone = np.flatnonzero(~found_again)
        inside = _covered(known, gone, scopes, roots, options.prune)
        reused += int(same.sum())
        kept_rows += int((~inside).sum())
        removed += int(inside.sum())
        kept.write(known.take(pa.array(np.sort(np.concatenate([at[same], gone[~inside]])))))
    for writer in (to_read, unnamed, kept):
        writer.close()
    return _Plan(
        RunFile(to_read.path), RunFile(unnamed.path), RunFile(kept.path),
        files, reused, kept_rows, removed,
    )  # fmt: skip


def _covered(
    previous: pa.Table,
    rows: npt.NDArray[np.int64],
    scopes: list[Scope],
    roots: Roots,
    prune: bool,
) -> npt.NDArray[np.bool_]:
    """Which of ``rows`` lie in what this run scanned (every row, with ``prune``)."""
    mask = np.full(len(rows), prune)
    if prune or not len(rows):
        return mask
    root_ids = previous["root_id"].to_numpy()[rows]
    for scope in scopes:
        if scope.root not in roots.ids:
            continue
        mine = np.flatnonzero(root_ids == roots.ids[scope.root])
        paths = previous["path"].take(rows[mine])
        inside = (
            pc.equal(paths, scope.prefix) if scope.exact else pc.starts_with(paths, scope.prefix)
        )
        mask[mine[inside.to_numpy(zero_copy_only=False)]] = True
    return mask


def ingest(
    inputs: Sequence[Path | str],
    dataset_dir: Path | Dataset,
    options: IngestOptions | None = None,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Scan ``inputs``, read new or changed files, judge every row, write the manifest.

    Rows of folders not named in this run are kept; rows of files that vanished from a
    scanned folder are dropped (all rows not found, with ``prune``). Each row read is
    journaled as it arrives, so a killed run resumes where it stopped.
    """
    options = options or IngestOptions()
    options.validate()
    dataset = Dataset.at(dataset_dir)
    with dataset.writing("ingest"):
        spill = dataset.state_dir / "ingest-sort"  # sorted runs of keys; gone after the run
        shutil.rmtree(spill, ignore_errors=True)
        try:
            return _ingest(inputs, dataset, options, progress, spill)
        finally:
            shutil.rmtree(spill, ignore_errors=True)


def _ingest(
    inputs: Sequence[Path | str],
    dataset: Dataset,
    options: IngestOptions,
    progress: ProgressCallback | None,
    spill: Path,
) -> IngestReport:
    notes: list[str] = []
    gather = RowGather([], _manifest_schema())
    roots = Roots()
    previous = _previous_keys(dataset, notes, gather, roots, spill, options.sort_rows)
    known_roots = len(roots.names)
    manifest = [i for i, path in enumerate(gather.paths) if path == dataset.manifest_path]
    judged = {i for i in manifest if _judged_alike(dataset.manifest_path, options)}
    files, scopes = scan_scoped(
        inputs, spill, exclude=[dataset.root], roots=roots, run_rows=options.sort_rows
    )
    moves = _refiled(scopes, roots, known_roots)
    if moves:  # rows moved under another root sort elsewhere: sort them again
        refiled = RunSorter(spill, _PREVIOUS, run_rows=options.sort_rows, newest="source")
        for batch in previous.merged():
            refiled.add(_refile(batch, moves, roots))
        previous = refiled
    plan = _plan(files.batches(), previous.merged(), scopes, roots, options, spill)
    del previous
    pa.default_memory_pool().release_unused()
    if len(plan.to_read) and options.engine.engine == Engine.LOCAL.value:
        start_forkserver([read_file.__module__])  # its start overlaps what follows
    # rows go to disk as they arrive and are not kept here: memory does not grow with them
    journal = ShardWriter(dataset.journal_dir, _manifest_schema(), rows=options.journal_rows)
    done = plan.files - plan.read
    if progress:
        progress(done, plan.files)

    def sink(row: dict[str, Any]) -> None:
        nonlocal done
        judge(row, options.thresholds, options.strict_quality)
        journal.add(row)
        done += 1
        if progress:
            progress(done, plan.files)

    dataset.log_dir.mkdir(parents=True, exist_ok=True)
    _read_files(plan, roots, options, sink, dataset.log_dir / "ingest.log")
    journal.flush()
    counts = _assemble_manifest(
        dataset, plan.kept, gather, journal.written, files, options, judged, spill
    )
    remove_shards(dataset.journal_dir)
    report = counts.report(dataset)
    report.read, report.reused = plan.read, plan.files - plan.read
    report.removed, report.kept = plan.removed, plan.kept_rows
    report.notes = notes + _scope_notes(plan, options) + _inside_inputs(dataset, inputs)
    return report


def _inside_inputs(dataset: Dataset, inputs: Sequence[Path | str]) -> list[str]:
    """Say when the dataset folder sits inside a photo folder (gpskit skips it; other tools
    that walk the photos may not)."""
    root = dataset.root.resolve()
    return [
        f"warning: the dataset folder {dataset.root} is inside the photo folder {given}; "
        "gpskit skips it, but other tools walking the photos may not: keep them apart"
        for given in inputs
        if isinstance(given, Path) and given.is_dir() and given.resolve() in root.parents
    ]


def _scope_notes(plan: _Plan, options: IngestOptions) -> list[str]:
    notes = []
    if plan.kept_rows:
        notes.append(f"kept {plan.kept_rows} rows of folders not named in this run")
    if plan.removed:
        where = (
            "not found in this run (--prune)" if options.prune else "gone from the folders scanned"
        )
        notes.append(f"dropped {plan.removed} rows of files {where}")
    return notes


@dataclass
class ManifestCounts:
    """Counts by status, reason, warning and format, added up a piece of manifest at a time."""

    files: int = 0
    images: int = 0
    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    formats: Counter[str] = field(default_factory=Counter)

    def add(self, table: pa.Table) -> None:
        self.files += table.num_rows
        status = table.column("status")
        self.accepted += int(pc.sum(pc.equal(status, "accepted")).as_py() or 0)
        self.rejected += int(pc.sum(pc.equal(status, "rejected")).as_py() or 0)
        read_ok = pc.equal(table.column("read_status"), checks.READ_OK)
        self.images += int(pc.sum(read_ok).as_py() or 0)
        for counter, values in (
            (self.reasons, pc.list_flatten(table.column("reasons"))),
            (self.warnings, pc.list_flatten(table.column("warnings"))),
            (self.formats, pc.drop_null(table.column("format"))),
        ):
            for item in pc.value_counts(values).to_pylist():
                if item["values"]:
                    counter[item["values"]] += item["counts"]

    def report(self, dataset: Dataset) -> IngestReport:
        return IngestReport(
            dataset_dir=str(dataset.root),
            manifest=str(dataset.manifest_path),
            files=self.files,
            images=self.images,
            accepted=self.accepted,
            rejected=self.rejected,
            read=0,
            reused=0,
            removed=0,
            reasons=dict(self.reasons.most_common()),
            warnings=dict(self.warnings.most_common()),
            formats=dict(self.formats.most_common()),
        )


def summarize(table: pa.Table, dataset: Dataset) -> IngestReport:
    """Counts by status, reason, warning and format of a manifest table."""
    counts = ManifestCounts()
    counts.add(table)
    return counts.report(dataset)


_SUMMARY_COLUMNS = ("status", "read_status", "reasons", "warnings", "format")


def manifest_info(dataset_dir: Path | Dataset) -> tuple[IngestReport, dict[str, Any]]:
    """Summary of an existing manifest and the options it was made with."""
    dataset = Dataset.at(dataset_dir)
    table = dataset.load_manifest(columns=list(_SUMMARY_COLUMNS))
    meta = file_metadata(dataset.manifest_path)
    settings = json.loads(meta.get("gpskit.ingest", "{}"))
    settings["gpskit_version"] = meta.get("gpskit.version")
    return summarize(table, dataset), settings


def quality_offenders(dataset_dir: Path | Dataset, per_check: int = 6) -> dict[str, Any]:
    """The worst photos of each image-quality check in a manifest (see
    :func:`gpskit.quality.worst_offenders`); only the columns that needs are read."""
    from gpskit.quality import COLUMNS, worst_offenders

    dataset = Dataset.at(dataset_dir)
    wanted = ["root", "path", "width", "height", "warnings", "reasons", *COLUMNS]
    return worst_offenders(dataset.load_manifest(columns=wanted).to_pandas(), per_check)
