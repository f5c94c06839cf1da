"""``gpskit ingest``: walk folders of photos and write one validated Parquet manifest.

Every file found appears in the manifest, accepted or rejected with reason codes. Files are
read in isolated worker processes (:mod:`gpskit.pool`), so a decoder crash, a huge
allocation or a hang costs one row, not the run. Re-runs re-read only new or changed
files (same path, size and mtime are reused), and the manifest is replaced atomically.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gpskit import arguments, checks, storage
from gpskit.dataset import Dataset
from gpskit.engines import Engine, EngineOptions, map_isolated
from gpskit.errors import InputError, SchemaError, UsageError
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
    engine: EngineOptions = field(default_factory=EngineOptions)  # where files are read

    def validate(self) -> None:
        arguments.workers("--workers", self.workers)
        arguments.number("--timeout", self.timeout, above=0)
        arguments.number("--max-pixels", self.max_pixels, minimum=1, integer=True)
        arguments.optional_number("--max-memory", self.max_memory, minimum=64 * 1024**2)
        arguments.number("journal_rows", self.journal_rows, minimum=1, integer=True)
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


def _root_for(base: Path, known_roots: Iterable[str]) -> Path | None:
    """The outermost known root that holds ``base`` (so one file keeps one row)."""
    holders = [Path(r) for r in known_roots if base == Path(r) or Path(r) in base.parents]
    return min(holders, key=lambda p: len(p.parts)) if holders else None


def scan_scoped(
    inputs: Sequence[Path | str], exclude: Iterable[Path] = (), known_roots: Iterable[str] = ()
) -> tuple[list[FileRef], list[Scope]]:
    """Every regular file under the inputs (local paths or fsspec URLs), sorted, without
    duplicates, and what each input covers. A folder inside a root the manifest already
    has is filed under that root."""
    excluded = [p.resolve() for p in exclude]
    roots = list(known_roots)
    found: dict[tuple[str, str], FileRef] = {}
    scopes: list[Scope] = []
    for given in inputs:
        if storage.is_url(given):
            scopes.append(_scan_url(str(given), roots, found))
            continue
        given = Path(given)
        if not given.exists():
            raise InputError(f"{given}: no such file or folder", hint="check the path")
        base = given.resolve()
        root = _root_for(base, roots) or (base.parent if base.is_file() else base)
        rel = base.relative_to(root).as_posix() if base != root else ""
        if base.is_file():
            _add(found, root, base)
            scopes.append(Scope(str(root), rel, exact=True))
            continue
        scopes.append(Scope(str(root), f"{rel}/" if rel else "", exact=False))
        for folder, dirnames, filenames in os.walk(base):
            here = Path(folder)
            dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() not in excluded)
            for name in sorted(filenames):
                _add(found, root, here / name)
    return [found[key] for key in sorted(found)], scopes


def _scan_url(url: str, roots: list[str], found: dict[tuple[str, str], FileRef]) -> Scope:
    """Every object under a URL into ``found``; filed under a known root that holds it."""
    listed_root, listed = storage.list_remote(url)
    holders = [r for r in roots if listed_root == r or listed_root.startswith(r + "/")]
    root = min(holders, key=len) if holders else listed_root
    inside = listed_root[len(root) + 1 :] + "/" if root != listed_root else ""
    for item in listed:
        path = inside + item.relative
        found[(root, path)] = FileRef(root, path, item.size, item.mtime_ns)
    if url.rstrip("/") != listed_root:  # one object
        return Scope(root, inside + listed[0].relative, exact=True)
    return Scope(root, inside, exact=False)


def scan(inputs: Sequence[Path | str], exclude: Iterable[Path] = ()) -> list[FileRef]:
    """Every regular file under the inputs (recursively), sorted, without duplicates."""
    return scan_scoped(inputs, exclude)[0]


def _add(found: dict[tuple[str, str], FileRef], root: Path, path: Path) -> None:
    try:
        stat = path.stat()
    except OSError:
        return  # a dangling symlink or a file removed while scanning
    if not path.is_file():
        return
    rel = path.relative_to(root).as_posix()
    text = sys.intern(str(root))  # one copy of the root for all its files
    found[(text, rel)] = FileRef(text, rel, stat.st_size, stat.st_mtime_ns)


# --- the run ------------------------------------------------------------------------------


#: Rows per row group of manifest.parquet, and per step of its assembly: what bounds the
#: memory of a run, whatever the number of rows (about 2 KB a row with every hash).
MANIFEST_ROW_GROUP = 16_384

# what a re-run needs to know of an earlier row to decide whether to read its file again
_KEY_SOURCE_COLUMNS = [
    "root", "path", "file_size", "mtime_ns", "read_status", "format", "decoded", "sharpness",
    "dihedral_hashes",
]  # fmt: skip


def _previous_keys(dataset: Dataset, notes: list[str], gather: RowGather) -> pa.Table:
    """Rows known already, as keys only (root, path, size, mtime, stale) and where each
    lives (``source``: a file registered with ``gather``; ``row``: its number there): the
    manifest's, and the journal of an interrupted run (newer, so it wins for a file in
    both). The rows themselves stay on disk until the manifest is assembled."""
    pieces: list[pa.Table] = []
    if dataset.manifest_path.exists():
        try:
            pieces += _file_keys(dataset.manifest_path, gather)
        except SchemaError as exc:
            notes.append(
                f"the existing manifest cannot be reused ({exc}); every file is read again"
            )
    journaled = 0
    for shard in sorted(dataset.journal_dir.glob(SHARD_GLOB)):
        try:
            found = _file_keys(shard, gather)
        except SchemaError:
            continue  # cut short by a crash while being written: its rows are read again
        pieces += found
        journaled += sum(piece.num_rows for piece in found)
    if journaled:
        notes.append(f"resumed an interrupted run: {journaled} files were read already")
    if not pieces:
        return _KEYS.empty_table()
    keys = pa.concat_tables(pieces)
    order = pa.array(np.arange(keys.num_rows))
    last = (
        pa.table({"root": keys["root"], "path": keys["path"], "order": order})
        .group_by(["root", "path"], use_threads=False)
        .aggregate([("order", "max")])
    )
    return keys.take(np.sort(last["order_max"].to_numpy()))


def _file_keys(path: Path, gather: RowGather) -> list[pa.Table]:
    """The keys of every row of one manifest or journal file, a row group at a time."""
    reader = RowGroupReader(path, _manifest_schema())
    pieces, start = [], 0
    for index, count in enumerate(reader.row_counts):
        part = reader.read(index, columns=_KEY_SOURCE_COLUMNS)
        pieces.append((part, np.arange(start, start + count, dtype=np.int64)))
        start += count
    source = gather.add(path, reader)
    return [
        _key_table(
            root=part["root"], path=part["path"], file_size=part["file_size"],
            mtime_ns=part["mtime_ns"], stale=_needs_decoding(part),
            source=np.full(len(rows), source, dtype=np.int64), row=rows,
        )
        for part, rows in pieces
    ]  # fmt: skip


_KEYS = pa.schema(
    [
        ("root", pa.string()), ("path", pa.string()), ("file_size", pa.int64()),
        ("mtime_ns", pa.int64()), ("stale", pa.bool_()), ("source", pa.int64()),
        ("row", pa.int64()),
    ]
)  # fmt: skip


def _key_table(**columns: Any) -> pa.Table:
    """Keys of rows (see :func:`_previous_keys`); columns not given are left out."""
    schema = pa.schema([f for f in _KEYS if f.name in columns])
    return pa.table({f.name: columns[f.name] for f in schema}, schema=schema)


def _rekey(previous: pa.Table, scopes: list[Scope]) -> pa.Table:
    """Rows of a root that lies inside a folder scanned now, filed under the new root, so
    a file never gets two rows (``photos/day1`` then ``photos``)."""
    folders = [s.root.rstrip("/") or "/" for s in scopes if not s.exact]
    root, path = previous["root"], previous["path"]
    for old in pc.unique(root).to_pylist():
        outer = [f for f in folders if old.startswith(f + "/")]
        if not outer:
            continue
        new_root = min(outer, key=len)
        moved = pc.equal(root, old)
        path = pc.if_else(
            moved, pc.binary_join_element_wise(old[len(new_root) + 1 :], path, "/"), path
        )
        root = pc.if_else(moved, new_root, root)
    previous = previous.set_column(previous.schema.get_field_index("root"), "root", root)
    return previous.set_column(previous.schema.get_field_index("path"), "path", path)


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


def _read_files(
    files: list[FileRef],
    to_read: list[int],
    options: IngestOptions,
    sink: Callable[[int, dict[str, Any]], None],
    log: Path | None,
) -> None:
    """Read the files at ``to_read`` in isolated workers; hand each row to ``sink``."""
    tasks = [(files[i].absolute, options.decode, options.max_pixels) for i in to_read]
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
        index = to_read[outcome.index]
        sink(index, manifest_row(files[index], extracted))


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


def _assemble_manifest(
    dataset: Dataset,
    keys: pa.Table,
    gather: RowGather,
    written: list[Path],
    files: list[FileRef],
    options: IngestOptions,
) -> ManifestCounts:
    """Write manifest.parquet from the kept earlier rows (``keys``) and this run's journal
    shards (``written``), sorted by (root, path) and judged, a row group at a time: memory
    holds the keys and one row group, never the whole manifest."""
    parts = [keys.select(["root", "path", "source", "row"])]
    for shard in written:
        found = read_table(shard, _manifest_schema(), columns=["root", "path"])
        source = gather.add(shard)
        rows = np.arange(found.num_rows, dtype=np.int64)
        parts.append(
            _key_table(
                root=found["root"], path=found["path"],
                source=np.full(len(rows), source, dtype=np.int64), row=rows,
            )
        )  # fmt: skip
    order = pa.concat_tables(parts).sort_by([("root", "ascending"), ("path", "ascending")])
    del parts
    settings = {
        "inputs": sorted({ref.root for ref in files}),
        "decode": options.decode,
        "max_pixels": options.max_pixels,
        "thresholds": options.thresholds,
        "strict_quality": options.strict_quality,
    }
    metadata = {"gpskit.ingest": json.dumps(settings, sort_keys=True)}
    counts = ManifestCounts()
    schema = _manifest_schema()
    with table_writer(
        dataset.manifest_path,
        schema,
        extra_metadata=metadata,
        row_group_rows=MANIFEST_ROW_GROUP,
        ordered=True,
    ) as write:
        for start in range(0, max(order.num_rows, 1), MANIFEST_ROW_GROUP):
            step = order.slice(start, MANIFEST_ROW_GROUP)
            try:
                rows = gather.take(step["source"].to_numpy(), step["row"].to_numpy())
            except SchemaError as exc:  # keys read fine, the rest of a row group did not
                raise SchemaError(
                    exc.message,
                    hint=f"move {dataset.manifest_path.name} away and run ingest again: the "
                    "rows this run read are journaled and will be reused",
                ) from None
            for name in ("root", "path"):  # rows re-filed under a new root (see _rekey)
                rows = rows.set_column(rows.schema.get_field_index(name), name, step[name])
            rows = judge_table(rows, options.thresholds, options.strict_quality)
            counts.add(rows)
            write(rows)
    return counts


def _manifest_schema() -> Schema:
    return load_schema("manifest")


@dataclass
class _Plan:
    """Which previous rows a run reuses and keeps (from folders not named), which files it
    reads, and how many rows it drops."""

    reused: npt.NDArray[np.int64]  # row numbers in the previous table
    to_read: list[int]  # indices into the scanned files
    kept: npt.NDArray[np.int64]
    removed: int


def _plan(
    files: list[FileRef], scopes: list[Scope], previous: pa.Table, options: IngestOptions
) -> _Plan:
    """Match the scanned files against the previous rows by (root, path), in Arrow."""
    scanned = pa.table(
        {
            "root": pa.array([f.root for f in files], pa.string()),
            "path": pa.array([f.path for f in files], pa.string()),
            "size": pa.array([f.size for f in files], pa.int64()),
            "mtime": pa.array([f.mtime_ns for f in files], pa.int64()),
            "file": pa.array(np.arange(len(files), dtype=np.int64)),
        }
    )
    known = pa.table(
        {
            "root": previous["root"],
            "path": previous["path"],
            "old_size": previous["file_size"],
            "old_mtime": previous["mtime_ns"],
            "stale": (
                previous["stale"] if options.decode else pa.array(np.zeros(len(previous), bool))
            ),
            "row": pa.array(np.arange(previous.num_rows, dtype=np.int64)),
        }
    )
    both = scanned.join(known, ["root", "path"], join_type="inner", use_threads=False)
    same = pc.and_(
        pc.and_(
            pc.equal(both["size"], both["old_size"]), pc.equal(both["mtime"], both["old_mtime"])
        ),
        pc.invert(both["stale"]),
    )
    fresh = both.filter(pc.fill_null(same, False)) if not options.force else both.slice(0, 0)
    read = np.ones(len(files), dtype=bool)
    read[fresh["file"].to_numpy()] = False
    gone = known.join(scanned, ["root", "path"], join_type="left anti", use_threads=False)
    in_scope = _covered(gone, scopes, options.prune)
    kept = gone.filter(pc.invert(in_scope))["row"].to_numpy()
    return _Plan(
        reused=np.sort(fresh["row"].to_numpy()),
        to_read=np.flatnonzero(read).tolist(),
        kept=np.sort(kept),
        removed=int(pc.sum(in_scope).as_py() or 0),
    )


def _covered(rows: pa.Table, scopes: list[Scope], prune: bool) -> pa.Array:
    """Which rows lie in what this run scanned (every row, with ``prune``)."""
    mask = pa.array(np.full(rows.num_rows, prune))
    for scope in scopes:
        inside = (
            pc.equal(rows["path"], scope.prefix)
            if scope.exact
            else pc.starts_with(rows["path"], scope.prefix)
        )
        mask = pc.or_(mask, pc.and_(pc.equal(rows["root"], scope.root), inside))
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
        return _ingest(inputs, dataset, options, progress)


def _ingest(
    inputs: Sequence[Path | str],
    dataset: Dataset,
    options: IngestOptions,
    progress: ProgressCallback | None,
) -> IngestReport:
    notes: list[str] = []
    gather = RowGather([], _manifest_schema())
    previous = _previous_keys(dataset, notes, gather)
    # reading keys and joining them leave freed Arrow buffers that the allocator keeps
    # (~0.3 GB a million rows): give them back before the scan and before the reading
    pa.default_memory_pool().release_unused()
    known = pc.unique(previous["root"]).to_pylist()
    files, scopes = scan_scoped(inputs, exclude=[dataset.root], known_roots=known)
    previous = _rekey(previous, scopes)
    plan = _plan(files, scopes, previous, options)
    pa.default_memory_pool().release_unused()
    if plan.to_read and options.engine.engine == Engine.LOCAL.value:
        start_forkserver([read_file.__module__])  # its start overlaps what follows
    # rows go to disk as they arrive and are not kept here: memory does not grow with them
    journal = ShardWriter(dataset.journal_dir, _manifest_schema(), rows=options.journal_rows)
    done = len(files) - len(plan.to_read)
    if progress:
        progress(done, len(files))

    def sink(index: int, row: dict[str, Any]) -> None:
        nonlocal done
        judge(row, options.thresholds, options.strict_quality)
        journal.add(row)
        done += 1
        if progress:
            progress(done, len(files))

    dataset.log_dir.mkdir(parents=True, exist_ok=True)
    _read_files(files, plan.to_read, options, sink, dataset.log_dir / "ingest.log")
    journal.flush()
    keep = np.sort(np.concatenate([plan.reused, plan.kept]))
    counts = _assemble_manifest(
        dataset, previous.take(pa.array(keep)), gather, journal.written, files, options
    )
    remove_shards(dataset.journal_dir)
    report = counts.report(dataset)
    report.read, report.reused = len(plan.to_read), len(files) - len(plan.to_read)
    report.removed, report.kept = plan.removed, len(plan.kept)
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
    if len(plan.kept):
        notes.append(f"kept {len(plan.kept)} rows of folders not named in this run")
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
