"""Groups of linked photos: connected components, their kind, their way up and keeper.

The keeper rule, in order: accepted before rejected, more pixels, smaller GPS error
(unknown last), larger file (less compressed), earlier capture (unknown last), older file
(an original predates its copies), then path order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.dedup.links import COMPOSE, INVERSE, LINKS, MATCHES, TRANSFORM_NAMES, capture_seconds
from gpskit.dedup.options import DedupOptions
from gpskit.geo import haversine_m
from gpskit.graph import connected_components
from gpskit.imaging import DIHEDRAL
from gpskit.schema import load_schema

#: Group kinds from the tightest to the loosest (the schema's order).
KINDS = load_schema("duplicates").enum("kind")
_KIND_RANK = {k: i for i, k in enumerate(KINDS)}


def keeper_order(
    frame: pd.DataFrame,
    turned: npt.NDArray[np.bool_] | None = None,
    chosen: npt.NDArray[np.object_] | None = None,
) -> npt.NDArray[np.int64]:
    """Rank of every row under the keeper rule (0 = best); ``turned`` marks photos shown
    turned or mirrored relative to the way up of their group (they rank after); ``chosen``
    holds when a person chose the photo as its group's keeper ("" never): the latest
    choice ranks first, above every rule."""
    seconds, clock = capture_seconds(frame)
    when = np.full(len(frame), "", dtype=object) if chosen is None else chosen
    latest = pd.Series(when).rank(method="dense", ascending=False).to_numpy(float)
    keys = pd.DataFrame(
        {
            "chosen": np.where(when == "", np.inf, latest),
            "rejected": (frame.status != "accepted").to_numpy(),
            "turned": np.zeros(len(frame), bool) if turned is None else turned,
            "pixels": -(
                frame.width.fillna(0).astype(float) * frame.height.fillna(0).astype(float)
            ).to_numpy(),
            "error": frame.gps_h_error.fillna(np.inf).to_numpy(float),
            "bytes": -frame.file_size.to_numpy(float),
            "time": np.where(clock >= 0, seconds, np.inf),
            "mtime": frame.mtime_ns.to_numpy(np.int64),  # originals predate their copies
            "root": frame.root.to_numpy(),
            "path": frame.path.to_numpy(),
        }
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index.to_numpy()
    rank = np.empty(len(frame), np.int64)
    rank[order] = np.arange(len(frame))
    return rank


def _distances_to_keeper(
    frame: pd.DataFrame,
    keeper: npt.NDArray[np.int64],
    transform: npt.NDArray[np.int8],
    is_copy: npt.NDArray[np.bool_],
) -> list[int | None]:
    """Hamming distance from each copy's hash to its keeper's (turned as the copy is)."""
    codes = phash_ints(frame)
    out: list[int | None] = []
    for i in range(len(frame)):
        if not is_copy[i]:
            out.append(None)
            continue
        reference = codes[keeper[i]]
        if transform[i]:
            turned: Any = frame.dihedral_hashes.iat[keeper[i]]
            ok = turned is not None and len(turned) == len(DIHEDRAL)
            value = turned[transform[i] - 1] if ok else None
            reference = int(value, 16) if isinstance(value, str) else value
        out.append(hash_distance(codes[i], reference))
    return out


def phash_ints(frame: pd.DataFrame) -> list[int | None]:
    return [int(h, 16) if isinstance(h, str) else None for h in frame.phash]


def hash_distance(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else (a ^ b).bit_count()


def orientations(
    n: int, pairs: pd.DataFrame, labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int8]:
    """Each photo's transform relative to one member of its group (code; 0 for groups
    whose links all keep the same way up), by walking the links: b = t(a) gives
    g(b) = g(a) then t."""
    g = np.zeros(n, np.int8)
    if "transform" not in pairs or not (pairs["transform"] != 0).any():
        return g
    turned = pairs[pairs["transform"] != 0]
    groups = np.unique(labels[turned.a.to_numpy(np.int64)])
    inside = pairs[np.isin(labels[pairs.a.to_numpy(np.int64)], groups)]
    neighbours: dict[int, list[tuple[int, int]]] = {}
    for a, b, t in zip(inside.a, inside.b, inside["transform"], strict=True):
        neighbours.setdefault(int(a), []).append((int(b), int(t)))
        neighbours.setdefault(int(b), []).append((int(a), int(INVERSE[t])))
    seen: set[int] = set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        seen.add(start)
        queue = [start]
        while queue:
            here = queue.pop()
            for there, t in neighbours[here]:
                if there not in seen:
                    seen.add(there)
                    g[there] = COMPOSE[g[here], t]
                    queue.append(there)
    return g


def _upright(
    frame: pd.DataFrame, labels: npt.NDArray[np.int64], g: npt.NDArray[np.int8]
) -> npt.NDArray[np.bool_]:
    """True for photos shown turned or mirrored relative to their group's way up.

    The way up is that of the orientation class (photos related by no turn) whose members
    most often carry camera EXIF (an Orientation tag, a make), then the largest class,
    then the one holding the best photo by the rest of the keeper rule.
    """
    evidence = frame.orientation.notna().to_numpy(int) + frame.make.notna().to_numpy(int)
    classes = pd.DataFrame(
        {"label": labels, "g": g, "evidence": evidence, "rank": keeper_order(frame)}
    )
    scores = classes.groupby(["label", "g"]).agg(
        evidence=("evidence", "sum"), size=("evidence", "size"), best=("rank", "min")
    )
    scores = scores.reset_index().sort_values(
        ["label", "evidence", "size", "best"], ascending=[True, False, False, True]
    )
    way_up = scores.drop_duplicates("label").set_index("label").g
    turned: npt.NDArray[np.bool_] = g != way_up.reindex(labels).to_numpy(np.int8)
    return turned


def _keepers(
    frame: pd.DataFrame,
    labels: npt.NDArray[np.int64],
    turned: npt.NDArray[np.bool_],
    chosen: npt.NDArray[np.object_] | None = None,
) -> npt.NDArray[np.int64]:
    """Row of each row's keeper: the member of its component with the best keeper rank."""
    n = len(frame)
    rank = keeper_order(frame, turned, chosen)
    best = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(best, labels, rank)
    by_rank = np.empty(n, np.int64)
    by_rank[rank] = np.arange(n)
    keeper: npt.NDArray[np.int64] = by_rank[best[labels]]
    return keeper


def _group_kinds(
    n: int, pairs: pd.DataFrame, labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Rank in :data:`KINDS` of each row's group: the loosest link needed to hold it together
    (exact links alone, then with near links, then with bursts)."""
    a, b = pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)
    rank_of_code = np.array([_KIND_RANK[link.kind] for link in LINKS])
    link_kind = rank_of_code[pairs.match.to_numpy(np.int64)]
    kind_rank = np.full(n, len(KINDS) - 1)
    for level in reversed(range(len(KINDS) - 1)):
        use = link_kind <= level
        sub = connected_components(n, a[use], b[use])
        low, high = np.full(n, n), np.full(n, -1)
        np.minimum.at(low, labels, sub)
        np.maximum.at(high, labels, sub)
        kind_rank = np.where(low[labels] == high[labels], level, kind_rank)
    return kind_rank


def _group_ids(
    frame: pd.DataFrame, keeper: npt.NDArray[np.int64], grouped: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Group ids numbered from 1 in the order of the keepers' (root, path); 0 ungrouped."""
    group_keepers = np.unique(keeper[grouped])
    key_order = frame.iloc[group_keepers].sort_values(["root", "path"]).index.to_numpy()
    ids = np.zeros(len(frame), np.int64)
    ids[key_order] = np.arange(1, len(key_order) + 1)
    return np.where(grouped, ids[keeper], 0)


def _match_to_keeper(
    frame: pd.DataFrame,
    pairs: pd.DataFrame,
    keeper: npt.NDArray[np.int64],
    is_copy: npt.NDArray[np.bool_],
) -> pd.Series:
    """The strongest direct link of each copy to its keeper: equal hashes first, else the
    linked pair (None when the copy is linked through other members only)."""
    a, b = pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)
    match = pd.Series([None] * len(frame), dtype=object)
    if len(a):
        to_keeper = (keeper[a] == b) | (keeper[b] == a)
        other = np.where(keeper[a] == b, a, b)[to_keeper]
        match.iloc[other] = np.array(MATCHES, dtype=object)[pairs.match.to_numpy()[to_keeper]]
    for column, name in (
        ("stored_pixel_hash", "pixels"),
        ("pixel_hash", "pixels"),
        ("sha256", "bytes"),
    ):
        values = frame[column].to_numpy(object)
        equal = is_copy & pd.notna(values) & (values == values[keeper])
        match[equal] = name
    return match.where(pd.Series(is_copy), None)


def _or_none(
    mask: npt.NDArray[np.bool_], values: npt.NDArray[np.object_]
) -> npt.NDArray[np.object_]:
    """``values`` where ``mask``, None elsewhere."""
    out = np.full(len(values), None, dtype=object)
    out[mask] = values[mask]
    return out


def build_groups(
    frame: pd.DataFrame, pairs: pd.DataFrame, options: DedupOptions, decided: Any = None
) -> pd.DataFrame:
    """The duplicates table: one row per manifest row (``decided``: the decisions people
    made, a :class:`~gpskit.decisions.DecisionState`; its links are in ``pairs`` already)."""
    n = len(frame)
    roots, paths = frame.root.to_numpy(object), frame.path.to_numpy(object)
    chosen = decision_column(decided, roots, paths, "keeper_time", "")
    labels = connected_components(n, pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64))
    sizes = np.bincount(labels, minlength=n)[labels]
    grouped = sizes > 1
    g = orientations(n, pairs, labels)
    keeper = _keepers(frame, labels, _upright(frame, labels, g), chosen)
    kind = _or_none(grouped, np.array(KINDS, dtype=object)[_group_kinds(n, pairs, labels)])
    group_id = _group_ids(frame, keeper, grouped)
    is_copy = grouped & (keeper != np.arange(n))
    # copy = t(keeper): undo the keeper's turn, then apply the copy's
    relative = COMPOSE[INVERSE[g[keeper]], g]
    relative = np.where(is_copy, relative, 0)
    phash_distance = _distances_to_keeper(frame, keeper, relative, is_copy)
    lat, lon = frame.latitude.to_numpy(float), frame.longitude.to_numpy(float)
    offset = haversine_m(lat, lon, lat[keeper], lon[keeper])
    offset = np.where(is_copy & np.isfinite(offset), offset, np.nan)
    return pd.DataFrame(
        {
            "root": frame.root.to_numpy(),
            "path": frame.path.to_numpy(),
            "group_id": pd.Series(group_id, dtype="Int64").where(grouped),
            "kind": kind,
            "group_size": pd.Series(sizes, dtype="Int32").where(grouped),
            "keep": ~is_copy,
            "keeper_root": _or_none(is_copy, frame.root.to_numpy(object)[keeper]),
            "keeper_path": _or_none(is_copy, frame.path.to_numpy(object)[keeper]),
            "match": _match_to_keeper(frame, pairs, keeper, is_copy).to_numpy(),
            "transform": np.array(TRANSFORM_NAMES, dtype=object)[relative],
            "phash_distance": pd.array(phash_distance, dtype="Int16"),
            "gps_offset_m": pd.Series(offset, dtype="Float64").where(~np.isnan(offset)),
            "gps_conflict": np.nan_to_num(offset, nan=0.0) > options.conflict_m,
            "decided": decision_column(decided, roots, paths, "decided_in_groups", None),
        }
    )


def decision_column(
    decided: Any, roots: npt.NDArray[Any], paths: npt.NDArray[Any], method: str, empty: Any
) -> npt.NDArray[np.object_]:
    """What ``decided.<method>(root, path)`` says of each row (``empty`` without decisions)."""
    if not decided:
        return np.full(len(roots), empty, dtype=object)
    ask = getattr(decided, method)
    return np.array([ask(r, p) for r, p in zip(roots, paths, strict=True)], dtype=object)


# --- the run ----------------------------------------------------------------------------


#: The manifest columns dedup reads (the rest are never loaded: at 10M photos every
