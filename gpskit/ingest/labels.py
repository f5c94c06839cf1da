"""Positions from a table: a survey app's CSV, a labelling tool's export, a Hub dataset's
``Latitude``/``Longitude`` columns, attached to photos by file name.

A table's position outranks the photo's own (the table is what a person named); the
photo's own position stays in the ``file_*`` columns, so a check can say where the two
disagree and a later table can replace the first. Matching is by name: a table's
``IMG_0001.jpg`` or ``day1/IMG_0001.jpg`` names the one photo whose path ends so; a
name two photos answer to labels neither (a note says which).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from gpskit.errors import InputError
from gpskit.ingest.options import Columns
from gpskit.ingest.tables import numbers, read_table_file, texts
from gpskit.splitfolder import HEADING_NAMES, find_column, position_columns

#: Column names that hold a photo's file name or path, as tables in the wild name them.
NAME_NAMES = (
    "file_name", "filename", "file", "path", "filepath", "file_path", "image_path",
    "imagepath", "image_name", "imagename", "image", "img", "photo", "name", "sourcefile",
)  # fmt: skip
#: Column names that hold the split a photo had (train, validation, test).
SPLIT_NAMES = ("split", "subset", "partition", "fold")
#: How many names a note lists before it counts the rest.
SHOWN = 5


@dataclass(frozen=True, slots=True)
class Label:
    """What a table says of one photo."""

    latitude: float
    longitude: float
    heading: float | None
    table: str  # the table's file name, recorded in the row's position_table
    split: str | None = None


def shown(name: str) -> str:
    """A name as a message shows it: bytes that are not UTF-8 as \\x escapes."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def split_name(text: str | None) -> str | None:
    """A split's name as a table gives it, when it is a plain name (``train``,
    ``validation``): it names a folder, so text that is a path or odd is none."""
    if text is None:
        return None
    name = text.strip()
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name) else None


def normal_name(text: str) -> str:
    """A table's name for a photo as a relative POSIX path ("./a\\b.jpg" -> "a/b.jpg");
    "" for one that climbs out of its folder ("../a.jpg")."""
    text = text.strip().replace("\\", "/")
    parts = [p for p in PurePosixPath(text).parts if p not in (".", "/")]
    return "" if ".." in parts else "/".join(parts)


@dataclass
class PositionTable:
    """One table's labels by photo name, and what of it could not be used."""

    source: str
    labels: dict[str, Label] = field(default_factory=dict)
    rows: int = 0
    without_position: int = 0
    without_name: int = 0
    conflicting: list[str] = field(default_factory=list)  # one name, two positions
    files: dict[str, Label] = field(default_factory=dict)  # absolute path -> label

    def add_file(self, base: Path, text: str, label: Label) -> bool:
        """Label the file a name is the path of (absolute, or from ``base``), if one is."""
        location = Path(text.strip())
        location = location if location.is_absolute() else base / location
        try:
            if not location.is_file():
                return False
        except (OSError, ValueError):
            return False
        self.rows += 1
        self.files[os.path.realpath(location)] = label
        return True

    def add(self, name: str, label: Label | None) -> None:
        self.rows += 1
        if not name:
            self.without_name += 1
            return
        if label is None:
            self.without_position += 1
            return
        earlier = self.labels.get(name)
        if earlier is not None and earlier != label:
            self.conflicting.append(name)
        self.labels[name] = label

    def under(self, prefix: str, split: str | None = None) -> PositionTable:
        """This table with its names inside folder ``prefix`` ("train/"), and ``split``
        given to each label that has none."""
        moved = PositionTable(self.source, rows=self.rows, without_position=self.without_position)
        moved.without_name, moved.conflicting = self.without_name, self.conflicting
        moved.files = self.files
        for name, label in self.labels.items():
            if label.split is None and split is not None:
                label = replace(label, split=split)
            moved.labels[prefix + name] = label
        return moved

    def notes(self) -> list[str]:
        out = []
        if self.without_position:
            out.append(
                f"{self.source}: {self.without_position} of {self.rows} rows have no usable "
                "position (empty, not a number): those photos keep their own"
            )
        if self.without_name:
            out.append(
                f"{self.source}: {self.without_name} rows name no photo (empty, no image, or "
                "a path outside the table's folder): skipped"
            )
        if self.conflicting:
            out.append(
                f"{self.source}: {len(self.conflicting)} names appear twice with different "
                f"positions (the last row is used): {', '.join(map(shown, self.conflicting[:SHOWN]))}"
            )
        return out


def read_labels(path: Path, columns: Columns | None = None) -> PositionTable:
    """The labels of a ``--labels`` table: a name column and position columns."""
    columns = columns or Columns()
    table = read_table_file(path)
    names = table.column_names
    name = find_column(names, NAME_NAMES, columns.name)
    if name is None:
        raise InputError(
            f"{path}: no column of file names among: {', '.join(names)}",
            hint="name it with --name-column",
        )
    try:
        lat, lon = position_columns(names, columns.latitude, columns.longitude)
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}", hint=exc.hint) from None
    heading = find_column(names, HEADING_NAMES, columns.heading)
    split = find_column(names, SPLIT_NAMES)
    found = PositionTable(path.name)
    here = Path.cwd()
    for text, label in zip(
        texts(table[name]), labels_of(table, lat, lon, heading, split, path.name), strict=True
    ):
        if text and label is not None and found.add_file(here, text, label):
            continue  # a path as ExifTool's -csv writes it: that file
        found.add(normal_name(text) if text else "", label)
    return found


def _compass(degrees: float) -> float:
    """A heading in [0, 360) (``-1e-300 % 360`` is 360.0 in floating point)."""
    turned = degrees % 360.0
    return 0.0 if turned >= 360.0 else turned


def labels_of(
    table: pa.Table,
    lat: str,
    lon: str,
    heading: str | None,
    split: str | None,
    source: str,
) -> Iterator[Label | None]:
    """Each row's label (None where the row has no usable position)."""
    latitudes, longitudes = numbers(table[lat]), numbers(table[lon])
    headings = numbers(table[heading]) if heading else [None] * table.num_rows
    splits = texts(table[split]) if split else [None] * table.num_rows
    for la, lo, he, sp in zip(latitudes, longitudes, headings, splits, strict=True):
        if la is None or lo is None:
            yield None
        else:
            yield Label(la, lo, None if he is None else _compass(he), source, split_name(sp))


class LabelMatcher:
    """Matches the files a scan found to table labels by name, as the scan's batches pass.

    A label under ``root`` names a path within that root exactly; a label without one
    names any file whose path ends with it at a folder boundary, or the file its path
    names. A name two files answer to labels neither. A table given again speaks for all
    its photos: one it no longer gives a position loses the old one, and a root a table
    fills alone (a Hub dataset's images) keeps no position the table does not give."""

    def __init__(self) -> None:
        self.scoped: dict[tuple[str, str], Label] = {}  # (root, path) -> label
        self.loose: dict[str, Label] = {}  # name -> label
        self.files: dict[str, Label] = {}  # a file's real path -> label
        self.depth = 1  # the most folders a loose name holds, plus one
        self.tables: list[PositionTable] = []
        self.sole_roots: set[str] = set()  # roots whose every position is a table's
        self.listed: dict[str, tuple[str, set[str]]] = {}  # table -> (root, paths it lists)
        self._matched: dict[tuple[str, str], Label] = {}
        self._claims: dict[str, tuple[str, str]] = {}  # loose name -> first file matched
        self._ambiguous: dict[str, int] = {}
        self._disagree: set[tuple[str, str]] = set()
        self._scanned: list[int] = []  # hashes of the files this run's scan found
        self._scanned_sorted: npt.NDArray[np.int64] | None = None

    def __bool__(self) -> bool:
        return bool(self.scoped or self.loose or self.files or self.tables)

    def add(self, table: PositionTable, root: str | None = None, sole: bool = False) -> None:
        """The labels of ``table``: under ``root`` (exact paths), else by name; ``sole``:
        the table is all there is of ``root``'s positions."""
        self.tables.append(table)
        if sole and root is not None:
            self.sole_roots.add(root)
        for name, label in table.labels.items():
            if root is None:
                self._keep(self.loose, name, label, ("", name))
                self.depth = max(self.depth, name.count("/") + 1)
            else:
                self._keep(self.scoped, (root, name), label, (root, name))
        for location, label in table.files.items():
            self._keep(self.files, location, label, ("", location))

    def _keep(self, into: dict[Any, Label], key: Any, label: Label, shown: tuple[str, str]) -> None:
        earlier = into.get(key)
        if earlier is not None and (earlier.latitude, earlier.longitude) != (
            label.latitude,
            label.longitude,
        ):
            self._disagree.add(shown)
        into[key] = label

    def list_table(self, table: str, root: str, listed: Iterable[str]) -> None:
        """``table`` names exactly these photos of ``root``: rows it named before and no
        longer does leave the manifest."""
        self.listed[table] = (root, set(listed))

    def watch(self, batches: Iterable[pa.Table], roots: Any) -> Iterator[pa.Table]:
        """Pass ``batches`` (a scan's) through, matching each file on the way."""
        for batch in batches:
            if self:
                columns = batch.select(["root_id", "path"]).to_pydict()
                for root_id, path in zip(columns["root_id"], columns["path"], strict=True):
                    root = roots.names[root_id]
                    self._match(root, path)
                    self._scanned.append(hash((root, path)))
            yield batch

    def _match(self, root: str, path: str) -> None:
        label = self.scoped.get((root, path))
        if label is not None:
            self._matched[(root, path)] = label
            return
        if self.files:
            label = self.files.get(os.path.realpath(os.path.join(root, path)))
            if label is not None:
                self._matched[(root, path)] = label
                return
        parts = path.split("/")
        for start in range(max(0, len(parts) - self.depth), len(parts)):
            name = "/".join(parts[start:])
            label = self.loose.get(name)
            if label is None:
                continue
            first = self._claims.setdefault(name, (root, path))
            if first != (root, path):
                self._ambiguous[name] = self._ambiguous.get(name, 1) + 1
                self._matched.pop(first, None)
            elif name not in self._ambiguous:
                self._matched[(root, path)] = label
            return

    def label_for(self, root: str, path: str) -> Label | None:
        return self._matched.get((root, path))

    def scanned(self, root: str, path: str) -> bool:
        """Whether this run's scan found the file (its earlier row is being judged again)."""
        if self._scanned_sorted is None:
            self._scanned_sorted = np.unique(np.array(self._scanned, np.int64))
        at = np.searchsorted(self._scanned_sorted, hash((root, path)))
        return bool(
            at < self._scanned_sorted.size and self._scanned_sorted[at] == hash((root, path))
        )

    def unlabelled(self, root: str, path: str, table: str | None) -> bool:
        """Whether a row's table position is no longer given: its root's positions are
        all a table's, or the scan found the photo and the table it came from, read
        again, has none for it."""
        if (root, path) in self._matched:
            return False
        if root in self.sole_roots:
            return True
        named = any(t.source == table for t in self.tables)
        return named and self.scanned(root, path)

    def gone(self, root: str, path: str, table: str | None) -> bool:
        """Whether a row's photo was named by a table that no longer names it."""
        listed = self.listed.get(table or "")
        return listed is not None and listed[0] == root and path not in listed[1]

    @property
    def matched(self) -> int:
        return len(self._matched)

    def notes(self) -> list[str]:
        out = [note for table in self.tables for note in table.notes()]
        if self._ambiguous:
            names = ", ".join(
                f"{shown(n)} ({c} files)" for n, c in list(self._ambiguous.items())[:SHOWN]
            )
            out.append(
                f"warning: {len(self._ambiguous)} table names match more than one photo, and "
                f"label none of them: {names}; name them with their folder (day1/IMG_0001.jpg)"
            )
        if self._disagree:
            names = ", ".join(shown(p) for p in sorted(p for _, p in self._disagree)[:SHOWN])
            out.append(
                f"warning: {len(self._disagree)} photos are given different positions by two "
                f"tables (the last table read is used): {names}"
            )
        found = set(self._claims) | {p for (_, p) in self._matched}
        missing = [
            n
            for n in self.loose
            if n not in found and not any(p.endswith("/" + n) or p == n for (_, p) in self._matched)
        ]
        missing += [p for (_, p) in self.scoped if p not in found]
        if missing:
            out.append(
                f"warning: {len(missing)} photos a table names were not found: "
                f"{', '.join(shown(m) for m in sorted(missing)[:SHOWN])}"
            )
        return out


#: The row's columns a label may set; ``file_<column>`` keeps the photo's own value.
_OWN = ("latitude", "longitude", "gps_source", "img_direction", "img_direction_ref")


def restore_own(row: dict[str, Any]) -> None:
    """Undo a table's label: the photo's own position and heading back in place."""
    if row.get("gps_source") == "table":
        for column in _OWN:
            row[column] = row.get(f"file_{column}")
    for column in _OWN:
        row[f"file_{column}"] = None
    row["position_table"] = None
    row["source_split"] = None


def apply_label(row: dict[str, Any], label: Label | None) -> None:
    """Give a row its table's position (and heading, split), keeping the photo's own in the
    ``file_*`` columns (all of them, whatever the table gives)."""
    if label is None:
        return
    restore_own(row)
    for column in _OWN:
        row[f"file_{column}"] = row.get(column)
    row["latitude"], row["longitude"], row["gps_source"] = label.latitude, label.longitude, "table"
    if label.heading is not None:
        row["img_direction"], row["img_direction_ref"] = label.heading, "T"
    row["position_table"] = label.table
    row["source_split"] = label.split


_LABEL_COLUMNS = (*_OWN, *(f"file_{c}" for c in _OWN), "position_table", "source_split")


def relabel_table(
    table: pa.Table, matcher: LabelMatcher
) -> tuple[pa.Table | None, pa.Array | None]:
    """``table`` (manifest rows) with this run's tables applied: their labels given, the
    positions they no longer give taken back; and which rows a table no longer names
    (to drop). ``(None, None)`` when nothing changes; only the position columns are turned
    into Python objects."""
    keys = table.select(["root", "path", "position_table"]).to_pydict()
    rows = zip(keys["root"], keys["path"], keys["position_table"], strict=True)
    found = [
        matcher.label_for(r, p)
        for r, p, _ in zip(keys["root"], keys["path"], keys["position_table"], strict=True)
    ]
    undo = [
        t is not None and label is None and matcher.unlabelled(r, p, t)
        for (r, p, t), label in zip(rows, found, strict=True)
    ]
    drop = [
        matcher.gone(r, p, t)
        for r, p, t in zip(keys["root"], keys["path"], keys["position_table"], strict=True)
    ]
    if not any(found) and not any(undo) and not any(drop):
        return None, None
    values = table.select(list(_LABEL_COLUMNS)).to_pylist()
    for row, label, back in zip(values, found, undo, strict=True):
        if label is not None:
            apply_label(row, label)
        elif back:
            restore_own(row)
    for name in _LABEL_COLUMNS:
        index = table.schema.get_field_index(name)
        kind = table.schema.field(name)
        table = table.set_column(index, kind, pa.array([r[name] for r in values], kind.type))
    return table, (pa.array(drop, pa.bool_()) if any(drop) else None)
