"""What a person can decide about photos, as a registry: each kind checks its value and
says how many photos it names. Adding a kind touches this file and the step that honours
it (:mod:`gpskit.decisions.state`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpskit.errors import UsageError

Check = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class DecisionKind:
    """One kind of decision: its name, how many photos it names, what it means."""

    name: str
    photos: str  # "one" or "many" (two or more)
    description: str
    check: Check


KINDS: dict[str, DecisionKind] = {}


def decision_kind(name: str, photos: str, description: str) -> Callable[[Check], Check]:
    """Register ``check(value) -> value`` (raising :class:`UsageError` on a bad value)."""

    def register(check: Check) -> Check:
        if name in KINDS:
            raise ValueError(f"decision kind {name!r} registered twice")
        KINDS[name] = DecisionKind(name, photos, description, check)
        return check

    return register


def _number(value: dict[str, Any], key: str, low: float, high: float) -> float:
    raw = value.get(key)
    try:
        number = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    except OverflowError:
        number = None
    if number is None or not math.isfinite(number):
        raise UsageError(f"{key} must be a finite number, got {str(raw)[:40]!r}")
    raw = number
    if not low <= float(raw) <= high:
        raise UsageError(f"{key} must be within {low:g} and {high:g}, got {raw!r}")
    return float(raw)


def _nothing(value: dict[str, Any]) -> dict[str, Any]:
    return {}


decision_kind("exclude", "one", "leave the photo out of every split, whatever the checks say")(
    _nothing
)
decision_kind("include", "one", "keep the photo, whatever the checks say")(_nothing)
decision_kind("alone", "one", "the photo is no copy of any other: take it out of its group")(
    _nothing
)
decision_kind("merge", "many", "the photos are copies of one another: one group")(_nothing)
decision_kind("keeper", "one", "the photo is the one its group keeps")(_nothing)


@decision_kind("position", "one", "where the photo was taken, set by hand on the map")
def _position(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "latitude": _number(value, "latitude", -90, 90),
        "longitude": _number(value, "longitude", -180, 180),
    }


@decision_kind("heading", "one", "which way the camera looked, degrees from true north")
def _heading(value: dict[str, Any]) -> dict[str, Any]:
    heading = _number(value, "heading", -360, 720) % 360.0
    return {"heading": 0.0 if heading >= 360.0 else heading}


#: The most photos one decision names (a group of copies is a few; a person's selection in
#: the app, a page or two of the grid).
MAX_PHOTOS = 10_000


def checked(kind: str, photos: int, value: dict[str, Any] | None) -> dict[str, Any]:
    """``value`` checked for ``kind`` naming ``photos`` photos (one clear line if not)."""
    if photos > MAX_PHOTOS:
        raise UsageError(f"a decision names at most {MAX_PHOTOS:,} photos, got {photos:,}")
    found = KINDS.get(kind)
    if found is None:
        raise UsageError(f"no decision kind {kind!r}", hint=f"one of {', '.join(sorted(KINDS))}")
    if found.photos == "one" and photos != 1:
        raise UsageError(f"a {kind} decision names one photo, got {photos}")
    if found.photos == "many" and photos < 2:
        raise UsageError(f"a {kind} decision names two photos or more, got {photos}")
    if value is not None and not isinstance(value, dict):
        raise UsageError(f"a {kind} decision's value is an object, got {type(value).__name__}")
    return found.check(dict(value or {}))
