"""Answers remembered against the files they were computed from.

A command whose answer depends only on some files (``gpskit info`` on the manifest and the
decisions; an ingest with nothing new on the photos and the manifest) keeps that answer in
the dataset's ``.gpskit/`` folder with a key naming those files as they were (device,
inode, size, modification time). Asked again, it answers from the memo when the key is
the same, without loading Arrow or pandas; any write to one of the files changes the key.
A memo that is damaged, edited (it carries a digest of its answer), of another layout, or
not a regular file is ignored, never an error.

Stdlib only: this is the start-up path of the commands that use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Version of the memo files' own layout: a memo of another layout is ignored.
MEMO_VERSION = 1
#: Memos above this size are not read (a memo is a summary, never the data).
MAX_MEMO_BYTES = 64 * 1024**2


def identity(paths: Iterable[Path]) -> list[list[int] | None]:
    """Each file as it is now (None: not there): any write to one changes this."""
    found: list[list[int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            found.append(None)
            continue
        found.append([info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns])
    return found


@dataclass(frozen=True)
class Memo:
    """One remembered answer: the file it is kept in and the key it holds for."""

    path: Path
    key: Any  # JSON-able: what the answer was computed from

    def get(self) -> Any:
        """The answer remembered for this key, or None."""
        try:
            info = os.stat(self.path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_MEMO_BYTES:
                return None  # a FIFO would block the read; a huge file is not ours
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or saved.get("memo") != MEMO_VERSION:
            return None
        if saved.get("key") != json.loads(json.dumps(self.key)):
            return None
        answer = saved.get("answer")
        if saved.get("check") != _check(answer):  # edited by hand, or cut short
            return None
        return answer

    def put(self, answer: Any) -> None:
        """Remember ``answer`` (atomically); a memo that cannot be written is no error."""
        from gpskit.atomic import write_text

        answer = json.loads(json.dumps(answer, default=str))  # as it will read back
        record = {"memo": MEMO_VERSION, "key": self.key, "answer": answer, "check": _check(answer)}
        with contextlib.suppress(OSError):
            write_text(self.path, json.dumps(record, sort_keys=True, default=str))

    def forget(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _check(answer: Any) -> str:
    """A digest of the answer as saved: a memo edited by hand (or half written by another
    tool) is not one gpskit wrote, and is ignored."""
    import hashlib

    text = json.dumps(answer, sort_keys=True, default=str, allow_nan=True)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
