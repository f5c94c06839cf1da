"""``gpskit info [DATASET_DIR]``: the ingest summary of an existing manifest."""

from __future__ import annotations

import typer

from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, print_json
from gpskit.cli.ingest import show_report
from gpskit.ingest import manifest_info

EPILOG = """
Examples:

    gpskit info

    gpskit info campus/ --json
"""


def info_command(dataset: DatasetArg = None, as_json: JsonOpt = False) -> None:
    """Summarise a dataset's manifest: files, accepted, rejected by reason, warnings."""
    report, settings = manifest_info(dataset_at(dataset))
    if as_json:
        print_json({**report.to_dict(), "settings": settings})
        return
    show_report(report)
    thresholds = settings.get("thresholds", {})
    if thresholds:
        console.print(
            "thresholds: "
            + ", ".join(f"{k}={v:g}" for k, v in sorted(thresholds.items()))
            + f"; decoded: {settings.get('decode')}"
            + f"; written by gpskit {settings.get('gpskit_version')}"
        )


def register(app: typer.Typer) -> None:
    app.command("info", epilog=EPILOG)(info_command)
