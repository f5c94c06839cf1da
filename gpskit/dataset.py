"""One dataset folder: where every output lives, how to load it, whether it is current.

Every command reads and writes one folder (``./gpskit-data`` unless told otherwise)::

    manifest.parquet        gpskit ingest     (schemas/manifest.json)
    duplicates.parquet      gpskit dedup      (schemas/duplicates.json)
    duplicates.png
    overlap.parquet         gpskit dedup --against (schemas/overlap.json)
    coverage.parquet        gpskit coverage   (schemas/coverage.json)
    coverage/               coverage.png, coverage.json, gaps.geojson, plan.csv, plan.geojson
    splits/                 gpskit split      ({train,val,test}.parquet, split.json)
    runs/<run>/             gpskit train / eval

Outputs made from the manifest (duplicates, coverage) carry a stamp in their Parquet
metadata: the options they were made with and the SHA-256 of the manifest they read. An
output is *current* when its stamp names the manifest as it is now; later steps rebuild
or refuse stale ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from gpskit.config import DATASET_ENV, DEFAULT_DATASET_DIR
from gpskit.errors import MissingStepError
from gpskit.schema import file_metadata, load_schema, read_table

MANIFEST_FILE = "manifest.parquet"
DUPLICATES_FILE = "duplicates.parquet"
OVERLAP_FILE = "overlap.parquet"
CONTACT_SHEET_FILE = "duplicates.png"
COVERAGE_FILE = "coverage.parquet"
COVERAGE_DIR = "coverage"
SPLITS_DIR = "splits"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class StepOutput:
    """A Parquet output that a step derives from the manifest, stamped with its hash."""

    file: str
    schema: str
    stamp_key: str
    command: str


DUPLICATES = StepOutput(DUPLICATES_FILE, "duplicates", "gpskit.dedup", "dedup")
COVERAGE = StepOutput(COVERAGE_FILE, "coverage", "gpskit.coverage", "coverage")


def default_dataset_dir() -> Path:
    """The dataset folder used when none is given: ``$GPSKIT_DATASET`` or ``./gpskit-data``."""
    env = os.environ.get(DATASET_ENV)
    return Path(env) if env else DEFAULT_DATASET_DIR


class Dataset:
    """A dataset folder: its paths, its tables and the freshness of its outputs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def at(cls, path: Path | Dataset | None) -> Dataset:
        """The dataset a command works on: the argument if given, else the default folder."""
        if isinstance(path, Dataset):
            return path
        return cls(path if path is not None else default_dataset_dir())

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r})"

    # --- paths ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def duplicates_path(self) -> Path:
        return self.root / DUPLICATES_FILE

    @property
    def overlap_path(self) -> Path:
        return self.root / OVERLAP_FILE

    @property
    def contact_sheet_path(self) -> Path:
        return self.root / CONTACT_SHEET_FILE

    @property
    def coverage_path(self) -> Path:
        return self.root / COVERAGE_FILE

    @property
    def coverage_dir(self) -> Path:
        return self.root / COVERAGE_DIR

    @property
    def splits_dir(self) -> Path:
        return self.root / SPLITS_DIR

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    def output_path(self, output: StepOutput) -> Path:
        return self.root / output.file

    # --- tables --------------------------------------------------------------------------

    def require_manifest(self) -> None:
        """Fail with the one "run ingest first" message when there is no manifest."""
        if not self.manifest_path.exists():
            raise MissingStepError(
                f"{self.manifest_path} does not exist",
                hint=f"run `gpskit ingest PHOTOS --out {self.root}` first",
            )

    def load_manifest(self) -> pa.Table:
        """``manifest.parquet``, schema-checked."""
        self.require_manifest()
        return read_table(self.manifest_path, load_schema("manifest"))

    def load(self, output: StepOutput) -> pa.Table:
        """A step's output table, schema-checked (missing: say which command makes it)."""
        return read_table(
            self.output_path(output),
            load_schema(output.schema),
            step_hint=f"run `gpskit {output.command} {self.root}` first",
        )

    def load_duplicates(self) -> pa.Table:
        return self.load(DUPLICATES)

    def load_coverage(self) -> pa.Table:
        return self.load(COVERAGE)

    # --- freshness -----------------------------------------------------------------------

    def manifest_fingerprint(self) -> str:
        """SHA-256 of the manifest file's bytes: what later outputs record."""
        digest = hashlib.sha256()
        with open(self.manifest_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def stamp(self, output: StepOutput, options: Any) -> dict[str, str]:
        """Parquet metadata for ``output``: its options and the manifest's hash."""
        record = {"options": asdict(options), "manifest_sha256": self.manifest_fingerprint()}
        return {output.stamp_key: json.dumps(record, sort_keys=True)}

    def stamped_options(self, output: StepOutput) -> dict[str, Any]:
        """The options recorded in an output's stamp (empty when there is none)."""
        record = json.loads(file_metadata(self.output_path(output)).get(output.stamp_key, "{}"))
        options: dict[str, Any] = record.get("options", {})
        return options

    def is_current(self, output: StepOutput) -> bool:
        """True when ``output`` exists and records the current manifest's hash."""
        path = self.output_path(output)
        if not path.exists() or not self.manifest_path.exists():
            return False
        record = json.loads(file_metadata(path).get(output.stamp_key, "{}"))
        return bool(record.get("manifest_sha256") == self.manifest_fingerprint())
