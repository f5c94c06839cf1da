"""Outputs never destroy what they replace, or what is not theirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gpskit.atomic import OwnedFolder, atomic_path, publish, recover, write_text
from gpskit.errors import InputError, UsageError


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_honour_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_text(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~umask


def test_replaced_file_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    target.chmod(0o640)
    write_text(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_symlink_is_written_through_and_stays_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"


def test_fifo_is_refused_never_opened_nor_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):  # opening it would block: it is not opened
        write_text(fifo, "through the pipe")
    assert stat.S_ISFIFO(fifo.stat().st_mode)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
def test_a_device_is_refused_and_stays_a_device() -> None:
    with pytest.raises(InputError, match="a device"):
        write_text(Path("/dev/full"), "x")
    assert stat.S_ISCHR(Path("/dev/full").stat().st_mode)


def test_a_folder_is_not_overwritten(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"), atomic_path(tmp_path) as tmp:
        tmp.write_text("x")
    assert tmp_path.is_dir()


def test_publish_replaces_only_its_own_files(tmp_path: Path) -> None:
    folder, staged = tmp_path / "splits", tmp_path / "staged"
    folder.mkdir()
    staged.mkdir()
    (folder / "train.parquet").write_text("old train")
    (folder / "test.csv").write_text("old csv, not written this time")
    (folder / "notes.md").write_text("mine")
    (staged / "train.parquet").write_text("new train")
    publish(folder, staged, ["train.parquet"], replaces=["train.parquet", "test.csv"])
    assert (folder / "train.parquet").read_text() == "new train"
    assert not (folder / "test.csv").exists()
    assert (folder / "notes.md").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md", "train.parquet"]


def test_a_publish_cut_short_is_rolled_back(tmp_path: Path) -> None:
    folder = tmp_path / "splits"
    folder.mkdir()
    (folder / "train.parquet").write_text("new, half published")
    (folder / "val.parquet").write_text("new, only in the cut-short publish")
    backup = folder / ".gpskit-previous"
    backup.mkdir()
    (backup / "publish.json").write_text('{"new": ["train.parquet", "val.parquet"]}')
    (backup / "train.parquet").write_text("old train")
    recover(folder)
    assert (folder / "train.parquet").read_text() == "old train"
    assert not (folder / "val.parquet").exists() and not backup.exists()


def test_owned_folder_deletes_only_what_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "campus"
    out.mkdir()
    (out / "mine.txt").write_text("the user's")
    with pytest.raises(UsageError, match="not made by `gpskit synth`"):
        OwnedFolder(out, "synth").claim(force=False)
    folder = OwnedFolder(out, "synth")
    folder.claim(force=True)
    (out / "photos").mkdir()
    (out / "photos" / "a.jpg").write_text("made")
    write_text(out / "truth.csv", "made")
    folder.record(["photos/a.jpg", "truth.csv"])
    (out / "photos" / "theirs.jpg").write_text("added by the user later")
    OwnedFolder(out, "synth").claim(force=False)  # a re-run: its own files go
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "mine.txt",
        "photos",
        "photos/theirs.jpg",
    ]
