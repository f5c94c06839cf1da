"""An ingest with nothing new to read answers from the last run, writing nothing.

After a run whose result depends only on files on this machine (photo folders and files,
``--labels`` tables), gpskit records what it saw (``.gpskit/ingest-stamp.json``): a digest
of every file's path, size and modification time under the inputs, of the options that
change rows, of gpskit's version and of the label tables; the manifest's identity as that
run left it; the decisions' files; and the run's report. The next run walks the same
inputs (no reading, no Arrow, no worker pool) and, when every part matches, prints that
report again and leaves the manifest as it is, as ``make`` does. Anything else (a file
touched, an option changed, the manifest replaced, ``--force``, ``--labels``, a table of
photos or a URL among the inputs, rows a next run reads again such as timeouts) takes the
full path, which re-reads only what changed.

Stdlib only: this is the start-up path of ``gpskit ingest``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpskit import __version__, checks
from gpskit.ingest.options import IngestOptions, is_table
from gpskit.ingest.summary import IngestReport
from gpskit.layout import DECISIONS_FILES, MANIFEST_FILE, STATE_DIR, own_entries
from gpskit.memo import Memo, identity

STAMP_FILE = "ingest-stamp.json"
#: Version of what a stamp records: a stamp of another version is ignored.
STAMP_VERSION = 1
#: Options that change where or how fast files are read, never the rows.
_NOT_IN_ROWS = ("workers", "engine", "journal_rows", "sort_rows", "force")


@dataclass(frozen=True)
class RunStamp:
    """What a run sees before it starts; ``replay`` or ``save`` against a dataset folder."""

    dataset_root: Path
    digest: str

    @classmethod
    def of(
        cls, inputs: Sequence[Path | str], dataset_root: Path, options: IngestOptions
    ) -> RunStamp | None:
        """The stamp of a run over ``inputs``, or None when no stamp can stand for it
        (``--force``, URLs, tables of photos, inputs that are not there)."""
        if options.force or not inputs or options.labels:
            return None  # --labels: names may match files anywhere, even by the cwd
        digest = hashlib.blake2b(digest_size=20)
        settings = {k: v for k, v in asdict(options).items() if k not in _NOT_IN_ROWS}
        rules = checks.fingerprint()  # the verdicts' rules, as the full run compares them
        digest.update(
            json.dumps([__version__, rules, settings], sort_keys=True, default=str).encode()
        )
        skip = {_resolved(dataset_root)}
        for given in inputs:
            text = str(given)
            if "://" in text or is_table(Path(text)):
                return None  # a table's photos may be anywhere; a URL's listing costs
            path = Path(given)
            try:
                info = os.stat(path)
            except OSError:
                return None  # the full run says what is wrong with it
            base = _resolved(path)
            digest.update(b"\0input\0" + os.fsencode(str(base)))
            if stat.S_ISDIR(info.st_mode):
                _walk(base, skip, digest)
            else:
                digest.update(_file_entry(path, ""))
        return cls(Path(dataset_root), digest.hexdigest())

    def memo(self) -> Memo:
        """The last run's report, kept against this stamp and the dataset's files as that
        run left them (the manifest and the decisions)."""
        root = self.dataset_root
        files = identity(root / name for name in (MANIFEST_FILE, *DECISIONS_FILES))
        key = {"stamp": STAMP_VERSION, "digest": self.digest, "dataset": files}
        return Memo(root / STATE_DIR / STAMP_FILE, key)

    def replay(self) -> IngestReport | None:
        """The last run's report when nothing it depended on has changed since, else None."""
        saved = self.memo().get()
        try:
            report = IngestReport.from_dict(saved["report"])
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(saved["written"])))
        except (TypeError, KeyError, ValueError, OverflowError, OSError):
            return None  # not what this gpskit writes: the full run answers
        report.dataset_dir = str(self.dataset_root)  # named as this run names the folder
        report.manifest = str(self.dataset_root / MANIFEST_FILE)
        report.reused, report.read = report.read + report.reused, 0
        report.removed = report.imported = 0
        report.notes = [
            f"nothing changed since the ingest of {when}: the manifest was left as it was "
            "(--force reads every file again)",
            *report.notes,
        ]
        return report

    def save(self, report: IngestReport) -> None:
        """Record this run (after its manifest was written); never fails the run."""
        self.memo().put({"written": time.time(), "report": report.to_dict()})


def discard(dataset_root: Path) -> None:
    """Forget the last run (a run starting now may leave the manifest changed or half done)."""
    with contextlib.suppress(OSError):
        (dataset_root / STATE_DIR / STAMP_FILE).unlink()


def _walk(base: Path, skip: set[Path], digest: Any) -> None:
    """Every file under ``base`` as the scan sees it (sorted; the dataset's own entries and
    the label tables left out), and the folders that could not be listed."""
    unlisted: list[str] = []
    for folder, dirnames, filenames in os.walk(base, onerror=lambda e: unlisted.append(str(e))):
        here = Path(folder)
        kept, filenames = own_entries(here, dirnames, filenames)
        dirnames[:] = sorted(d for d in kept if here / d not in skip)
        for name in sorted(filenames):
            if here / name not in skip:
                digest.update(_file_entry(here / name, os.path.join(folder, name)))
    digest.update(json.dumps(unlisted).encode())


def _file_entry(path: Path, shown: str) -> bytes:
    """One file's name, size and modification time (a dangling link or a FIFO: its name)."""
    try:
        info = os.stat(path)
    except OSError:
        return b"\0missing\0" + os.fsencode(shown)
    if not stat.S_ISREG(info.st_mode):
        return b"\0other\0" + os.fsencode(shown)
    return b"\0file\0%s\0%d\0%d" % (os.fsencode(shown), info.st_size, info.st_mtime_ns)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()
