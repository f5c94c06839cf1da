"""``gpskit sweep``: Img2GPS's experiments as one command (needs gpskit[train])."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpskit.cli._common import (
    PROGRESS,
    JsonOpt,
    console,
    dataset_at,
    err_console,
    print_json,
    styled,
)

SWEEP_EPILOG = """
Examples:

    gpskit sweep --grid batch_size=32,64,128 --grid arch=resnet18,resnet101

    gpskit sweep --preset loss --set epochs=10        # MSE vs MSE + alpha x geodesic

    gpskit sweep --preset freeze --preset arch --out gpskit-data/sweeps/study

Presets: batch (32, 64, 128), loss (mse, mse+haversine with alpha 0.01/0.1/1, haversine),
arch (resnet18, resnet101), freeze (none ... up to layer3), head (regression, cells,
hybrid). Values with several items join them with + (freeze=none,stem+layer1).
"""


def sweep_command(
    splits: Annotated[
        Path | None,
        typer.Argument(
            help="What to train on: a dataset folder, its splits/, or a Hub-layout folder "
            "(default: the default dataset).",
            show_default=False,
        ),
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            help="An axis of the grid, KEY=V1,V2,... (a train option); repeat for more axes.",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        list[str] | None,
        typer.Option(
            "--preset",
            help="One of Img2GPS's questions: batch, loss, arch, freeze (or head); repeatable.",
            show_default=False,
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="KEY=VALUE for every run (e.g. epochs=10); repeatable.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Sweep folder (default: DATASET/sweeps/sweep).", show_default=False
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs and stop.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Train one run per combination of options, evaluate each on val and test, and
    compare them: SWEEP_DIR/sweep.parquet, sweep.png and sweep.html. Finished runs are
    skipped on a re-run; every run uses the same seed.
    """
    from dataclasses import asdict

    from gpskit.train.options import TrainOptions
    from gpskit.train.sweep import parse_grid, parse_settings, plan, sweep

    splits_dir = splits if splits is not None else dataset_at(None).root
    base = TrainOptions(**{**asdict(TrainOptions()), **parse_settings(settings or [])})
    runs = plan(base, parse_grid(grid or [], preset or []))
    if dry_run:
        names = [{"run": r.name, "options": r.varied} for r in runs]
        if as_json:
            print_json(names)
        else:
            for r in runs:
                console.print(f"{r.name}")
        return

    from gpskit.cli.train import epoch_line
    from gpskit.splitfolder import SplitFolder

    out_dir = out if out is not None else SplitFolder.at(splits_dir).sweeps_dir / "sweep"

    def on_run(i: int, run: Any, state: str) -> None:
        if not as_json and state != "done":
            err_console.print(styled((f"{i + 1}/{len(runs)}", "bold"), f" {run.name}: {state}"))

    def on_epoch(run: Any, stats: Any) -> None:
        if not as_json and not PROGRESS.quiet:
            err_console.print(
                f"{run.name}: {epoch_line(stats, run.options.epochs)}", markup=False, soft_wrap=True
            )

    def on_result(i: int, run: Any, row: dict[str, Any]) -> None:
        if not as_json and not PROGRESS.quiet:
            err_console.print(
                f"{i + 1}/{len(runs)} {run.name}: val mean {row['val_mean_m']:.1f} m, "
                f"test mean {row['test_mean_m']:.1f} m ({row['method']})",
                markup=False,
                soft_wrap=True,
            )

    table = sweep(splits_dir, out_dir, runs, on_run=on_run, on_epoch=on_epoch, on_result=on_result)
    if as_json:
        print_json({"out": str(out_dir), "runs": table.to_dict("records")})
        return
    console.print(sweep_table(table))
    for name in ("sweep.parquet", "sweep.png", "sweep.html"):
        console.print(f"wrote {out_dir / name}")


def sweep_table(table: Any) -> Table:
    """The comparison: errors (m) and time per run, best on val marked."""
    view = Table(title="sweep (errors in m; * best on val)")
    for column in ("run", "method", "val mean", "test mean", "test median", "train s"):
        view.add_column(column, justify="left" if column in ("run", "method") else "right")
    best = table.val_mean_m.idxmin() if table.val_mean_m.notna().any() else None
    for i, row in table.iterrows():
        view.add_row(
            f"{row.run}{' *' if i == best else ''}",
            str(row.method),
            f"{row.val_mean_m:.1f}",
            f"{row.test_mean_m:.1f}",
            f"{row.test_median_m:.1f}",
            f"{row.train_seconds:.0f}",
        )
    return view


def register(app: typer.Typer) -> None:
    app.command("sweep", epilog=SWEEP_EPILOG)(sweep_command)
