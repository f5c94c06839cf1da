"""Datasets users already have, as photos to ingest: a table of photos (CSV, TSV,
Parquet, JSON Lines, Arrow) with an image or path column and position columns; a folder
in the Hugging Face Hub's layouts (``data/<split>-*.parquet``, an imagefolder with
``metadata.csv``, a ``datasets`` cache or ``save_to_disk`` folder of ``*.arrow``, the
hub cache's ``datasets--OWNER--NAME``); or ``hf://datasets/OWNER/NAME`` (``gpskit[hub]``).

Images held in a table (the Hub's ``image`` column: bytes) are written once into the
dataset's ``imported/<name>/<split>/`` folder, so every later step reads them as photos;
a re-run rewrites none that are the same. Positions become labels
(:mod:`gpskit.ingest.labels`) of the photos they came with.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gpskit import atomic, paths, storage
from gpskit.dataset import IMPORTED_DIR, Dataset
from gpskit.errors import EnvironmentProblem, InputError, require_module
from gpskit.ingest.find import ListedFiles
from gpskit.ingest.labels import (
    NAME_NAMES,
    SPLIT_NAMES,
    LabelMatcher,
    PositionTable,
    is_table,
    labels_of,
    normal_name,
    read_labels,
    read_table_file,
)
from gpskit.ingest.options import Columns
from gpskit.splitfolder import HEADING_NAMES, find_column, position_columns

#: Column names that hold an image (its bytes, or the Hub's {bytes, path} struct).
IMAGE_NAMES = ("image", "img", "photo", "picture", "image_bytes", "jpg", "jpeg", "png")
#: Split names as the Hub writes them in file and folder names.
HUB_SPLITS = ("train", "validation", "valid", "val", "dev", "test")
_SPLIT_IN_NAME = re.compile(r"(?:^|[-_.])(" + "|".join(HUB_SPLITS) + r")(?=[-_.]|$)")
#: Image formats by their first bytes, for the names of images written out of a table.
_MAGIC = (
    (b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"RIFF", ".webp"), (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"), (b"GIF8", ".gif"), (b"BM", ".bmp"),
)  # fmt: skip
HF_PREFIX = "hf://datasets/"
#: The file in an ``imported/`` folder that names the source its images came from.
SOURCE_MARKER = ".gpskit-source"


def _source_id(source: str) -> str:
    """A source as its marker records it: a hub id as given, a path made absolute."""
    return source if source.startswith("hf://") else str(Path(source).resolve())


@dataclass(frozen=True)
class Place:
    """Where a table's images go: the dataset, a folder name, and the source they are of."""

    dataset: Dataset
    name: str
    source: str


@dataclass
class Resolved:
    """The inputs as the scan takes them, and the labels the tables gave."""

    inputs: list[Path | str | ListedFiles] = field(default_factory=list)
    matcher: LabelMatcher = field(default_factory=LabelMatcher)
    notes: list[str] = field(default_factory=list)
    written: int = 0  # images written out of tables this run
    skip: list[Path] = field(default_factory=list)  # tables inside a folder scanned for photos
    # labels of listed files, placed once the scan has said under which root they are
    listed: list[tuple[ListedFiles, PositionTable]] = field(default_factory=list)
    # each imported/ folder filled this run, and the names written or found the same in it
    imported: dict[Path, set[str]] = field(default_factory=dict)
    _roots: dict[str, Path] = field(default_factory=dict)  # source -> its imported/ folder

    def imported_root(self, place: Place) -> Path:
        """The ``imported/`` folder of a source: its name, or ``name-2``... when that one
        holds another source's images (its ``.gpskit-source`` file says whose)."""
        source, name = _source_id(place.source), place.name
        if source in self._roots:
            return self._roots[source]
        base = place.dataset.root / IMPORTED_DIR
        for number in range(1, 10_000):
            root = base / (name if number == 1 else f"{name}-{number}")
            marker = root / SOURCE_MARKER
            if root in self.imported:
                continue  # another input of this run
            if paths.kind(marker) == paths.FILE:
                if paths.read_text(marker).strip() != source:
                    continue
            elif root.exists():
                continue  # not gpskit's
            root.mkdir(parents=True, exist_ok=True)
            atomic.write_text(marker, source + "\n")
            self.imported[root] = set()
            self._roots[source] = root
            return root
        raise InputError(f"{base}: too many imported folders named {name}")

    def remove_stale(self) -> None:
        """Remove the images of an ``imported/`` folder its source no longer has (a row
        gone from the table), so the manifest drops them as it drops deleted photos."""
        for root, names in self.imported.items():
            for folder, _, files in os.walk(root):
                for file in files:
                    path = Path(folder, file)
                    inside = path.relative_to(root).as_posix()
                    if inside != SOURCE_MARKER and inside not in names:
                        path.unlink(missing_ok=True)


def resolve_inputs(
    inputs: Sequence[Path | str],
    dataset: Dataset,
    columns: Columns,
    labels: Sequence[Path] = (),
) -> Resolved:
    """Each input as photos to scan: a photo folder or file as it is, a table or a Hub
    dataset as its photos and their labels; ``labels`` tables labelled by name."""
    out = Resolved()
    for table in labels:
        out.matcher.add(read_labels(Path(table), columns))
    for given in inputs:
        text = str(given)
        if text.startswith(HF_PREFIX) or text.startswith("hf://"):
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
            _table_input(path, Place(dataset, path.stem, text), columns, out)
        elif found == paths.FOLDER and not Dataset.is_dataset(path):
            tables = hub_tables(path)
            if tables:
                place = Place(dataset, _name_for(path), text)
                for table in tables:
                    _table_input(table, place, columns, out, path)
            else:
                out.inputs.append(path)
                for metadata in imagefolder_metadata(path):
                    out.skip.append(metadata)
                    found_labels = _within(read_labels(metadata, columns), metadata.parent, path)
                    out.matcher.add(found_labels, root=str(path.resolve()))
        else:
            out.inputs.append(path)
    out.remove_stale()
    return out


def _name_for(folder: Path) -> str:
    """The ``imported/`` folder name of a Hub dataset folder."""
    name = folder.resolve().name
    if name and re.fullmatch(r"[0-9a-f]{40}", name):  # a hub cache snapshot
        repo = folder.resolve().parent.parent.name
        name = repo.removeprefix("datasets--").replace("--", "__") or name
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "dataset"


def _within(table: PositionTable, folder: Path, root: Path) -> PositionTable:
    """``table``'s names made relative to ``root`` (an imagefolder's ``train/metadata.csv``
    names ``a.jpg``, which is ``train/a.jpg`` in the dataset, of split train)."""
    inside = folder.resolve().relative_to(root.resolve()).as_posix()
    if inside in ("", "."):
        return table
    return table.under(f"{inside}/", split_of(inside.split("/")[0]))


def split_of(name: str) -> str | None:
    """The split a file or folder name says (``train-00000-of-00002.parquet`` -> train)."""
    found = _SPLIT_IN_NAME.search(Path(name).name.lower())
    return found.group(1) if found else None


def imagefolder_metadata(folder: Path) -> list[Path]:
    """The ``metadata.csv``/``metadata.jsonl`` files of an imagefolder (the Hub's layout of
    photos with a table of their labels), at its top and in its split folders."""
    found = []
    for place in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        for name in ("metadata.csv", "metadata.jsonl", "metadata.parquet"):
            if (place / name).is_file():
                found.append(place / name)
    return found


def hub_tables(folder: Path) -> list[Path]:
    """The data files of a folder in one of the Hub's table layouts, else []: the hub
    cache's repo folder (its newest snapshot), ``data/*.parquet``, ``<config>/<split>-*
    .parquet``, a ``datasets`` cache or ``save_to_disk`` folder of ``*.arrow``."""
    snapshots = folder / "snapshots"
    if folder.name.startswith("datasets--") and snapshots.is_dir():
        newest = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
        return hub_tables(newest[-1]) if newest else []
    if (folder / "data").is_dir():
        data = sorted((folder / "data").rglob("*.parquet"))
        if data:
            return data
    markers = ("dataset_info.json", "dataset_dict.json", "state.json")
    arrows = sorted(folder.rglob("*.arrow"))
    if arrows and any(next(folder.rglob(m), None) for m in markers):
        return arrows
    tops = sorted(folder.glob("*.parquet")) + sorted(folder.glob("*/*.parquet"))
    return [t for t in tops if split_of(t.name) or split_of(t.parent.name)]


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
        raise EnvironmentProblem(
            f"{text}: could not fetch the dataset ({type(exc).__name__}: {str(exc)[:200]})",
            hint="check the name and the network (HF_HUB_OFFLINE=1 reads the local cache), "
            "or download it and give its folder",
        ) from None
    return Path(folder)


def _table_input(
    table: Path,
    place: Place,
    columns: Columns,
    out: Resolved,
    folder: Path | None = None,
) -> None:
    """One table of photos: its images written out (or its paths listed), its labels."""
    schema = _schema(table)
    names = schema.names
    lat, lon = position_columns(names, columns.latitude, columns.longitude)
    heading = find_column(names, HEADING_NAMES, columns.heading)
    split_column = find_column(names, SPLIT_NAMES)
    image = find_column(names, IMAGE_NAMES)
    image_type = schema.field(image).type if image else None
    if image is None or pa.types.is_string(image_type) or pa.types.is_large_string(image_type):
        path_column = find_column(names, NAME_NAMES, columns.name)
        if path_column is None:
            raise InputError(
                f"{table}: no image or file name column among: {', '.join(names)}",
                hint="name the file name column with --name-column",
            )
        _listed(table, path_column, lat, lon, heading, split_column, out)
        return
    split = split_of(table.name) or (split_of(table.parent.name) if folder else None)
    root = out.imported_root(place)
    labels = PositionTable(table.name)
    wanted = [image, lat, lon] + [c for c in (heading, split_column) if c]
    for batch, start in _batches(table, wanted):
        images = batch[image]
        marks = (
            [split] * batch.num_rows
            if split_column is None
            else pc.cast(batch[split_column], pa.string()).to_pylist()
        )
        rows = zip(
            images.to_pylist(),
            labels_of(batch, lat, lon, heading, split_column, table.name),
            marks,
            strict=True,
        )
        for offset, (value, label, mark) in enumerate(rows):
            data, original = _image_value(value)
            if data is None:
                labels.add("", None)
                continue
            where = f"{mark or split or 'all'}/{_file_name(start + offset, original, data)}"
            out.written += _write_once(root / where, data)
            out.imported[root].add(where)
            if label is not None and label.split is None and (mark or split):
                label = replace(label, split=mark or split)
            labels.add(where, label)
    if root not in out.inputs:
        out.inputs.append(root)
    out.matcher.add(labels, root=str(root.resolve()))


def _schema(table: Path) -> pa.Schema:
    paths.require_readable_file(table, "table")
    if table.suffix.lower() == ".parquet":
        try:
            return pq.read_schema(table)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{table}: not a readable Parquet table ({exc})") from None
    return read_table_file(table).schema


def _batches(table: Path, columns: list[str]) -> Iterator[tuple[pa.Table, int]]:
    """A table's rows a batch at a time (a Parquet file of images is not read whole)."""
    start = 0
    if table.suffix.lower() == ".parquet":
        try:
            for batch in pq.ParquetFile(table).iter_batches(batch_size=256, columns=columns):
                part = pa.Table.from_batches([batch])
                yield part, start
                start += part.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{table}: not a readable Parquet table ({exc})") from None
        return
    yield read_table_file(table, columns), 0


def _image_value(value: Any) -> tuple[bytes | None, str | None]:
    """The bytes and original name of a table's image cell (the Hub's struct, or bytes)."""
    if isinstance(value, dict):
        data, original = value.get("bytes"), value.get("path")
        return (bytes(data) if data else None), (str(original) if original else None)
    if isinstance(value, bytes | bytearray) and value:
        return bytes(value), None
    return None, None


def _file_name(index: int, original: str | None, data: bytes) -> str:
    """A stable name for the ``index``-th image of a table: its number, then its own name."""
    if original:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", Path(original.replace("\\", "/")).name)[-80:]
        if base.strip("._"):
            return f"{index:06d}-{base}"
    ext = next((e for magic, e in _MAGIC if data.startswith(magic)), ".bin")
    return f"{index:06d}{ext}"


def _write_once(target: Path, data: bytes) -> int:
    """Write an image out of a table unless the same bytes are there already (so a re-run
    finds the file unchanged and reuses its row). 1 when written."""
    try:
        if target.stat().st_size == len(data) and _digest(target) == hashlib.sha256(data).digest():
            return 0
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".gpskit-{target.name}.part")
    staged.write_bytes(data)
    os.replace(staged, target)
    return 1


def _digest(path: Path) -> bytes:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def _listed(
    table: Path,
    path_column: str,
    lat: str,
    lon: str,
    heading: str | None,
    split: str | None,
    out: Resolved,
) -> None:
    """A table that names its photos by path (relative to the table's folder)."""
    data = read_table_file(table)
    labels = PositionTable(table.name)
    names: list[str] = []
    folder = table.parent.resolve()
    texts = pc.cast(data[path_column], pa.string()).to_pylist()
    for text, label in zip(
        texts, labels_of(data, lat, lon, heading, split, table.name), strict=True
    ):
        name = normal_name(text) if text else ""
        if name and Path(text).is_absolute():
            name = _inside(Path(text), folder)  # "" when outside the table's folder
        labels.add(name, label)
        if name:
            names.append(name)
    listed = ListedFiles(folder, sorted(set(names)))
    out.inputs.append(listed)
    out.listed.append((listed, labels))


def _inside(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder).as_posix()
    except (ValueError, OSError, RuntimeError):
        return ""
