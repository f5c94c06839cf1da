"""``gpskit eval`` and ``gpskit predict``: a trained run on a split, or on new photos."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from gpskit import paths, runfolder
from gpskit.atomic import write_text
from gpskit.dataset import Dataset
from gpskit.errors import InputError
from gpskit.geo import label_noise, label_noise_distances
from gpskit.imaging import decode_oriented
from gpskit.pool import output_to_log
from gpskit.schema import load_schema, write_table
from gpskit.train.data import SplitDataset, read_split, target_columns, transforms
from gpskit.train.inference import (
    LoadedRun,
    choose_method,
    choose_window,
    compass_heading,
    load_run,
)
from gpskit.train.metrics import by_sector, errors_m, summary
from gpskit.train.options import Method
from gpskit.train.predictor import variants
from gpskit.train.session import make_loader


def latest_run(dataset_dir: Path | None = None) -> Path:
    """The run under DATASET_DIR/runs/ whose model was written last."""
    return runfolder.latest_run(Dataset.at(dataset_dir).runs_dir).root


def split_variants(
    run: LoadedRun,
    frame: pd.DataFrame,
    knn: int,
    tta: bool = False,
    window: float | None = None,
) -> dict[str, Any]:
    """Predicted (latitude, longitude) of every row of a split frame, by each method."""
    options = run.options
    image_size = int(options["image_size"])
    dataset = SplitDataset(
        frame, run.scaler, options["target"], transforms(image_size, False), image_size
    )
    loader = make_loader(dataset, int(options["batch_size"]), int(options.get("workers", 0)))
    headings = frame.heading.to_numpy(float, na_value=np.nan)
    found = variants(run.model, loader, run.device, run.head, run.index, knn, tta, headings, window)
    return {m: run.scaler.decode(p[:, 0], p[:, 1]) for m, p in found.items()}


def _figures(
    run: LoadedRun,
    split: str,
    frame: pd.DataFrame,
    train: pd.DataFrame,
    errors: dict[str, Any],
    method: str,
    baseline: Any,
) -> dict[str, Any]:
    both = pd.concat([train, frame])
    return {
        "run": str(run.run_dir),
        "split": split,
        "target": run.options["target"],
        "arch": run.checkpoint["arch"],
        "head": run.head.head,
        "method": method,
        "epoch": int(run.checkpoint["epoch"]),
        "metrics": summary(errors[method]),
        "methods": {name: summary(e) for name, e in errors.items()},
        "by_heading": by_sector(errors[method], frame.heading_sector.to_numpy()),
        "label_noise_floor": label_noise(
            both.latitude, both.longitude, both.spot_latitude, both.spot_longitude, both.spot_id
        ),
        "baseline_train_mean": summary(baseline),
    }


def _draw(
    run: LoadedRun,
    split: str,
    frame: pd.DataFrame,
    found: dict[str, Any],
    curves: dict[str, Any],
    splits_dir: Path,
) -> list[str]:
    """error_cdf-<split>.png and map-<split>.png in the run folder."""
    from gpskit.plots.charts import error_cdf, prediction_map

    noise = label_noise_distances(
        frame.latitude, frame.longitude, frame.spot_latitude, frame.spot_longitude, frame.spot_id
    )
    cdf, where = run.run_dir / f"error_cdf-{split}.png", run.run_dir / f"map-{split}.png"
    error_cdf(
        {**curves, f"GPS label noise on {split} (fix vs spot median)": noise},
        cdf,
        title=f"{run.checkpoint['arch']} on {split}: error CDF",
    )
    lat_col, lon_col = target_columns(run.options["target"])
    centre_lat, centre_lon = run.scaler.decode(np.zeros(1), np.zeros(1))
    prediction_map(
        (frame[lat_col].to_numpy(float), frame[lon_col].to_numpy(float)),
        {m: found[m] for m in (Method.HEAD.value, Method.RETRIEVAL.value) if m in found},
        where,
        region=_region_of(splits_dir),
        centre=(float(centre_lat[0]), float(centre_lon[0])),
        title=f"{split}: true (green) vs predicted (red); blue x: training centre",
    )
    return [str(cdf), str(where)]


def evaluate(
    run_dir: Path,
    split: str = "test",
    splits_dir: Path | None = None,
    *,
    draw: bool = True,
    method: str | None = None,
    knn: int | None = None,
    tta: bool = False,
    heading_window: float | None = None,
) -> dict[str, Any]:
    """Errors of a run on a split, by every method beside the chosen one (``method``:
    head, retrieval or blend; default: the run's choice; ``heading_window``: degrees,
    0 for none, default the run's choice); writes predictions, eval JSON and plots into
    the run."""
    run = load_run(run_dir)
    method, knn = choose_method(run, method, knn)
    window = choose_window(run, heading_window)
    splits_dir = splits_dir or Path(run.checkpoint["splits_dir"])
    frame = read_split(splits_dir, split)
    if not len(frame):
        raise InputError(f"{splits_dir}/{split}.parquet has no rows to evaluate")
    if run.index is not None:
        run.index.audit()  # an approximate search is measured against the exact one
    found = split_variants(run, frame, knn, tta, window)
    lat_col, lon_col = target_columns(run.options["target"])
    true_lat, true_lon = frame[lat_col].to_numpy(float), frame[lon_col].to_numpy(float)
    errors = {m: errors_m(true_lat, true_lon, *found[m]) for m in found}
    pred_lat, pred_lon = found[method]
    train = read_split(splits_dir, "train")
    centre_lat, centre_lon = run.scaler.decode(np.zeros(1), np.zeros(1))
    baseline = errors_m(
        true_lat, true_lon, np.full(len(frame), centre_lat[0]), np.full(len(frame), centre_lon[0])
    )
    result = _figures(run, split, frame, train, errors, method, baseline)
    result["tta"], result["knn"], result["heading_window"] = tta, knn, window
    if run.index is not None:
        result["retrieval_search"] = run.index.search_report()
    table = pd.DataFrame(
        {
            "root": frame.root,
            "path": frame.path,
            "split": split,
            "true_latitude": true_lat,
            "true_longitude": true_lon,
            "pred_latitude": np.asarray(pred_lat, float),
            "pred_longitude": np.asarray(pred_lon, float),
            "error_m": errors[method],
            "spot_id": frame.spot_id.to_numpy(np.int64),
            "heading_sector": frame.heading_sector.to_numpy(),
        }
    )
    folder = runfolder.RunFolder(run_dir)
    target = folder.predictions_path(split)
    write_table(
        pa.Table.from_pandas(table, preserve_index=False), target, load_schema("predictions")
    )
    written = [str(target)]
    if draw:
        curves = {
            **{f"model: {m}": e for m, e in errors.items()},
            "predict the training centre": baseline,
        }
        written += _draw(run, split, frame, found, curves, splits_dir)
    result["written"] = [*written, str(folder.evaluation_path(split))]
    write_text(
        folder.evaluation_path(split), json.dumps(result, indent=2, sort_keys=True, default=str)
    )
    return result


def _region_of(splits_dir: Path) -> Any:
    """The region coverage used for this dataset, if it can be found."""
    from gpskit.regions import load_region

    report = Dataset(splits_dir.parent).coverage_dir / "coverage.json"
    try:
        source = json.loads(paths.read_text(report))["region"]["source"]
        return load_region(source)
    except Exception:
        return None


def predict(
    run_dir: Path,
    inputs: list[Path | str],
    *,
    method: str | None = None,
    knn: int | None = None,
    tta: bool = False,
    heading_window: float | None = None,
) -> pd.DataFrame:
    """Latitude/longitude for each photo (files and folders, any format ingest reads), by
    the run's own method unless told otherwise; needs only the run folder. Retrieval
    keeps to training photos facing the way each photo's EXIF compass heading says."""
    from gpskit.ingest.find import scan
    from gpskit.train.inference import Predictor

    run = load_run(run_dir)
    predictor = Predictor(run, method, knn)
    if heading_window is not None:
        predictor.window = choose_window(run, heading_window)
    image_size = predictor.image_size
    transform = transforms(image_size, False)
    rows: list[dict[str, Any]] = []
    images: list[Any] = []
    headings: list[float] = []
    placed: list[dict[str, Any]] = []
    log = predict_log(run_dir)
    with output_to_log(log) as said:  # decoders' warnings, by the thousand on odd photos
        for ref in scan(inputs):
            row: dict[str, Any] = {
                "path": ref.absolute,
                "latitude": None,
                "longitude": None,
                "error": None,
            }
            rows.append(row)
            try:
                images.append(transform(decode_oriented(ref.absolute, min_side=image_size)))
            except Exception as exc:  # not an image, truncated: say so and go on
                row["error"] = f"{type(exc).__name__}: {exc}"
                continue
            headings.append(compass_heading(ref.absolute))
            placed.append(row)
    predictor.tta = tta
    for row, found in zip(placed, predictor.place(images, headings, neighbours=False), strict=True):
        row.update(latitude=found.latitude, longitude=found.longitude)
    frame = pd.DataFrame(rows, columns=["path", "latitude", "longitude", "error"])
    frame.attrs.update(log=str(log), warnings=len(said))
    return frame


def predict_log(run_dir: Path) -> Path:
    """Where predict keeps what decoders said: the run folder's logs/ when it can be
    written (a published model may be read-only), else the temporary folder."""
    folder = Path(run_dir) / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder / "predict.log"
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "gpskit-predict.log"
