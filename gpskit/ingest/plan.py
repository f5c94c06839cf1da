"""The plan of a run: the files found matched against the earlier rows (keys only, both
sorted; a merge join), giving the files to read and the rows that stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gpskit import checks
from gpskit.checks import SUPPORTED_FORMATS
from gpskit.dataset import Dataset
from gpskit.errors import SchemaError
from gpskit.extsort import KEY, RunFile, RunSorter, RunWriter, aligned, sort_key
from gpskit.ingest.find import SCANNED, Roots, Scope
from gpskit.ingest.options import IngestOptions
from gpskit.ingest.rows import manifest_schema
from gpskit.schema import (
    RowGroupReader,
)
from gpskit.shards import SHARD_GLOB, RowGather

# what a re-run needs to know of an earlier row to decide whether to read its file again
_KEY_SOURCE_COLUMNS = [
    "root", "path", "file_size", "mtime_ns", "read_status", "format", "decoded", "sharpness",
    "dihedral_hashes", "error",
]  # fmt: skip


PREVIOUS = pa.schema(
    [
        (KEY, pa.string()), ("root_id", pa.int32()), ("path", pa.string()),
        ("file_size", pa.int64()), ("mtime_ns", pa.int64()), ("stale", pa.bool_()),
        ("retry", pa.bool_()), ("source", pa.int32()), ("row", pa.int64()),
    ]
)  # fmt: skip


# an earlier row in the manifest again: where it lives (``source``: a file registered with
# the run's RowGather; ``row``: its number there), in key order
KEPT = pa.schema(
    [
        (KEY, pa.string()), ("root_id", pa.int32()), ("path", pa.string()),
        ("source", pa.int32()), ("row", pa.int64()),
    ]
)  # fmt: skip


TO_READ = pa.schema(
    [
        ("root_id", pa.int32()), ("path", pa.string()), ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
    ]
)  # fmt: skip


def previous_keys(
    dataset: Dataset, notes: list[str], gather: RowGather, roots: Roots, spill: Path, run_rows: int
) -> RunSorter:
    """Rows known already, as sorted keys (root, path, size, mtime, stale) and where each
    lives: the manifest's, and the journal of an interrupted run (newer, so it wins for a
    file in both). The rows themselves stay on disk until the manifest is assembled."""

    def sorter() -> RunSorter:
        return RunSorter(spill, PREVIOUS, run_rows=run_rows, newest="source")

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
    reader = RowGroupReader(path, manifest_schema())
    source = gather.add(path, reader)
    start = 0
    for index, count in enumerate(reader.row_counts):
        part = reader.read(index, columns=_KEY_SOURCE_COLUMNS)
        yield key_table(
            PREVIOUS,
            key=sort_key(part["root"], part["path"]), root_id=roots.encode(part["root"]),
            path=part["path"], file_size=part["file_size"], mtime_ns=part["mtime_ns"],
            stale=needs_decoding(part), retry=may_pass(part), source=np.full(count, source, dtype=np.int32),
            row=np.arange(start, start + count, dtype=np.int64),
        )  # fmt: skip
        start += count


def key_table(schema: pa.Schema, **columns: Any) -> pa.Table:
    return pa.table({f.name: columns[f.name] for f in schema}, schema=schema)


def root_moves(scopes: list[Scope], roots: Roots, known: int) -> dict[int, tuple[int, str]]:
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


def refile_keys(keys: pa.Table, moves: dict[int, tuple[int, str]], roots: Roots) -> pa.Table:
    """Rows of ``keys`` under the roots they move to (see :func:`root_moves`)."""
    root_id, path = keys["root_id"], keys["path"]
    for old_id, (new_id, prefix) in moves.items():
        moved = pc.equal(root_id, old_id)
        path = pc.if_else(moved, pc.binary_join_element_wise(prefix, path, ""), path)
        root_id = pc.if_else(moved, pa.scalar(new_id, pa.int32()), root_id)
    changes = {"root_id": root_id, "path": path, KEY: sort_key(roots.strings(root_id), path)}
    for name, column in changes.items():
        keys = keys.set_column(keys.schema.get_field_index(name), name, column)
    return keys


def needs_decoding(previous: pa.Table) -> pa.Array:
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


#: Errors of a read that may pass on another try (not a verdict on the file): a permission
#: fixed since, a store or a network that failed for a while.
TRANSIENT_ERRORS = (
    "PermissionError", "TimeoutError", "ConnectionError", "ConnectionResetError",
    "ConnectionRefusedError", "ConnectionAbortedError", "BrokenPipeError",
    "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
    "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "NoCredentialsError",
)  # fmt: skip


def may_pass(previous: pa.Table) -> pa.Array:
    """Rows whose failure may pass on another try, read again whatever their size and
    mtime: a timeout, or a file unreadable for a reason of the moment (see
    :data:`TRANSIENT_ERRORS`). A decoder's verdict on the bytes is kept."""
    timed_out = pc.equal(previous["read_status"], checks.READ_TIMEOUT)
    pattern = "^(" + "|".join(TRANSIENT_ERRORS) + ")"
    unreadable = pc.equal(previous["read_status"], checks.READ_UNREADABLE)
    moment = pc.and_(unreadable, pc.match_substring_regex(previous["error"], pattern))
    return pc.fill_null(pc.or_(timed_out, moment), False)


def retried_rows(manifest: Path) -> int:
    """How many rows of a manifest the next run reads again whatever (:func:`may_pass`)."""
    table = pq.read_table(manifest, columns=["read_status", "error"])
    return int(pc.sum(may_pass(table).cast(pa.int64())).as_py() or 0)


@dataclass
class Plan:
    """What a run does with each file and earlier row, in spilled lists in key order:
    the files to read (and those not read for their names), the earlier rows that stay
    (reused, or of folders not named); and how many of each."""

    to_read: RunFile
    unnamed: RunFile  # names that are not UTF-8, entries not regular files: recorded, not read
    kept: RunFile  # earlier rows in the manifest again
    files: int  # files scanned
    reused: int
    kept_rows: int  # rows kept from folders not named in this run
    removed: int

    @property
    def read(self) -> int:
        return len(self.to_read) + len(self.unnamed)


def make_plan(
    scanned: Iterable[pa.Table],
    previous: Iterable[pa.Table],
    scopes: list[Scope],
    roots: Roots,
    options: IngestOptions,
    spill: Path,
) -> Plan:
    """Match the scanned files against the earlier rows, both in key order, a stretch of
    keys at a time (a merge join: memory holds one stretch, not either side)."""
    to_read, unnamed = RunWriter(spill, TO_READ), RunWriter(spill, TO_READ)
    kept = RunWriter(spill, KEPT)
    files = reused = kept_rows = removed = 0
    for found, known in aligned([scanned, previous]):
        found = found if found is not None else SCANNED.empty_table()
        known = known if known is not None else PREVIOUS.empty_table()
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
            alike &= ~known["retry"].to_numpy(zero_copy_only=False)[rows]  # may pass now
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
    return Plan(
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
    """Which of ``rows`` lie in what this run scanned (every row, with ``prune``), but for
    the folders that could not be listed: whether their files are gone is unknown."""
    mask = np.full(len(rows), prune)
    if not len(rows):
        return mask
    root_ids = previous["root_id"].to_numpy()[rows]
    for scope in scopes:
        if scope.root not in roots.ids:
            continue
        mine = np.flatnonzero(root_ids == roots.ids[scope.root])
        paths = previous["path"].take(rows[mine])
        if not prune:
            inside = (
                pc.equal(paths, scope.prefix)
                if scope.exact
                else pc.starts_with(paths, scope.prefix)
            )
            mask[mine[inside.to_numpy(zero_copy_only=False)]] = True
        for hole in scope.holes:
            mask[mine[pc.starts_with(paths, hole).to_numpy(zero_copy_only=False)]] = False
    return mask
