"""``gpskit info [DATASET_DIR]``: the ingest summary of an existing manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, new_table, print_json
from gpskit.cli.ingest import show_report
from gpskit.info import manifest_summary
from gpskit.ingest.summary import IngestReport

if TYPE_CHECKING:
    from rich.table import Table

EPILOG = """
Examples:

    gpskit info

    gpskit info campus/ --json

    gpskit info --contact-sheet quality.png     # the worst photos of each quality check
"""


def info_command(
    dataset: DatasetArg = None,
    contact_sheet: Annotated[
        Path | None,
        typer.Option(
            help="Write a PNG of the worst offenders of each image-quality check here.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise a dataset's manifest: files, accepted, rejected by reason, warnings, and
    the worst photos of each image-quality check (blurry, dark, ...)."""
    if contact_sheet is not None:
        _contact_sheet(dataset, contact_sheet)
    summary = manifest_summary(dataset)
    if as_json:
        print_json(summary)
        return
    settings, offenders = summary.pop("settings"), summary.pop("quality_worst")
    show_report(IngestReport(**summary))
    if offenders:
        console.print(_quality_table(offenders))
    if contact_sheet is not None:
        console.print(f"wrote {contact_sheet}")
    thresholds = settings.get("thresholds", {})
    if thresholds:
        console.print(
            "thresholds: "
            + ", ".join(f"{k}={v:g}" for k, v in sorted(thresholds.items()))
            + f"; decoded: {settings.get('decode')}"
            + f"; written by gpskit {settings.get('gpskit_version')}"
        )


def _contact_sheet(dataset: Path | None, sheet: Path) -> None:
    """The worst offenders of each quality check drawn into ``sheet`` (a PNG)."""
    from gpskit.info import quality_offenders
    from gpskit.outputs import output_file
    from gpskit.plots.sheets import quality_sheet

    target = dataset_at(dataset)
    output_file(sheet, "--contact-sheet", datasets=[target])
    quality_sheet(quality_offenders(target), sheet)


def _quality_table(offenders: dict[str, list[dict[str, Any]]]) -> Table:
    table = new_table(title="image quality: the worst photos of each check")
    for column in ("check", "measure", "worst photos (value)"):
        table.add_column(column)
    for code, rows in offenders.items():
        names = ", ".join(f"{Path(str(r['path'])).name} ({float(r['value']):.1f})" for r in rows)
        table.add_row(code, str(rows[0]["measure"]) if rows else "", names)
    return table


def register(app: typer.Typer) -> None:
    app.command("info", epilog=EPILOG)(info_command)
