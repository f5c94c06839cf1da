"""Checking option values before any work starts: one clear line for a bad one.

NaN and infinity pass ``x > 0``-style checks silently (every comparison with NaN is
false), so each numeric option goes through :func:`number`, which refuses non-finite
values first and then says the allowed range in the option's own name.
"""

from __future__ import annotations

import math
from typing import Any

from gpskit.errors import UsageError


def number(
    flag: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    integer: bool = False,
) -> None:
    """Raise :class:`UsageError` unless ``value`` is a finite number in range.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{flag} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise UsageError(f"{flag} must be a finite number, got {value}")
    if integer and float(value) != int(value):
        raise UsageError(f"{flag} must be a whole number, got {value}")
    wanted = _range(minimum, maximum, above, below)
    if (
        (minimum is not None and value < minimum)
        or (maximum is not None and value > maximum)
        or (above is not None and value <= above)
        or (below is not None and value >= below)
    ):
        raise UsageError(f"{flag} must be {wanted}, got {value:g}")


def _range(
    minimum: float | None, maximum: float | None, above: float | None, below: float | None
) -> str:
    low = f"at least {minimum:g}" if minimum is not None else None
    low = f"above {above:g}" if above is not None else low
    high = f"at most {maximum:g}" if maximum is not None else None
    high = f"below {below:g}" if below is not None else high
    return " and ".join(part for part in (low, high) if part) or "a number"


def optional_number(flag: str, value: Any, **bounds: Any) -> None:
    """:func:`number` for an option that may be left out (None)."""
    if value is not None:
        number(flag, value, **bounds)


def workers(flag: str, value: int | None, *, allow_zero: bool = False) -> None:
    """A process count: None (all cores) or a positive number (0 allowed where it means
    "in this process")."""
    if value is not None:
        number(flag, value, minimum=0 if allow_zero else 1, integer=True)


def seed(flag: str, value: int) -> None:
    """A random seed: a whole number from 0 to 2**63 - 1."""
    number(flag, value, minimum=0, maximum=2**63 - 1, integer=True)
