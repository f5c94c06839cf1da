"""Model folders: a training run's folder and a published model's, behind one interface.

As :class:`~gpskit.dataset.Dataset` owns the dataset folder, a model folder owns its
files: every name is said here once, which file holds the model (a run's ``best.pt``,
else ``last.pt``; a published folder's ``model.safetensors``), which prediction method
the run chose, and whether an output (an evaluation, predictions) is current with the
model it came from. Torch-free: the CLI, the web app and ``gpskit info`` read folders
without the ``train`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpskit import paths
from gpskit.errors import MissingStepError

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"
METRICS_FILE = "metrics.csv"
OPTIONS_FILE = "options.json"
INDEX_FILE = "retrieval.npz"
PREDICTION_FILE = "prediction.json"
TENSORBOARD_DIR = "tensorboard"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"


class ModelFolder:
    """What every folder that holds a model has: a retrieval index, the chosen prediction
    method, evaluations and predictions (written by ``gpskit eval``)."""

    kind = "model"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    @property
    def model_file(self) -> Path | None:
        """The file that holds the weights to load, or None if there is none."""
        raise NotImplementedError

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def prediction_path(self) -> Path:
        return self.root / PREDICTION_FILE

    def predictions_path(self, split: str) -> Path:
        return self.root / f"predictions-{split}.parquet"

    def evaluation_path(self, split: str) -> Path:
        return self.root / f"eval-{split}.json"

    def has_model(self) -> bool:
        return self.model_file is not None

    def require_model(self) -> Path:
        """The model file, or one clear error saying what the folder lacks."""
        found = self.model_file
        if found is None:
            raise MissingStepError(
                f"{self.root}: no {BEST_CHECKPOINT}, {LAST_CHECKPOINT} or {WEIGHTS_FILE}",
                hint="give a run folder from `gpskit train` or a folder from "
                "`gpskit publish model`",
            )
        return found

    def is_current(self, output: Path) -> bool:
        """Whether ``output`` was written after the model it describes (an evaluation of an
        earlier model, before a resumed or repeated training, is stale)."""
        model = self.model_file
        if model is None or not output.exists():
            return False
        return output.stat().st_mtime_ns >= model.stat().st_mtime_ns

    def evaluation(self, split: str) -> dict[str, Any] | None:
        """The figures of ``gpskit eval`` on ``split`` when current with the model, else None."""
        path = self.evaluation_path(split)
        if not self.is_current(path):
            return None
        try:
            found = json.loads(paths.read_text(path))
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def updated_ns(self) -> int:
        """When the model was last written (0 without one): the newest run is the latest."""
        model = self.model_file
        return model.stat().st_mtime_ns if model is not None else 0


class RunFolder(ModelFolder):
    """A training run: checkpoints, metrics, options, TensorBoard curves."""

    kind = "run"

    @property
    def best_path(self) -> Path:
        return self.root / BEST_CHECKPOINT

    @property
    def last_path(self) -> Path:
        return self.root / LAST_CHECKPOINT

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def options_path(self) -> Path:
        return self.root / OPTIONS_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.root / TENSORBOARD_DIR

    def has_checkpoint(self) -> bool:
        """Whether a run trained (or started training) here."""
        return self.best_path.is_file() or self.last_path.is_file()

    def recorded_dataset(self) -> Path | None:
        """The dataset folder whose splits the run trained on (from options.json)."""
        try:
            record = json.loads(self.options_path.read_text(encoding="utf-8"))
            return Path(record["splits_dir"]).parent
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def model_file(self) -> Path | None:
        """``best.pt`` (the best epoch on val), else ``last.pt`` (a run stopped before one
        finished validating), else None."""
        for path in (self.best_path, self.last_path):
            if path.is_file():
                return path
        return None


class PublishedModel(ModelFolder):
    """A model folder in the Hugging Face Hub's layout (``gpskit publish model``)."""

    kind = "published"

    @property
    def weights_path(self) -> Path:
        return self.root / WEIGHTS_FILE

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def card_path(self) -> Path:
        return self.root / CARD_FILE

    @property
    def model_file(self) -> Path | None:
        both = self.weights_path.is_file() and self.config_path.is_file()
        return self.weights_path if both else None


def open_model_folder(path: Path) -> RunFolder | PublishedModel:
    """The model folder at ``path``: a run (checkpoints win), else a published model; one
    clear error when it holds neither."""
    if not Path(path).is_dir():
        raise MissingStepError(
            f"{path}: no such folder",
            hint="give a run folder from `gpskit train` or a folder from `gpskit publish model`",
        )
    run = RunFolder(path)
    if run.has_model():
        return run
    published = PublishedModel(path)
    if published.has_model():
        return published
    run.require_model()
    raise AssertionError("unreachable")  # require_model raised


def latest_run(runs_dir: Path) -> RunFolder:
    """The run under ``runs_dir`` whose model was written last."""
    runs = [RunFolder(p) for p in sorted(runs_dir.glob("*")) if p.is_dir()]
    trained = [r for r in runs if r.has_model()]
    if not trained:
        raise MissingStepError(
            f"no trained run under {runs_dir}", hint="run `gpskit train` first, or pass RUN"
        )
    return max(trained, key=lambda r: (r.updated_ns(), r.root.name))
