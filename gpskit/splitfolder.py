"""Where a model's training splits come from: any folder a user already has.

- a dataset folder (``DATASET/splits/``) or its splits folder (``train.parquet``...);
- a folder in the Hugging Face Hub's layout: ``data/{train,validation,test}-*.parquet``
  (what ``gpskit publish dataset`` writes, and what many Hub datasets are), where
  ``validation`` is gpskit's ``val``. A Hub table that is not gpskit's (the Img2GPS
  study's: ``image``, ``Latitude``, ``Longitude``) is read by its column names
  (:func:`position_columns`), each photo its own spot.

Every split comes back as the ``split`` schema's table, checked, so training and
evaluation read one thing whatever the folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from gpskit.dataset import Dataset
from gpskit.errors import InputError, MissingStepError
from gpskit.layout import MANIFEST_FILE, SPLITS_DIR
from gpskit.schema import load_schema, read_table, schema_tag, validate_table

if TYPE_CHECKING:  # pandas loads with a split's table, not with the module
    import pandas as pd

#: gpskit's split names and the Hub's.
HUB_NAMES = {"train": "train", "val": "validation", "test": "test"}
#: Column names that hold a latitude, a longitude or a compass heading, as tables in the
#: wild name them (compared without case, spaces, dashes or underscores).
LATITUDE_NAMES = ("latitude", "lat", "gpslatitude", "gpslat", "y")
LONGITUDE_NAMES = ("longitude", "lon", "lng", "long", "gpslongitude", "gpslon", "x")
HEADING_NAMES = ("heading", "imgdirection", "gpsimgdirection", "direction", "bearing", "azimuth")


def _plain(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def find_column(names: list[str], wanted: tuple[str, ...], given: str | None = None) -> str | None:
    """The column of ``names`` that ``given`` names, else the first whose name is one of
    ``wanted`` (in ``wanted``'s order of preference)."""
    if given is not None:
        if given not in names:
            raise InputError(f"no column {given!r} (columns: {', '.join(names)})")
        return given
    plain = {_plain(n): n for n in names}
    for candidate in wanted:
        if candidate in plain:
            return plain[candidate]
    return None


def position_columns(
    names: list[str], lat: str | None = None, lon: str | None = None
) -> tuple[str, str]:
    """The latitude and longitude columns of a table (by the usual names, or as given)."""
    found_lat = find_column(names, LATITUDE_NAMES, lat)
    found_lon = find_column(names, LONGITUDE_NAMES, lon)
    if found_lat is None or found_lon is None:
        raise InputError(
            f"no latitude/longitude columns among: {', '.join(names)}",
            hint="name them with --lat-column and --lon-column",
        )
    return found_lat, found_lon


@dataclass(frozen=True)
class SplitFolder:
    """The splits of a folder: each split's files, and what kind of folder it is."""

    root: Path
    kind: str  # "splits" (gpskit's own) or "hub" (data/<split>-*.parquet)
    files: dict[str, list[Path]]

    @classmethod
    def at(cls, path: Path) -> SplitFolder:
        """The splits in ``path`` (a dataset, splits, published or Hub-layout folder)."""
        path = Path(path)
        if (path / "train.parquet").is_file():
            return cls(path, "splits", {n: [path / f"{n}.parquet"] for n in HUB_NAMES})
        if (path / SPLITS_DIR / "train.parquet").is_file():
            return cls.at(path / SPLITS_DIR)
        data = path / "data"
        hub = {ours: sorted(data.glob(f"{theirs}-*.parquet")) for ours, theirs in HUB_NAMES.items()}
        if hub["train"]:
            return cls(path, "hub", hub)
        hint = (
            f"run `gpskit split {path}` first"
            if (path / MANIFEST_FILE).exists()
            else "give a dataset folder after `gpskit split`, its splits/ folder, or a folder "
            "in the Hub's layout (data/train-*.parquet)"
        )
        raise MissingStepError(f"{path}: no training split found", hint=hint)

    @property
    def runs_dir(self) -> Path:
        """Where runs trained on these splits go by default: the dataset's runs/, or beside
        a published folder (never inside one that may be uploaded)."""
        if self.kind == "splits":
            return Dataset(self.root.parent).runs_dir
        return self.root.parent / f"{self.root.name}-runs"

    @property
    def sweeps_dir(self) -> Path:
        """Where sweeps over these splits go by default (beside the runs)."""
        return self.runs_dir.with_name(self.runs_dir.name.replace("runs", "sweeps"))

    def read(self, name: str) -> pd.DataFrame:
        """Split ``name`` (train, val, test) as the ``split`` schema's table; empty when the
        folder has none of it (a Hub dataset without a validation split)."""
        schema = load_schema("split")
        files = [f for f in self.files.get(name, []) if f.is_file()]
        if not files:
            if name == "train":
                raise MissingStepError(f"{self.root}: no {name} split")
            tables = [schema.arrow_schema().empty_table()]
        else:
            tables = [self._read_file(f, name) for f in files]
        frame: pd.DataFrame = pa.concat_tables(tables).to_pandas()
        return frame

    def _read_file(self, path: Path, name: str) -> pa.Table:
        schema = load_schema("split")
        tag = schema_tag(path)
        if tag is not None and tag.get("name") == "split":
            return read_table(path, schema)
        return foreign_split(pq.read_table(path), name, path)


def foreign_split(table: pa.Table, name: str, where: Path) -> pa.Table:
    """A Hub table that gpskit did not write, as a ``split`` table: the image column, the
    position by its usual column names, each photo its own spot (so ``--target spot`` is
    the photo's own fix), a heading when a column holds one."""
    schema = load_schema("split")
    names = table.column_names
    if "image" not in names:
        raise InputError(f"{where}: no image column (columns: {', '.join(names)})")
    lat, lon = position_columns(names)
    heading = find_column(names, HEADING_NAMES)
    rows = table.num_rows
    offset = list(HUB_NAMES).index(name) * 10**12 if name in HUB_NAMES else 0
    latitude = pa.array(table[lat].to_numpy(zero_copy_only=False), pa.float64())
    longitude = pa.array(table[lon].to_numpy(zero_copy_only=False), pa.float64())
    paths = [f"{name}/{i:06d}" for i in range(rows)]
    columns = {
        "image": table["image"].cast(schema.arrow_schema().field("image").type),
        "split": pa.array([name] * rows, pa.string()),
        "root": pa.array([str(where)] * rows, pa.string()),
        "path": pa.array(paths, pa.string()),
        "latitude": latitude,
        "longitude": longitude,
        # each photo its own spot, numbered apart across splits (no spot in two splits)
        "spot_id": pa.array(range(offset, offset + rows), pa.int64()),
        "spot_latitude": latitude,
        "spot_longitude": longitude,
        "unit": pa.array([f"photo:{p}" for p in paths], pa.string()),
        "heading": pa.array(
            table[heading].to_numpy(zero_copy_only=False) if heading else [None] * rows,
            pa.float64(),
        ),
    }
    arrow = schema.arrow_schema()
    full = {f.name: columns.get(f.name, pa.nulls(rows, f.type)) for f in arrow}
    out = pa.table(full, schema=arrow)
    validate_table(out, schema, where=str(where))
    return out
