"""One family of errors that the CLI turns into a single readable line.

Library code raises these for problems a user can fix (a bad argument, a missing or
malformed file). The CLI prints them as ``error: ...`` with the error's exit code; any
other exception is a bug, printed as ``internal error: ...`` (exit 70). ``GPSKIT_DEBUG=1``
shows the traceback of either.
"""

from __future__ import annotations

import errno
import importlib
from types import ModuleType


class GpskitError(Exception):
    """A problem the user can fix; ``str(err)`` says what, where and how."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(GpskitError):
    """A bad option value or combination of options."""


class InputError(GpskitError):
    """An input file or folder that is missing, unreadable or malformed."""


class SchemaError(InputError):
    """A data file that does not match its schema (or has an unknown schema version)."""


class MissingStepError(GpskitError):
    """A pipeline step needs the output of an earlier step that has not been run."""


class MissingDependencyError(GpskitError):
    """An optional extra (e.g. ``gpskit[train]``) is not installed."""


def require_module(name: str, needed_for: str, extra: str) -> ModuleType:
    """Module ``name`` of an optional extra, or one line saying what needs it and the
    ``pip install`` that brings it (``needed_for``: "--engine ray needs Ray")."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependencyError(needed_for, hint=f"pip install '{extra}'") from None


class CheckFailedError(GpskitError):
    """A ``--strict`` or ``--fail-under`` condition was not met; the outputs were still written."""

    exit_code = 1


class EnvironmentProblem(GpskitError):
    """The machine or the network failed, not gpskit nor the input: a full disk, a read-only
    file system, an object store that refuses connections or wants credentials."""

    exit_code = 74  # EX_IOERR


class DiskFullError(EnvironmentProblem):
    """No space left where gpskit was writing."""


_FULL = (errno.ENOSPC, errno.EDQUOT)
#: Exceptions of optional extras (botocore, aiohttp) named by class, so that naming them
#: does not import them: credentials missing, an endpoint that cannot be reached.
_NETWORK_NAMES = {
    "NoCredentialsError": "no credentials for the object store",
    "PartialCredentialsError": "incomplete credentials for the object store",
    "EndpointConnectionError": "the object store's endpoint cannot be reached",
    "ClientConnectorError": "the object store's endpoint cannot be reached",
    "ConnectTimeoutError": "the object store did not answer in time",
}


def _free_space(path: str | None) -> str:
    import shutil
    from pathlib import Path

    if not path:
        return ""
    for folder in (Path(path), *Path(path).parents):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            continue
        return f"{_size(free)} free there"
    return ""


def disk_full(where: str, written: int | None = None) -> DiskFullError:
    """The one line for a full disk: where it happened, how much of the file was written
    before it filled (the least it needed), what is free."""
    parts = [f"{_size(written)} written before it filled" if written else "", _free_space(where)]
    detail = "; ".join(p for p in parts if p)
    return DiskFullError(
        f"no space left on the disk holding {where}" + (f" ({detail})" if detail else ""),
        hint="free some space there, or write the outputs to another disk",
    )


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} bytes"


def environment_problem(exc: BaseException) -> GpskitError | None:
    """The one line for an exception the environment caused (see :class:`EnvironmentProblem`),
    or None for anything else (a gpskit bug)."""
    for cls in type(exc).__mro__:
        if cls.__name__ in _NETWORK_NAMES:
            return EnvironmentProblem(
                f"{_NETWORK_NAMES[cls.__name__]} ({exc})",
                hint="check the endpoint, the network and AWS_* credentials (or ~/.aws)",
            )
    if isinstance(exc, ConnectionError):
        return EnvironmentProblem(
            f"a connection failed: {exc}", hint="check the network and try again"
        )
    if isinstance(exc, OSError):
        where = exc.filename if isinstance(exc.filename, str) else None
        if exc.errno in _FULL or "No space left on device" in str(exc):
            return disk_full(where or "the output folder")
        if exc.errno == errno.EROFS:
            return EnvironmentProblem(
                f"{where or 'the output folder'} is on a read-only file system",
                hint="write to another folder",
            )
        if exc.errno in (errno.EACCES, errno.EPERM):  # a folder this user may not write
            return EnvironmentProblem(
                f"{where or 'a file'}: permission denied",
                hint="give this user write access, or write to another folder",
            )
    return None
