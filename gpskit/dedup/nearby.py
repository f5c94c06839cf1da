"""Hash searches blocked by position: copies are of one place.

At 10M photos an exact Hamming search over every pair of photos takes hours once the
turned (7 hashes a photo) and crop (18) searches join in. A copy keeps its photo's
EXIF, so where both photos have a position the search needs only photos near each
other: the world is cut into square tiles (:class:`Grid`, at least 8 times the search
distance ``within_m`` on a side), and each entry is searched only against the entries
of its tile, where the entries of one side are also filed under every neighbouring tile
their position is within ``within_m`` of (a halo). Two entries within ``within_m`` of
each other therefore meet in exactly one place: the home tile of one of them (for a
self-join, the lower of their two home tiles). Pairs farther apart than ``within_m``
are dropped, so the result does not depend on where the tile edges fall.

Entries without a position (or nearer a pole than :data:`MAX_LATITUDE`, where tiles
degenerate) are searched against everything, as without blocking.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from math import floor

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.geo import haversine_m
from gpskit.hashindex import cross_join, estimate_seconds, self_join

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Found = tuple[I64, I64, npt.NDArray[np.uint8]]

#: Metres per degree of latitude, rounded down so a box of ``within_m`` is never short.
METRES_PER_DEGREE = 111_000.0
#: Tiles are never smaller than this (metres): fewer, fuller tiles cost less to visit.
MIN_TILE_M = 1_000.0
#: Photos nearer a pole than this are searched against everything.
MAX_LATITUDE = 80.0


@dataclass(frozen=True)
class Where:
    """The positions of a frame's rows, by row label (NaN where unknown or unusable)."""

    lat: F64
    lon: F64

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Where:
        labels = frame.index.to_numpy(np.int64)
        size = int(labels.max()) + 1 if len(labels) else 0
        lat, lon = np.full(size, np.nan), np.full(size, np.nan)
        lat[labels] = pd.to_numeric(frame.latitude, errors="coerce").to_numpy(
            float, na_value=np.nan
        )
        lon[labels] = pd.to_numeric(frame.longitude, errors="coerce").to_numpy(
            float, na_value=np.nan
        )
        usable = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= MAX_LATITUDE)
        usable &= np.abs(lon) <= 180
        lat[~usable], lon[~usable] = np.nan, np.nan
        return cls(lat, lon)

    def known(self, rows: I64) -> npt.NDArray[np.bool_]:
        known: npt.NDArray[np.bool_] = ~np.isnan(self.lat[rows])
        return known


@dataclass(frozen=True)
class Located:
    """Hash entries with the row (label) each belongs to and where the rows are."""

    codes: U64
    rows: I64
    where: Where

    def __len__(self) -> int:
        return len(self.codes)

    def part(self, entries: I64) -> Located:
        return Located(self.codes[entries], self.rows[entries], self.where)


@dataclass(frozen=True)
class Grid:
    """Tiles ``side`` degrees high and ``360 / columns`` wide (at least ``side``; a whole
    number of columns, so the antimeridian is an edge like any other); a row's halo is
    every tile within ``within_m`` of it."""

    within_m: float
    side: float
    columns: int

    @classmethod
    def of(cls, within_m: float) -> Grid:
        side = min(180.0, max(8 * within_m, MIN_TILE_M) / METRES_PER_DEGREE)
        return cls(within_m, side, max(1, floor(360 / side)))

    def _tile(self, lat: F64, lon: F64) -> npt.NDArray[np.int64]:
        row, column = self._row(lat), self._column(lon) % self.columns
        result: npt.NDArray[np.int64] = (row * self.columns + column).astype(self.dtype)
        return result

    @property
    def dtype(self) -> type:
        """int32 where every tile id fits (half the memory over 180M crop entries)."""
        return np.int32 if (180 / self.side + 2) * self.columns < 2**31 else np.int64

    def _row(self, lat: F64) -> npt.NDArray[np.int64]:
        return np.floor((lat + 90) / self.side).astype(np.int64)

    def _column(self, lon: F64) -> npt.NDArray[np.int64]:
        """Unwrapped: the column east of the last is ``columns``, west of the first -1."""
        return np.floor((lon + 180) / (360 / self.columns)).astype(np.int64)

    def home(self, lat: F64, lon: F64) -> npt.NDArray[np.int64]:
        """Each position's tile (positions must be known)."""
        return self._tile(lat, lon)

    def halo(self, lat: F64, lon: F64) -> tuple[I64, npt.NDArray[np.int64]]:
        """(which position, tile) for every tile each position is within ``within_m`` of:
        every tile its box of ``within_m`` touches (wider in longitude nearer a pole)."""
        dlat = self.within_m / METRES_PER_DEGREE
        widest = np.minimum(np.abs(lat) + dlat, 89.9)
        dlon = dlat / np.cos(np.radians(widest))
        rows = [self._row(lat - dlat), self._row(lat + dlat)]
        columns = [self._column(lon - dlon), self._column(lon + dlon)]
        height = rows[1] - rows[0] + 1
        width = np.minimum(columns[1] - columns[0] + 1, self.columns)
        count = height * width
        owner = np.repeat(np.arange(len(lat), dtype=np.int64), count)
        step = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(
            np.cumsum(count) - count, count
        )
        row = rows[0][owner] + step // width[owner]
        column = (columns[0][owner] + step % width[owner]) % self.columns
        return owner, (row * self.columns + column).astype(self.dtype)


def _groups(tiles: npt.NDArray[np.int64]) -> dict[int, I64]:
    """Positions of each tile's entries (views of one sorted order), tiles in order."""
    if not len(tiles):
        return {}
    order = np.argsort(tiles, kind="stable")
    ordered = tiles[order]
    cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.concatenate([[0], cuts]).astype(np.int64)
    ends = np.concatenate([cuts, [len(order)]]).astype(np.int64)
    names = ordered[starts]
    del ordered
    return {int(t): order[a:b] for t, a, b in zip(names, starts, ends, strict=True)}


def _homes(entries: Located, grid: Grid) -> npt.NDArray[np.int64]:
    """Each entry's home tile, computed once per row (an entry list is up to 18 a row)."""
    known = ~np.isnan(entries.where.lat)
    by_row: npt.NDArray[np.int64] = np.full(len(known), -1, grid.dtype)
    by_row[known] = grid.home(entries.where.lat[known], entries.where.lon[known])
    homes: npt.NDArray[np.int64] = by_row[entries.rows]
    return homes


def _near(query: Located, q: I64, index: Located, i: I64, within_m: float) -> npt.NDArray[np.bool_]:
    lat_q, lon_q = query.where.lat[query.rows[q]], query.where.lon[query.rows[q]]
    lat_i, lon_i = index.where.lat[index.rows[i]], index.where.lon[index.rows[i]]
    near: npt.NDArray[np.bool_] = haversine_m(lat_q, lon_q, lat_i, lon_i) <= within_m
    return near


def _blocked_self(entries: Located, grid: Grid, radius: int) -> Iterator[tuple[I64, I64]]:
    lat, lon = entries.where.lat[entries.rows], entries.where.lon[entries.rows]
    home = _homes(entries, grid)
    owner, tiles = grid.halo(lat, lon)
    del lat, lon
    for tile, members in _groups(tiles).items():
        if len(members) < 2:
            continue
        local = owner[members]
        a, b, _ = self_join(entries.codes[local], radius)
        a, b = local[a], local[b]
        keep = np.minimum(home[a], home[b]) == tile
        keep &= _near(entries, a, entries, b, grid.within_m)
        yield a[keep], b[keep]


def _blocked_cross(
    query: Located, index: Located, grid: Grid, radius: int
) -> Iterator[tuple[I64, I64]]:
    """Every (query, index) pair within the grid's distance; the smaller side is filed
    under its halo tiles, the other under its home tile only."""
    halo_side_is_query = len(query) <= len(index)
    spread, fixed = (query, index) if halo_side_is_query else (index, query)
    owner, tiles = grid.halo(spread.where.lat[spread.rows], spread.where.lon[spread.rows])
    spread_groups, fixed_groups = _groups(tiles), _groups(_homes(fixed, grid))
    for tile, members in spread_groups.items():
        others = fixed_groups.get(tile)
        if others is None:
            continue
        local = owner[members]
        s, f, _ = cross_join(spread.codes[local], fixed.codes[others], radius)
        s, f = local[s], others[f]
        q, i = (s, f) if halo_side_is_query else (f, s)
        yield from _kept(q, i, _near(query, q, index, i, grid.within_m))


def _kept(q: I64, i: I64, keep: npt.NDArray[np.bool_]) -> Iterator[tuple[I64, I64]]:
    if keep.any():
        yield q[keep], i[keep]


def join(query: Located, index: Located | None, radius: int, within_m: float | None) -> Found:
    """Entries of ``query`` within ``radius`` bits of entries of ``index`` (of each other
    when ``index`` is None) whose photos are within ``within_m`` metres where both
    positions are known; everything, as an unblocked search, where ``within_m`` is None."""
    if within_m is None:
        if index is None:
            return self_join(query.codes, radius)
        return cross_join(query.codes, index.codes, radius)
    grid = Grid.of(within_m)
    q_known = np.flatnonzero(query.where.known(query.rows))
    q_unknown = np.flatnonzero(~query.where.known(query.rows))
    parts: list[tuple[I64, I64]] = []
    if index is None:
        parts.append(_mapped(self_join(query.codes[q_unknown], radius), q_unknown, q_unknown))
        parts.append(
            _mapped(
                cross_join(query.codes[q_unknown], query.codes[q_known], radius), q_unknown, q_known
            )
        )
        for a, b in _blocked_self(query.part(q_known), grid, radius):
            parts.append((q_known[a], q_known[b]))
        return _found(parts, query, query)
    i_known = np.flatnonzero(index.where.known(index.rows))
    i_unknown = np.flatnonzero(~index.where.known(index.rows))
    parts.append(_mapped(cross_join(query.codes[q_unknown], index.codes, radius), q_unknown, None))
    parts.append(
        _mapped(
            cross_join(query.codes[q_known], index.codes[i_unknown], radius), q_known, i_unknown
        )
    )
    for q, i in _blocked_cross(query.part(q_known), index.part(i_known), grid, radius):
        parts.append((q_known[q], i_known[i]))
    return _found(parts, query, index)


def _mapped(found: Found, left: I64, right: I64 | None) -> tuple[I64, I64]:
    a, b, _ = found
    return left[a], (b if right is None else right[b])


def _found(parts: list[tuple[I64, I64]], query: Located, index: Located) -> Found:
    if not parts:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.uint8)
    q = np.concatenate([p[0] for p in parts]).astype(np.int64)
    i = np.concatenate([p[1] for p in parts]).astype(np.int64)
    order = np.lexsort((i, q))
    q, i = q[order], i[order]
    distance: npt.NDArray[np.uint8] = np.bitwise_count(query.codes[q] ^ index.codes[i])
    return q, i, distance


# --- what a search will cost -----------------------------------------------------------------


def estimate(
    where: Where,
    query_counts: I64,
    index_counts: I64 | None,
    radius: int,
    within_m: float | None,
) -> float:
    """Predicted seconds of :func:`join` with this many entries per row label (``where``
    covers the same labels; ``index_counts`` None: a self-join of the query's entries)."""
    self = index_counts is None
    other = query_counts if index_counts is None else index_counts
    n_q, n_i = int(query_counts.sum()), int(other.sum())
    if within_m is None:
        return estimate_seconds(n_q, n_i, radius)
    known = ~np.isnan(where.lat)
    u_q, u_i = int(query_counts[~known].sum()), int(other[~known].sum())
    if self:
        seconds = estimate_seconds(u_q, u_q, radius) + estimate_seconds(u_q, n_q - u_q, radius)
    else:
        seconds = estimate_seconds(u_q, n_i, radius) + estimate_seconds(n_q - u_q, u_i, radius)
    rows = np.flatnonzero(known & ((query_counts > 0) | (other > 0)))
    if not len(rows):
        return seconds
    grid = Grid.of(within_m)
    lat, lon = where.lat[rows], where.lon[rows]
    owner, tiles = grid.halo(lat, lon)
    home = grid.home(lat, lon)
    spread_is_query = self or n_q <= n_i
    spread_counts, fixed_counts = (
        (query_counts, other) if spread_is_query else (other, query_counts)
    )
    ids, inverse = np.unique(np.concatenate([tiles, home]), return_inverse=True)
    spread = np.bincount(inverse[: len(tiles)], spread_counts[rows][owner], len(ids))
    fixed = np.bincount(inverse[len(tiles) :], fixed_counts[rows], len(ids))
    for s_t, f_t in zip(spread, spread if self else fixed, strict=True):
        if s_t and f_t:
            seconds += estimate_seconds(int(s_t), int(f_t), radius)
    return seconds


def describe(within_m: float | None) -> str:
    """How a search was scoped, for a report."""
    if within_m is None:
        return "every pair of photos"
    return f"photos within {within_m:g} m of each other (and every photo without a position)"
