"""Datasets users already have, as photos to ingest: a table of photos (CSV, TSV,
Parquet, JSON Lines, Arrow) with an image or path column and position columns; a folder
in the Hugging Face Hub's layouts (``data/<split>-*.parquet``, an imagefolder with
``metadata.csv``, a ``datasets`` cache or ``save_to_disk`` folder of ``*.arrow``, the
hub cache's ``datasets--OWNER--NAME``); or ``hf://datasets/OWNER/NAME`` (``gpskit[hub]``).

A folder counts as a Hub dataset only when its tables hold images and positions: a photo
folder with a stray Parquet log stays a photo folder. Images held in a table are written
into ``imported/`` (:mod:`gpskit.ingest.imported`); photos a table names by path are read
where they are. Positions become labels (:mod:`gpskit.ingest.labels`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from gpskit import paths, storage
from gpskit.dataset import Dataset
from gpskit.errors import EnvironmentProblem, InputError, UsageError, require_module
from gpskit.ingest.find import ListedFiles
from gpskit.ingest.imported import ImportedFolders, file_name, image_value
from gpskit.ingest.labels import (
    NAME_NAMES,
    SPLIT_NAMES,
    LabelMatcher,
    PositionTable,
    labels_of,
    normal_name,
    read_labels,
    split_name,
)
from gpskit.ingest.options import Columns, is_table
from gpskit.ingest.tables import batches, read_table_file, table_schema, texts
from gpskit.layout import STATE_DIR
from gpskit.splitfolder import (
    HEADING_NAMES,
    LATITUDE_NAMES,
    LONGITUDE_NAMES,
    find_column,
    position_columns,
)

#: Column names that hold an image (its bytes, or the Hub's {bytes, path} struct).
IMAGE_NAMES = ("image", "img", "photo", "picture", "image_bytes", "jpg", "jpeg", "png")
#: Split names as the Hub writes them in file and folder names.
HUB_SPLITS = ("train", "validation", "valid", "val", "dev", "test")
_SPLIT_IN_NAME = re.compile(r"(?:^|[-_.])(" + "|".join(HUB_SPLITS) + r")(?=[-_.]|$)")
HF_PREFIX = "hf://datasets/"


@dataclass
class Resolved:
    """The inputs as the scan takes them, and the labels the tables gave."""

    inputs: list[Path | str | ListedFiles] = field(default_factory=list)
    matcher: LabelMatcher = field(default_factory=LabelMatcher)
    notes: list[str] = field(default_factory=list)
    skip: list[Path] = field(default_factory=list)  # tables, never photos
    # labels of listed files, placed once the scan has said under which root they are
    listed: list[tuple[ListedFiles, PositionTable]] = field(default_factory=list)
    imported: ImportedFolders | None = None
    sources: list[str] = field(default_factory=list)  # the tables and Hub folders read

    @property
    def written(self) -> int:
        return self.imported.written if self.imported else 0


def resolve_inputs(
    inputs: Sequence[Path | str],
    dataset: Dataset,
    columns: Columns,
    labels: Sequence[Path] = (),
) -> Resolved:
    """Each input as photos to scan: a photo folder or file as it is, a table or a Hub
    dataset as its photos and their labels; ``labels`` tables labelled by name."""
    out = Resolved(imported=ImportedFolders(dataset))
    assert out.imported is not None
    for table in labels:
        out.matcher.add(read_labels(Path(table), columns))
        out.skip.append(Path(table))
    for given in inputs:
        text = str(given)
        if text.startswith("hf://"):
            given = hub_snapshot(text)
        if storage.is_url(given):
            out.inputs.append(given)
            continue
        path = Path(given)
        found = paths.kind(path)
        if found not in (paths.FILE, paths.FOLDER, paths.MISSING):
            raise InputError(
                f"{path} is {found}, not a photo, a folder or a table",
                hint="give photos, folders of photos or tables of photos",
            )
        if found == paths.FILE and is_table(path):
            out.sources.append(str(path.resolve()))
            _table(path, path.stem, text, columns, out)
        elif found == paths.FOLDER and (
            not Dataset.is_dataset(path) or paths.resolved(path) == paths.resolved(dataset.root)
        ):
            used, tables = hub_tables(path, columns)
            if tables:
                _outside(dataset, used, path)
                source = text if text.startswith("hf://") else str(used)
                out.sources.append(str(used.resolve()))
                for table in tables:
                    _table(table, _name_for(used), source, columns, out, hub=True)
            else:
                out.inputs.append(path)
                _imagefolder(path, columns, out)
        else:
            out.inputs.append(path)
    out.imported.remove_stale()
    return out


def refuse_dataset_inside_sources(
    inputs: Sequence[Path | str], dataset: Dataset, columns: Columns
) -> None:
    """Before anything is written: a dataset folder may not lie in a Hub folder it reads."""
    for given in inputs:
        text = str(given)
        if text.startswith("hf://") or storage.is_url(given):
            continue
        path = Path(given)
        if paths.kind(path) == paths.FOLDER and not Dataset.is_dataset(path):
            used, tables = hub_tables(path, columns)
            if tables:
                _outside(dataset, used, path)


def _outside(dataset: Dataset, folder: Path, given: Path) -> None:
    """Refuse a dataset folder inside the folder of a table it reads: its own tables
    would be read as the source's on the next run."""
    root, source = paths.resolved(dataset.root), paths.resolved(folder)
    if root == source or source in root.parents:
        raise UsageError(
            f"the dataset folder {dataset.root} is inside {given}'s folder {folder}",
            hint="give --out a folder outside it (e.g. beside it)",
        )


def _name_for(folder: Path) -> str:
    """The ``imported/`` folder name of a Hub dataset folder."""
    name = folder.resolve().name
    if re.fullmatch(r"[0-9a-f]{40}", name):  # a hub cache snapshot
        repo = folder.resolve().parent.parent.name
        name = repo.removeprefix("datasets--").replace("--", "__") or name
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip("._") or "dataset"


def split_of(name: str) -> str | None:
    """The split a file or folder name says (``train-00000-of-00002.parquet`` -> train)."""
    found = _SPLIT_IN_NAME.search(Path(name).name.lower())
    return found.group(1) if found else None


def _holds_photos(table: Path, columns: Columns) -> bool:
    """Whether a table is one of photos with positions (an image or file name column,
    and latitude/longitude columns): what makes a folder a dataset, not a stray log."""
    try:
        schema = table_schema(table)
    except InputError:
        return False
    names = schema.names
    has_place = find_column(names, LATITUDE_NAMES, _known(names, columns.latitude)) and find_column(
        names, LONGITUDE_NAMES, _known(names, columns.longitude)
    )
    image = _image_column(schema)
    return bool(
        has_place and (image or find_column(names, NAME_NAMES, _known(names, columns.name)))
    )


def _known(names: list[str], given: str | None) -> str | None:
    return given if given in names else None


def _image_column(schema: pa.Schema) -> str | None:
    """The column that holds images: by name, and of bytes or the Hub's struct."""
    for name in schema.names:
        if name.lower() not in IMAGE_NAMES:
            continue
        kind = schema.field(name).type
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_struct(kind):
            return str(name)
    return None


def hub_tables(folder: Path, columns: Columns) -> tuple[Path, list[Path]]:
    """The folder a Hub dataset's tables are in and its tables of photos, else
    ``(folder, [])``: the hub cache's repo folder (its newest snapshot),
    ``data/*.parquet``, ``<config>/<split>-*.parquet``, a ``datasets`` cache or
    ``save_to_disk`` folder of ``*.arrow``. Tables inside a gpskit dataset are not."""
    snapshots = folder / "snapshots"
    if folder.name.startswith("datasets--") and snapshots.is_dir():
        newest = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
        return hub_tables(newest[-1], columns) if newest else (folder, [])
    found: list[Path] = []
    if (folder / "data").is_dir():
        found = sorted((folder / "data").rglob("*.parquet"))
    if not found:
        markers = ("dataset_info.json", "dataset_dict.json", "state.json")
        arrows = sorted(folder.rglob("*.arrow"))
        if arrows and any(next(folder.rglob(m), None) for m in markers):
            found = arrows
    if not found:
        tops = sorted(folder.glob("*.parquet")) + sorted(folder.glob("*/*.parquet"))
        found = [t for t in tops if split_of(t.name) or split_of(t.parent.name)]
    found = [t for t in found if not _in_dataset(t, folder)]
    return folder, [t for t in found if _holds_photos(t, columns)]


def _in_dataset(path: Path, top: Path) -> bool:
    """Whether ``path`` lies in a gpskit dataset folder below ``top`` (its own tables)."""
    return any((p / STATE_DIR).is_dir() for p in path.parents if top in p.parents)


def imagefolder_metadata(folder: Path) -> list[Path]:
    """The ``metadata.csv``/``metadata.jsonl`` files of an imagefolder (the Hub's layout of
    photos with a table of their labels), at its top and in its split folders."""
    found = []
    for place in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        for name in ("metadata.csv", "metadata.jsonl", "metadata.parquet"):
            if (place / name).is_file():
                found.append(place / name)
    return found


def _imagefolder(folder: Path, columns: Columns, out: Resolved) -> None:
    """An imagefolder's labels (a ``metadata`` file without positions is just a file)."""
    for metadata in imagefolder_metadata(folder):
        if not _holds_photos(metadata, columns):
            out.notes.append(f"{metadata}: no file name and position columns: read as a file")
            continue
        out.skip.append(metadata)
        table = read_labels(metadata, columns)
        inside = metadata.parent.resolve().relative_to(folder.resolve()).as_posix()
        if inside not in ("", "."):
            table = table.under(f"{inside}/", split_name(split_of(inside.split("/")[0])))
        out.matcher.add(table, root=str(folder.resolve()))


def hub_snapshot(text: str) -> Path:
    """``hf://datasets/OWNER/NAME[@REVISION]`` downloaded (or found in the cache)."""
    if not text.startswith(HF_PREFIX):
        raise InputError(
            f"{text}: only hf://datasets/OWNER/NAME is read", hint="name a dataset repo"
        )
    repo, _, revision = text[len(HF_PREFIX) :].strip("/").partition("@")
    if repo.count("/") > 1:
        repo = "/".join(repo.split("/")[:2])
    hub = require_module(
        "huggingface_hub", f"{text}: reading a Hub dataset needs huggingface_hub", "gpskit[hub]"
    )
    patterns = ["*.parquet", "*.arrow", "*.json", "*.csv", "*.jsonl", "*.jpg", "*.jpeg", "*.png"]
    try:
        folder = hub.snapshot_download(
            repo_id=repo, repo_type="dataset", revision=revision or None, allow_patterns=patterns
        )
    except Exception as exc:  # the hub's errors are many classes; each is the network's
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise EnvironmentProblem(
            f"{text}: could not fetch the dataset ({type(exc).__name__}: {first})",
            hint="check the name and the network (HF_HUB_OFFLINE=1 reads the local cache), "
            "or download it and give its folder",
        ) from None
    return Path(folder)


def _table(
    table: Path, name: str, source: str, columns: Columns, out: Resolved, hub: bool = False
) -> None:
    """One table of photos: its images written out, or its paths listed; its labels."""
    try:
        schema = table_schema(table)
        names = schema.names
        lat, lon = position_columns(names, columns.latitude, columns.longitude)
        picked = (
            lat,
            lon,
            find_column(names, HEADING_NAMES, columns.heading),
            find_column(names, SPLIT_NAMES),
        )
        image = _image_column(schema)
        if image is None:
            path_column = find_column(names, NAME_NAMES, columns.name)
            if path_column is None:
                raise InputError(
                    f"no image or file name column among: {', '.join(names)}",
                    hint="name the file name column with --name-column",
                )
            _listed(table, path_column, picked, out)
            return
    except InputError as exc:
        if str(table) in exc.message:
            raise
        raise InputError(f"{table}: {exc.message}", hint=exc.hint) from None
    _embedded(table, name, source, image, picked, out, hub)


def _embedded(
    table: Path,
    name: str,
    source: str,
    image: str,
    picked: tuple[str, str, str | None, str | None],
    out: Resolved,
    hub: bool,
) -> None:
    """A table whose image column holds the images: each written into ``imported/``."""
    assert out.imported is not None
    lat, lon, heading, split_column = picked
    root = out.imported.folder(name, source)
    default = split_of(table.name) or (split_of(table.parent.name) if hub else None)
    labels, listed = PositionTable(table.name), []
    wanted = [image, lat, lon] + [c for c in (heading, split_column) if c]
    row = 0
    for batch in batches(table, wanted):
        marks = texts(batch[split_column]) if split_column else [None] * batch.num_rows
        cells = zip(
            batch[image].to_pylist(),
            labels_of(batch, lat, lon, heading, split_column, table.name),
            marks,
            strict=True,
        )
        for value, label, mark in cells:
            row += 1
            data, original = image_value(value)
            if data is None and original:  # the struct names a file beside the table
                listed.append((normal_name(original), label))
                continue
            split = split_name(mark) or default
            where = f"{split or 'all'}/{file_name(data or b'', original, f'{table.name}:{row}')}"
            out.imported.write(root, where, data or b"")
            if label is not None and label.split is None and split:
                label = replace(label, split=split)
            labels.add(where, label)
    if root not in out.inputs:
        out.inputs.append(root)
    out.matcher.add(labels, root=str(root.resolve()), sole=True)
    if listed:
        beside = PositionTable(table.name)
        for listed_name, label in listed:
            beside.add(listed_name, label)
        files = ListedFiles(table.parent.resolve(), sorted({n for n, _ in listed if n}))
        out.inputs.append(files)
        out.listed.append((files, beside))
        out.skip.append(table)


def _listed(
    table: Path, path_column: str, picked: tuple[str, str, str | None, str | None], out: Resolved
) -> None:
    """A table that names its photos by path (relative to the table's folder)."""
    lat, lon, heading, split = picked
    data = read_table_file(table)
    labels = PositionTable(table.name)
    names: list[str] = []
    folder = table.parent.resolve()
    for text, label in zip(
        texts(data[path_column]), labels_of(data, lat, lon, heading, split, table.name), strict=True
    ):
        name = normal_name(text) if text else ""
        if text and name and Path(text).is_absolute():
            name = _inside(Path(text), folder)  # "" when outside the table's folder
        labels.add(name, label)
        if name:
            names.append(name)
    listed = ListedFiles(folder, sorted(set(names)))
    out.inputs.append(listed)
    out.listed.append((listed, labels))
    out.skip.append(table)


def _inside(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder).as_posix()
    except (ValueError, OSError, RuntimeError):
        return ""
