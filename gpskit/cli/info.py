"""``gpskit info [DATASET_DIR]``: the ingest summary of an existing manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, print_json
from gpskit.cli.ingest import show_report
from gpskit.info import manifest_info, quality_offenders

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
    target = dataset_at(dataset)
    if contact_sheet is not None:
        from gpskit.outputs import output_file

        output_file(contact_sheet, "--contact-sheet", datasets=[target])
    report, settings = manifest_info(target)
    offenders = quality_offenders(target)
    if contact_sheet is not None:
        from gpskit.plots.sheets import quality_sheet

        quality_sheet(offenders, contact_sheet)
    if as_json:
        worst = {code: frame.to_dict("records") for code, frame in offenders.items()}
        print_json({**report.to_dict(), "settings": settings, "quality_worst": worst})
        return
    show_report(report)
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


def _quality_table(offenders: dict[str, Any]) -> Table:
    table = Table(title="image quality: the worst photos of each check")
    for column in ("check", "measure", "worst photos (value)"):
        table.add_column(column)
    for code, frame in offenders.items():
        names = ", ".join(
            f"{Path(str(p)).name} ({v:.1f})" for p, v in zip(frame.path, frame.value, strict=True)
        )
        table.add_row(code, str(frame.measure.iloc[0]), names)
    return table


def register(app: typer.Typer) -> None:
    app.command("info", epilog=EPILOG)(info_command)
