"""``gpskit train``, ``gpskit eval`` and ``gpskit predict`` (need gpskit[train])."""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpskit.cli._common import (
    PROGRESS,
    JsonOpt,
    PlainProgress,
    console,
    dataset_at,
    err_console,
    on_terminal,
    print_json,
    progress_bar,
    styled,
)
from gpskit.csvtext import csv_text
from gpskit.split.options import SplitName
from gpskit.train.options import Arch, Augment, Head, Loss, Method, Part, Target, TrainOptions

_D = TrainOptions()

MethodOpt = Annotated[
    Method | None,
    typer.Option(
        help="head (the last layer), retrieval (nearest training photos) or blend "
        "(default: the run's choice, the best on val).",
        show_default=False,
    ),
]
KnnOpt = Annotated[
    int | None,
    typer.Option(help="Neighbours for retrieval (default: the run's).", show_default=False),
]
TtaOpt = Annotated[
    bool,
    typer.Option("--tta", help="Average five views of each photo (whole + four 90 % crops)."),
]
WindowOpt = Annotated[
    float | None,
    typer.Option(
        "--heading-window",
        help="Retrieval keeps to training photos facing within this many degrees of the "
        "photo's compass heading; 0 for any (default: the run's choice, the best on val).",
        show_default=False,
    ),
]


class OutputFormat(str, Enum):
    """What ``gpskit predict`` prints."""

    CSV = "csv"
    JSON = "json"


TRAIN_EPILOG = """
Examples:

    gpskit train                                   # after `gpskit split`: resnet101, ImageNet weights

    gpskit train --arch resnet18 --epochs 10 --image-size 160 --weights none

    gpskit train --freeze stem,layer1,layer2 --target spot

    gpskit train --head regression --knn 0         # Img2GPS's regressor alone

    gpskit train --out gpskit-data/runs/r1 --resume

    torchrun --nproc_per_node 2 -m gpskit train    # distributed (DDP)
"""


def train_command(
    splits: Annotated[
        Path | None,
        typer.Argument(
            help="What to train on: a dataset folder (after `gpskit split`), its splits/, or "
            "a folder in the Hub's layout (data/train-*.parquet, as `gpskit publish dataset` "
            "writes). Default: the default dataset.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Run folder (default: a new one in DATASET/runs/, named by date, time and arch).",
            show_default=False,
        ),
    ] = None,
    arch: Annotated[Arch, typer.Option(help="The ResNet to train.")] = Arch(_D.arch),
    weights: Annotated[
        str,
        typer.Option(
            help="imagenet (torchvision's, cached on first use), none, or a state-dict file."
        ),
    ] = _D.weights,
    dropout: Annotated[
        float, typer.Option(help="Dropout before the final linear layer.")
    ] = _D.dropout,
    head: Annotated[
        Head,
        typer.Option(
            help="What the last layer predicts: cells (scores over geographic cells), "
            "hybrid (cells + offsets) or regression (Img2GPS's lat/lon)."
        ),
    ] = Head(_D.head),
    knn: Annotated[
        int,
        typer.Option(
            help="Neighbours for retrieval; after training the training photos are embedded "
            "into RUN_DIR/retrieval.npz (0: no index)."
        ),
    ] = _D.knn,
    loss: Annotated[
        Loss,
        typer.Option(
            help="Loss of the regression head: mse+haversine (Img2GPS's), mse, haversine."
        ),
    ] = Loss(_D.loss),
    alpha: Annotated[float, typer.Option(help="Weight of the haversine term (metres).")] = _D.alpha,
    freeze: Annotated[
        str,
        typer.Option(help=f"Comma-separated parts to freeze: {', '.join(p.value for p in Part)}."),
    ] = ",".join(_D.freeze),
    target: Annotated[
        Target, typer.Option(help="photo (its own GPS fix) or spot (its spot's median position).")
    ] = Target(_D.target),
    epochs: Annotated[int, typer.Option(help="Epochs.")] = _D.epochs,
    lr: Annotated[float, typer.Option(help="Peak learning rate (OneCycleLR).")] = _D.lr,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = _D.weight_decay,
    batch_size: Annotated[int, typer.Option(help="Batch size (per process).")] = _D.batch_size,
    image_size: Annotated[int, typer.Option(help="Input size (px).")] = _D.image_size,
    clip_grad: Annotated[float, typer.Option(help="Gradient norm clip (0: off).")] = _D.clip_grad,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda[:N] or mps.")] = _D.device,
    seed: Annotated[int, typer.Option(help="Random seed.")] = _D.seed,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = _D.workers,
    hflip: Annotated[
        bool,
        typer.Option(
            "--hflip", help="Also flip images left-right (a mirrored street is no real place)."
        ),
    ] = _D.hflip,
    augment: Annotated[
        Augment,
        typer.Option(
            help="standard (Img2GPS's: crops, ±10° rotation, colour jitter), light "
            "(milder crops, no rotation or hue: better for small models and few epochs) "
            "or none."
        ),
    ] = Augment(_D.augment),
    amp: Annotated[
        bool,
        typer.Option(
            "--amp/--no-amp", help="Mixed precision on CUDA (bf16 where supported, else fp16)."
        ),
    ] = _D.amp,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the run in --out (its checkpoints and results)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a ResNet to predict where a photo was taken, from the split Parquet files.
    Writes RUN_DIR/metrics.csv, best.pt (by val mean error), last.pt, options.json, the
    retrieval index and prediction.json (head, retrieval or blend: the best on val).
    """
    splits_dir = splits if splits is not None else dataset_at(None).root
    options = TrainOptions(
        arch=arch.value,
        weights=weights,
        dropout=dropout,
        head=head.value,
        knn=knn,
        loss=loss.value,
        alpha=alpha,
        freeze=tuple(p.strip() for p in freeze.split(",") if p.strip()),
        target=target.value,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        image_size=image_size,
        clip_grad=clip_grad,
        device=device,
        seed=seed,
        workers=workers,
        hflip=hflip,
        augment=augment.value,
        amp=amp,
    )
    result = _train_with_progress(splits_dir, out, options, resume, as_json, force)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun, rank 0 alone reports
    if as_json:
        print_json(vars(result))
    else:
        console.print(
            f"best val mean error {result.best_val_mean_m:.1f} m at epoch {result.best_epoch}; "
            f"run: {result.run_dir} ({result.device}, {result.world_size} process(es))"
        )
        _print_choice(result.run_dir)


def _print_choice(run_dir: Any) -> None:
    """What the run will predict with, and why (its validation errors by method)."""
    from gpskit.train.predictor import load_choice

    choice = load_choice(Path(run_dir))
    errors = ", ".join(f"{m} {e:.1f} m" for m, e in sorted(choice["val_mean_m"].items()))
    console.print(
        f"predicts with: {choice['method']}" + (f" (val mean: {errors})" if errors else "")
    )


def epoch_line(stats: Any, epochs: int) -> str:
    """One epoch in under 80 columns: loss, validation error, rate (the learning rate and
    the rest are in metrics.csv and TensorBoard)."""
    return (
        f"epoch {stats.epoch:>3}/{epochs}  loss {stats.train_loss:.4g}  "
        f"val mean {stats.val_mean_m:.1f} m, median {stats.val_median_m:.1f} m  "
        f"{stats.images_per_s:.0f} img/s"
    )


def _train_with_progress(
    splits_dir: Path,
    out: Path | None,
    options: TrainOptions,
    resume: bool,
    as_json: bool,
    replace: bool = False,
) -> Any:
    """Train with batch progress (a bar on a terminal; plain or JSON lines at a steady pace
    in a log, a notebook or CI) and one line per epoch (rank 0, not with --json)."""
    from gpskit.train.engine import train

    show = not as_json and int(os.environ.get("RANK", "0")) == 0
    epoch = {"now": 0}

    def on_epoch(stats: Any) -> None:
        if show and not PROGRESS.quiet:
            if PROGRESS.json_lines:
                record = {"step": "epoch", "epochs": options.epochs, **vars(stats)}
                sys.stderr.write(json.dumps(record, sort_keys=True, default=str) + "\n")
            else:
                err_console.print(epoch_line(stats, options.epochs), soft_wrap=True)

    phases: dict[str, PlainProgress] = {}

    def on_phase(phase: str, done: int, total: int) -> None:
        """Validation and the retrieval index: plain lines in a log (a bar would flicker
        between phases on a terminal, where the epoch line follows in seconds)."""
        if show and not PROGRESS.quiet and not on_terminal():
            phases.setdefault(phase, PlainProgress(phase, PROGRESS)).update(
                done, total, epoch=f"{epoch['now']}/{options.epochs}"
            )
            if done >= total:
                phases.pop(phase)

    with progress_bar("train", enabled=show) as update:

        def on_batch(step: int, total: int) -> None:
            update(step, total, epoch=f"{epoch['now']}/{options.epochs}")

        return train(
            splits_dir,
            out,
            options,
            resume=resume,
            replace=replace,
            on_epoch=on_epoch,
            on_batch=on_batch,
            on_warning=lambda text: err_console.print(styled(("warning:", "yellow"), f" {text}")),
            on_epoch_start=lambda e: epoch.update(now=e),
            on_progress=on_phase,
        )


def eval_command(
    run: Annotated[
        Path | None,
        typer.Argument(help="Run folder (default: the latest run).", show_default=False),
    ] = None,
    split: Annotated[SplitName, typer.Option(help="Split to evaluate.")] = SplitName.TEST,
    splits: Annotated[
        Path | None,
        typer.Option(
            help="Dataset, splits or Hub-layout folder (default: the one the run trained on).",
            show_default=False,
        ),
    ] = None,
    method: MethodOpt = None,
    knn: KnnOpt = None,
    tta: TtaOpt = False,
    heading_window: WindowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Errors of a trained run on a split: mean, median, p90, max, RMSE, share within
    5-100 m, for the head, retrieval and their blend side by side, beside the training-centre
    baseline and the GPS label-noise floor. Writes predictions (by the run's method, or
    --method), eval JSON, error_cdf.png and map.png into the run folder.
    """
    from gpskit.train.evaluate import evaluate, latest_run

    result = evaluate(
        run or latest_run(),
        split.value,
        splits,
        method=method.value if method else None,
        knn=knn,
        tta=tta,
        heading_window=heading_window,
    )
    if as_json:
        print_json(result)
        return
    for table in eval_tables(result):
        console.print(table)
    noise = result["label_noise_floor"]
    if noise.get("photos"):
        console.print(
            f"label-noise floor on this split (fixes around their spot median, spots of 2+ photos): median "
            f"{noise['median_m']:.1f} m, p90 {noise['p90_m']:.1f} m, RMS {noise['rms_m']:.1f} m"
        )
    sectors = ", ".join(f"{k} {v['mean_m']:.0f} m" for k, v in result["by_heading"].items())
    console.print(f"mean error by heading: {sectors}")
    search = result.get("retrieval_search") or {}
    if search.get("recall_at_k") is not None:
        console.print(
            f"retrieval searched {search['rows']:,} photos approximately ({search['clusters']:,} "
            f"clusters, {search['nprobe']} visited): recall@{result['knn']} against the exact "
            f"search {search['recall_at_k']:.3f} (GPSKIT_EXACT_SEARCH=1 searches exactly)"
        )
    for path in result["written"]:
        console.print(f"wrote {path}")


def eval_tables(result: dict[str, Any]) -> list[Table]:
    """Two tables that fit 80 columns: errors (m) and the share within each distance, one
    row per method (the run's choice marked) and the training-centre baseline."""
    m = result["metrics"]
    title = (
        f"{result['arch']} ({result['head']} head) on {result['split']}: "
        f"{m['photos']} photos, target {result['target']}" + (", TTA" if result.get("tta") else "")
    )
    rows = {
        f"{name}{' *' if name == result['method'] else ''}": figures
        for name, figures in result["methods"].items()
    }
    rows["training centre"] = result["baseline_train_mean"]
    errors = Table(title=title, caption="* the method used for predictions")
    errors.add_column("error (m)")
    for column in ("mean", "median", "p90", "max", "RMSE"):
        errors.add_column(column, justify="right")
    within = Table(title="photos within")
    within.add_column("")
    for limit in ("5", "10", "25", "50", "100"):
        within.add_column(f"{limit} m", justify="right")
    for name, s in rows.items():
        errors.add_row(
            name, *(f"{s[k]:.1f}" for k in ("mean_m", "median_m", "p90_m", "max_m", "rmse_m"))
        )
        within.add_row(name, *(f"{s['within_m'][t]:.0%}" for t in ("5", "10", "25", "50", "100")))
    return [errors, within]


def predict_command(
    images: Annotated[
        list[str],
        typer.Argument(help="Photos or folders (any format ingest reads; also s3:// URLs)."),
    ],
    run: Annotated[
        Path | None, typer.Option(help="Run folder (default: the latest run).", show_default=False)
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="What to print.")
    ] = OutputFormat.CSV,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write here instead of stdout.", show_default=False),
    ] = None,
    method: MethodOpt = None,
    knn: KnnOpt = None,
    tta: TtaOpt = False,
    heading_window: WindowOpt = None,
) -> None:
    """Where was each photo taken? Prints path, latitude, longitude (CSV or JSON)."""
    from gpskit.atomic import write_text
    from gpskit.ingest.find import scan
    from gpskit.storage import as_location
    from gpskit.train.evaluate import latest_run, predict

    locations = [as_location(text) for text in images]
    if out is not None:
        from gpskit.outputs import output_file

        output_file(
            out,
            "--out",
            inputs=[ref.absolute for ref in scan(locations)],
            datasets=_datasets_of(run),
        )
    frame = predict(
        run or latest_run(),
        locations,
        method=method.value if method else None,
        knn=knn,
        tta=tta,
        heading_window=heading_window,
    )
    if frame.attrs.get("warnings"):
        err_console.print(
            f"{frame.attrs['warnings']} decoder warnings (odd tags, damaged data) went to "
            f"{frame.attrs['log']}",
            markup=False,
            soft_wrap=True,
        )
    if output is OutputFormat.CSV:
        text = csv_text(frame)
    else:
        text = (
            json.dumps(frame.astype(object).where(frame.notna(), None).to_dict("records"), indent=2)
            + "\n"
        )
    if out is not None:
        write_text(out, text)
        console.print(f"wrote {len(frame)} predictions to {out}")
    else:
        sys.stdout.write(text)


def register(app: typer.Typer) -> None:
    app.command("train", epilog=TRAIN_EPILOG)(train_command)
    app.command(
        "eval",
        epilog="Examples:\n\n    gpskit eval\n\n    gpskit eval gpskit-data/runs/r1 --split val --json",
    )(eval_command)
    app.command(
        "predict",
        epilog="Examples:\n\n    gpskit predict new_photos/\n\n    gpskit predict IMG_0001.HEIC --format json --run gpskit-data/runs/r1",
    )(predict_command)


def _datasets_of(run: Path | None) -> list[Any]:
    """The datasets whose photos a prediction's output must not replace: the one the run
    trained on, and the default one (``$GPSKIT_DATASET`` or ./gpskit-data)."""
    from gpskit.dataset import Dataset
    from gpskit.layout import MANIFEST_FILE, default_dataset_dir
    from gpskit.runfolder import RunFolder

    found = [default_dataset_dir()]
    if run is not None and (recorded := RunFolder(run).recorded_dataset()) is not None:
        found.append(recorded)
    return [Dataset(folder) for folder in found if (folder / MANIFEST_FILE).is_file()]
