"""``gpskit coverage [DATASET_DIR]`` and ``gpskit regions``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gpskit import arguments
from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, print_json, styled
from gpskit.coverage import CoverageOptions, CoverageReport, coverage
from gpskit.errors import CheckFailedError
from gpskit.geo import SECTORS
from gpskit.regions import bundled_regions

_D = CoverageOptions()

EPILOG = """
Examples:

    gpskit coverage                              # default dataset and region (penn_campus)

    gpskit coverage campus/ --cell 10 --min-per-cell 3

    gpskit coverage --region my_area.geojson --declination -11.5

    gpskit coverage --fail-under 90 --json       # non-zero exit below 90 % of cells
"""


def coverage_command(
    dataset: DatasetArg = None,
    region: Annotated[
        str, typer.Option(help="Bundled region name (see `gpskit regions`) or a GeoJSON file.")
    ] = _D.region,
    cell: Annotated[float, typer.Option(help="Grid cell size (m).")] = _D.cell_m,
    min_per_cell: Annotated[
        int, typer.Option(help="Photos a cell needs to count as covered.")
    ] = _D.min_per_cell,
    spot_radius: Annotated[
        float, typer.Option(help="Photos whose fixes chain within this (m) form one spot.")
    ] = _D.spot_radius_m,
    declination: Annotated[
        float | None,
        typer.Option(
            help="Magnetic declination (degrees, east positive) to correct magnetic headings."
        ),
    ] = _D.declination,
    fail_under: Annotated[
        float | None,
        typer.Option(help="Exit with status 1 when fewer than PCT % of cells are covered."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check photos against the region: inside/outside, grid cells without photos, spots
    missing some of the 8 headings, and a walking plan to fill the gaps. Writes
    coverage.parquet and DATASET_DIR/coverage/ (coverage.json, gaps.geojson, coverage.png,
    plan.csv, plan.geojson).
    """
    arguments.optional_number("--fail-under", fail_under, minimum=0, maximum=100)
    options = CoverageOptions(
        region=region,
        cell_m=cell,
        min_per_cell=min_per_cell,
        spot_radius_m=spot_radius,
        declination=declination,
    )
    report = coverage(dataset_at(dataset), options)
    if as_json:
        print_json(report.to_dict())
    else:
        show(report)
    if fail_under is not None and report.grid["covered_pct"] < fail_under:
        raise CheckFailedError(
            f"{report.grid['covered_pct']:.1f} % of cells covered, under --fail-under {fail_under:g}"
        )


def show(report: CoverageReport) -> None:
    g, s, p, h = report.grid, report.spots, report.photos, report.headings
    table = Table(
        title=f"coverage of {report.region['name']} ({report.region['area_m2'] / 1e4:.2f} ha)",
        show_header=False,
    )
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("photos inside / outside", f"{p['inside']} / {p['outside']}")
    table.add_row(
        f"cells of {g['cell_m']:g} m covered",
        f"{g['covered_cells']} / {g['cells']} ({g['covered_pct']:.1f} %)",
    )
    table.add_row(
        "photos per cell (min / median / max)",
        f"{g['photos_per_cell']['min']} / {g['photos_per_cell']['median']:g} / {g['photos_per_cell']['max']}",
    )
    table.add_row(
        "spots with all 8 headings", f"{s['complete']} / {s['spots']} ({s['complete_pct']:.1f} %)"
    )
    table.add_row(
        "missing headings by sector", " ".join(f"{k}:{s['missing_by_sector'][k]}" for k in SECTORS)
    )
    table.add_row("photos without heading", str(h["without_heading"]))
    if h["magnetic"]:
        state = (
            f"corrected by {h['declination']:g}°"
            if h["magnetic_corrected"]
            else "NOT corrected (give --declination)"
        )
        table.add_row("magnetic headings", f"{h['magnetic']} ({state})")
    table.add_row("plan", f"{report.plan['stops']} stops, {report.plan['route_m']:.0f} m walk")
    console.print(table)
    for warning in report.warnings:
        console.print(styled(("warning:", "yellow"), f" {warning}"))
    if not report.dedup_applied:
        console.print(
            "note: no current, readable duplicates.parquet (run `gpskit dedup`): duplicates "
            "were counted too"
        )
    if report.outside:
        shown = ", ".join(report.outside[:5]) + (" ..." if len(report.outside) > 5 else "")
        console.print(
            styled(
                (f"{len(report.outside)} photos outside the region", "yellow"),
                f" (flagged outside_region): {shown}",
            )
        )
    for path in report.written:
        console.print(f"wrote {path}")


def regions_command(as_json: JsonOpt = False) -> None:
    """List the regions bundled with gpskit."""
    rows = [
        {
            "name": r.name,
            "title": r.properties.get("title", ""),
            "area_m2": round(r.area_m2, 1),
            "centre": [round(r.projection.lat0, 6), round(r.projection.lon0, 6)],
            "file": r.source,
        }
        for r in bundled_regions()
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="bundled regions")
    for column in ("name", "title", "area", "centre (lat, lon)"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            row["title"],
            f"{row['area_m2'] / 1e4:.2f} ha",
            f"{row['centre'][0]}, {row['centre'][1]}",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("coverage", epilog=EPILOG)(coverage_command)
    app.command("regions", epilog="Example:\n\n    gpskit regions --json")(regions_command)
