"""The link registry: every way two photos can be linked, each with the code that finds it.

A link kind is one function decorated with :func:`link`: given the photos of a dataset
(and, to compare two datasets, another's), it returns the matching pairs. The registry
(:data:`LINKS`, in the order of the ``match`` codes of ``schemas/duplicates.json``) is
what dedup, the overlap with another dataset, the pairs CSV and the split's leakage
report all read; the heading veto and the adding of pairs live once, in
:func:`find_links`. A new link is one decorated function here and a new value of the
``match`` enum in the schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.dedup.hashes import Pairs, crops, hashed, join, long_hashes, trimmed, turned, whole
from gpskit.dedup.options import DedupOptions
from gpskit.geo import angle_difference, haversine_m
from gpskit.imaging import DIHEDRAL, compose, inverse

#: A finder: the pairs of ``mine`` that match, among themselves (``theirs`` None) or with
#: the rows of ``theirs``; ``a`` indexes ``mine``, ``b`` the other side.
Finder = Callable[[pd.DataFrame, "pd.DataFrame | None", DedupOptions], list[Pairs]]


def _code(name: str) -> int:
    """The transform code of a dihedral transform name (identity is 0)."""
    return 0 if name == "identity" else 1 + DIHEDRAL.index(name)


#: Transform codes: 0 is "the same way up", k is DIHEDRAL[k - 1] (see gpskit.imaging).
TRANSFORM_NAMES: tuple[str | None, ...] = (None, *DIHEDRAL)
INVERSE = np.array([_code(inverse(t or "identity")) for t in TRANSFORM_NAMES], np.int8)
COMPOSE = np.array(
    [
        [_code(compose(a or "identity", b or "identity")) for b in TRANSFORM_NAMES]
        for a in TRANSFORM_NAMES
    ],
    np.int8,
)


@dataclass(frozen=True)
class LinkKind:
    """One way two photos can be linked (the ``match`` column of duplicates.parquet)."""

    match: str
    kind: str  # the group kind the link implies: exact, near or burst
    priority: int  # which link describes a pair when several apply (0 first)
    description: str
    find: Finder = field(repr=False, compare=False)
    perceptual: bool = False  # looks alike: vetoed when the compass headings disagree
    across: bool = True  # also sought between two datasets (``dedup --against``)


#: Every link, in the order of their codes (registration order).
LINKS: list[LinkKind] = []


def link(
    match: str,
    kind: str,
    priority: int,
    description: str,
    *,
    perceptual: bool = False,
    across: bool = True,
) -> Callable[[Finder], Finder]:
    """Register a finder as the link ``match``."""

    def register(find: Finder) -> Finder:
        LINKS.append(LinkKind(match, kind, priority, description, find, perceptual, across))
        return find

    return register


def _pairs(a: Any, b: Any, transform: Any = 0, distance: Any = 0) -> Pairs:
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    return Pairs(
        a,
        b,
        np.broadcast_to(np.asarray(transform, np.int8), a.shape).copy(),
        np.broadcast_to(np.asarray(distance, np.int64), a.shape).copy(),
    )


def _same_value(mine: pd.DataFrame, theirs: pd.DataFrame | None, column: str) -> Pairs:
    """Rows with the same (non-null) value: within a dataset, every row star-linked to the
    first with its value; between two, every pair."""
    if theirs is not None:
        left = mine[[column]].dropna().reset_index(names="m")
        right = theirs[[column]].dropna().reset_index(names="o")
        merged = left.merge(right, on=column)
        return _pairs(merged.m.to_numpy(), merged.o.to_numpy())
    present = mine[column].dropna()
    if present.empty:
        return _pairs([], [])
    codes, _ = pd.factorize(present)
    _, first_position = np.unique(codes, return_index=True)
    rows = present.index.to_numpy()
    first = rows[first_position[codes]]
    mask = rows != first
    return _pairs(rows[mask], first[mask])


@link("bytes", "exact", 0, "the same SHA-256 of the file")
def _bytes(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    return [_same_value(mine, theirs, "sha256")]


@link("pixels", "exact", 1, "the same decoded pixels, oriented or as stored")
def _pixels(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    return [_same_value(mine, theirs, column) for column in ("pixel_hash", "stored_pixel_hash")]


@link("phash", "near", 3, "64-bit pHashes within --near bits, confirmed", perceptual=True)
def _phash(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    """Re-encoded, resized, brightened copies; with ``dihedral``, also copies saved without
    their Orientation tag (shown sideways), turned by hand, or flipped by an editor."""
    mine = hashed(mine)
    other = None if theirs is None else whole(hashed(theirs))
    found = [join(whole(mine), other, options.near_threshold, options)]
    if options.dihedral:
        index = whole(mine) if other is None else other
        found.append(join(turned(mine), index, options.near_threshold, options))
    return found


@link("crop", "near", 4, "a pHash within --crop bits of a 95 % or 90 % crop hash", perceptual=True)
def _crop(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    """Slightly cropped copies, which the whole-photo hash misses."""
    if not options.crop_variants:
        return []
    mine = hashed(mine)
    if theirs is None:
        return [join(whole(mine), crops(mine), options.crop_threshold, options)]
    theirs = hashed(theirs)
    return [
        join(whole(mine), crops(theirs), options.crop_threshold, options),
        join(whole(theirs), crops(mine), options.crop_threshold, options).swapped(INVERSE),
    ]


@link(
    "border", "near", 5, "the same picture inside uniform borders (a screenshot)", perceptual=True
)
def _border(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    """Photos shown inside uniform borders (screenshots, letterboxed or padded copies),
    matched by the picture inside with photos and with each other."""
    mine = hashed(mine)
    radius = options.near_threshold
    if theirs is None:
        return [
            join(trimmed(mine), whole(mine), radius, options),
            join(trimmed(mine), None, radius, options),
        ]
    theirs = hashed(theirs)
    return [
        join(trimmed(mine), whole(theirs), radius, options),
        join(trimmed(theirs), whole(mine), radius, options).swapped(INVERSE),
        join(trimmed(mine), trimmed(theirs), radius, options),
    ]


@link(
    "burst", "burst", 2, "another shot of the same place and heading, seconds apart", across=False
)
def _burst(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    """Two distinct shots (capture times differ) of the same place and heading, taken
    ``burst_seconds`` apart or less. Two distinct shots seconds apart are a burst even when
    they also look alike, so burst outranks the perceptual links."""
    seconds, clock = capture_seconds(mine)
    usable = (
        (clock >= 0)
        & mine.latitude.notna().to_numpy()
        & mine.longitude.notna().to_numpy()
        & mine.img_direction.notna().to_numpy()
    )
    labels = mine.index.to_numpy()
    pos = np.flatnonzero(usable)
    if pos.size < 2:
        return []
    pos = pos[np.lexsort((seconds[pos], clock[pos]))]
    t, c = seconds[pos], clock[pos]
    lat = mine.latitude.to_numpy(float)[pos]
    lon = mine.longitude.to_numpy(float)[pos]
    heading = mine.img_direction.to_numpy(float)[pos]
    long = (
        long_hashes(mine.phash256)
        if "phash256" in mine
        else np.zeros((len(mine), 5), np.uint64) + 1
    )
    found = []
    # compare each photo with the next ones in time order while they are close enough in time
    for step in range(1, pos.size):
        i = np.arange(pos.size - step)
        j = i + step
        dt = t[j] - t[i]
        close_in_time = (c[i] == c[j]) & (dt <= options.burst_seconds)
        if not close_in_time.any():
            break
        distinct = close_in_time & (dt > 0)  # the same instant is a copy, not another shot
        i, j = i[distinct], j[distinct]
        same = (haversine_m(lat[i], lon[i], lat[j], lon[j]) <= options.burst_radius_m) & (
            angle_difference(heading[i], heading[j]) <= options.burst_heading_deg
        )
        found.append(_pairs(pos[i[same]], pos[j[same]]))  # positions, labelled below
    if not found:
        return []
    a = np.concatenate([p.a for p in found])
    b = np.concatenate([p.b for p in found])
    first, members = _look_alike_groups(a, b, long, options.burst_max_bits)
    return [_pairs(labels[members], labels[first])]


def _look_alike_groups(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], long: npt.NDArray[np.uint64], bits: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Burst candidates (positions ``a``, ``b``) grouped by complete linkage: a photo joins
    a group only if it looks alike (256-bit pHashes within ``bits``; both known) every
    member, so a group never chains through dissimilar frames. Returns each grouped
    photo's group head and the photo (heads themselves left out)."""
    distance = np.bitwise_count(long[a, :4] ^ long[b, :4]).sum(axis=1)
    known = (long[a, 4] == 0) & (long[b, 4] == 0)
    alike = known & (distance <= bits)
    order = np.argsort(distance[alike], kind="stable")
    group: dict[int, list[int]] = {}  # head -> members, head first
    head_of: dict[int, int] = {}
    for x, y in zip(a[alike][order], b[alike][order], strict=True):
        gx, gy = head_of.get(int(x), int(x)), head_of.get(int(y), int(y))
        if gx == gy:
            continue
        left, right = group.get(gx, [gx]), group.get(gy, [gy])
        cross = np.bitwise_count(long[left][:, None, :4] ^ long[right][None, :, :4]).sum(axis=2)
        if (cross > bits).any():
            continue  # one of them does not look like the other group: not one burst
        head = min(gx, gy)
        group[head] = sorted(left + right)
        group.pop(max(gx, gy), None)
        for member in group[head]:
            head_of[member] = head
    heads = [(h, m) for h, ms in group.items() for m in ms if m != h]
    return np.array([h for h, _ in heads], np.int64), np.array([m for _, m in heads], np.int64)


@link("decided", "decided", 6, "a person said these photos are copies (gpskit app)", across=False)
def _decided(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions) -> list[Pairs]:
    """Found by no rule: the links a person's merge decisions add
    (:func:`with_decisions`)."""
    return []


def with_decisions(frame: pd.DataFrame, pairs: pd.DataFrame, state: Any) -> pd.DataFrame:
    """The rules' links with a person's group decisions applied: a photo decided alone
    loses its links, a merge's photos are linked (``decided``)."""
    if not state or not (state.alone or state.merged):
        return pairs
    a, b = pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)
    keep, add_a, add_b, _ = state.regroup(frame.root.to_numpy(), frame.path.to_numpy(), a, b)
    links = Links()
    kept = pairs[keep]
    for code, group in kept.groupby("match"):
        links.add(
            group.a.to_numpy(),
            group.b.to_numpy(),
            MATCHES_BY_CODE[int(code)],
            group["transform"].to_numpy(),
        )
    links.add(add_a, add_b, "decided")
    return links.frame()


MATCHES = tuple(link.match for link in LINKS)
MATCHES_BY_CODE = dict(enumerate(MATCHES))
BY_MATCH = {link.match: link for link in LINKS}


def match_code(match: str) -> int:
    """The int8 code of a link in :class:`Links`."""
    return MATCHES.index(match)


def capture_seconds(frame: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8]]:
    """Capture time in seconds and its clock: 1 = UTC (offset known), 0 = local, -1 = none."""
    utc = pd.to_datetime(frame.datetime_original_utc, utc=True)
    local = pd.to_datetime(frame.datetime_original, errors="coerce")
    seconds = np.full(len(frame), np.nan)
    clock = np.full(len(frame), -1, np.int8)
    has_utc = utc.notna().to_numpy()
    epoch_utc = pd.Timestamp("1970-01-01", tz="UTC")
    seconds[has_utc] = ((utc[has_utc] - epoch_utc).dt.total_seconds()).to_numpy()
    clock[has_utc] = 1
    has_local = (~has_utc) & local.notna().to_numpy()
    seconds[has_local] = (
        (local[has_local] - pd.Timestamp("1970-01-01")).dt.total_seconds()
    ).to_numpy()
    clock[has_local] = 0
    return seconds, clock


@dataclass
class Links:
    """Pairs of row positions with how they are linked."""

    a: list[npt.NDArray[np.int64]] = field(default_factory=list)
    b: list[npt.NDArray[np.int64]] = field(default_factory=list)
    match: list[npt.NDArray[np.int8]] = field(default_factory=list)
    transform: list[npt.NDArray[np.int8]] = field(default_factory=list)

    def add(self, a: Any, b: Any, match: str, transform: Any = 0) -> None:
        """Link photos ``a`` and ``b`` (b looks like a turned by ``transform``, a code)."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        if not a.size:
            return
        codes = np.broadcast_to(np.asarray(transform, np.int8), a.shape)
        swap = a > b
        self.a.append(np.where(swap, b, a))
        self.b.append(np.where(swap, a, b))
        self.match.append(np.full(a.size, match_code(match), np.int8))
        self.transform.append(np.where(swap, INVERSE[codes], codes).astype(np.int8))

    def frame(self) -> pd.DataFrame:
        """One row per linked pair, keeping its strongest link (the same way up first)."""
        if not self.a:
            return pd.DataFrame({"a": [], "b": [], "match": [], "transform": []}, dtype=np.int64)
        frame = pd.DataFrame(
            {
                "a": np.concatenate(self.a),
                "b": np.concatenate(self.b),
                "match": np.concatenate(self.match),
                "transform": np.concatenate(self.transform),
            }
        )
        frame = frame[frame.a != frame.b]
        frame["priority"] = frame.match.map(lambda code: LINKS[code].priority)
        frame["turned"] = frame["transform"] != 0
        frame = frame.sort_values(["a", "b", "priority", "turned"]).drop_duplicates(["a", "b"])
        return frame.drop(columns=["priority", "turned"]).reset_index(drop=True)


def same_heading(
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    heading: pd.Series,
    options: DedupOptions,
) -> npt.NDArray[np.bool_]:
    """False for perceptual links between photos whose compass headings disagree.

    A copy keeps its heading tag (or loses all tags); two photos of one spot 45° apart
    are different views, however alike their coarse structure. Both headings must be
    known for the veto to apply.
    """
    if options.max_heading_diff is None or not len(a):
        return np.ones(len(a), bool)
    values = heading.to_numpy(float, na_value=np.nan)
    position = pd.Index(heading.index).get_indexer(np.concatenate([a, b]))
    diff = angle_difference(values[position[: len(a)]], values[position[len(a) :]])
    keep: npt.NDArray[np.bool_] = ~(diff > options.max_heading_diff)  # unknown keeps it
    return keep


def find_links(frame: pd.DataFrame, options: DedupOptions) -> pd.DataFrame:
    """Every linked pair of rows (positions in ``frame``), with its strongest link."""
    links = Links()
    readable = frame.read_status == "ok"
    ok = frame if bool(readable.all()) else frame[readable]
    heading = ok.img_direction.astype(float)
    for kind in LINKS:
        for pairs in kind.find(ok, None, options):
            keep = pairs.a != pairs.b
            if kind.perceptual:
                keep &= same_heading(pairs.a, pairs.b, heading, options)
            links.add(pairs.a[keep], pairs.b[keep], kind.match, pairs.transform[keep])
    return links.frame()
