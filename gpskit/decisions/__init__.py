"""Decisions people make about photos, which every step honours over its rules.

A person looks (``gpskit app``) and decides: exclude or include a photo, take it out of
its duplicate group or merge photos into one, choose a group's keeper, set a photo's
position or heading. Each decision is kept with who made it and when
(:mod:`~gpskit.decisions.store`: SQLite in the dataset folder), can be undone, exported
and imported; what they come to is applied in one place
(:mod:`~gpskit.decisions.state`) by every step that reads the manifest.
"""

from __future__ import annotations

from gpskit.decisions.kinds import KINDS, DecisionKind, decision_kind
from gpskit.decisions.state import DecisionState
from gpskit.decisions.store import Decision, DecisionStore, ImportReport, photo_id

__all__ = [
    "KINDS",
    "Decision",
    "DecisionKind",
    "DecisionState",
    "DecisionStore",
    "ImportReport",
    "decision_kind",
    "photo_id",
]
