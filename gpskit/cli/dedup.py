"""``gpskit dedup [DATASET_DIR]``: exact copies, near-duplicates and bursts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, print_json, styled
from gpskit.dedup import KINDS, DedupOptions, DedupReport, dedup
from gpskit.dedup.options import DEFAULT_WITHIN_M

_D = DedupOptions()

EPILOG = """
Examples:

    gpskit dedup                                 # the default dataset, ./gpskit-data

    gpskit dedup campus/ --pairs pairs.csv --json

    gpskit dedup --against eval-set/             # photos that also appear in eval-set/

    gpskit dedup --near 6 --dry-run              # try a stricter threshold, write nothing

    gpskit dedup --within 100                    # compare only photos taken within 100 m
"""


def dedup_command(
    dataset: DatasetArg = None,
    near: Annotated[
        int, typer.Option(help="pHash distance (bits) for near-duplicates.")
    ] = _D.near_threshold,
    crop: Annotated[
        int,
        typer.Option(help="pHash distance (bits) to another photo's crop hashes (cropped copies)."),
    ] = _D.crop_threshold,
    no_crops: Annotated[
        bool,
        typer.Option(
            "--no-crops", help="Skip the crop comparison (faster, misses cropped copies)."
        ),
    ] = not _D.crop_variants,
    dihedral: Annotated[
        bool,
        typer.Option(
            "--dihedral/--no-dihedral",
            help="Also find copies turned a quarter, upside down or mirrored.",
        ),
    ] = _D.dihedral,
    burst_radius: Annotated[
        float, typer.Option(help="Bursts: same place within this (m).")
    ] = _D.burst_radius_m,
    burst_heading: Annotated[
        float, typer.Option(help="Bursts: same heading within this (degrees).")
    ] = _D.burst_heading_deg,
    burst_seconds: Annotated[
        float, typer.Option(help="Bursts: taken within this many seconds.")
    ] = _D.burst_seconds,
    burst_bits: Annotated[
        int,
        typer.Option(
            help="Bursts: frames must look alike, their 256-bit pHashes within this many bits "
            "(distinct views differ by 86 or more)."
        ),
    ] = _D.burst_max_bits,
    conflict: Annotated[
        float,
        typer.Option(help="Flag duplicates whose GPS positions are further apart than this (m)."),
    ] = _D.conflict_m,
    within: Annotated[
        float | None,
        typer.Option(
            help="Compare photos for near, crop, turned and border copies only when they are "
            "within this many metres (photos without a usable position, or nearer a pole than "
            "80°, are compared with all). Default: "
            "every pair, unless that is predicted over an hour, then "
            f"{DEFAULT_WITHIN_M:g} m.",
            metavar="METRES",
        ),
    ] = None,
    everywhere: Annotated[
        bool,
        typer.Option(
            "--everywhere",
            help="Compare every pair of photos, however far apart (refused if predicted over "
            "an hour).",
        ),
    ] = False,
    against: Annotated[
        Path | None,
        typer.Option(
            help="Another dataset folder: list photos that also appear there (leakage check)."
        ),
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option(help="Write every linked pair with its distances to this CSV.")
    ] = None,
    sheet: Annotated[
        bool, typer.Option("--sheet/--no-sheet", help="Draw duplicates.png, the largest groups.")
    ] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find exact copies, near-duplicates (re-encoded, resized, cropped, brightened) and
    bursts; group them, pick a keeper per group and write duplicates.parquet. Nothing is
    deleted; later steps use keepers only.
    """
    options = DedupOptions(
        near_threshold=near,
        crop_threshold=crop,
        crop_variants=not no_crops,
        dihedral=dihedral,
        burst_radius_m=burst_radius,
        burst_heading_deg=burst_heading,
        burst_seconds=burst_seconds,
        burst_max_bits=burst_bits,
        conflict_m=conflict,
        within_m=within,
        everywhere=everywhere,
    )
    report = dedup(
        dataset_at(dataset),
        options,
        against=against,
        pairs_csv=pairs,
        contact_sheet=sheet,
        dry_run=dry_run,
    )
    if as_json:
        print_json(report.to_dict())
    else:
        show(report, dry_run)


def show(report: DedupReport, dry_run: bool) -> None:
    table = Table(
        title=f"duplicates in {report.dataset_dir} ({report.photos} files, {report.hashed} hashed)"
    )
    for column in ("kind", "groups", "photos in groups", "redundant copies"):
        table.add_column(column, justify="right" if column != "kind" else "left")
    for kind in KINDS:
        table.add_row(
            kind,
            str(report.groups[kind]),
            str(report.photos_in_groups[kind]),
            str(report.redundant[kind]),
        )
    table.add_row(
        styled(("all", "bold")),
        str(sum(report.groups.values())),
        str(sum(report.photos_in_groups.values())),
        str(sum(report.redundant.values())),
    )
    console.print(table)
    if report.gps_conflicts:
        console.print(
            styled(
                (
                    f"{report.gps_conflicts} duplicates disagree with their keeper's GPS "
                    "position (gps_conflict): a label is wrong somewhere",
                    "red",
                )
            )
        )
    if report.overlap is not None:
        o = report.overlap
        console.print(
            styled(
                f"also in {o['other_dataset']}: ",
                (str(o["photos_also_in_other"]), "bold"),
                f" photos ({o['by_kind']})",
            )
        )
    if report.search is not None and report.search["within_m"] is not None:
        console.print(
            f"compared photos within {report.search['within_m']:g} m of each other "
            "(and every photo without GPS); --everywhere compares every pair"
        )
    if dry_run:
        console.print("dry run: nothing written")
    for path in report.written:
        console.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("dedup", epilog=EPILOG)(dedup_command)
