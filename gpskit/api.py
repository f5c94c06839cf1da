"""The Python API: a dataset folder with its steps as methods, and trained models that
place photos held in memory. The CLI prints what these return.

>>> import gpskit
>>> data = gpskit.Dataset("campus-data")               # doctest: +SKIP
>>> data.ingest(["photos/"]).accepted                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpskit import dataset

if TYPE_CHECKING:
    import pandas as pd

    from gpskit.coverage import CoverageOptions, CoverageReport
    from gpskit.dedup import DedupOptions, DedupReport
    from gpskit.ingest import IngestOptions, IngestReport
    from gpskit.ingest.options import ProgressCallback
    from gpskit.split import SplitOptions, SplitReport
    from gpskit.train.inference import Predictor
    from gpskit.train.options import TrainOptions, TrainResult


class Dataset(dataset.Dataset):
    """A dataset folder and the pipeline's steps on it, each returning the report the CLI
    prints from (``report.to_dict()`` is the CLI's ``--json``)."""

    def ingest(
        self,
        photos: Iterable[Path | str],
        options: IngestOptions | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Read photos into the manifest: folders, files, ``s3://`` URLs, tables of photos
        and Hub datasets (``options.labels``: tables of positions by file name)."""
        from gpskit.ingest import ingest

        return ingest(list(photos), self, options, progress)

    def dedup(self, options: DedupOptions | None = None, **extras: Any) -> DedupReport:
        """Group copies and bursts (``extras``: ``against``, ``pairs_csv``, ``dry_run``)."""
        from gpskit.dedup import dedup

        return dedup(self, options, **extras)

    def coverage(self, options: CoverageOptions | None = None, draw: bool = True) -> CoverageReport:
        """Where the photos are, where they are missing, and a walking plan."""
        from gpskit.coverage import coverage

        return coverage(self, options, draw=draw)

    def split(self, options: SplitOptions | None = None) -> SplitReport:
        """Leak-free train/val/test splits (by spot, unless told otherwise)."""
        from gpskit.split import split

        return split(self, options)

    def train(
        self, options: TrainOptions | None = None, out: Path | str | None = None
    ) -> TrainResult:
        """Train a model on this dataset's splits (needs ``gpskit[train]``); the run folder
        is ``result.run_dir`` (``DATASET/runs/...`` unless ``out``)."""
        from gpskit.train.engine import train
        from gpskit.train.options import TrainOptions as Options

        return train(self.root, None if out is None else Path(out), options or Options())

    def manifest(self, columns: list[str] | None = None) -> pd.DataFrame:
        """The manifest as a DataFrame (every file, accepted or rejected with reasons)."""
        frame: pd.DataFrame = self.load_manifest(columns).to_pandas()
        return frame

    def splits(self, name: str = "train") -> pd.DataFrame:
        """One split (train, val, test) as a DataFrame, images embedded or as paths."""
        from gpskit.splitfolder import SplitFolder

        return SplitFolder.at(self.root).read(name)


def load_model(folder: Path | str, device: str = "auto", method: str | None = None) -> Predictor:
    """A run folder or a published model folder, ready to place photos: its
    ``predict(images)`` takes paths, PIL images or numpy arrays (one or a list) and returns
    :class:`~gpskit.train.inference.Prediction` objects (needs ``gpskit[train]``)."""
    from gpskit.train.inference import load

    return load(folder, device, method)
