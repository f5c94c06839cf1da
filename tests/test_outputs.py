"""Every path a user names, for every command, read from the Typer app itself: pointed at
an input photo, the manifest, a FIFO and a symlink loop, nothing is written over, nothing
hangs, and the answer is one line (never an internal error)."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.errors import UsageError
from gpskit.ingest import IngestOptions, ingest
from gpskit.outputs import output_file, output_folder

from .helpers import write_photos

#: Every Path parameter a command has: True where it names something the command writes.
#: A new Path option or argument fails test_every_path_parameter_is_classified until it
#: is added here (and so to the hostile-path cases below).
WRITES = {
    ("ingest", "out"): True,
    ("info", "dataset"): False,
    ("info", "contact_sheet"): True,
    ("dedup", "dataset"): False,
    ("dedup", "against"): False,
    ("dedup", "pairs"): True,
    ("coverage", "dataset"): False,
    ("split", "dataset"): False,
    ("train", "splits"): False,
    ("train", "out"): True,
    ("eval", "run"): False,
    ("eval", "splits"): False,
    ("predict", "run"): False,
    ("predict", "out"): True,
    ("sweep", "splits"): False,
    ("sweep", "out"): True,
    ("publish dataset", "out"): True,
    ("publish dataset", "dataset"): False,
    ("publish model", "run"): False,
    ("publish model", "out"): True,
    ("synth", "out_dir"): True,
    ("demo", "out"): True,
    ("decisions", "dataset"): False,
    ("decisions", "export"): True,
    ("decisions", "import_file"): False,
    ("app", "dataset"): False,
    ("app", "run"): False,
}


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    if hasattr(command, "list_commands"):
        ctx = command.context_class(command, info_name="gpskit")
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), (*path, name))
    else:
        yield " ".join(path), command


def _path_parameters() -> dict[tuple[str, str], Any]:
    found = {}
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            annotation = param.type_descriptor.annotation
            if annotation is Path or str(annotation) in ("pathlib.Path | None", "Path | None"):
                found[(name, param.name)] = param
    return found


def test_every_path_parameter_is_classified() -> None:
    assert set(_path_parameters()) == set(WRITES)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("paths")
    photos = write_photos(root / "photos", 3)
    dataset = root / "ds"
    ingest([photos], dataset, IngestOptions(workers=1))
    fifo = root / "fifo"
    os.mkfifo(fifo)
    loop = root / "loop"
    loop.symlink_to(loop)
    (root / "a-file").write_text("not a folder")
    return {
        "photos": photos,
        "dataset": dataset,
        "photo": photos / "p000.jpg",
        "manifest": dataset / "manifest.parquet",
        "fifo": fifo,
        "loop": loop,
        "under a file": root / "a-file" / "out",
        "folder": root / "fresh",
    }


def _argv(command: str, param: str, target: Path, w: dict[str, Path]) -> list[str]:
    """A command line that would work but for ``param``, which names ``target``."""
    values: dict[str, Path] = {
        "dataset": w["dataset"], "out": w["folder"], "out_dir": w["folder"],
        "splits": w["dataset"] / "splits", "run": w["folder"], "against": w["dataset"],
        "contact_sheet": w["folder"] / "sheet.png", "pairs": w["folder"] / "pairs.csv",
        "export": w["folder"] / "decisions.parquet", "import_file": w["folder"] / "d.parquet",
    }  # fmt: skip
    values[param] = target
    params = {p.name: p for p in dict(_commands(typer.main.get_command(app)))[command].params}
    argv = command.split()
    if command == "ingest":
        argv.append(str(w["photos"]))
    if command == "predict":
        argv.append(str(w["photo"]))
    if command == "sweep":
        argv += ["--grid", "epochs=1"]
    for name, p in params.items():
        if name not in values or (
            name != param and not p.required and p.param_type_name == "option"
        ):
            continue
        if p.param_type_name == "argument":
            argv.append(str(values[name]))
        else:
            argv += [p.opts[0], str(values[name])]
    return argv


class _Hung(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hung


def _invoke_within(argv: list[str], seconds: int) -> Any:
    """Run gpskit in-process; fail the test (not hang it) if it takes ``seconds``: a FIFO
    opened for reading blocks in open(), which SIGALRM interrupts."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return CliRunner().invoke(app, argv)
    except _Hung:
        pytest.fail(f"gpskit {' '.join(argv)} hung")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("target", ["photo", "manifest", "fifo", "loop", "under a file"])
@pytest.mark.parametrize(("command", "param"), sorted(WRITES))
def test_a_hostile_path_is_one_line_and_nothing_is_lost(
    world: dict[str, Path], command: str, param: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GPSKIT_DEBUG", raising=False)
    photo, manifest = _digest(world["photo"]), _digest(world["manifest"])
    argv = _argv(command, param, world[target], world)
    result = _invoke_within(argv, 20)
    output = result.output
    assert _digest(world["photo"]) == photo, argv
    assert _digest(world["manifest"]) == manifest, argv
    assert stat.S_ISFIFO(os.lstat(world["fifo"]).st_mode) and world["loop"].is_symlink()
    assert result.exit_code not in (0, 70), (argv, output)
    assert "internal error" not in output and "Traceback" not in output, (argv, output)
    if WRITES[(command, param)]:  # refused by the guard itself, naming the path
        assert result.exit_code == 2 and str(world[target]) in output, (argv, output)


def test_the_guard_allows_what_users_mean(tmp_path: Path) -> None:
    """A new file, the same output written again, a new or existing folder."""
    sheet = tmp_path / "sheet.png"
    assert output_file(sheet, "--out") == sheet
    from PIL import Image

    from gpskit.plots.common import save_png

    save_png(Image.new("RGB", (4, 4)), sheet)  # an earlier run's sheet
    assert output_file(sheet, "--out") == sheet  # a re-run replaces its own output
    Image.new("RGB", (4, 4)).save(tmp_path / "screenshot.png")  # a picture of someone's
    with pytest.raises(UsageError, match="a photo"):
        output_file(tmp_path / "screenshot.png", "--out")
    assert output_folder(tmp_path / "new", "--out") == tmp_path / "new"
    assert output_folder(tmp_path, "--out") == tmp_path
    with pytest.raises(UsageError, match="is a folder"):
        output_file(tmp_path, "--out")
    with pytest.raises(UsageError, match="input photos"):
        output_file(sheet, "--out", inputs=[str(sheet)])


@pytest.mark.parametrize("command", ["ingest", "info", "dedup", "coverage", "split"])
@pytest.mark.parametrize("what", ["fifo", "loop"])
def test_a_fifo_or_loop_where_the_manifest_should_be_is_one_line(
    world: dict[str, Path], tmp_path: Path, command: str, what: str
) -> None:
    """Reading a FIFO blocks in open() (and ignores Ctrl-C): gpskit never opens one."""
    dataset = tmp_path / "ds"
    dataset.mkdir()
    manifest = dataset / "manifest.parquet"
    if what == "fifo":
        os.mkfifo(manifest)
    else:
        manifest.symlink_to(manifest)
    argv = (
        [command, str(world["photos"]), "--out", str(dataset)]
        if command == "ingest"
        else [command, str(dataset)]
    )
    result = _invoke_within(argv, 20)
    assert result.exit_code == 2, result.output
    assert str(manifest) in result.output and "internal error" not in result.output


HOSTILE_OWN = {
    "a file at .gpskit": (".gpskit", "file"),
    "a FIFO at the lock": (".gpskit/lock", "fifo"),
    "a loop at splits/": ("splits", "loop"),
    "a loop at coverage/": ("coverage", "loop"),
    "a FIFO at coverage.json": ("coverage/coverage.json", "fifo"),
    "a FIFO at split.json": ("splits/split.json", "fifo"),
    "a FIFO at duplicates.parquet": ("duplicates.parquet", "fifo"),
}


@pytest.mark.parametrize("command", ["dedup", "coverage", "split", "ingest"])
@pytest.mark.parametrize("case", sorted(HOSTILE_OWN))
def test_hostile_things_in_a_datasets_own_places_are_one_line(
    world: dict[str, Path], tmp_path: Path, command: str, case: str
) -> None:
    """A dataset whose own files or folders were replaced by a file, a FIFO or a symlink
    loop: every step answers in one line (exit 2), never hangs, never an internal error."""
    import shutil

    dataset = tmp_path / "ds"
    shutil.copytree(world["dataset"], dataset, symlinks=True)
    CliRunner().invoke(app, ["split", str(dataset), "--ratios", "0.34,0.33,0.33"])
    where, what = HOSTILE_OWN[case]
    target = dataset / where
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if what == "file":
        target.write_text("not a folder")
    elif what == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(target)
    argv = {
        "ingest": ["ingest", str(world["photos"]), "--out", str(dataset)],
        "split": ["split", str(dataset), "--force"],
    }.get(command, [command, str(dataset)])
    result = _invoke_within(argv, 30)
    said = result.output
    assert "internal error" not in said and "Traceback" not in said, (argv, said)
    if result.exit_code:
        assert result.exit_code == 2, (argv, said)
        assert len([line for line in said.splitlines() if line.startswith("error:")]) == 1


# --- what a second outside review got past (session 10) -------------------------------------


def _run_folder(folder: Path) -> Path:
    """A training run's folder as training leaves it (contents need not load)."""
    for name in ("best.pt", "last.pt", "options.json", "metrics.csv", "prediction.json"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("{}")
    (folder / "logs").mkdir()
    (folder / "logs" / "predict.log").write_text("log")
    (folder / "tensorboard").mkdir()
    (folder / "tensorboard" / "events.out.tfevents.1").write_bytes(b"\x00")
    return folder


@pytest.mark.parametrize(
    "name", ["metrics.csv", "logs/predict.log", "tensorboard/events.out.tfevents.1", "best.pt"]
)
def test_no_output_replaces_a_file_of_a_run_folder(tmp_path: Path, name: str) -> None:
    run = _run_folder(tmp_path / "run1")
    with pytest.raises(UsageError, match="model folder"):
        output_file(run / name, "--out")
    assert output_file(run / "new-predictions.csv", "--out")  # a new file beside is fine


def test_no_output_replaces_a_photo_anywhere(tmp_path: Path) -> None:
    photos = write_photos(tmp_path / "photos", 1)
    with pytest.raises(UsageError, match="a photo"):
        output_file(photos / "p000.jpg", "--out")
    (tmp_path / "link.jpg").symlink_to(photos / "p000.jpg")
    with pytest.raises(UsageError, match="a photo"):
        output_file(tmp_path / "link.jpg", "--out")


def test_runs_and_photo_folders_are_never_a_new_output_folder(tmp_path: Path) -> None:
    run = _run_folder(tmp_path / "run1")
    with pytest.raises(UsageError, match="training run's folder"):
        output_folder(run, "--out")  # train without --resume, publish model, ...
    assert output_folder(run, "--out", run=True) == run  # --resume, --force
    with pytest.raises(UsageError, match="inside the model folder"):
        output_folder(run / "published", "--out")
    published = tmp_path / "pub"
    published.mkdir()
    (published / "config.json").write_text("{}")
    (published / "model.safetensors").write_bytes(b"\x00")
    with pytest.raises(UsageError, match="published model's folder"):
        output_folder(published, "--out", run=True)  # train --out PUB, even --force
    assert output_folder(published, "--out", published=True) == published  # publish again
    photos = write_photos(tmp_path / "photos", 2)
    ingest([photos], tmp_path / "ds", IngestOptions(workers=1))
    from gpskit.dataset import Dataset

    for folder in (photos, photos / "sub", tmp_path):
        with pytest.raises(UsageError, match="photos or tables"):
            output_folder(folder, "--out", datasets=[Dataset(tmp_path / "ds")])


def test_predict_protects_the_photos_of_the_dataset_a_run_trained_on(tmp_path: Path) -> None:
    from gpskit.cli.train import _datasets_of

    photos = write_photos(tmp_path / "photos", 1)
    ingest([photos], tmp_path / "ds", IngestOptions(workers=1))
    run = _run_folder(tmp_path / "run1")
    splits = tmp_path / "ds" / "splits"
    (run / "options.json").write_text(f'{{"splits_dir": "{splits}"}}')
    found = _datasets_of(run)
    assert [d.root for d in found] == [tmp_path / "ds"]
    gif = photos / "p000.gif"  # not a photo format, but the manifest lists it
    gif.write_bytes(b"GIF89a not really")
    (tmp_path / "link.gif").symlink_to(gif)
    ingest([photos], tmp_path / "ds", IngestOptions(workers=1))
    for named in (gif, tmp_path / "link.gif"):
        with pytest.raises(UsageError, match="a photo of the dataset"):
            output_file(named, "--out", datasets=found)
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "real.gif").write_bytes(b"GIF89a elsewhere")
    (photos / "inside.gif").symlink_to(tmp_path / "ext" / "real.gif")  # listed as the link
    ingest([photos], tmp_path / "ds", IngestOptions(workers=1))
    with pytest.raises(UsageError, match="a photo of the dataset"):
        output_file(photos / "inside.gif", "--out", datasets=found)
