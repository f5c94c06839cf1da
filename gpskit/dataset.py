"""One dataset folder: where every output lives, how to load it, whether it is current.

Every command reads and writes one folder (``./gpskit-data`` unless told otherwise)::

    manifest.parquet        gpskit ingest     (schemas/manifest.json)
    duplicates.parquet      gpskit dedup      (schemas/duplicates.json)
    duplicates.png
    overlap.parquet         gpskit dedup --against (schemas/overlap.json)
    coverage.parquet        gpskit coverage   (schemas/coverage.json)
    coverage/               coverage.png, coverage.json, gaps.geojson, plan.csv, plan.geojson
    splits/                 gpskit split      ({train,val,test}.parquet, split.json)
    runs/<run>/             gpskit train / eval

Outputs made from the manifest (duplicates, coverage) carry a stamp in their Parquet
metadata: the options they were made with and the SHA-256 of the manifest they read. An
output is *current* when its stamp names the manifest as it is now; later steps rebuild
or refuse stale ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from gpskit import paths
from gpskit.errors import GpskitError, InputError, MissingStepError
from gpskit.layout import (
    CONTACT_SHEET_FILE,
    COVERAGE_DIR,
    COVERAGE_FILE,
    DUPLICATES_FILE,
    MANIFEST_FILE,
    OVERLAP_FILE,
    RUNS_DIR,
    SPLITS_DIR,
    STATE_DIR,
    default_dataset_dir,
)
from gpskit.schema import file_metadata, load_schema, read_table

if TYPE_CHECKING:
    from gpskit.decisions.state import DecisionState


class DatasetBusyError(GpskitError):
    """Another gpskit process is writing the dataset folder."""

    exit_code = 75  # EX_TEMPFAIL: try again later


#: Locks this process holds, by folder: a step run inside another (split running dedup)
#: shares its caller's lock.
_HELD: dict[str, int] = {}


@dataclass(frozen=True)
class StepOutput:
    """A Parquet output that a step derives from the manifest, stamped with its hash."""

    file: str
    schema: str
    stamp_key: str
    command: str
    #: A JSON file written by the same run, recording the same ``generation`` as the stamp:
    #: if a run was cut short between the two (a full disk), the set is mixed, not current.
    companion: str | None = None


DUPLICATES = StepOutput(DUPLICATES_FILE, "duplicates", "gpskit.dedup", "dedup")
COVERAGE = StepOutput(
    COVERAGE_FILE, "coverage", "gpskit.coverage", "coverage", f"{COVERAGE_DIR}/coverage.json"
)


class Dataset:
    """A dataset folder: its paths, its tables and the freshness of its outputs."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        found = paths.kind(self.root)
        if found not in (paths.FOLDER, paths.MISSING):
            raise InputError(
                f"{self.root} is {found}, not a dataset folder",
                hint="give a folder (it is created if missing)",
            )

    @classmethod
    def at(cls, path: Path | Dataset | None) -> Dataset:
        """The dataset a command works on: the argument if given, else the default folder."""
        if isinstance(path, Dataset):
            return path
        return cls(path if path is not None else default_dataset_dir())

    @staticmethod
    def is_dataset(path: Path) -> bool:
        """Whether ``path`` is a dataset folder gpskit has written (it has ``.gpskit/``)."""
        return (Path(path) / STATE_DIR).is_dir()

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r})"

    # --- paths ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_FILE

    @property
    def duplicates_path(self) -> Path:
        return self.root / DUPLICATES_FILE

    @property
    def overlap_path(self) -> Path:
        return self.root / OVERLAP_FILE

    @property
    def contact_sheet_path(self) -> Path:
        return self.root / CONTACT_SHEET_FILE

    @property
    def coverage_path(self) -> Path:
        return self.root / COVERAGE_FILE

    @property
    def coverage_dir(self) -> Path:
        return self.root / COVERAGE_DIR

    @property
    def splits_dir(self) -> Path:
        return self.root / SPLITS_DIR

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def journal_dir(self) -> Path:
        """Rows of an ingest not finished yet (see :mod:`gpskit.shards`)."""
        return self.state_dir / "ingest-journal"

    @property
    def log_dir(self) -> Path:
        """What decoders printed (libtiff warnings...), kept off the terminal."""
        return self.state_dir / "logs"

    def output_path(self, output: StepOutput) -> Path:
        return self.root / output.file

    # --- one writer at a time -------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, command: str) -> Iterator[None]:
        """Hold the dataset's write lock: a second writer gets :class:`DatasetBusyError`."""
        key = str(self.root.resolve())
        if _HELD.get(key):
            _HELD[key] += 1
            try:
                yield
            finally:
                _HELD[key] -= 1
            return
        paths.require_folder_or_missing(self.state_dir, "the dataset's own folder")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lock = self.state_dir / "lock"
        if paths.kind(lock) not in (paths.FILE, paths.MISSING):
            raise InputError(
                f"{lock} is {paths.kind(lock)}, not gpskit's lock file", hint="move it away"
            )
        handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115
        try:
            self._acquire(handle, command)
            _HELD[key] = 1
            try:
                yield
            finally:
                _HELD.pop(key, None)
        finally:
            handle.close()  # closing releases the lock

    def _acquire(self, handle: Any, command: str) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another gpskit process"
            raise DatasetBusyError(
                f"{self.root} is being written by {holder}",
                hint="wait for it to finish, or write to another dataset folder (--out)",
            ) from None
        started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        handle.seek(0)
        handle.truncate()
        handle.write(f"`gpskit {command}` (pid {os.getpid()}, since {started})")
        handle.flush()

    # --- tables --------------------------------------------------------------------------

    def require_manifest(self) -> None:
        """Fail with the one "run ingest first" message when there is no manifest."""
        paths.require_readable_file(self.manifest_path)
        if not self.manifest_path.exists():
            raise MissingStepError(
                f"{self.manifest_path} does not exist",
                hint=f"run `gpskit ingest PHOTOS --out {self.root}` first",
            )

    def load_manifest(self, columns: list[str] | None = None, decided: bool = True) -> pa.Table:
        """``manifest.parquet``, schema-checked (``columns``: only those), with the
        decisions people made applied (``decided=False``: the rules' rows alone)."""
        self.require_manifest()
        state = self.decision_state() if decided else None
        if not state:
            return read_table(self.manifest_path, load_schema("manifest"), columns=columns)
        wanted = None if columns is None else list(dict.fromkeys(["root", "path", *columns]))
        table = state.overlay(
            read_table(self.manifest_path, load_schema("manifest"), columns=wanted)
        )
        return table if columns is None else table.select(columns)

    def decision_state(self) -> DecisionState:
        """What the decisions people made come to (empty when they made none)."""
        from gpskit.decisions.state import DecisionState
        from gpskit.decisions.store import DecisionStore

        return DecisionState.resolve(DecisionStore(self).decisions(include_undone=False))

    def manifest_snapshot(self, columns: list[str] | None = None) -> tuple[pa.Table, str]:
        """The manifest and the SHA-256 of exactly the bytes it was read from.

        The file is hashed, read, and checked unchanged (same inode, size and mtime: gpskit
        replaces it by rename); if another writer replaced it meanwhile, it is read again.
        """
        for _ in range(5):
            before = _identity(self.manifest_path)
            digest = self.manifest_fingerprint()
            table = self.load_manifest(columns)
            if _identity(self.manifest_path) == before:
                return table, digest
            time.sleep(0.05)
        raise DatasetBusyError(f"{self.manifest_path} keeps changing while it is read")

    def load(self, output: StepOutput) -> pa.Table:
        """A step's output table, schema-checked (missing: say which command makes it)."""
        return read_table(
            self.output_path(output),
            load_schema(output.schema),
            step_hint=f"run `gpskit {output.command} {self.root}` first",
        )

    def load_duplicates(self) -> pa.Table:
        return self.load(DUPLICATES)

    def load_coverage(self) -> pa.Table:
        return self.load(COVERAGE)

    # --- freshness -----------------------------------------------------------------------

    def manifest_fingerprint(self) -> str:
        """SHA-256 of the manifest file's bytes, and of the decisions that count where
        people made some: what later outputs record (a new decision makes them stale)."""
        digest = hashlib.sha256()
        paths.require_readable_file(self.manifest_path)
        with open(self.manifest_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        decided = self.decision_state().digest
        if decided:
            return hashlib.sha256(f"{digest.hexdigest()}:{decided}".encode()).hexdigest()
        return digest.hexdigest()

    def stamp(
        self, output: StepOutput, options: Any, manifest_sha256: str, generation: str | None = None
    ) -> dict[str, str]:
        """Parquet metadata for ``output``: its options, the hash of the manifest read and
        (for an output with a companion) the run's generation id."""
        record: dict[str, Any] = {"options": asdict(options), "manifest_sha256": manifest_sha256}
        if generation is not None:
            record["generation"] = generation
        return {output.stamp_key: json.dumps(record, sort_keys=True)}

    def companion_generation(self, output: StepOutput) -> str | None:
        """The generation its companion file records (None: no companion, or unreadable)."""
        if output.companion is None:
            return None
        try:
            found = json.loads(paths.read_text(self.root / output.companion))
        except (OSError, ValueError):
            return None
        value = found.get("generation") if isinstance(found, dict) else None
        return value if isinstance(value, str) else None

    def _stamp_record(self, output: StepOutput) -> dict[str, Any] | None:
        """An output's stamp; None when the file is missing or unreadable (corrupt)."""
        try:
            record = json.loads(file_metadata(self.output_path(output)).get(output.stamp_key, "{}"))
        except (OSError, ValueError, pa.ArrowException):
            return None
        return record if isinstance(record, dict) else None

    def stamped_options(self, output: StepOutput) -> dict[str, Any]:
        """The options recorded in an output's stamp (empty when there is none)."""
        options = (self._stamp_record(output) or {}).get("options", {})
        return options if isinstance(options, dict) else {}

    def is_current(self, output: StepOutput) -> bool:
        """True when ``output`` is readable and records the current manifest's hash
        (a missing, corrupt or stale output is not current: later steps rebuild it)."""
        if not self.output_path(output).exists() or not self.manifest_path.exists():
            return False
        record = self._stamp_record(output)
        if record is None or record.get("manifest_sha256") != self.manifest_fingerprint():
            return False
        # the outputs of one run are one generation: a set cut short is mixed, so stale
        return output.companion is None or record.get("generation") == self.companion_generation(
            output
        )


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns
