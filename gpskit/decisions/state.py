"""What the decisions come to, and the one place every step applies them.

Among the decisions on one photo the latest counts (exclude or include; a position; a
heading; alone or a merge). Steps read the manifest through
:meth:`DecisionState.overlay` (``Dataset.load_manifest`` does it): ``status``, the
position and the heading are the person's where they decided, the rule's verdict stays
visible (``reasons`` and ``warnings`` are the checks', the photo's own position moves to
the ``file_*`` columns) and ``decided`` names the decisions applied. Dedup applies the
group decisions (:meth:`DecisionState.regroup`). Moving a position does not include a
rejected photo: that is its own decision.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from gpskit.decisions.store import Decision

Key = tuple[str, str]  # (root, path)
#: The columns holding a photo's own position and heading while a table's or a person's
#: is used (the ingest.labels convention).
_OWN = ("latitude", "longitude", "gps_source", "img_direction", "img_direction_ref")


@dataclass
class DecisionState:
    """The decisions that count, photo by photo."""

    status: dict[Key, str] = field(default_factory=dict)  # exclude or include
    position: dict[Key, tuple[float, float]] = field(default_factory=dict)
    heading: dict[Key, float] = field(default_factory=dict)
    alone: set[Key] = field(default_factory=set)
    merged: dict[Key, str] = field(default_factory=dict)  # photo -> the merge's id
    keeper: dict[Key, str] = field(default_factory=dict)  # photo -> when it was chosen
    digest: str = ""  # of the decisions that count: what later outputs record
    count: int = 0

    @classmethod
    def resolve(cls, decisions: Iterable[Decision]) -> DecisionState:
        """The state the active ``decisions`` (oldest first) come to."""
        state = cls()
        digest = hashlib.sha256()
        for d in decisions:
            if not d.active:
                continue
            state.count += 1
            digest.update(json.dumps([d.id, d.kind, d.photos, d.value], sort_keys=True).encode())
            for key in d.photos:
                if d.kind in ("exclude", "include"):
                    state.status[key] = d.kind
                elif d.kind == "position":
                    state.position[key] = (d.value["latitude"], d.value["longitude"])
                elif d.kind == "heading":
                    state.heading[key] = d.value["heading"]
                elif d.kind == "alone":
                    state.alone.add(key)
                    state.merged.pop(key, None)
                elif d.kind == "merge":
                    state.merged[key] = d.id
                    state.alone.discard(key)
                elif d.kind == "keeper":
                    state.keeper[key] = d.created_at
        state.digest = digest.hexdigest() if state.count else ""
        return state

    def __bool__(self) -> bool:
        return self.count > 0

    def touched(self) -> set[Key]:
        """The photos whose manifest row a decision changes."""
        return set(self.status) | set(self.position) | set(self.heading)

    # --- the manifest ------------------------------------------------------------------------

    def overlay(self, table: pa.Table) -> pa.Table:
        """Manifest rows (any subset of columns with ``root`` and ``path``) as decided."""
        touched = self.touched()
        if not touched or not {"root", "path"} <= set(table.column_names):
            return table
        keys = pc.binary_join_element_wise(
            pc.cast(table["root"], pa.string()), pc.cast(table["path"], pa.string()), "\0"
        )
        wanted = pa.array(["\0".join(k) for k in touched], pa.string())
        rows = np.flatnonzero(pc.is_in(keys, value_set=wanted).to_numpy(zero_copy_only=False))
        if not rows.size:
            return table
        columns = [c for c in table.column_names if c in _CHANGED or c in ("root", "path")]
        part = table.select(columns).take(pa.array(rows)).to_pylist()
        for row in part:
            self._apply(row)
        for name in columns:
            if name in ("root", "path"):
                continue
            index = table.schema.get_field_index(name)
            kind = table.schema.field(name)
            values = table[name].to_pylist()
            for at, row in zip(rows.tolist(), part, strict=True):
                values[at] = row[name]
            table = table.set_column(index, kind, pa.array(values, kind.type))
        return table

    def _apply(self, row: dict[str, Any]) -> None:
        key = (row["root"], row["path"])
        decided = list(row.get("decided") or [])
        decides_place = key in self.position or key in self.heading
        if decides_place and row.get("gps_source") not in ("table", "manual"):
            for column in _OWN:  # the photo's own, as a table's position keeps it
                row[f"file_{column}"] = row.get(column)
        if key in self.position:
            row["latitude"], row["longitude"] = self.position[key]
            row["gps_source"] = "manual"
            decided.append("position")
        if key in self.heading:
            row["img_direction"], row["img_direction_ref"] = self.heading[key], "T"
            decided.append("heading")
        if key in self.status:
            row["status"] = "rejected" if self.status[key] == "exclude" else "accepted"
            decided.append(self.status[key])
        row["decided"] = decided

    # --- duplicate groups --------------------------------------------------------------------

    def regroup(
        self,
        roots: npt.NDArray[Any],
        paths: npt.NDArray[Any],
        a: npt.NDArray[np.int64],
        b: npt.NDArray[np.int64],
    ) -> tuple[
        npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.bool_]
    ]:
        """For the rows (``roots``, ``paths``) and the rules' links (``a``, ``b``): which
        links stand (a photo decided alone has none), the links decisions add (each
        merge's photos star-linked to its first), and the rows chosen as keepers."""
        index = {
            (r, p): i for i, (r, p) in enumerate(zip(roots.tolist(), paths.tolist(), strict=True))
        }
        alone = np.zeros(len(index), bool)
        for key in self.alone:
            if key in index:
                alone[index[key]] = True
        keep = ~(alone[a] | alone[b]) if len(a) else np.ones(0, bool)
        first: dict[str, int] = {}
        add_a, add_b = [], []
        for key, merge in sorted(self.merged.items()):
            if key not in index:
                continue
            head = first.setdefault(merge, index[key])
            if head != index[key]:
                add_a.append(index[key])
                add_b.append(head)
        keepers = np.zeros(len(index), bool)
        for key in self.keeper:
            if key in index:
                keepers[index[key]] = True
        return keep, np.array(add_a, np.int64), np.array(add_b, np.int64), keepers

    def keeper_time(self, root: str, path: str) -> str:
        """When the photo was chosen as its group's keeper ("" if never: the latest wins)."""
        return self.keeper.get((root, path), "")

    def decided_in_groups(self, root: str, path: str) -> str | None:
        """The group decision on a photo, for duplicates.parquet's ``decided`` column."""
        key = (root, path)
        if key in self.alone:
            return "alone"
        if key in self.keeper:
            return "keeper"
        if key in self.merged:
            return "merge"
        return None


#: The manifest columns a decision may change.
_CHANGED = frozenset({"status", "decided", *_OWN, *(f"file_{c}" for c in _OWN)})
