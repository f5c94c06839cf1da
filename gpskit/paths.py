"""What a path a user gave is, found without opening it: a regular file, a folder, a FIFO,
a device, a socket, a symlink loop or nothing yet.

Opening a FIFO for reading blocks until a writer comes (and ignores Ctrl-C while it waits
in ``open``); a symlink loop makes every call on the path fail. Every path gpskit reads as
a table or writes as an output is looked at here first, with ``os.stat`` alone.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from gpskit.errors import InputError

#: What a path is, as said in messages.
FILE, FOLDER, MISSING = "a file", "a folder", "missing"


def kind(path: Path) -> str:
    """``FILE``, ``FOLDER``, ``MISSING`` (nothing there, or a dangling link) or what else
    it is ("a FIFO", "a device", "a socket"); a symlink loop is an :class:`InputError`."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"{path}: a symbolic link that points back to itself (a loop)",
                hint="remove or fix the link, or give another path",
            ) from None
        if exc.errno == errno.ENOTDIR:
            raise InputError(
                f"{path}: a folder on the way is a file ({_first_file(path)})",
                hint="give a path whose folders are folders",
            ) from None
        if exc.errno == errno.ENOENT:
            return MISSING
        raise InputError(f"{path}: cannot be looked at ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISDIR(mode):
        return FOLDER
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _first_file(path: Path) -> Path | str:
    """The first part of ``path`` that exists and is not a folder."""
    for part in reversed(Path(path).parents):
        if part.exists() and not part.is_dir():
            return part
    return "?"


def read_text(path: Path, what: str = "", limit: int = 64 << 20) -> str:
    """A small text file gpskit keeps (split.json, coverage.json, prediction.json...), read
    only when it is a regular file: a FIFO there would block the read forever."""
    found = kind(path)
    if found != FILE:
        label = f"{what} " if what else ""
        if found == MISSING:
            raise FileNotFoundError(2, "No such file", str(path))
        raise InputError(
            f"{label}{path} is {found}, not a file gpskit can read", hint="move it away"
        )
    if path.stat().st_size > limit:
        raise InputError(f"{path} is larger than {limit >> 20} MB: not one of gpskit's files")
    return path.read_text(encoding="utf-8")


def resolved(path: Path) -> Path:
    """``path`` with its links followed, a symlink loop being one clear error."""
    kind(path)  # raises on a loop
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # a loop further up the path
        raise InputError(
            f"{path}: cannot be resolved ({exc})", hint="fix the links in the path"
        ) from None


def require_readable_file(path: Path, what: str = "") -> None:
    """Refuse, before opening it, a table path that is not a regular file (a FIFO would
    block the read forever). A missing file is left to the reader's own message."""
    found = kind(path)
    if found not in (FILE, MISSING):
        label = f"{what} " if what else ""
        raise InputError(
            f"{label}{path} is {found}, not a file gpskit can read",
            hint="move it away: gpskit writes and reads its tables as regular files",
        )


def require_folder_or_missing(path: Path, what: str) -> None:
    """Refuse a path where a folder should be (or be made) that is something else."""
    found = kind(path)
    if found not in (FOLDER, MISSING):
        raise InputError(f"{what} {path} is {found}, not a folder", hint="give a folder path")
