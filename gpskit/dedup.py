"""``gpskit dedup``: exact copies, near-duplicates and bursts, grouped and explained.

Nothing is deleted. Every photo that has copies joins a group with one keeper; the result
goes to ``duplicates.parquet`` beside the manifest, and later steps use keepers only.

Links between two photos, strongest first:

- exact / bytes: the same SHA-256 of the file;
- exact / pixels: the same decoded pixels (oriented, or as stored: a copy whose only
  change is its tags, the Orientation tag included);
- near / phash: perceptual hashes within ``near_threshold`` bits (re-encoded, resized,
  brightened copies);
- near / crop: one photo's hash within ``crop_threshold`` bits of one of the other's nine
  95 % crop hashes (slightly cropped copies, which pHash alone misses);
- burst: two distinct shots (capture times differ) of the same place (``burst_radius_m``)
  and heading (``burst_heading_deg``), taken ``burst_seconds`` apart or less; a pair
  that is both a burst and a near-duplicate is a burst.

Groups are the connected components of these links; a group's kind is its loosest link.
Thresholds were calibrated on generated views (``tests/test_dedup.py``): copies land within
6 bits, views of the same spot 45° apart at least 14 bits (10 for the crop comparison).

The keeper rule, in order: accepted before rejected, more pixels, smaller GPS error
(unknown last), larger file (less compressed), earlier capture (unknown last), older file
(an original predates its copies), then path order.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from gpskit import arguments
from gpskit.atomic import write_text
from gpskit.dataset import DUPLICATES, Dataset
from gpskit.errors import MissingStepError, UsageError
from gpskit.geo import angle_difference, haversine_m
from gpskit.graph import connected_components
from gpskit.hashindex import cross_join, estimate_seconds, hex_to_u64, self_join
from gpskit.imaging import DIHEDRAL, compose, inverse
from gpskit.schema import load_schema, write_table


def _code(name: str) -> int:
    """The transform code of a dihedral transform name (identity is 0)."""
    return 0 if name == "identity" else 1 + DIHEDRAL.index(name)


@dataclass(frozen=True)
class LinkKind:
    """One way two photos can be linked (the ``match`` column of duplicates.parquet)."""

    match: str
    kind: str  # the group kind the link implies: exact, near or burst
    priority: int  # which link describes a pair when several apply (0 first)
    description: str


#: Every link, in the order of their codes. Two distinct shots seconds apart are a burst
#: even when they also look alike, so burst outranks the perceptual links.
LINKS: tuple[LinkKind, ...] = (
    LinkKind("bytes", "exact", 0, "the same SHA-256 of the file"),
    LinkKind("pixels", "exact", 1, "the same decoded pixels, oriented or as stored"),
    LinkKind("phash", "near", 3, "64-bit pHashes within --near bits, confirmed"),
    LinkKind("crop", "near", 4, "a pHash within --crop bits of a 95 % or 90 % crop hash"),
    LinkKind("border", "near", 5, "the same picture inside uniform borders (a screenshot)"),
    LinkKind("burst", "burst", 2, "another shot of the same place and heading, seconds apart"),
)
MATCHES = tuple(link.match for link in LINKS)
#: Transform codes: 0 is "the same way up", k is DIHEDRAL[k - 1] (see gpskit.imaging).
TRANSFORM_NAMES: tuple[str | None, ...] = (None, *DIHEDRAL)
_INVERSE = np.array([_code(inverse(t or "identity")) for t in TRANSFORM_NAMES], np.int8)
_COMPOSE = np.array(
    [
        [_code(compose(a or "identity", b or "identity")) for b in TRANSFORM_NAMES]
        for a in TRANSFORM_NAMES
    ],
    np.int8,
)
_BY_MATCH = {link.match: link for link in LINKS}
#: Group kinds from the tightest to the loosest (the schema's order).
KINDS = load_schema("duplicates").enum("kind")
_KIND_RANK = {k: i for i, k in enumerate(KINDS)}


def match_code(match: str) -> int:
    """The int8 code of a link in :class:`Links`."""
    return MATCHES.index(match)


@dataclass(frozen=True)
class DedupOptions:
    """Thresholds of the links (see the module docstring).

    ``confirm_bits``: a 64-bit match must be confirmed by the 256-bit hashes within this
    many bits (copies: 12 or fewer, crops: 34 or fewer, confusable scenes: 54 or more);
    None skips the confirmation.
    ``max_heading_diff``: perceptual (near/crop) links between photos whose headings are
    both known and differ by more than this are dropped; None turns the veto off.
    """

    near_threshold: int = 8
    crop_threshold: int = 6
    crop_variants: bool = True
    dihedral: bool = True  # also match photos turned a quarter, upside down or mirrored
    confirm_bits: int | None = 40
    max_heading_diff: float | None = 30.0
    burst_radius_m: float = 5.0
    burst_heading_deg: float = 10.0
    burst_seconds: float = 10.0
    conflict_m: float = 25.0

    def validate(self) -> None:
        arguments.number("--near", self.near_threshold, minimum=0, maximum=20, integer=True)
        arguments.number("--crop", self.crop_threshold, minimum=0, maximum=20, integer=True)
        arguments.optional_number("confirm_bits", self.confirm_bits, minimum=0, maximum=256)
        arguments.optional_number("max_heading_diff", self.max_heading_diff, minimum=0, maximum=180)
        arguments.number("--burst-radius", self.burst_radius_m, minimum=0)
        arguments.number("--burst-heading", self.burst_heading_deg, minimum=0, maximum=180)
        arguments.number("--burst-seconds", self.burst_seconds, minimum=0)
        arguments.number("--conflict", self.conflict_m, minimum=0)


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
        self.transform.append(np.where(swap, _INVERSE[codes], codes).astype(np.int8))

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


@dataclass
class DedupReport:
    """What dedup found, for the summary table and ``--json``."""

    dataset_dir: str
    photos: int
    hashed: int
    groups: dict[str, int]
    photos_in_groups: dict[str, int]
    redundant: dict[str, int]
    gps_conflicts: int
    largest_groups: list[dict[str, Any]]
    pairs: int
    written: list[str]
    overlap: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- links ------------------------------------------------------------------------------


def _same_value_links(links: Links, values: pd.Series, match: str) -> None:
    """Star-link every photo to the first one with the same (non-null) value."""
    present = values.dropna()
    if present.empty:
        return
    codes, _ = pd.factorize(present)
    _, first_position = np.unique(codes, return_index=True)
    rows = present.index.to_numpy()
    first = rows[first_position[codes]]
    mask = rows != first
    links.add(rows[mask], first[mask], match)


def _hash_links(links: Links, frame: pd.DataFrame, options: DedupOptions) -> None:
    hashed = frame[frame.phash.notna()]
    if hashed.empty:
        return
    rows = hashed.index.to_numpy()
    codes = hex_to_u64(hashed.phash.tolist())
    heading = frame.img_direction.astype(float)
    long = _long_hashes(hashed.phash256)
    a, b, _ = self_join(codes, options.near_threshold)
    confirmed = _confirmed(long[a], long[b], options)
    a, b = rows[a[confirmed]], rows[b[confirmed]]
    same = _same_heading(a, b, heading, options)
    links.add(a[same], b[same], "phash")
    if options.dihedral:
        _dihedral_links(links, hashed, codes, long, heading, options)
    _border_links(links, hashed, codes, long, heading, options)
    if not options.crop_variants:
        return
    crop_rows, crop_codes, crop_long = _crop_entries(hashed)
    if len(crop_codes):
        q, i, _ = cross_join(codes, crop_codes, options.crop_threshold)
        confirmed = _confirmed(long[q], crop_long[i], options)
        a, b = rows[q[confirmed]], crop_rows[i[confirmed]]
        same = _same_heading(a, b, heading, options)
        links.add(a[same], b[same], "crop")


def _dihedral_entries(
    frame: pd.DataFrame,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Every turned or mirrored hash: its owner row, transform code, 64- and 256-bit hash."""
    owners: list[int] = []
    codes: list[int] = []
    short: list[str] = []
    long: list[Any] = []
    if "dihedral_hashes" not in frame:  # a manifest from before version 3
        frame = frame.assign(dihedral_hashes=None, dihedral_phash256=None)
    for row, hashes, longs in zip(frame.index, frame.dihedral_hashes, frame.dihedral_phash256, strict=True):
        if hashes is None or len(hashes) != len(DIHEDRAL):
            continue
        owners += [row] * len(DIHEDRAL)
        codes += range(1, len(DIHEDRAL) + 1)
        short += list(hashes)
        have = longs is not None and len(longs) == len(hashes)
        long += list(longs) if have else [None] * len(hashes)
    return (
        np.asarray(owners, np.int64),
        np.asarray(codes, np.int8),
        hex_to_u64(short),
        _long_hashes(long),
    )


def _dihedral_links(
    links: Links,
    hashed: pd.DataFrame,
    codes: npt.NDArray[np.uint64],
    long: npt.NDArray[np.uint64],
    heading: pd.Series,
    options: DedupOptions,
) -> None:
    """Photos that match another photo turned or mirrored: copies saved without their
    Orientation tag (shown sideways), turned by hand, or flipped by an editor."""
    owners, transform, turned, turned_long = _dihedral_entries(hashed)
    if not len(owners):
        return
    q, i, _ = cross_join(turned, codes, options.near_threshold)
    rows = hashed.index.to_numpy()
    keep = owners[q] != rows[i]
    q, i = q[keep], i[keep]
    confirmed = _confirmed(turned_long[q], long[i], options)
    q, i = q[confirmed], i[confirmed]
    a, b = owners[q], rows[i]
    same = _same_heading(a, b, heading, options)
    links.add(a[same], b[same], "phash", transform[q][same])


def _trimmed_entries(
    frame: pd.DataFrame,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Photos with borders: their rows, and the hashes of the picture inside."""
    if "trimmed_phash" not in frame:
        return np.empty(0, np.int64), np.empty(0, np.uint64), np.zeros((0, 5), np.uint64)
    bordered = frame[frame.trimmed_phash.notna()]
    return (
        bordered.index.to_numpy(np.int64),
        hex_to_u64(bordered.trimmed_phash.tolist()),
        _long_hashes(bordered.trimmed_phash256),
    )


def _border_links(
    links: Links,
    hashed: pd.DataFrame,
    codes: npt.NDArray[np.uint64],
    long: npt.NDArray[np.uint64],
    heading: pd.Series,
    options: DedupOptions,
) -> None:
    """Photos shown inside uniform borders (screenshots, letterboxed or padded copies)
    matched, by the picture inside, with photos and with each other."""
    owners, trimmed, trimmed_long = _trimmed_entries(hashed)
    if not len(owners):
        return
    rows = hashed.index.to_numpy()
    q, i, _ = cross_join(trimmed, codes, options.near_threshold)
    a, b = owners[q], rows[i]
    ok = (a != b) & _confirmed(trimmed_long[q], long[i], options)
    q2, i2, _ = self_join(trimmed, options.near_threshold)
    a2, b2 = owners[q2], owners[i2]
    ok2 = _confirmed(trimmed_long[q2], trimmed_long[i2], options)
    a, b = np.concatenate([a[ok], a2[ok2]]), np.concatenate([b[ok], b2[ok2]])
    same = _same_heading(a, b, heading, options)
    links.add(a[same], b[same], "border")


def _long_hashes(values: Any) -> npt.NDArray[np.uint64]:
    """256-bit hashes as (n, 4) uint64; a missing hash is all ones in a fifth column."""
    values = list(values)
    out = np.zeros((len(values), 5), np.uint64)
    valid = np.array([isinstance(v, (bytes, bytearray)) and len(v) == 32 for v in values], bool)
    if valid.any():
        joined = b"".join(v for v, ok in zip(values, valid, strict=True) if ok)
        out[valid, :4] = np.frombuffer(joined, dtype=">u8").reshape(-1, 4)
    out[~valid, 4] = 1
    return out


def _confirmed(
    left: npt.NDArray[np.uint64], right: npt.NDArray[np.uint64], options: DedupOptions
) -> npt.NDArray[np.bool_]:
    """True where the 256-bit hashes agree (or one is unknown: nothing to contradict)."""
    if options.confirm_bits is None or not len(left):
        return np.ones(len(left), bool)
    distance = np.bitwise_count(left[:, :4] ^ right[:, :4]).sum(axis=1)
    unknown = (left[:, 4] == 1) | (right[:, 4] == 1)
    confirmed: npt.NDArray[np.bool_] = unknown | (distance <= options.confirm_bits)
    return confirmed


def _same_heading(
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


def _crop_entries(
    frame: pd.DataFrame,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
    """Every crop hash with its owner row and its 256-bit twin."""
    lists = frame.crop_hashes
    counts = lists.map(len).to_numpy()
    if not counts.sum():
        return np.empty(0, np.int64), np.empty(0, np.uint64), np.zeros((0, 5), np.uint64)
    owners = np.repeat(frame.index.to_numpy(), counts)
    flat = list(itertools.chain.from_iterable(lists))
    long_flat: list[Any] = []
    for hashes, longs in zip(lists, frame.crop_phash256, strict=False):
        have = longs is not None and len(longs) == len(hashes)
        long_flat.extend(longs if have else [None] * len(hashes))
    return owners, hex_to_u64(flat), _long_hashes(long_flat)


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


def _burst_links(links: Links, frame: pd.DataFrame, options: DedupOptions) -> None:
    seconds, clock = capture_seconds(frame)
    usable = (
        (clock >= 0)
        & frame.latitude.notna().to_numpy()
        & frame.longitude.notna().to_numpy()
        & frame.img_direction.notna().to_numpy()
    )
    labels = frame.index.to_numpy()
    pos = np.flatnonzero(usable)
    if pos.size < 2:
        return
    pos = pos[np.lexsort((seconds[pos], clock[pos]))]
    t, c = seconds[pos], clock[pos]
    lat = frame.latitude.to_numpy(float)[pos]
    lon = frame.longitude.to_numpy(float)[pos]
    heading = frame.img_direction.to_numpy(float)[pos]
    step = 1
    # compare each photo with the next ones in time order while they are close enough in time
    while step < pos.size:
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
        links.add(labels[pos[i[same]]], labels[pos[j[same]]], "burst")
        step += 1


#: Longest predicted hash search accepted before a run starts (seconds).
MAX_SEARCH_SECONDS = 3600.0


def check_search_cost(photos: int, options: DedupOptions) -> None:
    """Refuse radii whose exact search would take too long on this many photos (the
    predicted time, from :func:`gpskit.hashindex.estimate_seconds`, is in the message)."""
    defaults = DedupOptions()
    crops = 18 * photos if options.crop_variants else 0
    for flag, radius, index, default in (
        ("--near", options.near_threshold, photos, defaults.near_threshold),
        ("--crop", options.crop_threshold, crops, defaults.crop_threshold),
    ):
        seconds = estimate_seconds(photos, index, radius)
        if seconds > MAX_SEARCH_SECONDS:
            if radius > default:
                hint = f"use a smaller {flag} (the default is {default})"
            elif flag == "--crop":
                hint = "run with --no-crops (near and turned copies are still found)"
            else:
                hint = "dedup each area's photos as its own dataset (copies are of one place)"
            raise UsageError(
                f"{flag} {radius} on {photos:,} photos would take about {seconds / 3600:.1f} h "
                "(an exact search compares almost every pair at that radius)",
                hint=hint,
            )


def find_links(frame: pd.DataFrame, options: DedupOptions) -> pd.DataFrame:
    """Every linked pair of rows (positions in ``frame``), with its strongest link."""
    links = Links()
    ok = frame[frame.read_status == "ok"]
    _same_value_links(links, ok.sha256, "bytes")
    _same_value_links(links, ok.pixel_hash, "pixels")
    _same_value_links(links, ok.stored_pixel_hash, "pixels")
    _hash_links(links, ok, options)
    _burst_links(links, ok, options)
    return links.frame()


# --- groups -----------------------------------------------------------------------------


def keeper_order(
    frame: pd.DataFrame, turned: npt.NDArray[np.bool_] | None = None
) -> npt.NDArray[np.int64]:
    """Rank of every row under the keeper rule (0 = best); ``turned`` marks photos shown
    turned or mirrored relative to the way up of their group (they rank after)."""
    seconds, clock = capture_seconds(frame)
    keys = pd.DataFrame(
        {
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
    codes = _phash_ints(frame)
    out: list[int | None] = []
    for i in range(len(frame)):
        if not is_copy[i]:
            out.append(None)
            continue
        reference = codes[keeper[i]]
        if transform[i]:
            turned: Any = frame.dihedral_hashes.iat[keeper[i]]
            ok = turned is not None and len(turned) == len(DIHEDRAL)
            reference = int(turned[transform[i] - 1], 16) if ok else None
        out.append(_distance(codes[i], reference))
    return out


def _phash_ints(frame: pd.DataFrame) -> list[int | None]:
    return [int(h, 16) if isinstance(h, str) else None for h in frame.phash]


def _distance(a: int | None, b: int | None) -> int | None:
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
        neighbours.setdefault(int(b), []).append((int(a), int(_INVERSE[t])))
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
                    g[there] = _COMPOSE[g[here], t]
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
    frame: pd.DataFrame, labels: npt.NDArray[np.int64], turned: npt.NDArray[np.bool_]
) -> npt.NDArray[np.int64]:
    """Row of each row's keeper: the member of its component with the best keeper rank."""
    n = len(frame)
    rank = keeper_order(frame, turned)
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


def _or_none(mask: npt.NDArray[np.bool_], values: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """``values`` where ``mask``, None elsewhere."""
    out = np.full(len(values), None, dtype=object)
    out[mask] = values[mask]
    return out


def build_groups(frame: pd.DataFrame, pairs: pd.DataFrame, options: DedupOptions) -> pd.DataFrame:
    """The duplicates table: one row per manifest row."""
    n = len(frame)
    labels = connected_components(n, pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64))
    sizes = np.bincount(labels, minlength=n)[labels]
    grouped = sizes > 1
    g = orientations(n, pairs, labels)
    keeper = _keepers(frame, labels, _upright(frame, labels, g))
    kind = _or_none(grouped, np.array(KINDS, dtype=object)[_group_kinds(n, pairs, labels)])
    group_id = _group_ids(frame, keeper, grouped)
    is_copy = grouped & (keeper != np.arange(n))
    # copy = t(keeper): undo the keeper's turn, then apply the copy's
    relative = _COMPOSE[_INVERSE[g[keeper]], g]
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
        }
    )


# --- the run ----------------------------------------------------------------------------


#: The manifest columns dedup reads (the rest are never loaded: at 10M photos every
#: column read costs memory): keys, the hashes, what the burst rule and the keeper rule
#: look at.
READ_COLUMNS = (
    "root", "path", "file_size", "mtime_ns", "read_status", "status",
    "sha256", "pixel_hash", "stored_pixel_hash", "phash", "phash256",
    "trimmed_phash", "trimmed_phash256",
    "width", "height", "orientation", "make", "gps_h_error",
    "latitude", "longitude", "img_direction", "datetime_original", "datetime_original_utc",
)  # fmt: skip
CROP_COLUMNS = ("crop_hashes", "crop_phash256")
DIHEDRAL_COLUMNS = ("dihedral_hashes", "dihedral_phash256")


def manifest_columns(options: DedupOptions) -> list[str]:
    """The manifest columns dedup reads with these options (Parquet projection)."""
    wanted = set(READ_COLUMNS)
    if options.crop_variants:
        wanted |= set(CROP_COLUMNS)
    if options.dihedral:
        wanted |= set(DIHEDRAL_COLUMNS)
    return [name for name in load_schema("manifest").names if name in wanted]


def _manifest_frame(dataset: Dataset, options: DedupOptions) -> tuple[pd.DataFrame, str]:
    """The columns dedup needs of the manifest, and the hash of the bytes read."""
    table, digest = dataset.manifest_snapshot(manifest_columns(options))
    frame: pd.DataFrame = table.to_pandas().reset_index(drop=True)
    return frame, digest


def _overlap_summary(against: Path, overlap: pd.DataFrame) -> dict[str, Any]:
    return {
        "other_dataset": str(against),
        "photos_also_in_other": int(overlap[["root", "path"]].drop_duplicates().shape[0]),
        "pairs": len(overlap),
        "by_kind": dict(Counter(overlap.kind)),
    }


def dedup(
    dataset_dir: Path | Dataset,
    options: DedupOptions | None = None,
    *,
    against: Path | None = None,
    pairs_csv: Path | None = None,
    contact_sheet: bool = True,
    dry_run: bool = False,
) -> DedupReport:
    """Find and group duplicates; write duplicates.parquet (and the extras asked for)."""
    options = options or DedupOptions()
    options.validate()
    dataset = Dataset.at(dataset_dir)
    dataset.require_manifest()
    with contextlib.nullcontext() if dry_run else dataset.writing("dedup"):
        frame, digest = _manifest_frame(dataset, options)
        check_search_cost(int(frame.phash.notna().sum()), options)
        pairs = find_links(frame, options)
        table = build_groups(frame, pairs, options)
        overlap = find_overlap(frame, against, options) if against is not None else None
        written: list[str] = []
        if not dry_run:
            stamp = dataset.stamp(DUPLICATES, options, digest)
            written = _write(dataset, stamp, frame, table, pairs, overlap, pairs_csv, contact_sheet)
    summary = None if against is None or overlap is None else _overlap_summary(against, overlap)
    return summarize(dataset.root, frame, table, pairs, written, summary)


def _write(
    dataset: Dataset,
    stamp: dict[str, str],
    frame: pd.DataFrame,
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    overlap: pd.DataFrame | None,
    pairs_csv: Path | None,
    contact_sheet: bool,
) -> list[str]:
    """Write duplicates.parquet and the extras; return the paths written."""
    write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        dataset.duplicates_path,
        load_schema("duplicates"),
        extra_metadata=stamp,
    )
    written = [str(dataset.duplicates_path)]
    if overlap is not None:
        write_table(
            pa.Table.from_pandas(overlap, preserve_index=False),
            dataset.overlap_path,
            load_schema("overlap"),
        )
        written.append(str(dataset.overlap_path))
    if pairs_csv is not None:
        write_pairs_csv(frame, pairs, pairs_csv)
        written.append(str(pairs_csv))
    if contact_sheet and table.group_id.notna().any():
        from gpskit.plots import contact_sheet as draw_sheet

        draw_sheet(frame, table, dataset.contact_sheet_path)
        written.append(str(dataset.contact_sheet_path))
    return written


def summarize(
    dataset_dir: Path,
    frame: pd.DataFrame,
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    written: list[str],
    overlap: dict[str, Any] | None,
) -> DedupReport:
    grouped = table[table.group_id.notna()]
    groups = grouped.drop_duplicates("group_id")
    largest = (
        groups.sort_values(["group_size", "group_id"], ascending=[False, True])
        .head(5)
        .apply(
            lambda r: {
                "group_id": int(r.group_id),
                "kind": r.kind,
                "size": int(r.group_size),
                "keeper": r.path,
            },
            axis=1,
        )
        .tolist()
        if len(groups)
        else []
    )
    keepers = table[table.group_id.notna() & table.keep]
    return DedupReport(
        dataset_dir=str(dataset_dir),
        photos=len(frame),
        hashed=int(frame.phash.notna().sum()),
        groups={k: int((groups.kind == k).sum()) for k in KINDS},
        photos_in_groups={k: int((grouped.kind == k).sum()) for k in KINDS},
        redundant={k: int(((grouped.kind == k) & ~grouped.keep).sum()) for k in KINDS},
        gps_conflicts=int(table.gps_conflict.sum()),
        largest_groups=[
            {**g, "keeper": str(keepers[keepers.group_id == g["group_id"]].path.iloc[0])}
            for g in largest
        ],
        pairs=len(pairs),
        written=written,
        overlap=overlap,
    )


def write_pairs_csv(frame: pd.DataFrame, pairs: pd.DataFrame, target: Path) -> None:
    """Every linked pair with its link and distances, for a person or a spreadsheet."""
    a, b = pairs.a.to_numpy(np.int64), pairs.b.to_numpy(np.int64)
    codes = _phash_ints(frame)
    distance = [_distance(codes[i], codes[j]) for i, j in zip(a, b, strict=False)]
    lat, lon = frame.latitude.to_numpy(float), frame.longitude.to_numpy(float)
    seconds, _ = capture_seconds(frame)
    out = pd.DataFrame(
        {
            "path_a": (frame.root.str.cat(frame.path, sep="/")).to_numpy()[a],
            "path_b": (frame.root.str.cat(frame.path, sep="/")).to_numpy()[b],
            "kind": [LINKS[m].kind for m in pairs.match],
            "match": [MATCHES[m] for m in pairs.match],
            "transform": np.array(TRANSFORM_NAMES, dtype=object)[pairs["transform"].to_numpy(int)],
            "phash_distance": pd.array(distance, dtype="Int16"),
            "metres_apart": np.round(haversine_m(lat[a], lon[a], lat[b], lon[b]), 2),
            "seconds_apart": np.round(np.abs(seconds[a] - seconds[b]), 3),
        }
    )
    write_text(target, out.to_csv(index=False))


# --- another dataset ----------------------------------------------------------------------


OVERLAP_COLUMNS = load_schema("overlap").names


def find_overlap(frame: pd.DataFrame, other_dir: Path, options: DedupOptions) -> pd.DataFrame:
    """Photos of ``frame`` that also appear (exactly or nearly) in the dataset ``other_dir``."""
    other_dataset = Dataset(other_dir)
    if not other_dataset.manifest_path.exists():
        raise MissingStepError(
            f"--against {other_dir}: no {other_dataset.manifest_path.name} there",
            hint=f"run `gpskit ingest PHOTOS --out {other_dir}` first",
        )
    other, _ = _manifest_frame(other_dataset, options)
    mine = frame[frame.read_status == "ok"]
    theirs = other[other.read_status == "ok"]
    found = _exact_overlap(mine, theirs) + _near_overlap(mine, theirs, options)
    if not found:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OVERLAP_COLUMNS})
    hits = pd.concat(found, ignore_index=True)
    hits["rank"] = hits.match.map(lambda m: _BY_MATCH[m].priority)
    hits["turned"] = hits["transform"] != 0
    hits = hits.sort_values(["m", "o", "rank", "turned"]).drop_duplicates(["m", "o"])
    return (
        pd.DataFrame(
            {
                "root": frame.root.to_numpy()[hits.m],
                "path": frame.path.to_numpy()[hits.m],
                "other_dataset": str(other_dir),
                "other_root": other.root.to_numpy()[hits.o],
                "other_path": other.path.to_numpy()[hits.o],
                "kind": hits.match.map(lambda m: _BY_MATCH[m].kind).to_numpy(),
                "match": hits.match.to_numpy(),
                "transform": np.array(TRANSFORM_NAMES, dtype=object)[hits["transform"].to_numpy(int)],
                "phash_distance": pd.array(hits.phash_distance.to_numpy(), dtype="Int16"),
            }
        )
        .sort_values(["root", "path", "other_root", "other_path"])
        .reset_index(drop=True)
    )


def _hits(
    mine_rows: Any, their_rows: Any, match: str, distance: Any = None, transform: Any = 0
) -> list[pd.DataFrame]:
    """Matching pairs (theirs = transform(mine), a code) as a frame to concatenate."""
    if not len(mine_rows):
        return []
    columns = {"m": mine_rows, "o": their_rows, "match": match, "phash_distance": distance}
    return [pd.DataFrame({**columns, "transform": transform})]


def _exact_overlap(mine: pd.DataFrame, theirs: pd.DataFrame) -> list[pd.DataFrame]:
    """Pairs with the same file bytes or decoded pixels."""
    found: list[pd.DataFrame] = []
    for column, match in (
        ("sha256", "bytes"),
        ("pixel_hash", "pixels"),
        ("stored_pixel_hash", "pixels"),
    ):
        left = mine[[column]].dropna().reset_index(names="m")
        right = theirs[[column]].dropna().reset_index(names="o")
        merged = left.merge(right, on=column)
        found += _hits(merged.m.to_numpy(), merged.o.to_numpy(), match, 0)
    return found


def _near_overlap(
    mine: pd.DataFrame, theirs: pd.DataFrame, options: DedupOptions
) -> list[pd.DataFrame]:
    """Pairs whose perceptual hashes match (whole images, and each side's crop hashes)."""
    mine_h, theirs_h = mine[mine.phash.notna()], theirs[theirs.phash.notna()]
    if not len(mine_h) or not len(theirs_h):
        return []
    q_codes, i_codes = hex_to_u64(mine_h.phash.tolist()), hex_to_u64(theirs_h.phash.tolist())
    q_long, i_long = _long_hashes(mine_h.phash256), _long_hashes(theirs_h.phash256)
    q, i, d = cross_join(q_codes, i_codes, options.near_threshold)
    ok = _confirmed(q_long[q], i_long[i], options)
    found = _hits(mine_h.index.to_numpy()[q[ok]], theirs_h.index.to_numpy()[i[ok]], "phash", d[ok])
    if options.dihedral:
        found += _turned_overlap(mine_h, theirs_h, i_codes, i_long, options)
    found += _border_overlap(mine_h, theirs_h, q_codes, q_long, i_codes, i_long, options)
    if not options.crop_variants:
        return found
    crop_rows, crop_codes, crop_long = _crop_entries(theirs_h)
    if len(crop_codes):
        q, i, d = cross_join(q_codes, crop_codes, options.crop_threshold)
        ok = _confirmed(q_long[q], crop_long[i], options)
        found += _hits(mine_h.index.to_numpy()[q[ok]], crop_rows[i[ok]], "crop", d[ok])
    crop_rows, crop_codes, crop_long = _crop_entries(mine_h)
    if len(crop_codes):
        q, i, d = cross_join(i_codes, crop_codes, options.crop_threshold)
        ok = _confirmed(i_long[q], crop_long[i], options)
        found += _hits(crop_rows[i[ok]], theirs_h.index.to_numpy()[q[ok]], "crop", d[ok])
    return found


def _turned_overlap(
    mine: pd.DataFrame,
    theirs: pd.DataFrame,
    codes: npt.NDArray[np.uint64],
    long: npt.NDArray[np.uint64],
    options: DedupOptions,
) -> list[pd.DataFrame]:
    """Their photos that are one of mine turned or mirrored."""
    owners, transform, turned, turned_long = _dihedral_entries(mine)
    if not len(owners):
        return []
    q, i, d = cross_join(turned, codes, options.near_threshold)
    ok = _confirmed(turned_long[q], long[i], options)
    rows = theirs.index.to_numpy()
    return _hits(owners[q[ok]], rows[i[ok]], "phash", d[ok], transform[q[ok]])


def _border_overlap(
    mine: pd.DataFrame,
    theirs: pd.DataFrame,
    my_codes: npt.NDArray[np.uint64],
    my_long: npt.NDArray[np.uint64],
    their_codes: npt.NDArray[np.uint64],
    their_long: npt.NDArray[np.uint64],
    options: DedupOptions,
) -> list[pd.DataFrame]:
    """Pairs where one side is the other inside borders (a screenshot of it)."""
    found: list[pd.DataFrame] = []
    owners, trimmed, trimmed_long = _trimmed_entries(mine)
    if len(owners):
        q, i, d = cross_join(trimmed, their_codes, options.near_threshold)
        ok = _confirmed(trimmed_long[q], their_long[i], options)
        found += _hits(owners[q[ok]], theirs.index.to_numpy()[i[ok]], "border", d[ok])
    owners, trimmed, trimmed_long = _trimmed_entries(theirs)
    if len(owners):
        q, i, d = cross_join(trimmed, my_codes, options.near_threshold)
        ok = _confirmed(trimmed_long[q], my_long[i], options)
        found += _hits(mine.index.to_numpy()[i[ok]], owners[q[ok]], "border", d[ok])
    return found
