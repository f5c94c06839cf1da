"""``gpskit ingest``: walk folders of photos and write one validated Parquet manifest.

Every file found appears in the manifest, accepted or rejected with reason codes. Files are
read in isolated worker processes (:mod:`gpskit.pool`), so a decoder crash, a huge
allocation or a hang costs one row, not the run. Re-runs re-read only new or changed
files (same path, size and mtime are reused), and the manifest is replaced atomically.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from gpskit import arguments, checks
from gpskit.dataset import Dataset
from gpskit.errors import InputError, SchemaError, UsageError
from gpskit.imaging import (
    SUPPORTED_FORMATS,
)
from gpskit.pool import TIMED_OUT, run_isolated, start_forkserver
from gpskit.reader import WorkerInit, read_file
from gpskit.schema import Schema, coerce_row, file_metadata, load_schema, write_table
from gpskit.shards import ShardWriter, read_shards, remove_shards

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
    force: bool = False
    prune: bool = False  # drop rows of every file not found, not just in the folders scanned
    journal_rows: int = 256  # rows per journal shard (how much a kill can cost)

    def validate(self) -> None:
        arguments.workers("--workers", self.workers)
        arguments.number("--timeout", self.timeout, above=0)
        arguments.number("--max-pixels", self.max_pixels, minimum=1, integer=True)
        arguments.optional_number("--max-memory", self.max_memory, minimum=64 * 1024**2)
        arguments.number("journal_rows", self.journal_rows, minimum=1, integer=True)
        unknown = set(self.thresholds) - set(checks.default_thresholds())
        if unknown:
            raise UsageError(f"unknown check thresholds: {sorted(unknown)}")
        for name, value in self.thresholds.items():
            arguments.number(f"--{name.replace('_', '-')}", value, minimum=0)


@dataclass(frozen=True)
class FileRef:
    """A file found by the scan."""

    root: str
    path: str
    size: int
    mtime_ns: int

    @property
    def absolute(self) -> str:
        return os.path.join(self.root, self.path)


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
    inputs: Sequence[Path], exclude: Iterable[Path] = (), known_roots: Iterable[str] = ()
) -> tuple[list[FileRef], list[Scope]]:
    """Every regular file under the inputs, sorted, without duplicates, and what each input
    covers. A folder inside a root the manifest already has is filed under that root."""
    excluded = [p.resolve() for p in exclude]
    roots = list(known_roots)
    found: dict[tuple[str, str], FileRef] = {}
    scopes: list[Scope] = []
    for given in inputs:
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


def scan(inputs: Sequence[Path], exclude: Iterable[Path] = ()) -> list[FileRef]:
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
    found[(str(root), rel)] = FileRef(str(root), rel, stat.st_size, stat.st_mtime_ns)


# --- the run ------------------------------------------------------------------------------

Key = tuple[str, str]


def _previous_rows(dataset: Dataset, notes: list[str]) -> dict[Key, dict[str, Any]]:
    """Rows known already: the manifest's, and the journal of an interrupted run (newer)."""
    rows: dict[Key, dict[str, Any]] = {}
    if dataset.manifest_path.exists():
        try:
            table = dataset.load_manifest()
        except SchemaError as exc:
            notes.append(f"the existing manifest cannot be reused ({exc}); every file is read again")
        else:
            rows = {(r["root"], r["path"]): r for r in table.to_pylist()}
    journaled = {(r["root"], r["path"]): r for r in read_shards(dataset.journal_dir, _manifest_schema())}
    if journaled:
        notes.append(f"resumed an interrupted run: {len(journaled)} files were read already")
    return {**rows, **journaled}


def _rekey(previous: dict[Key, dict[str, Any]], scopes: list[Scope]) -> dict[Key, dict[str, Any]]:
    """Rows of a root that lies inside a folder scanned now, filed under the new root, so
    a file never gets two rows (``photos/day1`` then ``photos``)."""
    folders = [Path(s.root) for s in scopes if not s.exact]
    out: dict[Key, dict[str, Any]] = {}
    for (root, path), row in previous.items():
        outer = [f for f in folders if f in Path(root).parents]
        if outer:
            new_root = min(outer, key=lambda f: len(f.parts))
            path = f"{Path(root).relative_to(new_root).as_posix()}/{path}"
            row = {**row, "root": str(new_root), "path": path}
            root = str(new_root)
        out[(root, path)] = row
    return out


def _decodable_but_not_decoded(row: dict[str, Any]) -> bool:
    """A row a full run must read again: from a ``--no-decode`` run, or decoded by an
    older gpskit that did not keep every hash this one keeps (the dihedral hashes)."""
    return (
        row["read_status"] == checks.READ_OK
        and row["format"] in SUPPORTED_FORMATS
        and (not row["decoded"] or not row.get("dihedral_hashes"))
    )


def _reusable(old: dict[str, Any] | None, ref: FileRef, options: IngestOptions) -> bool:
    """An earlier row still describes the file: same size and mtime, decoded if needed."""
    return (
        old is not None
        and old["file_size"] == ref.size
        and old["mtime_ns"] == ref.mtime_ns
        and not (options.decode and _decodable_but_not_decoded(old))
    )


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
    for outcome in run_isolated(
        read_file,
        tasks,
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


def judge(row: dict[str, Any], thresholds: dict[str, float]) -> None:
    """Run the checks on one row: fill ``reasons``, ``warnings`` and ``status``."""
    reasons, warns = checks.evaluate(row, thresholds)
    row["reasons"], row["warnings"] = reasons, warns
    row["status"] = "rejected" if reasons else "accepted"


def manifest_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Manifest rows (each made by :func:`manifest_row`) as an Arrow table."""
    schema = _manifest_schema()
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema.arrow_schema())


def _write_manifest(
    dataset: Dataset, rows: list[dict[str, Any]], files: list[FileRef], options: IngestOptions
) -> pa.Table:
    settings = {
        "inputs": sorted({ref.root for ref in files}),
        "decode": options.decode,
        "max_pixels": options.max_pixels,
        "thresholds": options.thresholds,
    }
    metadata = {"gpskit.ingest": json.dumps(settings, sort_keys=True)}
    table = manifest_table(rows)
    write_table(table, dataset.manifest_path, _manifest_schema(), extra_metadata=metadata)
    return table


def _manifest_schema() -> Schema:
    return load_schema("manifest")


@dataclass
class _Plan:
    """Which rows a run reuses, reads, keeps from other folders, and drops."""

    rows: dict[int, dict[str, Any]]
    to_read: list[int]
    kept: list[dict[str, Any]]
    removed: int


def _plan(
    files: list[FileRef],
    scopes: list[Scope],
    previous: dict[Key, dict[str, Any]],
    options: IngestOptions,
) -> _Plan:
    rows: dict[int, dict[str, Any]] = {}
    if not options.force:
        for i, ref in enumerate(files):
            old = previous.get((ref.root, ref.path))
            if old is not None and _reusable(old, ref, options):
                rows[i] = old
    found = {(f.root, f.path) for f in files}
    gone = [key for key in previous if key not in found]
    in_scope = [key for key in gone if options.prune or any(s.covers(*key) for s in scopes)]
    dropped = set(in_scope)
    return _Plan(
        rows=rows,
        to_read=[i for i in range(len(files)) if i not in rows],
        kept=[previous[key] for key in gone if key not in dropped],
        removed=len(dropped),
    )


def ingest(
    inputs: Sequence[Path],
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
    inputs: Sequence[Path],
    dataset: Dataset,
    options: IngestOptions,
    progress: ProgressCallback | None,
) -> IngestReport:
    notes: list[str] = []
    previous = _previous_rows(dataset, notes)
    known = {root for root, _ in previous}
    files, scopes = scan_scoped(inputs, exclude=[dataset.root], known_roots=known)
    plan = _plan(files, scopes, _rekey(previous, scopes), options)
    if plan.to_read:  # workers only when there is work; their start overlaps what follows
        start_forkserver([read_file.__module__])
    journal = ShardWriter(dataset.journal_dir, _manifest_schema(), rows=options.journal_rows)
    done = len(files) - len(plan.to_read)
    if progress:
        progress(done, len(files))

    def sink(index: int, row: dict[str, Any]) -> None:
        nonlocal done
        judge(row, options.thresholds)
        plan.rows[index] = row
        journal.add(row)
        done += 1
        if progress:
            progress(done, len(files))

    dataset.log_dir.mkdir(parents=True, exist_ok=True)
    _read_files(files, plan.to_read, options, sink, dataset.log_dir / "ingest.log")
    journal.flush()
    ordered = [plan.rows[i] for i in range(len(files))] + plan.kept
    ordered.sort(key=lambda r: (r["root"], r["path"]))
    for row in ordered:
        judge(row, options.thresholds)
    table = _write_manifest(dataset, ordered, files, options)
    remove_shards(dataset.journal_dir)
    report = summarize(table, dataset)
    report.read, report.reused = len(plan.to_read), len(files) - len(plan.to_read)
    report.removed, report.kept = plan.removed, len(plan.kept)
    report.notes = notes + _scope_notes(plan, options) + _inside_inputs(dataset, inputs)
    return report


def _inside_inputs(dataset: Dataset, inputs: Sequence[Path]) -> list[str]:
    """Say when the dataset folder sits inside a photo folder (gpskit skips it; other tools
    that walk the photos may not)."""
    root = dataset.root.resolve()
    return [
        f"warning: the dataset folder {dataset.root} is inside the photo folder {given}; "
        "gpskit skips it, but other tools walking the photos may not: keep them apart"
        for given in inputs
        if given.is_dir() and given.resolve() in root.parents
    ]


def _scope_notes(plan: _Plan, options: IngestOptions) -> list[str]:
    notes = []
    if plan.kept:
        notes.append(f"kept {len(plan.kept)} rows of folders not named in this run")
    if plan.removed:
        where = "not found in this run (--prune)" if options.prune else "gone from the folders scanned"
        notes.append(f"dropped {plan.removed} rows of files {where}")
    return notes


def summarize(table: pa.Table, dataset: Dataset) -> IngestReport:
    """Counts by status, reason, warning and format of a manifest table."""
    status = table.column("status").to_pylist()
    reasons: Counter[str] = Counter()
    for codes in table.column("reasons").to_pylist():
        reasons.update(codes)
    warns: Counter[str] = Counter()
    for codes in table.column("warnings").to_pylist():
        warns.update(codes)
    formats = Counter(f for f in table.column("format").to_pylist() if f)
    read_ok = sum(1 for s in table.column("read_status").to_pylist() if s == checks.READ_OK)
    return IngestReport(
        dataset_dir=str(dataset.root),
        manifest=str(dataset.manifest_path),
        files=table.num_rows,
        images=read_ok,
        accepted=status.count("accepted"),
        rejected=status.count("rejected"),
        read=0,
        reused=0,
        removed=0,
        reasons=dict(reasons.most_common()),
        warnings=dict(warns.most_common()),
        formats=dict(formats.most_common()),
    )


def manifest_info(dataset_dir: Path | Dataset) -> tuple[IngestReport, dict[str, Any]]:
    """Summary of an existing manifest and the options it was made with."""
    dataset = Dataset.at(dataset_dir)
    table = dataset.load_manifest()
    meta = file_metadata(dataset.manifest_path)
    settings = json.loads(meta.get("gpskit.ingest", "{}"))
    settings["gpskit_version"] = meta.get("gpskit.version")
    return summarize(table, dataset), settings
