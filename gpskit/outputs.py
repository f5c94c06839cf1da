"""The one guard every path a user names for output goes through.

An output file must not be an input photo (of this command, or one a dataset's manifest
lists), a file a dataset or model folder owns (a manifest, a split, a checkpoint...), a
gpskit table anywhere, a FIFO, device or socket (gpskit writes by temp file + rename, and
never opens such a path), a folder, or a symlink loop. An output folder must be a folder
or not exist yet. Each refusal is one line saying what the path is and what to give.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from gpskit import paths
from gpskit.dataset import Dataset
from gpskit.errors import UsageError
from gpskit.layout import MANIFEST_FILE, OWN_FILES, OWN_FOLDERS, STATE_DIR
from gpskit.runfolder import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    INDEX_FILE,
    LAST_CHECKPOINT,
    OPTIONS_FILE,
    PREDICTION_FILE,
    WEIGHTS_FILE,
    PublishedModel,
    RunFolder,
)

DATASET_FILES, DATASET_FOLDERS = OWN_FILES, OWN_FOLDERS
#: Files of a model folder (a run's, or a published one's).
MODEL_FILES = frozenset(
    {
        BEST_CHECKPOINT,
        LAST_CHECKPOINT,
        WEIGHTS_FILE,
        CONFIG_FILE,
        INDEX_FILE,
        PREDICTION_FILE,
        OPTIONS_FILE,
    }
)


def _refuse(option: str, path: Path, what: str, hint: str) -> UsageError:
    return UsageError(f"{option} {path} is {what}: gpskit will not write over it", hint=hint)


def _dataset_root(target: Path) -> Path | None:
    """The dataset folder ``target`` lies in (a folder holding a manifest), if any."""
    for folder in list(target.parents)[:4]:
        if (folder / MANIFEST_FILE).is_file() or (folder / STATE_DIR).is_dir():
            return folder
    return None


def _owned_by_a_dataset(target: Path) -> bool:
    root = _dataset_root(target)
    if root is None:
        return False
    inside = target.relative_to(root).parts
    return (len(inside) == 1 and inside[0] in DATASET_FILES) or (
        len(inside) > 1 and inside[0] in DATASET_FOLDERS
    )


def _gpskit_table(target: Path) -> bool:
    """Whether ``target`` is a Parquet file gpskit wrote (any dataset's, or a published one)."""
    try:
        meta = pq.read_schema(target).metadata or {}
    except Exception:  # not Parquet, unreadable: not a table of ours
        return False
    return b"gpskit.schema" in meta or b"gpskit.version" in meta


def _is_schema(target: Path, name: str | None) -> bool:
    """Whether ``target`` is a gpskit table of schema ``name`` (an earlier run's output)."""
    if name is None:
        return False
    from gpskit.schema import schema_tag

    try:
        tag = schema_tag(target)
    except Exception:  # unreadable: not one to replace
        return False
    return tag is not None and tag.get("name") == name


def _listed_photo(target: Path, dataset: Dataset) -> bool:
    """Whether the dataset's manifest lists ``target`` as a photo (read by row-group
    statistics: the manifest is sorted by root and path)."""
    if not dataset.manifest_path.is_file():
        return False
    for parent in target.parents:
        rel = target.relative_to(parent).as_posix()
        try:
            found = pq.read_table(
                dataset.manifest_path,
                columns=["root"],
                filters=[("root", "=", str(parent)), ("path", "=", rel)],
            )
        except Exception:  # a damaged manifest: the commands that read it say so
            return False
        if found.num_rows:
            return True
    return False


def output_file(
    path: Path,
    option: str,
    *,
    inputs: Iterable[str | Path] = (),
    datasets: Iterable[Dataset] = (),
    replaces: str | None = None,
) -> Path:
    """``path`` if a command may write its output file there; else one clear error.
    ``replaces``: the schema of a gpskit table this output may replace (its own, written
    by an earlier run: an export refreshed)."""
    found = paths.kind(path)
    if found == paths.FOLDER:
        raise _refuse(option, path, "a folder", "give a file path inside it")
    if found not in (paths.FILE, paths.MISSING):
        raise _refuse(option, path, found, f"give a regular file path (or leave out {option})")
    target = paths.resolved(path)
    hint = "write to another file"
    if any(paths.resolved(Path(p)) == target for p in inputs if "://" not in str(p)):
        raise _refuse(option, path, "one of this command's input photos", hint)
    if _owned_by_a_dataset(target):
        raise _refuse(
            option, path, "a file of a dataset folder", hint + ", outside the dataset's own files"
        )
    model = _model_folder_of(target)
    ours = found == paths.FILE and _is_schema(target, replaces)  # its own earlier output
    if (model is not None and found == paths.FILE and not ours) or (
        model is not None and target.name in MODEL_FILES and model == target.parent
    ):
        raise _refuse(option, path, f"a file of the model folder {model}", hint)
    if found == paths.FILE and target.suffix == ".pt":
        raise _refuse(option, path, "a PyTorch checkpoint", hint)
    if found == paths.FILE and _gpskit_table(target) and not ours:
        raise _refuse(option, path, "a gpskit table", hint)
    if found == paths.FILE and _photo_format(target):
        raise _refuse(option, path, f"a photo ({_photo_format(target)})", hint)
    named = path.absolute()  # the manifest may list the link, not what it points to
    for dataset in datasets:
        if _listed_photo(target, dataset) or (named != target and _listed_photo(named, dataset)):
            raise _refuse(option, path, f"a photo of the dataset {dataset.root}", hint)
    return path


def output_folder(
    path: Path,
    option: str,
    *,
    datasets: Iterable[Dataset] = (),
    run: bool = False,
    published: bool = False,
) -> Path:
    """``path`` if a command may make or fill it as a folder; else one clear error: never
    one of a dataset's own folders, nor a folder of the tables a dataset was ingested from
    (a Hub dataset's: writing there would replace the source), nor one of its photo
    folders, nor a training run's folder, a published model's or a folder inside a model
    folder (``run``: the run being resumed may be given; ``published``: a model published
    there before, to publish again)."""
    found = paths.kind(path)
    if found not in (paths.FOLDER, paths.MISSING):
        raise UsageError(f"{option} {path} is {found}, not a folder", hint="give a folder path")
    target = paths.resolved(path)
    hint = "give a folder outside the dataset's own folders and its sources"
    if _owned_by_a_dataset(target / "x"):
        raise _refuse(option, path, "inside a dataset's own folders", hint)
    if not run and RunFolder(target).has_checkpoint():
        raise _refuse(
            option, path, "a training run's folder", "give a new folder (--resume continues a run)"
        )
    if not published and PublishedModel(target).has_model():
        raise _refuse(option, path, "a published model's folder", "give a new folder")
    model = _model_folder_of(target)
    if model is not None and model != target:
        raise _refuse(option, path, f"inside the model folder {model}", "give a new folder")
    for dataset in datasets:
        for source in [*_sources(dataset), *_photo_roots(dataset)]:
            if source == target or source in target.parents or target in source.parents:
                raise _refuse(
                    option, path, f"where {dataset.root}'s photos or tables are ({source})", hint
                )
    return path


def _model_folder_of(target: Path) -> Path | None:
    """The model folder (a run's, or a published model's) that holds ``target``, looking
    a few folders up (a run keeps logs/ and tensorboard/ inside)."""
    for folder in list(target.parents)[:3]:
        if RunFolder(folder).has_model() or PublishedModel(folder).has_model():
            return folder
    return None


#: Formats of photos (by their first bytes) that no gpskit output replaces.
PHOTO_FORMATS = frozenset({"JPEG", "MPO", "HEIF", "TIFF", "WEBP"})


def _photo_format(target: Path) -> str | None:
    """The picture format of an existing file no output may replace (a JPEG, HEIF... photo;
    a PNG gpskit did not draw), or None."""
    from gpskit.imaging import sniff_format

    try:
        with open(target, "rb") as handle:
            found = sniff_format(handle.read(64))
    except OSError:
        return None
    if found == "PNG":
        return None if _drawn_by_gpskit(target) else "PNG"
    return found if found in PHOTO_FORMATS else None


def _drawn_by_gpskit(target: Path) -> bool:
    """Whether a PNG is one gpskit drew (a contact sheet, a map: marked when saved)."""
    from PIL import Image

    from gpskit.plots.common import PNG_SOFTWARE

    try:
        with Image.open(target) as img:
            return bool(img.info.get("Software") == PNG_SOFTWARE)
    except Exception:  # not a readable PNG: not one of ours
        return False


def _photo_roots(dataset: Dataset) -> list[Path]:
    """The folders a dataset's photos were read from (its manifest's roots)."""
    try:
        roots = pq.read_table(dataset.manifest_path, columns=["root"]).column("root").unique()
    except Exception:  # no manifest, or not ours: nothing to protect
        return []
    return [Path(r) for r in roots.to_pylist() if isinstance(r, str) and "://" not in r]


def _sources(dataset: Dataset) -> list[Path]:
    """The tables and Hub folders a dataset's manifest was read from (its metadata)."""
    import json

    from gpskit.schema import file_metadata

    try:
        settings = json.loads(file_metadata(dataset.manifest_path).get("gpskit.ingest", "{}"))
    except Exception:  # no manifest, or not ours: nothing to protect
        return []
    found = settings.get("sources", []) if isinstance(settings, dict) else []
    return [Path(s) for s in found if isinstance(s, str) and not s.startswith("hf://")]
