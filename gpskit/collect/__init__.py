"""Collect: the walk itself. Shots taken on a phone with ``gpskit app --collect`` land in
the dataset at once, checked like any photo, and coverage is updated for the whole team.

:class:`Collector` is the library core the web layer calls (usable without it): a shot
(:mod:`~gpskit.collect.shots`) is saved into ``DATASET/inbox/`` with the page's
measurement in its EXIF, the inbox is ingested with the thresholds the manifest was
judged with, and the shot's verdict (accepted, or rejected with its reasons: a 40 m fix,
a stale fix ...) goes back to the phone. A shot sent again (the page retries after a
dropped connection) is recognised by its id and never kept twice.
:mod:`~gpskit.collect.live` makes what the page draws; :mod:`~gpskit.collect.tls` the
certificate phones need; :mod:`~gpskit.collect.options` is at the bottom.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from gpskit import checks, paths
from gpskit.collect.live import page_state
from gpskit.collect.options import INBOX, CollectOptions
from gpskit.collect.shots import Shot, find_shot, photo_bytes, save_shot, shot_path
from gpskit.coverage import CoverageOptions, survey
from gpskit.dataset import Dataset
from gpskit.errors import InputError
from gpskit.regions import Region, load_region

__all__ = ["CollectOptions", "Collector", "Outcome", "Shot"]


@dataclass
class Outcome:
    """What became of a shot: its verdict and reasons, said for the person holding the
    phone, and whether it had been received before."""

    shot_id: str
    status: str  # accepted | rejected | unknown (not in the manifest: ingest failed)
    path: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    message: str = ""
    repeated: bool = False
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.shot_id,
            "status": self.status,
            "path": self.path,
            "reasons": self.reasons,
            "warnings": self.warnings,
            "message": self.message,
            "repeated": self.repeated,
            "version": self.version,
        }


class Collector:
    """Receives the shots of one dataset (one at a time: each is ingested before the next)."""

    def __init__(self, dataset: Dataset | Path, options: CollectOptions | None = None) -> None:
        self.options = options or CollectOptions()
        self.options.validate()
        self.dataset = Dataset.at(dataset)
        self.region: Region = load_region(self.options.region)
        self.declination = self._declination()
        self.coverage_options = CoverageOptions(
            region=self.options.region,
            cell_m=self.options.cell_m,
            min_per_cell=self.options.min_per_cell,
            declination=None,  # shots carry true headings; older photos keep their own ref
        )
        self.version = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=100)
        self._lock = threading.Lock()
        self._state: dict[str, Any] | None = None

    def _declination(self) -> float | None:
        """The option's, else the region's ``declination`` property, else None (magnetic)."""
        if self.options.declination is not None:
            return self.options.declination
        stated = self.region.properties.get("declination")
        if isinstance(stated, bool) or not isinstance(stated, (int, float)):
            return None
        return float(stated) if -90 <= stated <= 90 else None

    @property
    def inbox(self) -> Path:
        return self.dataset.root / INBOX

    def prepare(self) -> None:
        """The inbox folder, a manifest (an empty one for a new dataset), and the page's
        state once (a region or grid it cannot draw is refused here, not on the phone)."""
        with self._lock:
            _own_folder(self.inbox, "the inbox")
            self.inbox.mkdir(parents=True, exist_ok=True)
            if not self.dataset.manifest_path.exists():
                self._ingest()
        self.state()

    def receive(self, description: Any, data: bytes) -> Outcome:
        """Save, ingest and judge one shot (or answer for it again if already received)."""
        shot = Shot.from_dict(description)
        with self._lock:
            _own_folder(self.inbox, "the inbox")
            earlier = find_shot(self.dataset.root, shot.shot_id)
            if earlier is not None:
                outcome = self._outcome(shot.shot_id, earlier, repeated=True)
                if outcome.status != "unknown":
                    return outcome
                target = earlier  # saved before, never judged (the dataset was busy)
            else:
                target = shot_path(self.dataset.root, shot)
                _own_folder(target.parent, "the inbox's day folder")
                if not save_shot(target, photo_bytes(shot, data, self.options)):
                    return self._outcome(shot.shot_id, target, repeated=True)
            self._ingest()
            self.version += 1
            self._state = None
            outcome = self._outcome(shot.shot_id, target, repeated=earlier is not None)
            self.recent.append(
                {
                    "id": shot.shot_id,
                    "lat": shot.latitude,
                    "lon": shot.longitude,
                    "heading": shot.heading,
                    "accuracy_m": shot.accuracy_m,
                    "status": outcome.status,
                    "walker": shot.walker,
                    "version": self.version,
                }
            )
            return outcome

    def state(self) -> dict[str, Any]:
        """What the page draws (made again after each shot), with the latest shots."""
        with self._lock:
            if self._state is None:
                found = survey(self.dataset, self.region, self.coverage_options)
                self._state = page_state(self.region, found, self.coverage_options)
            return {
                **self._state,
                "declination": self.declination,
                "version": self.version,
                "recent": list(self.recent),
            }

    def _thresholds(self) -> dict[str, float]:
        from gpskit.ingest.assemble import recorded_verdicts

        found = recorded_verdicts(self.dataset.manifest_path).get("thresholds", {})
        return dict(found)

    def _ingest(self) -> None:
        from gpskit.ingest import IngestOptions, ingest
        from gpskit.ingest.assemble import recorded_verdicts

        recorded = recorded_verdicts(self.dataset.manifest_path)
        ingest([self.inbox], self.dataset.root, IngestOptions(workers=1, **recorded))

    def _outcome(self, shot_id: str, path: Path, repeated: bool) -> Outcome:
        relative = str(path.relative_to(self.inbox).as_posix())
        table = self.dataset.load_manifest(["root", "path", "status", "reasons", "warnings"])
        match = table.filter(pc.equal(table["path"], relative))
        inbox = self.inbox.resolve()
        rows = [r for r in match.to_pylist() if Path(r["root"]).resolve() == inbox]
        if not rows:
            return Outcome(shot_id, "unknown", relative, message="saved; not ingested yet",
                           repeated=repeated, version=self.version)  # fmt: skip
        row = rows[0]
        reasons, warnings = list(row["reasons"] or []), list(row["warnings"] or [])
        return Outcome(
            shot_id,
            row["status"],
            relative,
            reasons,
            warnings,
            _message(row["status"], reasons, self._thresholds()),
            repeated,
            self.version,
        )


def _own_folder(path: Path, what: str) -> None:
    """Refuse a folder shots would be saved through that is not a real folder of the
    dataset (a file, a link to elsewhere): one clear line, nothing written."""
    if path.is_symlink():
        raise InputError(
            f"{what} {path} is a symbolic link; shots are kept in the dataset's own folder",
            hint=f"move {path} away (gpskit makes it)",
        )
    found = paths.kind(path)
    if found not in (paths.FOLDER, paths.MISSING):
        raise InputError(f"{what} {path} is {found}, not a folder", hint=f"move {path} away")


def _message(status: str, reasons: list[str], thresholds: dict[str, float]) -> str:
    """A verdict said for the person holding the phone (the check's description, and the
    limit it was judged against)."""
    if status == "accepted":
        return "kept"
    described = {c["code"]: c for c in checks.describe()}
    said = []
    for reason in reasons:
        item = described.get(reason.split(":")[0])
        if item is None:
            said.append(reason)
            continue
        text = str(item["description"]).rstrip(".")
        if item["threshold"]:
            limit = thresholds.get(item["threshold"], item["default"])
            text += f" (the limit is {limit:g} {item['unit'] or ''}".rstrip() + ")"
        said.append(text + ".")
    return "not kept: " + " ".join(said) + " Take it again."
