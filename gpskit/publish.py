"""``gpskit publish dataset``: the splits as a dataset folder in the Hugging Face Hub's
layout, and uploading a folder (dataset or model) to the Hub.

The folder holds ``data/{train,validation,test}-00000-of-00001.parquet`` (the split files
with their embedded images, the ``{bytes, path}`` struct ``datasets`` decodes) and a
dataset card ``README.md`` whose YAML header the Hub reads: license, task, tags, size, the
``configs`` that map files to splits, and the ``dataset_info`` features and split sizes.
``datasets.load_dataset(FOLDER)`` loads it offline; ``--push REPO_ID`` uploads it with
``huggingface_hub`` (``pip install 'gpskit[hub]'``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gpskit import paths
from gpskit.atomic import atomic_path, write_text
from gpskit.dataset import Dataset
from gpskit.errors import InputError, MissingStepError, require_module
from gpskit.outputs import output_folder
from gpskit.schema import load_schema

#: gpskit's split names and the names the Hub's viewer expects.
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}
#: Arrow/gpskit column types as the Hub's ``dataset_info`` dtypes.
_DTYPES = {"string": "string", "float64": "float64", "float32": "float32", "int64": "int64",
           "int32": "int32", "bool": "bool"}  # fmt: skip


def yaml_scalar(value: Any) -> str:
    """One scalar as YAML that every YAML reader (1.1 or 1.2) reads back as this value:
    strings double-quoted with everything outside printable ASCII escaped."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        if math.isnan(value):
            return ".nan"
        mantissa, _, exponent = repr(value).partition("e")
        if "." not in mantissa:  # YAML 1.1 reads 1e+16 as text: write 1.0e+16
            mantissa += ".0"
        return mantissa + (f"e{exponent}" if exponent else "")
    out = ['"']
    for char in str(value):
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out) + '"'


def yaml_text(value: Any, indent: int = 0) -> str:
    """YAML for the card header from dicts, lists and scalars (block style; no dependency,
    and no surprises from odd strings: see :func:`yaml_scalar`)."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{yaml_scalar(key)}:\n{yaml_text(item, indent + 2)}")
            else:
                lines.append(f"{pad}{yaml_scalar(key)}: {_flow(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict) and item:
                body = yaml_text(item, indent + 2)
                lines.append(f"{pad}- {body[indent + 2 :]}")
            elif isinstance(item, list) and item:
                lines.append(f"{pad}-\n{yaml_text(item, indent + 2)}")
            else:
                lines.append(f"{pad}- {_flow(item)}")
        return "\n".join(lines)
    return f"{pad}{yaml_scalar(value)}"


def _flow(value: Any) -> str:
    """An empty collection or a scalar, on one line."""
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return yaml_scalar(value)


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):  # fmt: skip
        if rows < limit:
            return name
    return "1M<n<10M"


@dataclass
class PublishedDataset:
    """What ``publish dataset`` wrote."""

    folder: str
    splits: dict[str, int]
    written: list[str] = field(default_factory=list)
    pushed_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "splits": self.splits, "written": self.written,
                "pushed_to": self.pushed_to}  # fmt: skip


def _features() -> list[dict[str, Any]]:
    """The split schema as the Hub's ``dataset_info.features``."""
    features = []
    for spec in load_schema("split").fields:
        if spec.type == "image":
            features.append({"name": spec.name, "dtype": "image"})
        else:
            features.append({"name": spec.name, "dtype": _DTYPES.get(spec.type, spec.type)})
    return features


def dataset_card(name: str, splits: dict[str, tuple[int, int]], license_id: str, notes: str) -> str:
    """The dataset card: the Hub's YAML header and a short description."""
    header = {
        "license": license_id,
        "pretty_name": name,
        "task_categories": ["image-feature-extraction"],
        "tags": ["image-geolocation", "gps", "geotagged", "gpskit"],
        "size_categories": [_size_category(sum(n for n, _ in splits.values()))],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": hub, "path": f"data/{hub}-*.parquet"} for hub in splits],
            }
        ],
        "dataset_info": {
            "features": _features(),
            "splits": [
                {"name": hub, "num_bytes": size, "num_examples": rows}
                for hub, (rows, size) in splits.items()
            ],
        },
    }
    body = [
        f"# {name}",
        "",
        "Geotagged photos prepared with gpskit: validated EXIF GPS, duplicates grouped (one "
        "keeper each), and splits by spot, so no place appears in two splits.",
        "",
        "| split | photos |",
        "|---|---|",
        *(f"| {hub} | {rows} |" for hub, (rows, _) in splits.items()),
        "",
        "```python",
        "from datasets import load_dataset",
        'photos = load_dataset("THIS_REPO_OR_FOLDER")',
        "```",
        "",
        notes,
    ]
    return "---\n" + yaml_text(header) + "\n---\n\n" + "\n".join(body).rstrip() + "\n"


def _without_local_paths(source: Path, target: Path) -> None:
    """Copy a split file with ``root`` emptied: where the photos lay on this machine is
    nobody else's business (``path`` inside the root, and the images, stay)."""
    table = pq.read_table(source)
    index = table.schema.get_field_index("root")
    field = table.schema.field(index)
    table = table.set_column(index, field, pa.array([""] * table.num_rows, type=field.type))
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


def _require_current_splits(dataset: Dataset) -> None:
    """Refuse splits made before the manifest or the decisions people made since changed:
    a published dataset says what the dataset is now."""
    record_path = dataset.splits_dir / "split.json"
    if not record_path.is_file() or not dataset.manifest_path.is_file():
        return
    try:
        made_from = json.loads(paths.read_text(record_path)).get("manifest_sha256")
    except (ValueError, AttributeError):
        return
    if made_from and made_from != dataset.manifest_fingerprint():
        raise InputError(
            f"{dataset.splits_dir}: the splits were made before the manifest or the decisions "
            "people made changed",
            hint=f"run `gpskit split {dataset.root} --embed --force` first",
        )


def publish_dataset(
    dataset_dir: Path | Dataset,
    out: Path,
    *,
    name: str | None = None,
    license_id: str = "cc-by-4.0",
) -> PublishedDataset:
    """Write the Hub-layout folder for a dataset's splits (which must embed their images)."""
    dataset = Dataset.at(dataset_dir)
    output_folder(out, "--out", datasets=[dataset])
    splits_dir = dataset.splits_dir
    _require_current_splits(dataset)
    sizes: dict[str, tuple[int, int]] = {}
    sources = {}
    empty: list[str] = []
    for ours, hub in HUB_SPLITS.items():
        path = splits_dir / f"{ours}.parquet"
        if not path.exists():
            raise MissingStepError(
                f"{path} does not exist", hint="run `gpskit split --embed` first"
            )
        table = pq.read_table(path, columns=["image"])
        if table.num_rows and table.column("image").combine_chunks().field("bytes").null_count:
            raise InputError(
                f"{path}: images are not embedded (the folder would point at local files)",
                hint="run `gpskit split --embed --force` first",
            )
        if not table.num_rows:  # a dataset of a few spots: the Hub's loader wants rows
            empty.append(hub)
            continue
        sizes[hub] = (table.num_rows, path.stat().st_size)
        sources[hub] = path
    if not sources:
        raise InputError(
            f"{splits_dir}: every split is empty: nothing to publish",
            hint="ingest more photos, or split with other --ratios",
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(exist_ok=True)
    for hub in empty:  # an earlier publish's file of a split that is empty now
        (out / "data" / f"{hub}-00000-of-00001.parquet").unlink(missing_ok=True)
    written = []
    for hub, path in sources.items():
        target = out / "data" / f"{hub}-00000-of-00001.parquet"
        _without_local_paths(path, target)
        written.append(str(target))
    split_json = splits_dir / "split.json"
    notes = ""
    if split_json.exists():
        record = json.loads(paths.read_text(split_json))
        noise = record.get("label_noise_m") or {}
        if noise.get("median_m") is not None:
            notes = f"GPS label noise (fixes around their spot's median): median {noise['median_m']:.1f} m."
    if empty:
        notes = f"{notes} Empty, so not published: {', '.join(empty)}.".strip()
    title = name or dataset.root.resolve().name
    write_text(out / "README.md", dataset_card(title, sizes, license_id, notes))
    written.append(str(out / "README.md"))
    return PublishedDataset(str(out), {hub: rows for hub, (rows, _) in sizes.items()}, written)


def push(folder: Path, repo_id: str, repo_type: str) -> str:
    """Upload a folder to the Hub (token from ``HF_TOKEN`` or ``huggingface-cli login``)."""
    hub = require_module("huggingface_hub", "--push needs huggingface_hub", "gpskit[hub]")
    api = hub.HfApi()
    try:
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type)
    except Exception as exc:  # offline, no token, no rights: one line, the folder stays
        raise InputError(
            f"--push {repo_id}: the upload failed ({type(exc).__name__}: {exc})",
            hint=f"the folder {folder} is complete; upload it later with --push or "
            "`huggingface-cli upload`",
        ) from None
    return str(getattr(info, "commit_url", repo_id))
