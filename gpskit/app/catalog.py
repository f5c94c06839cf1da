"""What the review app shows: every manifest row (as decided) with its duplicate group,
coverage cell and spot, and split, held in memory as columns and indexed by code, so a
filtered page of 100k photos is a few array operations. Rebuilt when a dataset file
changes (checked by ``stat`` on each request); decisions re-apply without re-reading.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from gpskit import paths
from gpskit.dataset import COVERAGE, DUPLICATES, Dataset
from gpskit.decisions.state import DecisionState
from gpskit.decisions.store import DecisionStore, photo_id
from gpskit.errors import GpskitError
from gpskit.layout import DECISIONS_FILES
from gpskit.memo import identity
from gpskit.split.options import SPLIT_NAMES

#: Manifest columns the grid and the photo page show.
MANIFEST_COLUMNS = [
    "root", "path", "file_size", "mtime_ns", "read_status", "format", "width", "height",
    "has_exif", "orientation", "make", "model", "software", "datetime_original", "utc_offset",
    "latitude", "longitude", "altitude", "img_direction", "img_direction_ref", "gps_h_error",
    "gps_dop", "gps_source", "position_table", "source_split", "file_latitude",
    "file_longitude", "file_img_direction", "file_gps_source", "decided", "gps_flags",
    "unfit_tags", "sharpness", "brightness_p05", "brightness_p99", "entropy_bits",
    "colour_spread", "status", "reasons", "warnings", "error", "sha256",
]  # fmt: skip
DUPLICATE_COLUMNS = [
    "group_id", "kind", "group_size", "keep", "keeper_root", "keeper_path", "match",
    "transform", "phash_distance", "gps_offset_m", "decided",
]  # fmt: skip
COVERAGE_COLUMNS = ["cell", "spot_id", "heading_sector", "inside_region"]
#: Filters the grid takes, each a column or a code list.
FILTERS = ("status", "reason", "warning", "check", "split", "group", "cell", "spot", "decided", "q")
PAGE_MAX = 500


def _plain(value: Any) -> Any:
    """A value as JSON holds it (NaN and NA as null, numpy scalars as Python's)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


@dataclass
class Snapshot:
    """The dataset's rows at one moment, with indexes for the filters."""

    frame: pd.DataFrame
    by_id: dict[str, int]
    codes: dict[str, dict[str, npt.NDArray[np.int64]]] = field(default_factory=dict)
    stamp: tuple[Any, ...] = ()
    decided: DecisionState = field(default_factory=DecisionState)
    #: the columns the grid filters and shows, as arrays (a page reads these, not pandas)
    arrays: dict[str, npt.NDArray[Any]] = field(default_factory=dict)


class Catalog:
    """The rows of one dataset folder as the app shows them, kept fresh."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._base: tuple[tuple[Any, ...], pd.DataFrame] | None = None

    def _files(self) -> list[Path]:
        root = self.dataset.root
        return [
            self.dataset.manifest_path,
            self.dataset.output_path(DUPLICATES),
            self.dataset.output_path(COVERAGE),
            *(self.dataset.splits_dir / f"{name}.parquet" for name in SPLIT_NAMES),
            *(root / name for name in DECISIONS_FILES),
        ]

    def _stamp(self) -> tuple[Any, ...]:
        return tuple(map(str, identity(self._files())))  # any write changes one

    def snapshot(self) -> Snapshot:
        """The rows now (rebuilt when a file changed since the last look)."""
        stamp = self._stamp()
        with self._lock:
            if self._snapshot is None or self._snapshot.stamp != stamp:
                self._snapshot = self._build(stamp)
            return self._snapshot

    def _build(self, stamp: tuple[Any, ...]) -> Snapshot:
        base_stamp = stamp[:-2]  # every file but the decisions
        if self._base is None or self._base[0] != base_stamp:
            self._base = (base_stamp, self._read())
        frame = self._base[1]
        decided = self.dataset.decision_state()
        if decided:
            table = pa.Table.from_pandas(frame[["root", "path", *_DECIDABLE]], preserve_index=False)
            table = _with_decided_columns(table)
            overlaid = decided.overlay(table).to_pandas()
            frame = frame.copy()
            for column in _DECIDABLE:
                frame[column] = overlaid[column].to_numpy()
        snapshot = Snapshot(
            frame, {i: n for n, i in enumerate(frame.id)}, stamp=stamp, decided=decided
        )
        snapshot.arrays = {
            name: frame[name].to_numpy(object) for name in _SUMMARY if name in frame.columns
        }
        for name in ("dup_group_id", "spot_id"):
            snapshot.arrays[name + "_float"] = (
                frame[name].astype("Float64").to_numpy(float, na_value=np.nan)
            )
        snapshot.arrays["path_lower"] = np.array([p.lower() for p in frame.path], dtype=object)
        snapshot.codes = {
            "reason": _index_codes(frame.reasons),
            "warning": _index_codes(frame.warnings),
            "decided": _index_codes(frame.decided),
        }
        for kind, keys in (
            ("alone", decided.alone),
            ("merge", set(decided.merged)),
            ("keeper", set(decided.keeper)),
        ):
            rows = [
                snapshot.by_id[i] for i in (photo_id(r, p) for r, p in keys) if i in snapshot.by_id
            ]
            if rows:
                snapshot.codes["decided"][kind] = np.unique(np.array(rows, np.int64))
        return snapshot

    def _read(self) -> pd.DataFrame:
        table = self.dataset.load_manifest(MANIFEST_COLUMNS, decided=False)
        frame: pd.DataFrame = table.to_pandas()
        frame.insert(0, "id", [photo_id(r, p) for r, p in zip(frame.root, frame.path, strict=True)])
        frame = self._join(frame, DUPLICATES, DUPLICATE_COLUMNS, "dup_")
        frame = self._join(frame, COVERAGE, COVERAGE_COLUMNS, "")
        frame["split"] = None
        for name in SPLIT_NAMES:
            path = self.dataset.splits_dir / f"{name}.parquet"
            if paths.kind(path) != paths.FILE:
                continue
            try:
                import pyarrow.parquet as pq

                keys = pq.read_table(path, columns=["root", "path"]).to_pandas()
            except (OSError, pa.ArrowException):
                continue
            member = pd.MultiIndex.from_frame(frame[["root", "path"]]).isin(
                pd.MultiIndex.from_frame(keys)
            )
            frame.loc[member, "split"] = name
        return frame

    def _join(
        self, frame: pd.DataFrame, output: Any, columns: list[str], prefix: str
    ) -> pd.DataFrame:
        try:
            if not self.dataset.output_path(output).exists():
                raise FileNotFoundError
            other = self.dataset.load(output).select(["root", "path", *columns]).to_pandas()
        except (GpskitError, OSError):
            other = pd.DataFrame(columns=["root", "path", *columns])
        other = other.rename(columns={c: prefix + c for c in columns})
        return frame.merge(other, on=["root", "path"], how="left")

    # --- queries ---------------------------------------------------------------------------

    def page(self, filters: dict[str, str], offset: int = 0, limit: int = 60) -> dict[str, Any]:
        """One page of the photos the filters keep, and how many they keep."""
        snap = self.snapshot()
        keep = self.matching(snap, filters)
        rows = np.flatnonzero(keep)
        limit = max(1, min(int(limit), PAGE_MAX))
        chosen = rows[max(0, int(offset)) : max(0, int(offset)) + limit]
        return {
            "total": int(rows.size),
            "offset": int(offset),
            "photos": [self.summary(snap.frame, int(i)) for i in chosen],
        }

    def matching(self, snap: Snapshot, filters: dict[str, str]) -> npt.NDArray[np.bool_]:
        arrays, n = snap.arrays, len(snap.frame)
        keep = np.ones(n, bool)
        for name, value in filters.items():
            if value in ("", None) or name not in FILTERS:
                continue
            if name in ("status", "split", "cell"):
                keep &= arrays[name] == value
            elif name in ("reason", "warning", "decided"):
                keep &= _has(snap.codes[name], value, n)
            elif name == "check":
                keep &= _has(snap.codes["reason"], value, n) | _has(snap.codes["warning"], value, n)
            elif name in ("group", "spot"):
                column = "dup_group_id" if name == "group" else "spot_id"
                keep &= arrays[column + "_float"] == _number(value)
            elif name == "q":
                needle = value.lower()
                keep &= np.fromiter((needle in p for p in arrays["path_lower"]), bool, n)
        return keep

    def summary(self, frame: pd.DataFrame, index: int) -> dict[str, Any]:
        snap = self._snapshot
        arrays = snap.arrays if snap is not None and snap.frame is frame else None
        value = (lambda c: arrays[c][index]) if arrays else (lambda c: frame[c].iloc[index])
        return {
            "id": value("id"),
            "path": value("path"),
            "status": value("status"),
            "reasons": _plain(value("reasons")) or [],
            "warnings": _plain(value("warnings")) or [],
            "decided": _plain(value("decided")) or [],
            "latitude": _plain(value("latitude")),
            "longitude": _plain(value("longitude")),
            "heading": _plain(value("img_direction")),
            "split": _plain(value("split")),
            "group": _plain(value("dup_group_id")),
            "keep": _plain(value("dup_keep")),
        }

    def photo(self, photo: str) -> dict[str, Any] | None:
        """Everything about one photo, its group's members and the decisions on it."""
        snap = self.snapshot()
        index = snap.by_id.get(photo)
        if index is None:
            return None
        row = snap.frame.iloc[index]
        out = {name: _plain(row[name]) for name in snap.frame.columns}
        group = out.get("dup_group_id")
        if group is not None:
            members = np.flatnonzero(
                snap.frame.dup_group_id.astype("Float64").to_numpy(float, na_value=np.nan) == group
            )
            out["group_members"] = [self.member(snap.frame, int(i)) for i in members]
        key = (row.root, row.path)
        out["decisions"] = [d.to_dict() for d in DecisionStore(self.dataset).decisions(photo=key)]
        return out

    def member(self, frame: pd.DataFrame, index: int) -> dict[str, Any]:
        """One photo of a duplicate group, with its evidence against the keeper."""
        row = frame.iloc[index]
        return {
            **self.summary(frame, index),
            "kind": _plain(row.dup_kind),
            "match": _plain(row.dup_match),
            "transform": _plain(row.dup_transform),
            "phash_distance": _plain(row.dup_phash_distance),
            "gps_offset_m": _plain(row.dup_gps_offset_m),
            "group_decided": _plain(row.dup_decided),
            "datetime_original": _plain(row.datetime_original),
        }

    def groups(self, offset: int = 0, limit: int = 20, kind: str = "") -> dict[str, Any]:
        """Duplicate groups, largest first, each with its members side by side."""
        snap = self.snapshot()
        frame = snap.frame
        grouped = frame[frame.dup_group_id.notna()]
        if kind:
            grouped = grouped[grouped.dup_kind == kind]
        sizes = grouped.groupby("dup_group_id").size().sort_values(ascending=False, kind="stable")
        limit = max(1, min(int(limit), 100))
        chosen = sizes.index[max(0, int(offset)) : max(0, int(offset)) + limit]
        out = []
        for group in chosen:
            members = np.flatnonzero(
                frame.dup_group_id.astype("Float64").to_numpy(float, na_value=np.nan)
                == float(group)
            )
            rows = [self.member(frame, int(i)) for i in members]
            rows.sort(key=lambda r: (not r["keep"], r["path"]))
            out.append({"group": int(group), "kind": rows[0]["kind"], "members": rows})
        return {"total": int(sizes.size), "offset": int(offset), "groups": out}

    def facets(self) -> dict[str, Any]:
        """The values each filter can take, with counts (for the filter menus)."""
        snap = self.snapshot()
        frame = snap.frame
        return {
            "total": len(frame),
            "status": _counts(frame.status),
            "reason": {k: int(v.size) for k, v in sorted(snap.codes["reason"].items())},
            "warning": {k: int(v.size) for k, v in sorted(snap.codes["warning"].items())},
            "decided": {k: int(v.size) for k, v in sorted(snap.codes["decided"].items())},
            "split": _counts(frame.split),
            "cell": len(frame.cell.dropna().unique()),
            "groups": int(frame.dup_group_id.nunique()),
        }

    def points(self) -> list[list[Any]]:
        """Every photo with a position as [id, lat, lon, heading, status, spot] (map)."""
        frame = self.snapshot().frame
        shown = frame[frame.latitude.notna() & frame.longitude.notna()]
        return [
            [i, round(float(la), 7), round(float(lo), 7), _plain(h), s, _plain(spot)]
            for i, la, lo, h, s, spot in zip(
                shown.id, shown.latitude, shown.longitude, shown.img_direction, shown.status,
                shown.spot_id, strict=True,
            )
        ]  # fmt: skip

    def location(self, photo: str) -> tuple[str, str, dict[str, Any]] | None:
        """(root, path, row) of a photo id: the only way the app finds a file."""
        snap = self.snapshot()
        index = snap.by_id.get(photo)
        if index is None:
            return None
        row = snap.frame.iloc[index]
        return (
            str(row.root),
            str(row.path),
            {
                "size": _plain(row.file_size),
                "mtime": _plain(row.mtime_ns),
                "read_status": row.read_status,
            },
        )

    def groups_current(self) -> bool:
        """Whether duplicates.parquet was made from the manifest and decisions as they are."""
        path = self.dataset.output_path(DUPLICATES)
        return not path.exists() or self.dataset.is_current(DUPLICATES)

    def keys(self, photos: list[str]) -> list[tuple[str, str]] | None:
        """(root, path) of each photo id, from one look at the rows (None: one is unknown)."""
        snap = self.snapshot()
        found = [snap.by_id.get(p) for p in photos]
        if any(i is None for i in found):
            return None
        roots, paths_ = snap.arrays["root"], snap.arrays["path"]
        return [(str(roots[i]), str(paths_[i])) for i in found if i is not None]

    def key(self, photo: str) -> tuple[str, str] | None:
        found = self.location(photo)
        return None if found is None else (found[0], found[1])

    def coverage_layers(self) -> dict[str, Any]:
        """The region, the empty cells and the walking plan (GeoJSON), when coverage ran."""
        folder = self.dataset.root / "coverage"
        layers: dict[str, Any] = {}
        for name in ("gaps", "plan"):
            path = folder / f"{name}.geojson"
            if paths.kind(path) == paths.FILE:
                with contextlib.suppress(ValueError, GpskitError):
                    layers[name] = json.loads(paths.read_text(path))
        record = folder / "coverage.json"
        if paths.kind(record) == paths.FILE:
            try:
                source = json.loads(paths.read_text(record))["region"]["source"]
                from shapely.geometry import mapping

                from gpskit.regions import load_region

                layers["region"] = {
                    "type": "Feature",
                    "properties": {},
                    "geometry": mapping(load_region(source).geometry),
                }
            except (ValueError, KeyError, TypeError, GpskitError, OSError):
                pass
        return layers


#: The columns a grid card shows.
_SUMMARY = (
    "id", "root", "path", "status", "reasons", "warnings", "decided", "latitude", "longitude",
    "img_direction", "split", "dup_group_id", "dup_keep", "cell",
)  # fmt: skip
_DECIDABLE = [
    "status", "decided", "latitude", "longitude", "gps_source", "img_direction",
    "img_direction_ref", "file_latitude", "file_longitude", "file_img_direction",
    "file_gps_source",
]  # fmt: skip


def _with_decided_columns(table: pa.Table) -> pa.Table:
    """``decided`` as a list column (a frame of nulls loses its type)."""
    index = table.schema.get_field_index("decided")
    values = [v if isinstance(v, list) else None for v in table["decided"].to_pylist()]
    return table.set_column(index, "decided", pa.array(values, pa.list_(pa.string())))


def _index_codes(column: pd.Series) -> dict[str, npt.NDArray[np.int64]]:
    """Code -> the rows whose list holds it (``tag_unfit:orientation`` also under
    ``tag_unfit``)."""
    found: dict[str, list[int]] = {}
    for row, codes in enumerate(column.tolist()):
        if codes is None or (isinstance(codes, float) and math.isnan(codes)):
            continue
        for code in codes:
            found.setdefault(str(code), []).append(row)
            if ":" in str(code):
                found.setdefault(str(code).split(":")[0], []).append(row)
    return {code: np.unique(np.array(rows, np.int64)) for code, rows in found.items()}


def _has(index: dict[str, npt.NDArray[np.int64]], code: str, n: int) -> npt.NDArray[np.bool_]:
    mask = np.zeros(n, bool)
    mask[index.get(code, np.zeros(0, np.int64))] = True
    return mask


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _counts(column: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.dropna().value_counts().sort_index().items()}
