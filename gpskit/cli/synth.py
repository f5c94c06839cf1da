"""``gpskit synth OUT_DIR`` and ``gpskit demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpskit.cli._common import (
    JsonOpt,
    WorkersOpt,
    console,
    err_console,
    print_json,
    progress_bar,
)
from gpskit.errors import UsageError
from gpskit.synth.options import SynthOptions

_D = SynthOptions()
_PITCHES = ",".join(f"{pitch:g}" for pitch in _D.pitches)
_SIZE = f"{_D.size[0]}x{_D.size[1]}"

SYNTH_EPILOG = """
Examples:

    gpskit synth campus/                         # 280 spots x 8 headings x 2 pitches

    gpskit synth small/ --spots 30 --headings 8 --seed 1

    gpskit ingest campus/photos && gpskit dedup && gpskit coverage
"""


def synth_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder for photos/ and truth.csv.")],
    region: Annotated[str, typer.Option(help="Bundled region name or GeoJSON file.")] = _D.region,
    spots: Annotated[int, typer.Option(help="Spots along the walkways.")] = _D.spots,
    headings: Annotated[
        int, typer.Option(help="Headings per spot (8: N, NE, ... NW).")
    ] = _D.headings,
    pitches: Annotated[
        str, typer.Option(help="Camera pitches in degrees, comma-separated.")
    ] = _PITCHES,
    size: Annotated[str, typer.Option(help="Photo size WIDTHxHEIGHT.")] = _SIZE,
    gps_noise: Annotated[
        float, typer.Option(help="Typical GPS error of the phones (m).")
    ] = _D.gps_noise_m,
    seed: Annotated[int, typer.Option(help="World and photo seed.")] = _D.seed,
    workers: WorkersOpt = _D.workers,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty folder synth did not make."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Render a synthetic campus: photos whose content depends on where and which way they
    were taken, with phone EXIF, GPS noise and injected defects listed in truth.csv.
    """
    from gpskit.synth import synth

    try:
        width, height = (int(v) for v in size.lower().split("x"))
        pitch_values = tuple(float(p) for p in pitches.split(","))
    except ValueError:
        raise UsageError(
            f"--size must be like 640x480 and --pitches like 0,20 (got {size!r}, {pitches!r})"
        ) from None
    options = SynthOptions(
        region=region,
        spots=spots,
        headings=headings,
        pitches=pitch_values,
        size=(width, height),
        gps_noise_m=gps_noise,
        seed=seed,
        workers=workers,
    )
    with progress_bar("render", enabled=not as_json) as update:
        report = synth(out_dir, options, progress=update, force=force)
    if as_json:
        print_json(report.to_dict())
        return
    table = Table(title=f"synthetic campus in {report.out_dir} ({report.seconds:.0f} s)")
    table.add_column("files")
    table.add_column("count", justify="right")
    for kind, count in sorted(report.by_kind.items()):
        table.add_row(kind, str(count))
    console.print(table)
    console.print(
        f"truth: {Path(report.out_dir) / 'truth.csv'}; next: gpskit ingest {Path(report.out_dir) / 'photos'}"
    )


def demo_command(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="A smaller campus and shorter training (under a minute; a smoke test)."
        ),
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for everything the demo makes.")
    ] = Path("demo"),
    workers: WorkersOpt = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty folder the demo did not make."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the whole pipeline on the built-in synthetic campus, offline, and write
    OUT/report.html (self-contained) with the tables, the coverage map, the error CDF and
    the prediction map.
    """
    from gpskit.demo import run_demo

    report = run_demo(
        out,
        quick=quick,
        log=(lambda line: err_console.print(line)) if not as_json else (lambda line: None),
        workers=workers,
        force=force,
    )
    if as_json:
        print_json(
            {
                "report": report.report,
                "seconds": report.seconds,
                "defects": report.defects,
                "eval": report.results["eval"]["metrics"],
                "baseline": report.results["eval"]["baseline_train_mean"],
            }
        )
        return
    table = Table(title="injected defects caught")
    for column in ("defect", "expected", "injected", "caught"):
        table.add_column(column)
    for row in report.defects:
        table.add_row(row["defect"], row["expected"], str(row["injected"]), str(row["caught"]))
    console.print(table)
    metrics = report.results["eval"]["metrics"]
    baseline = report.results["eval"]["baseline_train_mean"]
    console.print(
        f"test error: mean {metrics['mean_m']:.1f} m, median {metrics['median_m']:.1f} m "
        f"(predicting the training centre: mean {baseline['mean_m']:.1f} m)"
    )
    console.print(f"report: {report.report}")


def register(app: typer.Typer) -> None:
    app.command("synth", epilog=SYNTH_EPILOG)(synth_command)
    app.command(
        "demo", epilog="Examples:\n\n    gpskit demo --quick\n\n    gpskit demo --out demo/"
    )(demo_command)
