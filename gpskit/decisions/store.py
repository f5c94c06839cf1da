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
import re
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
from gpskit.decisions.fields import (
    DECISION_ID,
    MAX_NOTE,
    checked_author,
    checked_date,
    checked_note,
    checked_text,
    json_text,
)
from gpskit.decisions.kinds import checked
from gpskit.errors import EnvironmentProblem, GpskitError, InputError, UsageError
from gpskit.layout import DECISIONS_FILE as DECISIONS_FILE  # with -wal and -shm beside it
from gpskit.schema import load_schema, read_table, write_table

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


def _named(path: Path, exc: sqlite3.Error) -> GpskitError:
    """What an SQLite error means, in one line: busy, the disk's, or a damaged file."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return DecisionsBusyError(
            f"{path}: another writer held the decisions for {BUSY_MS // 1000} s",
            hint="try again when the other writer (gpskit app, gpskit decisions) is done",
        )
    if "readonly" in text or "read-only" in text:
        return EnvironmentProblem(f"{path}: read-only ({text})", hint="make the dataset writable")
    if "unable to open" in text and not os.access(path.parent, os.W_OK):
        return EnvironmentProblem(
            f"{path}: cannot be written ({text})", hint="make the dataset writable"
        )
    if "malformed" in text or "not a database" in text or "encrypted" in text:
        return InputError(
            f"{path}: not a readable decisions database ({text})",
            hint="move it away (export what you can first) and decide again",
        )
    if "disk" in text or "full" in text or "I/O" in text:
        return EnvironmentProblem(f"{path}: the disk failed the write ({text})")
    return InputError(
        f"{path}: not a readable decisions database ({text})",
        hint="move it away (export what you can first) and decide again",
    )


def _reader(path: Path) -> sqlite3.Connection:
    """A read-only connection; on a read-only disk, where SQLite cannot make the WAL's
    shared-memory file, the file is read as it stands (``immutable``)."""
    uri = path.resolve().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_MS / 1000)
        connection.execute("select count(*) from sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise  # a writable folder: the error is the file's, said as such
        return sqlite3.connect(f"{uri}?immutable=1", uri=True)


def _has_table(connection: sqlite3.Connection) -> bool:
    found = connection.execute(
        "select 1 from sqlite_master where type = 'table' and name = 'decisions'"
    ).fetchone()
    return found is not None


#: The columns gpskit writes: a table without one of them is not gpskit's.
_COLUMNS = (
    "id",
    "kind",
    "photos",
    "value",
    "author",
    "created_at",
    "note",
    "undone_at",
    "undone_by",
)


def _check_columns(connection: sqlite3.Connection, path: Path) -> None:
    found = {row[1] for row in connection.execute("pragma table_info(decisions)")}
    missing = [name for name in _COLUMNS if name not in found]
    if found and missing:
        raise InputError(
            f"{path}: not a readable decisions database (no column {', '.join(missing)})",
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


def _row(record: sqlite3.Row) -> Decision | None:
    """A stored decision, checked as a new one is (None for a row gpskit did not write:
    hand-edited, from a gpskit that wrote other kinds, dated in the future)."""
    try:
        decision_id = record["id"]
        if not isinstance(decision_id, str) or not DECISION_ID.fullmatch(decision_id):
            return None
        photos = tuple(
            (checked_text(r, "a root"), checked_text(p, "a path"))
            for r, p in json_text(record["photos"])
        )
        if not photos:
            return None
        value = checked(record["kind"], len(photos), json_text(record["value"]))
        created = checked_date(record["created_at"])
        undone = None if record["undone_at"] is None else checked_date(record["undone_at"], created)
        return Decision(
            decision_id, record["kind"], photos, value, checked_author(record["author"]), created,
            None if record["note"] is None else checked_note(record["note"]),
            undone, None if undone is None else checked_author(record["undone_by"] or "unknown"),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError, IndexError, UsageError, OverflowError, RecursionError):
        return None


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
        """Whether decisions were made; something else at their place is one line."""
        found = paths.kind(self.path)
        if found not in (paths.FILE, paths.MISSING):
            raise InputError(f"{self.path} is {found}, not gpskit's decisions", hint="move it away")
        return found == paths.FILE

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        found = paths.kind(self.path)
        if found not in (paths.FILE, paths.MISSING):
            raise InputError(f"{self.path} is {found}, not gpskit's decisions", hint="move it away")
        if found == paths.MISSING and not write:
            raise FileNotFoundError(self.path)
        try:
            if write:
                self.root.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(
                    self.path, timeout=BUSY_MS / 1000, isolation_level=None
                )
            else:
                connection = _reader(self.path)
        except sqlite3.Error as exc:
            raise _named(self.path, exc) from None
        except OSError as exc:
            raise EnvironmentProblem(f"{self.path}: {exc.strerror or exc}") from None
        connection.row_factory = sqlite3.Row
        with closing(connection):
            try:
                connection.execute(f"pragma busy_timeout = {BUSY_MS}")
                if write:
                    _prepare(connection)
                _check_columns(connection, self.path)
                yield connection
            except sqlite3.DatabaseError as exc:
                raise _named(self.path, exc) from None

    def add(
        self,
        kind: str,
        photos: Sequence[tuple[str, str]],
        value: dict[str, Any] | None = None,
        author: Any = "",
        note: str | None = None,
    ) -> Decision:
        """Record a decision (checked: its kind, its photos, its value)."""
        unique = tuple(dict.fromkeys((str(r), str(p)) for r, p in photos))
        value = checked(kind, len(unique), value)
        if note is not None:
            note = checked_note(note)
        decision = Decision(
            uuid.uuid4().hex, kind, unique, value, checked_author(author), _now(), note or None
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

    def undo(self, decision_id: str, author: Any) -> Decision:
        """Undo a decision (recorded: who and when); undoing twice is one undo. The id may
        be shortened to a unique start of at least 6 digits (as listings show it)."""
        who = checked_author(author)
        if not self.exists():
            raise UsageError(f"no decision {decision_id!r}: none were made here")
        with self._connect(write=True) as db:
            db.execute("begin immediate")
            if 6 <= len(decision_id) < 32 and decision_id.isalnum():
                starts = db.execute(
                    "select id from decisions where id like ?", (decision_id + "%",)
                ).fetchall()
                if len(starts) > 1:
                    db.execute("rollback")
                    raise UsageError(
                        f"{len(starts)} decisions start with {decision_id!r}",
                        hint="give more of the id",
                    )
                if len(starts) == 1:
                    decision_id = starts[0]["id"]
            found = db.execute("select * from decisions where id = ?", (decision_id,)).fetchone()
            if found is None or _row(found) is None:  # none, or a row gpskit skips: untouched
                db.execute("rollback")
                raise UsageError(
                    f"no decision {decision_id!r}", hint="`gpskit decisions` lists them"
                )
            db.execute(
                "update decisions set undone_at = ?, undone_by = ? "
                "where id = ? and undone_at is null",
                (_now(), who, decision_id),
            )
            found = db.execute("select * from decisions where id = ?", (decision_id,)).fetchone()
            db.execute("commit")
        done = _row(found)
        assert done is not None  # checked above; the undo only set its two columns
        return done

    def decisions(
        self, include_undone: bool = True, photo: tuple[str, str] | None = None
    ) -> list[Decision]:
        """Every decision, in the order this store recorded them (the latest on a photo
        counts: a teammate's clock never outranks what was decided here since); only
        those naming ``photo`` when given. Rows gpskit did not write are skipped."""
        if not self.exists():
            return []
        query, args = "select * from decisions where 1", []
        if not include_undone:
            query += " and undone_at is null"
        if photo is not None:
            query += " and instr(photos, ?) > 0"
            args.append(json.dumps(list(photo))[1:-1])
        with self._connect() as db:
            if not _has_table(db):  # a writer made the file and is making its table
                return []
            rows = [_row(r) for r in db.execute(query + " order by rowid", args)]
        found = [d for d in rows if d is not None]
        return [d for d in found if photo in d.photos] if photo is not None else found

    def get(self, decision_id: str) -> Decision | None:
        if not self.exists():
            return None
        with self._connect() as db:
            if not _has_table(db):
                return None
            found = db.execute("select * from decisions where id = ?", (decision_id,)).fetchone()
        return None if found is None else _row(found)

    def count(self) -> int:
        if not self.exists():
            return 0
        with self._connect() as db:
            if not _has_table(db):
                return 0
            return int(db.execute("select count(*) from decisions").fetchone()[0])

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

    def import_file(self, source: Path, known: pa.Table | None = None) -> ImportReport:
        """Add the decisions of an exported file that this store does not have (by id),
        and the undos it knows. ``known``: this dataset's photos (``root``, ``path``): a
        teammate's photo root this dataset does not have is mapped to the one of ours that
        holds the same paths, and decisions naming photos we lack are counted."""
        table = read_table(source, load_schema("decisions"))
        report = ImportReport()
        try:
            rows = table.to_pylist()
        except (ValueError, OverflowError, pa.ArrowException) as exc:
            raise InputError(f"{source}: a value is out of range ({exc})") from None
        roots = _map_roots(rows, known)
        for theirs, ours in roots.items():
            if theirs != ours:
                report.notes.append(f"photos under {theirs} are this dataset's under {ours}")
        ours_keys = (
            None
            if known is None
            else set(zip(known["root"].to_pylist(), known["path"].to_pylist(), strict=True))
        )
        lacking = 0
        with self._connect(write=True) as db:
            db.execute("begin immediate")
            for row in rows:
                try:
                    found = _imported(row, roots)
                except (UsageError, ValueError, TypeError, OverflowError, RecursionError) as exc:
                    why = "nested too deep" if isinstance(exc, RecursionError) else exc
                    report.notes.append(f"decision {str(row.get('id'))[:40]!r}: skipped ({why})")
                    continue
                named = [tuple(k) for k in json.loads(found[2])]
                if ours_keys is not None and not all(k in ours_keys for k in named):
                    lacking += 1
                had = db.execute(
                    "select undone_at from decisions where id = ?", (found[0],)
                ).fetchone()
                if had is not None:
                    report.already += 1
                    if found[7] and had["undone_at"] is None:
                        db.execute(
                            "update decisions set undone_at = ?, undone_by = ? where id = ?",
                            (found[7], found[8], found[0]),
                        )
                        report.undone += 1
                    continue
                db.execute("insert into decisions values (?, ?, ?, ?, ?, ?, ?, ?, ?)", found)
                report.added += 1
            db.execute("commit")
        if lacking:
            report.notes.append(
                f"warning: {lacking} decisions name photos this dataset does not have (kept: "
                "they apply if those photos are ingested)"
            )
        return report


def _imported(row: dict[str, Any], roots: dict[str, str]) -> tuple[Any, ...]:
    """An exported row as the store's row, checked as a new decision is."""
    decision_id = row["id"]
    if not isinstance(decision_id, str) or not re.fullmatch(r"[0-9a-f]{32}", decision_id):
        raise UsageError("its id is not 32 hex digits")
    if len(row["photo_roots"]) != len(row["photo_paths"]):
        raise UsageError("its photo roots and paths differ in number")
    photos = [
        (roots.get(r, r), p) for r, p in zip(row["photo_roots"], row["photo_paths"], strict=True)
    ]
    for r, p in photos:
        checked_text(r, "a photo root"), checked_text(p, "a photo path")
    value = checked(row["kind"], len(photos), json_text(row["value"]))
    created = checked_date(row["created_at"].isoformat(timespec="microseconds"))
    undone = checked_date(row["undone_at"].isoformat(), created) if row["undone_at"] else None
    note = checked_text(row["note"], "a note")[:MAX_NOTE] if row["note"] is not None else None
    undone_by = checked_author(row["undone_by"] or "unknown") if undone else None
    return (decision_id, row["kind"], json.dumps(photos), json.dumps(value), checked_author(row["author"]),
            created, note, undone, undone_by)  # fmt: skip


def _map_roots(rows: list[dict[str, Any]], known: pa.Table | None) -> dict[str, str]:
    """Each photo root of an export that this dataset does not have, mapped to the root
    of ours that holds most of the same paths (a teammate's photos in another folder)."""
    if known is None:
        return {}
    ours: dict[str, set[str]] = {}
    for r, p in zip(known["root"].to_pylist(), known["path"].to_pylist(), strict=True):
        ours.setdefault(r, set()).add(p)
    theirs: dict[str, set[str]] = {}
    for row in rows:
        for r, p in zip(row.get("photo_roots") or [], row.get("photo_paths") or [], strict=False):
            if isinstance(r, str) and isinstance(p, str) and r not in ours:
                theirs.setdefault(r, set()).add(p)
    mapped = {}
    for root, names in theirs.items():
        best = max(ours, key=lambda o: len(names & ours[o]), default=None)
        if best is not None and names & ours[best]:
            mapped[root] = best
    return mapped
