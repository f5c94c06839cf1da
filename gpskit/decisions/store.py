"""Decisions kept in an embedded database in the dataset folder: ``decisions.sqlite``.

SQLite in WAL mode: readers never wait for a writer, writers queue (each write one short
``BEGIN IMMEDIATE`` transaction), so two browser tabs or two people deciding at once lose
nothing. A decision is never changed or deleted: undoing one records who undid it and
when. Decisions export to and import from Parquet (``schemas/decisions.json``), so a team
can merge what each member decided; an import adds the decisions it does not have (by id).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from gpskit import paths
from gpskit.decisions.kinds import checked
from gpskit.errors import EnvironmentProblem, GpskitError, InputError, UsageError
from gpskit.schema import load_schema, read_table, write_table

#: The decisions' file in a dataset folder (with SQLite's -wal and -shm beside it).
DECISIONS_FILE = "decisions.sqlite"
#: The longest note a decision keeps (characters).
MAX_NOTE = 2000
#: How long a writer waits for another before giving up (ms): far above one write's time.
BUSY_MS = 30_000
_SCHEMA = """
create table if not exists decisions (
    id text primary key,
    kind text not null,
    photos text not null,      -- JSON: [[root, path], ...]
    value text not null,       -- JSON object
    author text not null,
    created_at text not null,  -- ISO 8601, UTC, microseconds
    note text,
    undone_at text,
    undone_by text
);
create index if not exists decisions_created on decisions (created_at, id);
"""


def photo_id(root: str, path: str) -> str:
    """A photo's id in URLs and the app: stable, and never a path (16 hex digits)."""
    return hashlib.sha256(f"{root}\0{path}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


class DecisionsBusyError(GpskitError):
    """Another writer held the decisions longer than a writer waits."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def _named(path: Path, exc: sqlite3.DatabaseError) -> GpskitError:
    """What an SQLite error means, in one line: busy, the disk's, or a damaged file."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return DecisionsBusyError(
            f"{path}: another writer held the decisions for {BUSY_MS // 1000} s",
            hint="try again when the other writer (gpskit app, gpskit decisions) is done",
        )
    if "readonly" in text or "read-only" in text:
        return EnvironmentProblem(f"{path}: read-only ({text})", hint="make the dataset writable")
    if "disk" in text or "full" in text or "I/O" in text:
        return EnvironmentProblem(f"{path}: the disk failed the write ({text})")
    return InputError(
        f"{path}: not a readable decisions database ({text})",
        hint="move it away (export what you can first) and decide again",
    )


def _prepare(connection: sqlite3.Connection) -> None:
    """WAL mode and the table, once per file (both persist in it). Done in one
    ``BEGIN IMMEDIATE`` so a writer starting beside another waits, as writes do; the
    journal mode is set first, and retried while another connection holds the file
    (SQLite answers a mode change at once, without its busy wait)."""
    exists = connection.execute(
        "select 1 from sqlite_master where type = 'table' and name = 'decisions'"
    ).fetchone()
    if exists:
        return
    for attempt in range(200):
        try:
            if connection.execute("pragma journal_mode = wal").fetchone()[0] == "wal":
                break
        except sqlite3.OperationalError:
            pass
        time.sleep(0.01 * (1 + attempt % 10))
    connection.execute("begin immediate")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            connection.execute(statement)
    connection.execute("commit")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Decision:
    """One decision a person made about one photo or more."""

    id: str
    kind: str
    photos: tuple[tuple[str, str], ...]  # (root, path) of each photo, as the manifest has it
    value: dict[str, Any]
    author: str
    created_at: str
    note: str | None = None
    undone_at: str | None = None
    undone_by: str | None = None

    @property
    def active(self) -> bool:
        return self.undone_at is None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["photos"] = [{"root": r, "path": p, "id": photo_id(r, p)} for r, p in self.photos]
        return out


def _row(record: sqlite3.Row) -> Decision:
    photos = tuple((str(r), str(p)) for r, p in json.loads(record["photos"]))
    return Decision(
        record["id"], record["kind"], photos, json.loads(record["value"]), record["author"],
        record["created_at"], record["note"], record["undone_at"], record["undone_by"],
    )  # fmt: skip


def _author(author: str) -> str:
    author = " ".join(str(author or "").split())
    if not author:
        raise UsageError("a decision needs the name of who made it", hint="give --author NAME")
    if len(author) > 100:
        raise UsageError("an author's name is at most 100 characters")
    return author


@dataclass
class ImportReport:
    """What an import of decisions did."""

    added: int = 0
    already: int = 0  # decisions this store had (by id)
    undone: int = 0  # undos the file knew and this store did not
    notes: list[str] = field(default_factory=list)


class DecisionStore:
    """The decisions of one dataset folder (``DATASET/decisions.sqlite``)."""

    def __init__(self, dataset: Any) -> None:
        """``dataset``: a dataset folder (a ``Dataset``, or its path)."""
        folder = dataset if isinstance(dataset, str | os.PathLike) else dataset.root
        self.root = Path(folder)  # (a Path's own .root is "/": never asked of one)
        self.path = self.root / DECISIONS_FILE

    def exists(self) -> bool:
        return paths.kind(self.path) == paths.FILE

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        found = paths.kind(self.path)
        if found not in (paths.FILE, paths.MISSING):
            raise InputError(f"{self.path} is {found}, not gpskit's decisions", hint="move it away")
        if found == paths.MISSING and not write:
            raise FileNotFoundError(self.path)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: cannot open the decisions ({exc})") from None
        connection.row_factory = sqlite3.Row
        with closing(connection):
            try:
                connection.execute(f"pragma busy_timeout = {BUSY_MS}")
                if write:
                    _prepare(connection)
                yield connection
            except sqlite3.DatabaseError as exc:
                raise _named(self.path, exc) from None

    def add(
        self,
        kind: str,
        photos: Sequence[tuple[str, str]],
        value: dict[str, Any] | None = None,
        author: str = "",
        note: str | None = None,
    ) -> Decision:
        """Record a decision (checked: its kind, its photos, its value)."""
        unique = tuple(dict.fromkeys((str(r), str(p)) for r, p in photos))
        value = checked(kind, len(unique), value)
        if note is not None and len(note) > MAX_NOTE:
            raise UsageError(f"a note is at most {MAX_NOTE:,} characters, got {len(note):,}")
        decision = Decision(
            uuid.uuid4().hex, kind, unique, value, _author(author), _now(), note or None
        )
        with self._connect(write=True) as db:
            db.execute("begin immediate")
            db.execute(
                "insert into decisions (id, kind, photos, value, author, created_at, note) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                (decision.id, kind, json.dumps(unique), json.dumps(value), decision.author,
                 decision.created_at, decision.note),
            )  # fmt: skip
            db.execute("commit")
        return decision

    def undo(self, decision_id: str, author: str) -> Decision:
        """Undo a decision (recorded: who and when); undoing twice is one undo. The id may
        be shortened to a unique start of at least 6 digits (as listings show it)."""
        who = _author(author)
        with self._connect(write=True) as db:
            db.execute("begin immediate")
            if 6 <= len(decision_id) < 32 and decision_id.isalnum():
                starts = db.execute(
                    "select id from decisions where id like ?", (decision_id + "%",)
                ).fetchall()
                if len(starts) == 1:
                    decision_id = starts[0]["id"]
            db.execute(
                "update decisions set undone_at = ?, undone_by = ? "
                "where id = ? and undone_at is null",
                (_now(), who, decision_id),
            )
            found = db.execute("select * from decisions where id = ?", (decision_id,)).fetchone()
            db.execute("commit")
        if found is None:
            raise UsageError(f"no decision {decision_id!r}", hint="`gpskit decisions` lists them")
        return _row(found)

    def decisions(self, include_undone: bool = True) -> list[Decision]:
        """Every decision, oldest first."""
        if not self.exists():
            return []
        with self._connect() as db:
            query = "select * from decisions"
            if not include_undone:
                query += " where undone_at is null"
            return [_row(r) for r in db.execute(query + " order by created_at, id")]

    def get(self, decision_id: str) -> Decision | None:
        if not self.exists():
            return None
        with self._connect() as db:
            found = db.execute("select * from decisions where id = ?", (decision_id,)).fetchone()
        return None if found is None else _row(found)

    # --- Parquet ---------------------------------------------------------------------------

    def export(self, target: Path) -> int:
        """Write every decision (undone ones too) to a Parquet file; how many."""
        schema = load_schema("decisions")
        rows = self.decisions()
        columns = {
            "id": [d.id for d in rows],
            "kind": [d.kind for d in rows],
            "photo_roots": [[r for r, _ in d.photos] for d in rows],
            "photo_paths": [[p for _, p in d.photos] for d in rows],
            "value": [json.dumps(d.value, sort_keys=True) for d in rows],
            "author": [d.author for d in rows],
            "created_at": [datetime.fromisoformat(d.created_at) for d in rows],
            "note": [d.note for d in rows],
            "undone_at": [
                datetime.fromisoformat(d.undone_at) if d.undone_at else None for d in rows
            ],
            "undone_by": [d.undone_by for d in rows],
        }
        table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
        write_table(table, target, schema)
        return len(rows)

    def import_file(self, source: Path, roots: dict[str, str] | None = None) -> ImportReport:
        """Add the decisions of an exported file that this store does not have (by id),
        and the undos it knows; ``roots`` maps the file's photo roots to this dataset's."""
        table = read_table(source, load_schema("decisions"))
        report = ImportReport()
        roots = roots or {}
        with self._connect(write=True) as db:
            db.execute("begin immediate")
            for row in table.to_pylist():
                photos = [
                    (roots.get(r, r), p)
                    for r, p in zip(row["photo_roots"], row["photo_paths"], strict=True)
                ]
                try:
                    value = checked(row["kind"], len(photos), json.loads(row["value"]))
                    author = _author(row["author"])
                except (UsageError, ValueError) as exc:
                    report.notes.append(f"decision {row['id']}: skipped ({exc})")
                    continue
                undone = (
                    row["undone_at"].isoformat(timespec="microseconds")
                    if row["undone_at"]
                    else None
                )
                had = db.execute(
                    "select undone_at from decisions where id = ?", (row["id"],)
                ).fetchone()
                if had is not None:
                    report.already += 1
                    if undone and had["undone_at"] is None:
                        db.execute(
                            "update decisions set undone_at = ?, undone_by = ? where id = ?",
                            (undone, row["undone_by"], row["id"]),
                        )
                        report.undone += 1
                    continue
                db.execute(
                    "insert into decisions values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row["id"], row["kind"], json.dumps(photos), json.dumps(value), author,
                     row["created_at"].isoformat(timespec="microseconds"), row["note"], undone,
                     row["undone_by"]),
                )  # fmt: skip
                report.added += 1
            db.execute("commit")
        return report
