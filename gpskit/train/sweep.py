"""``gpskit sweep``: a grid of training runs, compared in one table and one chart.

The seed study asked four questions — which batch size, MSE alone or MSE + alpha x
geodesic distance, ResNet18 or ResNet101, which layers to freeze — and answered each by
hand. A sweep answers them in one command: each combination of options trains into its own
folder (``SWEEP_DIR/<name>/``), is evaluated on val and test, and lands as one row of
``SWEEP_DIR/sweep.parquet``; ``sweep.png`` draws mean and median error and time per run, and
``sweep.html`` puts both in a page. Every run uses the same seed, so the same grid gives the
same errors; a finished run is skipped on a re-run, an interrupted one resumes from its
``last.pt``.

Grid values are written as in ``--grid batch_size=32,64,128``; a value holding several
items (``freeze``) joins them with ``+`` (``freeze=none,stem+layer1``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from gpskit import paths
from gpskit.atomic import write_text
from gpskit.errors import UsageError
from gpskit.outputs import output_folder
from gpskit.runfolder import RunFolder
from gpskit.schema import load_schema, write_table
from gpskit.train.options import TrainOptions
from gpskit.train.session import load_checkpoint

#: Options a sweep may not vary: where and how a run executes, not what it learns.
FIXED = ("device", "workers")
RESULT_FILE = "sweep.parquet"
DONE_FILE = "sweep-run.json"

#: The study's four questions (and gpskit's own: which head), as lists of option sets.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "batch": [{"batch_size": b} for b in (32, 64, 128)],
    "loss": [  # the loss is the regression head's (the study's question)
        {"head": "regression", "loss": "mse"},
        *({"head": "regression", "loss": "mse+haversine", "alpha": a} for a in (0.01, 0.1, 1.0)),
        {"head": "regression", "loss": "haversine"},
    ],
    "arch": [{"arch": a} for a in ("resnet18", "resnet101")],
    "freeze": [
        {"freeze": ()},
        {"freeze": ("stem", "layer1")},
        {"freeze": ("stem", "layer1", "layer2")},
        {"freeze": ("stem", "layer1", "layer2", "layer3")},
    ],
    "head": [{"head": h} for h in ("regression", "cells", "hybrid")],
}


def _field_types() -> dict[str, Any]:
    defaults = TrainOptions()
    return {f.name: type(getattr(defaults, f.name)) for f in fields(TrainOptions)}


def parse_value(key: str, text: str) -> Any:
    """One option value from its text, typed like the TrainOptions field ``key``."""
    kinds = _field_types()
    if key not in kinds or key in FIXED:
        allowed = ", ".join(k for k in kinds if k not in FIXED)
        raise UsageError(f"--grid/--set: unknown or fixed option {key!r}", hint=f"one of {allowed}")
    kind = kinds[key]
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if kind is tuple:
            return tuple(p for p in text.split("+") if p and p != "none")
        return kind(text)
    except ValueError:
        raise UsageError(
            f"--grid/--set {key}: {text!r} is not a {kind.__name__}",
            hint=f"e.g. {key}={getattr(TrainOptions(), key)!r}".replace("'", ""),
        ) from None


def _assignment(text: str) -> tuple[str, str]:
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise UsageError(f"{text!r} is not KEY=VALUE[,VALUE...]", hint="e.g. batch_size=32,64")
    return key.strip().replace("-", "_"), values.strip()


def parse_grid(grid: list[str], presets: list[str]) -> list[dict[str, Any]]:
    """The option sets to run: each preset's sets, times the cartesian product of the
    ``--grid`` axes (in the order given)."""
    sets: list[dict[str, Any]] = [{}]
    for name in presets:
        if name not in PRESETS:
            raise UsageError(f"--preset: unknown {name!r}", hint=f"one of {', '.join(PRESETS)}")
        sets = [{**a, **b} for a in sets for b in PRESETS[name]]
    for text in grid:
        key, values = _assignment(text)
        axis = [parse_value(key, v.strip()) for v in values.split(",")]
        sets = [{**a, key: v} for a in sets for v in axis]
    unique: list[dict[str, Any]] = []
    for option_set in sets:
        if option_set not in unique:
            unique.append(option_set)
    if unique == [{}]:
        raise UsageError("nothing to sweep", hint="give --grid KEY=V1,V2 or --preset NAME")
    return unique


def parse_settings(settings: list[str]) -> dict[str, Any]:
    """``--set KEY=VALUE``: options every run shares."""
    out = {}
    for text in settings:
        key, value = _assignment(text)
        out[key] = parse_value(key, value)
    return out


def run_name(option_set: dict[str, Any]) -> str:
    """A folder name that says what the run varies: ``batch_size-32_arch-resnet18``."""

    def text(value: Any) -> str:
        if isinstance(value, tuple):
            return "+".join(value) or "none"
        return str(value)

    return "_".join(f"{k}-{text(v)}" for k, v in option_set.items()).replace("/", "-")


@dataclass
class SweepRun:
    name: str
    varied: dict[str, Any]
    options: TrainOptions


def plan(base: TrainOptions, sets: list[dict[str, Any]]) -> list[SweepRun]:
    """Every run's full options (base + its set), checked before anything trains."""
    runs = []
    for option_set in sets:
        options = TrainOptions(**{**asdict(base), **option_set})
        options.validate()
        runs.append(SweepRun(run_name(option_set), option_set, options))
    return runs


def _options_record(options: TrainOptions) -> dict[str, Any]:
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()}
    return {k: v for k, v in record.items() if k not in FIXED}


def _finished(run_dir: Path, options: TrainOptions) -> dict[str, Any] | None:
    """The recorded row of a run that finished with these options, else None."""
    path = run_dir / DONE_FILE
    try:
        record: dict[str, Any] = json.loads(paths.read_text(path))
    except (OSError, ValueError):
        return None
    return record["row"] if record.get("options") == _options_record(options) else None


def _resumable(run_dir: Path, options: TrainOptions) -> bool:
    """Whether the run folder holds an interrupted run of exactly these options (one of
    other options, from an earlier grid, is trained again from scratch)."""
    path = RunFolder(run_dir).last_path
    if not path.exists():
        return False
    try:
        saved = load_checkpoint(path)["options"]
    except Exception:  # unreadable: train again rather than fail the sweep
        return False
    return bool(
        _options_record(TrainOptions(**{**saved, "freeze": tuple(saved.get("freeze", ()))}))
        == _options_record(options)
    )


def _run_one(
    splits_dir: Path, run_dir: Path, run: SweepRun, on_epoch: Callable[[Any], None] | None = None
) -> dict[str, Any]:
    """Train (or resume) one run, evaluate it on val and test: its table row."""
    from gpskit.train.engine import train
    from gpskit.train.evaluate import evaluate

    resume = _resumable(run_dir, run.options)
    result = train(  # the sweep's own run folders: one of other options is trained again
        splits_dir, run_dir, run.options, resume=resume, replace=True, on_epoch=on_epoch
    )
    history = pd.DataFrame(result.history)
    figures = {s: evaluate(run_dir, s, splits_dir, draw=False) for s in ("val", "test")}
    test = figures["test"]
    row = {
        "run": run.name,
        "varied": json.dumps(
            {k: list(v) if isinstance(v, tuple) else v for k, v in run.varied.items()}
        ),
        "method": test["method"],
        "val_mean_m": figures["val"]["metrics"]["mean_m"],
        "val_median_m": figures["val"]["metrics"]["median_m"],
        "test_mean_m": test["metrics"]["mean_m"],
        "test_median_m": test["metrics"]["median_m"],
        "test_head_mean_m": test["methods"]["head"]["mean_m"],
        "baseline_mean_m": test["baseline_train_mean"]["mean_m"],
        "best_epoch": int(result.best_epoch),
        "epochs": int(run.options.epochs),
        "train_seconds": float(history.seconds.sum()) if len(history) else 0.0,
        "images_per_s": float(history.images_per_s.median()) if len(history) else float("nan"),
    }
    record = {"options": _options_record(run.options), "row": row}
    write_text(run_dir / DONE_FILE, json.dumps(record, indent=2, default=str) + "\n")
    return row


def sweep(
    splits_dir: Path,
    out_dir: Path,
    runs: list[SweepRun],
    *,
    on_run: Callable[[int, SweepRun, str], None] | None = None,
    on_epoch: Callable[[SweepRun, Any], None] | None = None,
    on_result: Callable[[int, SweepRun, dict[str, Any]], None] | None = None,
) -> pd.DataFrame:
    """Train and evaluate every run not finished yet; write the comparison table, chart
    and page. ``on_run(i, run, state)`` hears "skipped", "started" and "done";
    ``on_epoch(run, stats)`` each epoch as it ends; ``on_result(i, run, row)`` each run's
    table row as it is known."""
    output_folder(out_dir, "--out")
    rows = []
    for i, run in enumerate(runs):
        run_dir = out_dir / run.name
        row = _finished(run_dir, run.options)
        if row is None:
            if on_run:
                on_run(i, run, "started")
            hear = None if on_epoch is None else (lambda stats, run=run: on_epoch(run, stats))
            row = _run_one(splits_dir, run_dir, run, hear)
            state = "done"
        else:
            state = "skipped"
        rows.append(row)
        if on_run:
            on_run(i, run, state)
        if on_result:
            on_result(i, run, row)
        write_results(out_dir, pd.DataFrame(rows))  # a partial table survives an interruption
    return pd.DataFrame(rows)


def write_results(out_dir: Path, table: pd.DataFrame) -> list[Path]:
    """sweep.parquet (schema ``sweep``), sweep.png and sweep.html."""
    from gpskit.plots.charts import sweep_chart

    parquet, chart, page = out_dir / RESULT_FILE, out_dir / "sweep.png", out_dir / "sweep.html"
    write_table(pa.Table.from_pandas(table, preserve_index=False), parquet, load_schema("sweep"))
    sweep_chart(table, chart)
    write_text(page, sweep_page(table, chart))
    return [parquet, chart, page]


def sweep_page(table: pd.DataFrame, chart: Path) -> str:
    """A self-contained HTML section: the table and the chart."""
    import base64
    import html

    columns = ["run", "method", "val_mean_m", "test_mean_m", "test_median_m", "train_seconds"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{v:.1f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
            for v in (row[c] for c in columns)
        )
        + "</tr>"
        for _, row in table.iterrows()
    )
    image = base64.b64encode(chart.read_bytes()).decode()
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>gpskit sweep</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
        "text-align:right}th{border-bottom:1px solid #888}</style></head><body>"
        "<section id='sweep'><h2>Sweep: error and time per run</h2>"
        "<p>Errors in metres on unseen spots; every run used the same seed. The runs are "
        "compared on val (choose by it); test is reported once per run.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"<img alt='sweep chart' src='data:image/png;base64,{image}'></section></body></html>"
    )
