"""``gpskit decisions [DATASET_DIR]``: what people decided (in ``gpskit app`` or here), and
undo, exclude, include, export and import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gpskit import paths
from gpskit.cli._common import DatasetArg, JsonOpt, console, dataset_at, print_json, styled
from gpskit.dataset import Dataset
from gpskit.decisions.store import Decision, DecisionStore, photo_id
from gpskit.errors import UsageError
from gpskit.outputs import output_file

EPILOG = """
Examples:

    gpskit decisions                              # every decision, newest last

    gpskit decisions campus/ --exclude photos/IMG_0042.jpg --author ann --note "my thumb"

    gpskit decisions --undo 3f2a9c... --author ann

    gpskit decisions --export ann.parquet         # for a teammate

    gpskit decisions --import bob.parquet         # add what bob decided
"""

PhotosOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="A photo: its path, or its id as `gpskit app` shows it. Repeatable.",
        show_default=False,
    ),
]


def decisions_command(
    dataset: DatasetArg = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            help="Exclude a photo (its path or id), whatever the checks say. Repeatable.",
            show_default=False,
        ),
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option(
            help="Include a photo (its path or id), whatever the checks say. Repeatable.",
            show_default=False,
        ),
    ] = None,
    undo: Annotated[
        list[str] | None,
        typer.Option(
            help="Undo a decision by its id (recorded: who and when). Repeatable.",
            show_default=False,
        ),
    ] = None,
    author: Annotated[
        str | None, typer.Option(help="Who decides (needed to decide or undo).", show_default=False)
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="Why (kept with the decision).", show_default=False)
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export", help="Write every decision to this Parquet file.", show_default=False
        ),
    ] = None,
    import_file: Annotated[
        Path | None,
        typer.Option(
            "--import",
            help="Add the decisions of an exported Parquet file that this dataset lacks.",
            show_default=False,
        ),
    ] = None,
    show_undone: Annotated[bool, typer.Option("--all", help="List undone decisions too.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """What people decided about photos (exclude, include, alone, merge, keeper, position,
    heading), newest last: every step honours them over its rules. Decide in `gpskit app`,
    or exclude and include here; undo, export and import."""
    data = dataset_at(dataset)
    store = DecisionStore(data)
    changes = bool(exclude or include or undo)
    if changes and not author:
        raise UsageError("deciding or undoing needs --author NAME", hint="e.g. --author ann")
    # everything named is checked before anything is written: a bad name changes nothing
    decide = [(kind, key) for kind, names in (("exclude", exclude or []), ("include", include or []))
              for key in find_photos(data, names)]  # fmt: skip
    for decision_id in undo or []:
        if store.get(decision_id) is None and not _unique_start(store, decision_id):
            raise UsageError(f"no decision {decision_id!r}", hint="`gpskit decisions` lists them")
    if export is not None:
        output_file(export, "--export", datasets=[data], replaces="decisions")
    made = [store.add(kind, [key], author=author or "", note=note) for kind, key in decide]
    made += [store.undo(decision_id, author or "") for decision_id in undo or []]
    imported = None
    if import_file is not None:
        known = (
            data.load_manifest(["root", "path"], decided=False)
            if data.manifest_path.is_file()
            else None
        )
        imported = store.import_file(import_file, known)
    if export is not None:
        count = store.export(export)
        if not as_json:
            console.print(f"wrote {export} ({count} decisions)")
    rows = store.decisions(include_undone=show_undone)
    if as_json:
        print_json(
            {
                "decisions": [d.to_dict() for d in rows],
                "made": [d.to_dict() for d in made],
                "imported": None if imported is None else imported.__dict__,
            }
        )
        return
    if imported is not None:
        console.print(
            f"imported {import_file}: {imported.added} added, {imported.already} already here, "
            f"{imported.undone} undone"
        )
        for line in imported.notes:
            console.print(styled(("note:", "yellow"), f" {line}"))
    show(rows[-SHOWN:], show_undone)
    if len(rows) > SHOWN:
        console.print(f"the newest {SHOWN} of {len(rows)} shown (--json lists every one)")


#: Decisions a listing shows (the newest).
SHOWN = 50


def _unique_start(store: DecisionStore, start: str) -> bool:
    return 6 <= len(start) < 32 and sum(d.id.startswith(start) for d in store.decisions()) == 1


def show(rows: list[Decision], show_undone: bool) -> None:
    if not rows:
        console.print("no decisions yet (`gpskit app` to look and decide)")
        return
    table = Table(title=f"decisions ({len(rows)})")
    for column in ("id", "kind", "photos", "value", "author", "when", "undone"):
        table.add_column(column, no_wrap=column in ("id", "when"))
    for d in rows:
        photos = ", ".join(p for _, p in d.photos[:3]) + (" ..." if len(d.photos) > 3 else "")
        value = ", ".join(
            f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in d.value.items()
        )
        undone = f"{d.undone_by} {d.undone_at[:19]}" if d.undone_at else ""
        table.add_row(d.id[:12], d.kind, photos, value, d.author, d.created_at[:16], undone)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("decisions", epilog=EPILOG)(decisions_command)


def find_photos(dataset: Dataset, names: Sequence[str]) -> list[tuple[str, str]]:
    """The manifest rows ``names`` name: a photo id (as the app shows it), a file's path
    (absolute, or from here) or a path within its root; one clear line for a name that
    names no row, or two."""
    table = dataset.load_manifest(["root", "path"], decided=False)
    roots, rel = table["root"].to_pylist(), table["path"].to_pylist()
    by_id = {photo_id(r, p): (r, p) for r, p in zip(roots, rel, strict=True)}
    by_file = {str(Path(r) / p): (r, p) for r, p in zip(roots, rel, strict=True)}
    by_rel: dict[str, list[tuple[str, str]]] = {}
    for r, p in zip(roots, rel, strict=True):
        by_rel.setdefault(p, []).append((r, p))
    found = []
    for name in names:
        key = by_id.get(name) or by_file.get(str(Path(name).absolute()))
        if key is None:
            key = by_file.get(str(paths.resolved(Path(name)))) if Path(name).exists() else None
        if key is None and len(by_rel.get(name, [])) == 1:
            key = by_rel[name][0]
        if key is None:
            twice = len(by_rel.get(name, [])) > 1
            raise UsageError(
                f"{name}: {'two photos have this path' if twice else 'no photo of the manifest'}",
                hint="name it by its id (`gpskit app` shows it) or its full path",
            )
        found.append(key)
    return found
