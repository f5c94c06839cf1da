"""One family of errors that the CLI turns into a single readable line.

Library code raises these for problems a user can fix (a bad argument, a missing or
malformed file). The CLI prints them as ``error: ...`` with the error's exit code; any
other exception is a bug, printed as ``internal error: ...`` (exit 70). ``GPSKIT_DEBUG=1``
shows the traceback of either.
"""

from __future__ import annotations

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
