"""Positions from a table: a survey app's CSV, a labelling tool's export, a Hub dataset's
``Latitude``/``Longitude`` columns, attached to photos by file name.

A table's position outranks the photo's own (the table is what a person named); the
photo's own position stays in the ``file_*`` columns, so a check can say where the two
disagree and a later table can replace the first. Matching is by name: a table's
``IMG_0001.jpg`` or ``day1/IMG_0001.jpg`` names the one photo whose path ends so; a
name two photos answer to labels neither (a note says which).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gpskit import paths
from gpskit.errors import InputError
from gpskit.ingest.options import Columns
from gpskit.splitfolder import (
    HEADING_NAMES,
    LATITUDE_NAMES,
    LONGITUDE_NAMES,
    find_column,
)

#: Column names that hold a photo's file name or path, as tables in the wild name them.
NAME_NAMES = (
    "file_name", "filename", "file", "path", "filepath", "file_path", "image_path",
    "imagepath", "image_name", "imagename", "image", "img", "photo", "name", "sourcefile",
)  # fmt: skip
#: Column names that hold the split a photo had (train, validation, test).
SPLIT_NAMES = ("split", "subset", "partition", "fold")
#: File endings read as tables.
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson", ".arrow")
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


def is_table(path: Path) -> bool:
    """Whether a file is read as a table of photos (by its ending)."""
    return path.suffix.lower() in TABLE_SUFFIXES


def read_table_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A CSV, TSV, Parquet, JSON Lines or Arrow file as an Arrow table; one line if not."""
    paths.require_readable_file(path, "table")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            options = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            # names stay text whatever they look like ("0001.jpg", "2023")
            table = pacsv.read_csv(path, parse_options=options)
        elif suffix == ".parquet":
            table = pq.read_table(path, columns=columns)
        elif suffix in (".jsonl", ".ndjson"):
            import pandas as pd  # only for JSON Lines (it reads rows of mixed types)

            frame = pd.read_json(path, lines=True, dtype=False)
            table = pa.Table.from_pandas(frame, preserve_index=False)
        else:
            table = _read_arrow(path)
        table.column_names  # noqa: B018 (names that are not UTF-8 fail here, not later)
    except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not a readable {suffix[1:].upper()} table ({str(exc).splitlines()[0][:160]})",
            hint="check the file, or name a CSV, TSV, Parquet, JSON Lines or Arrow file",
        ) from None
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    return table


def _read_arrow(path: Path) -> pa.Table:
    """An Arrow IPC file or stream (what the Hub's ``datasets`` library caches)."""
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


def _numbers(column: pa.ChunkedArray) -> list[float | None]:
    """A column of positions as floats; text that is not a number, NaN and inf are None."""
    values = column.to_pylist()
    out: list[float | None] = []
    for value in values:
        try:
            number = float(value) if value is not None and not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        out.append(number if number is not None and math.isfinite(number) else None)
    return out


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
                f"positions (the last row is used): {', '.join(self.conflicting[:SHOWN])}"
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
    lat = find_column(names, LATITUDE_NAMES, columns.latitude)
    lon = find_column(names, LONGITUDE_NAMES, columns.longitude)
    if lat is None or lon is None:
        raise InputError(
            f"{path}: no latitude/longitude columns among: {', '.join(names)}",
            hint="name them with --lat-column and --lon-column",
        )
    heading = find_column(names, HEADING_NAMES, columns.heading)
    split = find_column(names, SPLIT_NAMES)
    found = PositionTable(path.name)
    texts = pc.cast(table[name], pa.string()).to_pylist()
    for text, label in zip(
        texts, labels_of(table, lat, lon, heading, split, path.name), strict=True
    ):
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
    latitudes, longitudes = _numbers(table[lat]), _numbers(table[lon])
    headings = _numbers(table[heading]) if heading else [None] * table.num_rows
    splits = pc.cast(table[split], pa.string()).to_pylist() if split else [None] * table.num_rows
    for la, lo, he, sp in zip(latitudes, longitudes, headings, splits, strict=True):
        if la is None or lo is None:
            yield None
        else:
            yield Label(la, lo, None if he is None else _compass(he), source, sp or None)


class LabelMatcher:
    """Matches the files a scan found to table labels by name, as the scan's batches pass.

    A label under ``root`` names a path within that root exactly; a label without one
    names any file whose path ends with it at a folder boundary. A name two files answer
    to labels neither."""

    def __init__(self) -> None:
        self.scoped: dict[tuple[str, str], Label] = {}  # (root, path) -> label
        self.loose: dict[str, Label] = {}  # name -> label
        self.depth = 1  # the most folders a loose name holds, plus one
        self.tables: list[PositionTable] = []
        self._matched: dict[tuple[str, str], Label] = {}
        self._claims: dict[str, tuple[str, str]] = {}  # loose name -> first file matched
        self._ambiguous: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.scoped or self.loose)

    def add(self, table: PositionTable, root: str | None = None) -> None:
        self.tables.append(table)
        for name, label in table.labels.items():
            if root is None:
                self.loose[name] = label
                self.depth = max(self.depth, name.count("/") + 1)
            else:
                self.scoped[(root, name)] = label

    def watch(self, batches: Iterable[pa.Table], roots: Any) -> Iterator[pa.Table]:
        """Pass ``batches`` (a scan's) through, matching each file on the way."""
        for batch in batches:
            if self:
                columns = batch.select(["root_id", "path"]).to_pydict()
                for root_id, path in zip(columns["root_id"], columns["path"], strict=True):
                    self._match(roots.names[root_id], path)
            yield batch

    def _match(self, root: str, path: str) -> None:
        label = self.scoped.get((root, path))
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

    @property
    def matched(self) -> int:
        return len(self._matched)

    def notes(self) -> list[str]:
        out = [note for table in self.tables for note in table.notes()]
        if self._ambiguous:
            shown = ", ".join(f"{n} ({c} files)" for n, c in list(self._ambiguous.items())[:SHOWN])
            out.append(
                f"warning: {len(self._ambiguous)} table names match more than one photo, and "
                f"label none of them: {shown}; name them with their folder (day1/IMG_0001.jpg)"
            )
        named = {n for t in self.tables for n in t.labels}
        found = {name for name in self._claims} | {p for (_, p) in self._matched}
        missing = [n for n in self.loose if n not in self._claims]
        missing += [p for (_, p) in self.scoped if p not in found]
        if missing and named:
            out.append(
                f"warning: {len(missing)} of {len(named)} photos a table names were not found: "
                f"{', '.join(sorted(missing)[:SHOWN])}"
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


def relabel_table(table: pa.Table, matcher: LabelMatcher) -> pa.Table | None:
    """``table`` (manifest rows) with the labels ``matcher`` has for them applied; None
    when it has none for any (only the position columns are turned into Python objects)."""
    keys = table.select(["root", "path"]).to_pydict()
    found = [matcher.label_for(r, p) for r, p in zip(keys["root"], keys["path"], strict=True)]
    if not any(found):
        return None
    rows = table.select(list(_LABEL_COLUMNS)).to_pylist()
    for row, label in zip(rows, found, strict=True):
        apply_label(row, label)
    for name in _LABEL_COLUMNS:
        index = table.schema.get_field_index(name)
        kind = table.schema.field(name)
        table = table.set_column(index, kind, pa.array([r[name] for r in rows], kind.type))
    return table
