"""``gpskit eval`` and ``gpskit predict``: a trained run on a split, or on new photos."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gpskit.atomic import write_text
from gpskit.dataset import Dataset
from gpskit.errors import InputError, MissingStepError
from gpskit.geo import label_noise
from gpskit.imaging import decode_oriented
from gpskit.schema import load_schema, write_table
from gpskit.train import require_torch
from gpskit.train.data import SplitDataset, read_split, target_columns, transforms
from gpskit.train.engine import _loader, load_checkpoint, pick_device, predict_batches
from gpskit.train.loss import TargetScaler
from gpskit.train.metrics import by_sector, errors_m, summary
from gpskit.train.model import build_model


@dataclass
class LoadedRun:
    run_dir: Path
    checkpoint: dict[str, Any]
    model: Any
    scaler: TargetScaler
    device: Any

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.checkpoint["options"])


def latest_run(dataset_dir: Path | None = None) -> Path:
    """The newest run folder (with a checkpoint) under DATASET_DIR/runs/."""
    runs = Dataset.at(dataset_dir).runs_dir
    candidates = sorted(
        (p for p in runs.glob("*") if (p / "best.pt").exists() or (p / "last.pt").exists()),
        key=lambda p: (p.stat().st_mtime, p.name),
    )
    if not candidates:
        raise MissingStepError(
            f"no trained run under {runs}", hint="run `gpskit train` first, or pass RUN"
        )
    return candidates[-1]


def load_run(run_dir: Path, device: str = "auto") -> LoadedRun:
    """The best checkpoint of a run (last.pt if there is no best.pt), ready to predict."""
    path = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    if not path.exists():
        raise MissingStepError(
            f"{run_dir}: no best.pt or last.pt", hint="is this a gpskit run folder?"
        )
    checkpoint = load_checkpoint(path)
    options = checkpoint["options"]
    model = build_model(checkpoint["arch"], "none", float(options["dropout"]))
    model.load_state_dict(checkpoint["model"])
    target = pick_device(device)
    model.to(target).eval()
    return LoadedRun(
        run_dir, checkpoint, model, TargetScaler.from_dict(checkpoint["normalisation"]), target
    )


def predict_split(run: LoadedRun, frame: pd.DataFrame) -> tuple[Any, Any]:
    """Predicted latitude and longitude of every row of a split frame."""
    options = run.options
    image_size = int(options["image_size"])
    dataset = SplitDataset(
        frame, run.scaler, options["target"], transforms(image_size, False), image_size
    )
    loader = _loader(dataset, int(options["batch_size"]), int(options.get("workers", 0)))
    predictions = predict_batches(run.model, loader, run.device, None).double().numpy()
    return run.scaler.decode(predictions[:, 0], predictions[:, 1])


def _figures(
    run: LoadedRun, split: str, frame: pd.DataFrame, train: pd.DataFrame, errors: Any, baseline: Any
) -> dict[str, Any]:
    both = pd.concat([train, frame])
    return {
        "run": str(run.run_dir),
        "split": split,
        "target": run.options["target"],
        "arch": run.checkpoint["arch"],
        "epoch": int(run.checkpoint["epoch"]),
        "metrics": summary(errors),
        "by_heading": by_sector(errors, frame.heading_sector.to_numpy()),
        "label_noise_floor": label_noise(
            both.latitude, both.longitude, both.spot_latitude, both.spot_longitude, both.spot_id
        ),
        "baseline_train_mean": summary(baseline),
    }


def _draw(
    run: LoadedRun,
    split: str,
    frame: pd.DataFrame,
    table: pd.DataFrame,
    curves: dict[str, Any],
    splits_dir: Path,
) -> list[str]:
    """error_cdf-<split>.png and map-<split>.png in the run folder."""
    from gpskit.plots import error_cdf, prediction_map

    noise = errors_m(
        frame.latitude.to_numpy(float),
        frame.longitude.to_numpy(float),
        frame.spot_latitude.to_numpy(float),
        frame.spot_longitude.to_numpy(float),
    )
    cdf, where = run.run_dir / f"error_cdf-{split}.png", run.run_dir / f"map-{split}.png"
    error_cdf(
        {**curves, "GPS label noise (fix vs spot)": noise},
        cdf,
        title=f"{run.checkpoint['arch']} on {split}: error CDF",
    )
    prediction_map(
        table, where, region=_region_of(splits_dir), title=f"{split}: true (green) vs predicted (red)"
    )
    return [str(cdf), str(where)]


def evaluate(
    run_dir: Path, split: str = "test", splits_dir: Path | None = None, *, draw: bool = True
) -> dict[str, Any]:
    """Errors of a run on a split; writes predictions, eval JSON and plots into the run."""
    run = load_run(run_dir)
    splits_dir = splits_dir or Path(run.checkpoint["splits_dir"])
    frame = read_split(splits_dir, split)
    if not len(frame):
        raise InputError(f"{splits_dir}/{split}.parquet has no rows to evaluate")
    pred_lat, pred_lon = predict_split(run, frame)
    lat_col, lon_col = target_columns(run.options["target"])
    true_lat, true_lon = frame[lat_col].to_numpy(float), frame[lon_col].to_numpy(float)
    errors = errors_m(true_lat, true_lon, pred_lat, pred_lon)
    train = read_split(splits_dir, "train")
    centre_lat, centre_lon = run.scaler.decode(np.zeros(1), np.zeros(1))
    baseline = errors_m(
        true_lat, true_lon, np.full(len(frame), centre_lat[0]), np.full(len(frame), centre_lon[0])
    )
    result = _figures(run, split, frame, train, errors, baseline)
    table = pd.DataFrame(
        {
            "root": frame.root,
            "path": frame.path,
            "split": split,
            "true_latitude": true_lat,
            "true_longitude": true_lon,
            "pred_latitude": np.asarray(pred_lat, float),
            "pred_longitude": np.asarray(pred_lon, float),
            "error_m": errors,
            "spot_id": frame.spot_id.to_numpy(np.int64),
            "heading_sector": frame.heading_sector.to_numpy(),
        }
    )
    target = run_dir / f"predictions-{split}.parquet"
    write_table(
        pa.Table.from_pandas(table, preserve_index=False), target, load_schema("predictions")
    )
    written = [str(target)]
    if draw:
        curves = {"model": errors, "predict the training centre": baseline}
        written += _draw(run, split, frame, table, curves, splits_dir)
    result["written"] = [*written, str(run_dir / f"eval-{split}.json")]
    write_text(
        run_dir / f"eval-{split}.json", json.dumps(result, indent=2, sort_keys=True, default=str)
    )
    return result


def _region_of(splits_dir: Path) -> Any:
    """The region coverage used for this dataset, if it can be found."""
    from gpskit.regions import load_region

    report = Dataset(splits_dir.parent).coverage_dir / "coverage.json"
    try:
        source = json.loads(report.read_text())["region"]["source"]
        return load_region(source)
    except Exception:
        return None


def predict(run_dir: Path, inputs: list[Path]) -> pd.DataFrame:
    """Latitude/longitude for each photo (files and folders, any format ingest reads)."""
    from gpskit.ingest import scan

    torch, _ = require_torch()
    run = load_run(run_dir)
    image_size = int(run.options["image_size"])
    transform = transforms(image_size, False)
    files = scan(inputs)
    rows: list[dict[str, Any]] = []
    batch: list[Any] = []
    batch_rows: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        with torch.no_grad():
            out = run.model(torch.stack(batch).to(run.device)).float().cpu().double().numpy()
        lat, lon = run.scaler.decode(out[:, 0], out[:, 1])
        for row, a, b in zip(batch_rows, np.atleast_1d(lat), np.atleast_1d(lon), strict=True):
            row.update(latitude=float(a), longitude=float(b))
        batch.clear()
        batch_rows.clear()

    for ref in files:
        row: dict[str, Any] = {
            "path": ref.absolute,
            "latitude": None,
            "longitude": None,
            "error": None,
        }
        rows.append(row)
        try:
            image = decode_oriented(ref.absolute, min_side=image_size)
        except Exception as exc:  # not an image, truncated: say so and go on
            row["error"] = f"{type(exc).__name__}: {exc}"
            continue
        batch.append(transform(image))
        batch_rows.append(row)
        if len(batch) >= 32:
            flush()
    flush()
    return pd.DataFrame(rows, columns=["path", "latitude", "longitude", "error"])
