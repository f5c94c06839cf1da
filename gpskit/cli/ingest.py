"""``gpskit ingest PHOTOS...``: read photos, validate their GPS, write the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpskit import checks
from gpskit.cli._common import (
    EngineOpt,
    JsonOpt,
    RayAddressOpt,
    WorkersOpt,
    console,
    format_size,
    new_table,
    parse_size,
    print_json,
    progress_bar,
    styled,
)
from gpskit.config import DATASET_ENV, DEFAULT_DATASET_DIR
from gpskit.engines import Engine, EngineOptions
from gpskit.errors import CheckFailedError, UsageError
from gpskit.ingest import IngestOptions, IngestReport, ingest
from gpskit.ingest.options import Columns
from gpskit.storage import as_location

_D = IngestOptions()
_DEFAULTS = _D.thresholds

EPILOG = """
Examples:

    gpskit ingest photos/                      # writes ./gpskit-data/manifest.parquet

    gpskit ingest day1/ day2/ extra.heic --out campus/

    gpskit ingest photos/ --max-h-error 15 --strict --json

    gpskit ingest photos/ --no-decode          # metadata only, for a quick look

    gpskit ingest photos/ --strict-quality --threshold min_sharpness=40

    gpskit ingest s3://bucket/campus/          # photos in object storage (gpskit[s3])

    gpskit ingest photos/ --labels positions.csv   # positions from a table, by file name

    gpskit ingest img2gps/ --out penn/         # a Hub dataset folder (data/*.parquet)

    gpskit ingest survey.csv --lat-column y --lon-column x   # a table naming its photos

    gpskit ingest --list-checks                # every reason code and its threshold
"""


def ingest_command(
    photos: Annotated[
        list[str] | None,
        typer.Argument(
            help="Folders (searched recursively) and files to ingest; tables of photos (CSV, "
            "TSV, Parquet, JSON Lines, Arrow) with an image or path column and position "
            "columns; Hugging Face Hub dataset folders and hf://datasets/OWNER/NAME (needs "
            "gpskit[hub]); URLs such as s3://bucket/prefix/ (needs gpskit[s3]).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            envvar=DATASET_ENV,
            help=f"Dataset folder for manifest.parquet (default ./{DEFAULT_DATASET_DIR}).",
            show_default=False,
        ),
    ] = None,
    workers: WorkersOpt = _D.workers,
    engine: EngineOpt = Engine(_D.engine.engine),
    ray_address: RayAddressOpt = None,
    no_decode: Annotated[
        bool, typer.Option("--no-decode", help="Metadata only: no decode check, no hashes. Fast.")
    ] = not _D.decode,
    max_h_error: Annotated[
        float, typer.Option(help="Reject photos whose GPS horizontal error exceeds this (m).")
    ] = _DEFAULTS["max_h_error"],
    max_fix_age: Annotated[
        float,
        typer.Option(help="Reject photos whose GPS fix is older than the capture by this (s)."),
    ] = _DEFAULTS["max_fix_age"],
    min_side: Annotated[
        int, typer.Option(help="Reject images whose shorter side is below this (px).")
    ] = int(_DEFAULTS["min_side"]),
    timeout: Annotated[
        float, typer.Option(help="Per-file time limit (s); a file past it is recorded as timeout.")
    ] = _D.timeout,
    max_pixels: Annotated[
        int, typer.Option(help="Refuse images with more pixels than this (decompression bombs).")
    ] = _D.max_pixels,
    max_memory: Annotated[
        str,
        typer.Option(
            help="Memory (address space) per worker, e.g. 6G or 512M; 0 for no limit. A file "
            "that needs more is recorded as worker_crashed, not the machine's problem."
        ),
    ] = format_size(_D.max_memory),
    force: Annotated[
        bool, typer.Option("--force", help="Re-read every file, even unchanged ones.")
    ] = _D.force,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Drop rows of every file not found in this run (default: only files gone "
            "from the folders scanned; rows of other folders are kept).",
        ),
    ] = _D.prune,
    sort_rows: Annotated[
        int,
        typer.Option(
            help="File keys held in memory (~0.2 GB a million) before a sorted run of them "
            "is spilled to disk: what bounds ingest's memory, whatever the number of files.",
        ),
    ] = _D.sort_rows,
    labels: Annotated[
        list[Path] | None,
        typer.Option(
            "--labels",
            help="A table (CSV, TSV, Parquet, JSON Lines) of positions by file name: each "
            "photo it names takes its position (and heading) over the photo's own. Repeatable.",
            show_default=False,
        ),
    ] = None,
    lat_column: Annotated[
        str | None,
        typer.Option(
            help="The latitude column of the tables (default: found by name).", show_default=False
        ),
    ] = None,
    lon_column: Annotated[
        str | None,
        typer.Option(
            help="The longitude column of the tables (default: found by name).", show_default=False
        ),
    ] = None,
    heading_column: Annotated[
        str | None,
        typer.Option(
            help="The heading column of the tables (default: found by name).", show_default=False
        ),
    ] = None,
    name_column: Annotated[
        str | None,
        typer.Option(
            help="The file name column of the tables (default: found by name).", show_default=False
        ),
    ] = None,
    max_position_disagreement: Annotated[
        float,
        typer.Option(
            help="Warn where a table's position and the photo's own GPS are farther apart (m)."
        ),
    ] = _DEFAULTS["max_position_disagreement"],
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with status 1 when any file was rejected.")
    ] = False,
    strict_quality: Annotated[
        bool,
        typer.Option(
            "--strict-quality",
            help="Reject photos with image-quality problems (blurry, dark, too_bright, "
            "low_information, grayscale, odd_aspect_ratio) instead of warning.",
        ),
    ] = _D.strict_quality,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            help="Any check threshold as NAME=VALUE, e.g. min_sharpness=40 (names: "
            "--list-checks). Repeatable.",
            show_default=False,
        ),
    ] = None,
    list_checks: Annotated[
        bool,
        typer.Option(
            "--list-checks", help="List every check (code, severity, threshold) and exit."
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Read photos (JPEG, HEIC/HEIF, PNG, WebP, TIFF), validate their EXIF GPS and write one
    Parquet manifest where every file appears, accepted or with the reasons it was rejected.

    Re-running on the same folders re-reads only new or changed files.
    """
    if list_checks:
        _show_checks(as_json)
        return
    if not photos:
        raise UsageError("no PHOTOS given", hint="e.g. `gpskit ingest photos/`")
    thresholds = dict(_DEFAULTS)
    thresholds.update(max_h_error=max_h_error, max_fix_age=max_fix_age, min_side=float(min_side))
    thresholds.update(max_position_disagreement=max_position_disagreement)
    thresholds.update(parse_thresholds(threshold or []))
    options = IngestOptions(
        decode=not no_decode,
        workers=workers,
        engine=EngineOptions(engine.value, ray_address),
        timeout=timeout,
        max_pixels=max_pixels,
        max_memory=parse_size(max_memory, "--max-memory") or None,
        thresholds=thresholds,
        strict_quality=strict_quality,
        force=force,
        prune=prune,
        sort_rows=sort_rows,
        labels=tuple(str(p) for p in labels or ()),
        columns=Columns(lat_column, lon_column, heading_column, name_column),
    )
    with progress_bar("ingest", enabled=not as_json) as update:
        locations = [as_location(text) if text.strip() else text for text in photos]
        report = ingest(locations, out, options, progress=update)
    if as_json:
        print_json(report.to_dict())
    else:
        show_report(report)
    if strict and report.rejected:
        raise CheckFailedError(
            f"{report.rejected} of {report.files} files were rejected (--strict)"
        )


def parse_thresholds(items: list[str]) -> dict[str, float]:
    """``NAME=VALUE`` pairs of --threshold, each name a registered check threshold."""
    known = set(_DEFAULTS)
    found: dict[str, float] = {}
    for item in items:
        name, _, text = item.partition("=")
        name = name.strip()
        if name not in known:
            raise UsageError(
                f"--threshold {item}: no check threshold named {name!r}",
                hint=f"one of {', '.join(sorted(known))}",
            )
        try:
            found[name] = float(text)
        except ValueError:
            raise UsageError(
                f"--threshold {item}: {text!r} is not a number", hint="e.g. min_sharpness=40"
            ) from None
    return found


def show_report(report: IngestReport) -> None:
    """The ingest summary as tables (shared with ``gpskit info``)."""
    summary = new_table(title=f"manifest: {report.manifest}", show_header=False)
    summary.add_column("what")
    summary.add_column("count", justify="right")
    summary.add_row("files scanned", str(report.files))
    summary.add_row("images", str(report.images))
    summary.add_row(styled(("accepted", "green")), str(report.accepted))
    summary.add_row(styled(("rejected", "red")), str(report.rejected))
    if report.read or report.reused or report.removed or report.kept:
        summary.add_row("read this run", str(report.read))
        summary.add_row("unchanged, reused", str(report.reused))
        summary.add_row("gone, dropped", str(report.removed))
        summary.add_row("other folders, kept", str(report.kept))
    if report.formats:
        summary.add_row("formats", ", ".join(f"{k} {v}" for k, v in report.formats.items()))
    if report.position_sources:
        shown = ", ".join(f"{k} {v}" for k, v in report.position_sources.items())
        summary.add_row("positions from", shown)
    if report.labelled or report.imported:
        summary.add_row("given a table's position", str(report.labelled))
        summary.add_row("images written from tables", str(report.imported))
    console.print(summary)
    for note in report.notes:
        console.print(styled(("note:", "yellow"), f" {note}"))
    descriptions = {c.code: c.description for c in checks.REGISTRY.values()}
    for title, counts in (("rejected by reason", report.reasons), ("warnings", report.warnings)):
        if not counts:
            continue
        table = new_table(title=title)
        table.add_column("code")
        table.add_column("photos", justify="right")
        table.add_column("meaning")
        for code, count in counts.items():
            table.add_row(code, str(count), descriptions.get(code.partition(":")[0], ""))
        console.print(table)


def _show_checks(as_json: bool) -> None:
    rows = checks.describe()
    if as_json:
        print_json(rows)
        return
    table = new_table(title="ingest checks")
    for column in ("code", "severity", "threshold", "default", "meaning"):
        table.add_column(column)
    for row in rows:
        default = "" if row["default"] is None else f"{row['default']:g} {row['unit'] or ''}"
        table.add_row(
            row["code"], row["severity"], row["threshold"] or "", default, row["description"]
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("ingest", epilog=EPILOG)(ingest_command)
