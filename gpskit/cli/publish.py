"""``gpskit publish dataset|model``: folders in the Hugging Face Hub's layout (and upload)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, print_json

EPILOG = """
Examples:

    gpskit split --embed --force && gpskit publish dataset --out hub/campus-photos

    gpskit publish model gpskit-data/runs/r1 --out hub/campus-model

    gpskit publish dataset --out hub/campus-photos --push my-team/campus-photos
"""

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder to write (created if needed).")]
PushOpt = Annotated[
    str | None,
    typer.Option(
        help="Also upload the folder to this Hub repository (needs gpskit[hub] and a token).",
        show_default=False,
    ),
]
LicenseOpt = Annotated[
    str, typer.Option("--license", help="License id for the card (the Hub's list).")
]


def dataset_command(
    out: OutOpt,
    dataset: DatasetArg = None,
    name: Annotated[
        str | None, typer.Option(help="Title of the card (default: the folder's name).")
    ] = None,
    license_id: LicenseOpt = "cc-by-4.0",
    push: PushOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The splits (with embedded images) as a Hub dataset folder: data/*.parquet and a
    dataset card whose YAML the Hub reads. `datasets.load_dataset(FOLDER)` loads it."""
    from gpskit.publish import publish_dataset
    from gpskit.publish import push as upload

    report = publish_dataset(dataset_at(dataset), out, name=name, license_id=license_id)
    if push:
        report.pushed_to = upload(out, push, "dataset")
    if as_json:
        print_json(report.to_dict())
        return
    splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
    console.print(f"wrote {out} ({splits})")
    if report.pushed_to:
        console.print(f"pushed to {report.pushed_to}")


def model_command(
    run: Annotated[Path, typer.Argument(help="Run folder (from `gpskit train`).")],
    out: OutOpt,
    license_id: LicenseOpt = "cc-by-4.0",
    push: PushOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A trained run as a Hub model folder: model.safetensors, config.json, the retrieval
    index and a model card with the eval figures. `gpskit predict --run FOLDER` uses it."""
    from gpskit.publish import push as upload
    from gpskit.train.export import publish_model

    written = publish_model(run, out, license_id)
    pushed = upload(out, push, "model") if push else None
    if as_json:
        print_json({"folder": str(out), "written": written, "pushed_to": pushed})
        return
    for path in written:
        console.print(f"wrote {path}")
    if pushed:
        console.print(f"pushed to {pushed}")


def register(app: typer.Typer) -> None:
    publish = typer.Typer(
        help="Folders in the Hugging Face Hub's layout: a dataset, or a trained model.",
        epilog=EPILOG,
        rich_markup_mode="markdown",
    )
    publish.command("dataset", epilog=EPILOG)(dataset_command)
    publish.command("model", epilog=EPILOG)(model_command)
    app.add_typer(publish, name="publish")
