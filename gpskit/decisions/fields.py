"""A stored decision's fields, checked as a person's new decision is: its id, its dates,
the text people typed (as SQLite, a terminal and a page can hold it)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

from gpskit.errors import UsageError

#: The longest note a decision keeps (characters).
MAX_NOTE = 2000


#: A decision's id: 32 lowercase hex digits (a UUID4's).
DECISION_ID = re.compile(r"[0-9a-f]{32}")
#: Dates this far ahead of this machine's clock are a wrong clock, not a decision (s).
CLOCK_SLACK = 86_400


def json_text(text: Any) -> Any:
    """A JSON column as written (RecursionError for a deep one is the caller's to skip)."""
    if not isinstance(text, str) or len(text) > 64 * 1024**2:
        raise TypeError("not JSON text")
    return json.loads(text)


def checked_date(text: Any, not_before: str | None = None) -> str:
    """An ISO date with its time zone, not in the future (nor before ``not_before``)."""
    if not isinstance(text, str):
        raise TypeError("not a date")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.timestamp() > time.time() + CLOCK_SLACK:
        raise ValueError(f"{text[:40]!r} has no time zone or is in the future")
    if not_before is not None and moment < datetime.fromisoformat(not_before):
        raise ValueError("undone before it was made")
    return moment.isoformat(timespec="microseconds")


def checked_text(value: Any, what: str) -> str:
    """Text a person typed, as SQLite, a terminal and a page can hold it: UTF-8, without
    control characters (a NUL, an escape sequence)."""
    if not isinstance(value, str):
        raise UsageError(f"{what} must be text, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} holds characters that are not text (not UTF-8)") from None
    if any((ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) < 160 for c in value):
        raise UsageError(f"{what} holds control characters")
    if any(c in _BIDI_CONTROLS for c in value):  # text shown reversed: a name that lies
        raise UsageError(f"{what} holds direction overrides (U+202A-U+202E, U+2066-U+2069)")
    return str(value)


_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def checked_note(note: Any) -> str:
    text = checked_text(note, "a note")
    if len(text) > MAX_NOTE:
        raise UsageError(f"a note is at most {MAX_NOTE:,} characters, got {len(text):,}")
    return text


def checked_author(author: Any) -> str:
    name = " ".join(checked_text(author if author is not None else "", "the author's name").split())
    if not name:
        raise UsageError("a decision needs the name of who made it", hint="give --author NAME")
    if len(name) > 100:
        raise UsageError("an author's name is at most 100 characters")
    return name
