"""``gpskit split [DATASET_DIR]``: leak-free train/val/test Parquet splits."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gpskit.cli._common import (
    DatasetArg,
    EngineOpt,
    JsonOpt,
    RayAddressOpt,
    WorkersOpt,
    console,
    dataset_at,
    print_json,
    progress_bar,
    styled,
)
from gpskit.engines import Engine, EngineOptions
from gpskit.split import (
    SPLIT_NAMES,
    SplitOptions,
    SplitReport,
    Strategy,
    format_ratios,
    parse_ratios,
    split,
)

_D = SplitOptions()

EPILOG = """
Examples:

    gpskit split                                  # by spot, 0.8/0.1/0.1, seed 0

    gpskit split --strategy block --block 40 --buffer 10

    gpskit split --embed --max-side 384 --force   # self-contained Parquet files

    gpskit split --export-csv --json
"""


def split_command(
    dataset: DatasetArg = None,
    strategy: Annotated[
        Strategy,
        typer.Option(
            help="spot: whole spots; block: square blocks; random: leaks (comparison only); "
            "given: the split the photos came with (a Hub dataset's), its leakage measured."
        ),
    ] = Strategy(_D.strategy),
    ratios: Annotated[str, typer.Option(help="train,val,test shares.")] = format_ratios(_D.ratios),
    seed: Annotated[
        int, typer.Option(help="Random seed: same inputs and seed, same files.")
    ] = _D.seed,
    block: Annotated[float, typer.Option(help="Block size (m) for --strategy block.")] = _D.block_m,
    buffer: Annotated[
        float,
        typer.Option(
            help="Block strategy: drop evaluation photos this close (m) to another split's block."
        ),
    ] = _D.buffer_m,
    include_duplicates: Annotated[
        bool,
        typer.Option(
            "--include-duplicates",
            help="Keep non-keeper copies (they stay in their keeper's split, but weigh more).",
        ),
    ] = _D.include_duplicates,
    include_rejected: Annotated[
        bool,
        typer.Option(
            "--include-rejected",
            help="Keep rejected photos that still have a position (risk: poor, stale or noisy GPS labels).",
        ),
    ] = _D.include_rejected,
    include_outside: Annotated[
        bool,
        typer.Option(
            "--include-outside",
            help="Keep photos outside the region (risk: wrong labels, off the study area).",
        ),
    ] = _D.include_outside,
    embed: Annotated[
        bool,
        typer.Option(
            "--embed", help="Embed each image (oriented, resized JPEG) in the Parquet files."
        ),
    ] = _D.embed,
    max_side: Annotated[
        int, typer.Option(help="Longest side of embedded images (px).")
    ] = _D.max_side,
    workers: WorkersOpt = _D.workers,
    engine: EngineOpt = Engine(_D.engine.engine),
    ray_address: RayAddressOpt = None,
    export_csv: Annotated[
        bool,
        typer.Option(
            "--export-csv", help="Also write {split}.csv: image_path, latitude, longitude."
        ),
    ] = _D.export_csv,
    force: Annotated[bool, typer.Option("--force", help="Replace existing splits.")] = _D.force,
    as_json: JsonOpt = False,
) -> None:
    """Split accepted, kept photos inside the region into train/val/test so that no spot,
    block or duplicate group straddles two splits. Writes DATASET_DIR/splits/
    ({train,val,test}.parquet and split.json with counts and a leakage report).
    Runs dedup and coverage first when their outputs are missing.
    """
    options = SplitOptions(
        strategy=strategy.value,
        ratios=parse_ratios(ratios),
        seed=seed,
        block_m=block,
        buffer_m=buffer,
        include_duplicates=include_duplicates,
        include_outside=include_outside,
        include_rejected=include_rejected,
        embed=embed,
        max_side=max_side,
        workers=workers,
        engine=EngineOptions(engine.value, ray_address),
        export_csv=export_csv,
        force=force,
    )
    with progress_bar("embed", enabled=not as_json) as update:
        report = split(dataset_at(dataset), options, progress=update)
    if as_json:
        print_json(report.to_dict())
    else:
        show(report)


def show(report: SplitReport) -> None:
    for note in report.notes:
        console.print(f"note: {note}")
    for warning in report.warnings:
        console.print(styled(("warning:", "yellow"), f" {warning}"))
    table = Table(title=f"{report.strategy} split, seed {report.seed}")
    for column in ("split", "photos", "share", "units", "nearest train photo (min / median)"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for name in SPLIT_NAMES:
        near = report.leakage["nearest_train_m"].get(name, {})
        distance = (
            ""
            if name == "train" or near.get("min_m") is None
            else f"{near['min_m']:.1f} / {near['median_m']:.1f} m"
        )
        table.add_row(
            name,
            str(report.counts[name]),
            f"{report.shares[name]:.3f}",
            str(report.units[name]),
            distance,
        )
    console.print(table)
    _show_leakage(report)
    noise = report.label_noise_m
    if noise.get("photos"):
        console.print(
            f"label-noise floor, all splits (fixes around their spot median, spots of 2+ photos): "
            f"median {noise['median_m']:.1f} m, "
            f"p90 {noise['p90_m']:.1f} m"
        )
    excluded = ", ".join(f"{k} {v}" for k, v in report.excluded.items() if v)
    if excluded:
        console.print(f"left out: {excluded}")
    shown = report.duplicates_left_out[:10]
    for row in shown:
        console.print(
            f"  duplicate left out: {row['photo']} ({row['kind']}, {row['match'] or 'via its group'}; "
            f"kept {row['kept_instead']})",
            markup=False,
            soft_wrap=True,
        )
    if len(report.duplicates_left_out) > len(shown):
        console.print(
            f"  ... {len(report.duplicates_left_out) - len(shown)} more in split.json "
            "(duplicates_left_out); `gpskit dedup --pairs FILE.csv` shows every link"
        )
    for path in report.written:
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("split", epilog=EPILOG)(split_command)


def _show_leakage(report: SplitReport) -> None:
    """What crosses the splits: duplicate pairs, and spots on both sides."""
    pairs = report.leakage["duplicate_pairs_across"]
    leaks = sum(pairs.values())
    colour = "green" if not leaks else "red"
    console.print(
        styled((f"duplicate pairs across splits: {leaks}", colour), f" {pairs if leaks else ''}")
    )
    spots = report.leakage.get("spots_across", {})
    if spots:
        colour = "green" if not spots["spots"] else "red"
        console.print(
            styled(
                (f"spots on both sides: {spots['spots']} of {spots['of_spots']}", colour),
                f"; evaluation photos at a training spot: val {spots['val_photos_at_train_spots']} "
                f"of {report.counts['val']}, test {spots['test_photos_at_train_spots']} "
                f"of {report.counts['test']}",
            )
        )
