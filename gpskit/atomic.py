"""Writing outputs without destroying what they replace, or what is not theirs.

- :func:`atomic_path`: a temp file in the same folder, fsync, then rename over a regular
  file (or a new path). An interrupted run (Ctrl-C, crash, full disk) leaves the previous
  file intact, because ``os.replace`` within one folder is atomic on POSIX and Windows.
  A symlink is written through (the link stays); a device, FIFO, socket or folder is
  refused, never opened (a FIFO would block) nor replaced. New files get the mode the
  umask allows (not the temp file's 0600); replaced files keep theirs.
- :func:`publish`: several files moved into a folder as one step, replacing only the files
  an earlier publish of the same step wrote; a publish cut short is rolled back by the next.
- :class:`OwnedFolder`: a folder a command fills, with a marker listing the files it wrote,
  so a re-run deletes only those and a folder made by someone else is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from gpskit import paths
from gpskit.errors import DiskFullError, InputError, UsageError, disk_full, environment_problem


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _resolve_target(target: Path) -> Path:
    """Where to write (a symlink is written through); a FIFO, device or socket is refused
    rather than opened (opening a FIFO blocks until a reader comes)."""
    found = paths.kind(target)  # a symlink loop is one clear error
    if found == paths.FOLDER:
        raise InputError(f"{target} is a folder, not a file", hint="give a file path")
    if found not in (paths.FILE, paths.MISSING):
        raise InputError(
            f"{target} is {found}: gpskit writes files by temp file + rename, not into it",
            hint="move it away, or give another path",
        )
    return target.resolve() if target.is_symlink() else target


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; put its content at ``target`` on success."""
    target = _resolve_target(target)
    folder = make_dir(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as exc:
            exc.filename = str(target)  # the user's path, not the temporary file's
            problem = environment_problem(exc)
            if isinstance(problem, DiskFullError):
                written = tmp.stat().st_size if tmp.exists() else None
                shown = (
                    target.parent.parent if target.parent.name.startswith(".") else target.parent
                )
                raise disk_full(str(shown), written) from None  # a staging folder: its parent
            raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes(target: Path, data: bytes) -> None:
    """Atomically replace ``target`` with ``data``."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    """Atomically replace ``target`` with ``text`` (UTF-8)."""
    write_bytes(target, text.encode("utf-8"))


def make_dir(path: Path) -> Path:
    """A folder with the mode the umask allows (``tempfile.mkdtemp`` makes 0700 ones); a
    file, FIFO or symlink loop where it should be is one clear error."""
    paths.require_folder_or_missing(path, "the folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- several files as one step --------------------------------------------------------------

_BACKUP = ".gpskit-previous"
_DISCARD = ".gpskit-discard"


def recover(folder: Path) -> None:
    """Roll back a publish that was cut short: the previous files come back."""
    backup = folder / _BACKUP
    for leftover in folder.glob(f"{_DISCARD}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    if not backup.is_dir():
        return
    with contextlib.suppress(OSError, ValueError):
        for name in json.loads((backup / "publish.json").read_text())["new"]:
            if not (backup / name).exists():
                with contextlib.suppress(FileNotFoundError):
                    (folder / name).unlink()  # new in the cut-short publish
    for item in backup.iterdir():
        if item.name != "publish.json":
            os.replace(item, folder / item.name)
    shutil.rmtree(backup, ignore_errors=True)


def publish(folder: Path, staged: Path, names: list[str], replaces: Iterable[str]) -> None:
    """Move ``names`` from ``staged`` into ``folder`` (same file system), replacing the files
    ``replaces`` that an earlier publish wrote; every other file in ``folder`` stays.

    The old files are moved aside first and removed last, so a kill at any point leaves
    either the old set or the new one (after :func:`recover`, which the next publish runs).
    """
    make_dir(folder)
    recover(folder)
    backup = folder / _BACKUP
    backup.mkdir()
    (backup / "publish.json").write_text(json.dumps({"new": names}))
    for name in set(replaces) | set(names):
        if (folder / name).is_file():
            os.replace(folder / name, backup / name)
    for name in names:
        os.replace(staged / name, folder / name)
    discard = folder / f"{_DISCARD}-{os.getpid()}"
    os.replace(backup, discard)
    shutil.rmtree(discard, ignore_errors=True)


# --- folders a command fills ----------------------------------------------------------------


class OwnedFolder:
    """A folder a command writes, with a marker listing what it wrote there.

    A re-run removes only the files listed; a non-empty folder without the marker is not
    gpskit's and is refused unless ``force`` (and even then nothing of it is deleted).
    """

    def __init__(self, root: Path, command: str) -> None:
        self.root, self.command = root, command
        self.marker = root / f".gpskit-{command}.json"

    def claim(self, force: bool) -> None:
        """Check the folder may be written, and remove what the last run wrote."""
        found = paths.kind(self.root)
        if found not in (paths.FOLDER, paths.MISSING):
            raise InputError(f"{self.root} is {found}, not a folder", hint="give a folder path")
        if self.marker.exists():
            self.clear()
        elif self.root.exists() and any(self.root.iterdir()) and not force:
            raise UsageError(
                f"{self.root} is not empty and was not made by `gpskit {self.command}`",
                hint="give a new or empty folder, or --force to write into it (nothing of "
                "yours is deleted; files with the same names are replaced)",
            )
        make_dir(self.root)

    def clear(self) -> None:
        """Delete the files the marker lists (and folders left empty), then the marker."""
        try:
            listed = json.loads(paths.read_text(self.marker))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            listed = []
        for name in listed:
            path = self.root / name
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                path.unlink()
            for parent in path.parents:
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only when empty
        self.marker.unlink(missing_ok=True)

    def record(self, files: Iterable[Path | str]) -> None:
        """Write the marker: the files this run wrote, relative to the folder."""
        names = sorted(
            {
                str(Path(f).relative_to(self.root)) if Path(f).is_absolute() else str(f)
                for f in files
            }
        )
        write_text(self.marker, json.dumps({"command": self.command, "files": names}, indent=0))
