"""The walking plan: empty cells and incomplete spots ordered as a short walk."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.coverage.cells import Grid
from gpskit.coverage.options import CoverageOptions
from gpskit.geo import SECTORS
from gpskit.regions import Region

#: Stops above which the walk follows a Hilbert curve (O(n log n)) instead of nearest
#: neighbour + 2-opt (quadratic): a plan of thousands of stops is a map, not a walk.
GREEDY_LIMIT = 3000


def _hilbert_index(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], bits: int = 16) -> Any:
    """Position of each point along a Hilbert curve over their bounding box."""
    side = (1 << bits) - 1
    span = max(float(np.ptp(x)), float(np.ptp(y)), 1e-9)
    xi = ((x - x.min()) / span * side).astype(np.int64)
    yi = ((y - y.min()) / span * side).astype(np.int64)
    d = np.zeros(len(x), np.int64)
    s = 1 << (bits - 1)
    while s > 0:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant so the curve stays continuous
        flip = ~ry
        both = flip & rx
        xi = np.where(both, side - xi, xi)
        yi = np.where(both, side - yi, yi)
        xi, yi = np.where(flip, yi, xi), np.where(flip, xi, yi)
        s >>= 1
    return d


def _hilbert_route(
    points: npt.NDArray[np.float64], start: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Stops in Hilbert-curve order, starting from the one nearest ``start``."""
    order = np.argsort(_hilbert_index(points[:, 0], points[:, 1]), kind="stable")
    first = int(np.argmin(np.hypot(*(points[order] - start).T)))
    route: npt.NDArray[np.int64] = np.concatenate([order[first:], order[:first][::-1]])
    return route


def walking_order(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], start: tuple[float, float]
) -> npt.NDArray[np.int64]:
    """Visit order of points: nearest neighbour from ``start``, improved by 2-opt."""
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64)
    points = np.column_stack([x, y])
    if n > GREEDY_LIMIT:  # nearest neighbour is quadratic: follow a Hilbert curve instead
        return _hilbert_route(points, np.asarray(start, float))
    unvisited = np.ones(n, bool)
    order = []
    here = np.asarray(start, float)
    for _ in range(n):
        d = np.hypot(*(points - here).T)
        d[~unvisited] = np.inf
        nxt = int(np.argmin(d))
        order.append(nxt)
        unvisited[nxt] = False
        here = points[nxt]
    route = np.array(order)
    if n > 3 and n <= 3000:
        route = _two_opt(points, route, np.asarray(start, float))
    return route


def _two_opt(
    points: np.ndarray, route: np.ndarray, start: np.ndarray, max_passes: int = 20
) -> np.ndarray:
    """Reverse segments while that shortens the open path from ``start``."""
    path = np.vstack([start, points[route]])
    idx = np.concatenate([[-1], route])
    for _ in range(max_passes):
        improved = False
        for i in range(1, len(path) - 1):
            a, b = path[i - 1], path[i]
            c, d = path[i:-1], path[i + 1 :]
            before = np.hypot(*(a - b)) + np.hypot(*(c - d).T)
            after = np.hypot(*(a - c).T) + np.hypot(*(b - d).T)
            gain = before - after
            # reversing the tail end (no edge after it) is also allowed
            tail_gain = np.hypot(*(a - b)) - np.hypot(*(a - path[-1]))
            j = int(np.argmax(gain)) if len(gain) else -1
            if j >= 0 and gain[j] > 1e-9 and gain[j] >= tail_gain:
                k = i + j
                path[i : k + 1] = path[i : k + 1][::-1].copy()
                idx[i : k + 1] = idx[i : k + 1][::-1].copy()
                improved = True
            elif tail_gain > 1e-9:
                path[i:] = path[i:][::-1].copy()
                idx[i:] = idx[i:][::-1].copy()
                improved = True
        if not improved:
            break
    return idx[1:]


def plan_stops(
    region: Region,
    grid: Grid,
    empty: tuple[npt.NDArray[np.intp], ...],
    medians: pd.DataFrame,
    incomplete: dict[int, list[int]],
    options: CoverageOptions,
) -> pd.DataFrame:
    """Empty cells and incomplete spots, ordered as a walk from the region's north-west corner."""
    empty_cols, empty_rows = empty
    gx, gy = grid.centre(empty_cols, empty_rows)
    spot_rows = (
        medians.set_index("spot_id").loc[list(incomplete)] if incomplete else medians.iloc[:0]
    )
    sx, sy = region.project(spot_rows.lat.to_numpy(float), spot_rows.lon.to_numpy(float))
    cell_todo = f"take at least {options.min_per_cell} photo(s) in this {options.cell_m:g} m cell"
    stops = pd.DataFrame(
        {
            "kind": ["cell"] * len(gx) + ["spot"] * len(sx),
            "ref": [f"{c},{r}" for c, r in zip(empty_cols, empty_rows, strict=True)]
            + [str(s) for s in spot_rows.index],
            "x": np.concatenate([gx, sx]),
            "y": np.concatenate([gy, sy]),
            "todo": [cell_todo] * len(gx)
            + [
                f"missing headings: {' '.join(SECTORS[i] for i in incomplete[int(s)])}"
                for s in spot_rows.index
            ],
        }
    )
    minx, _, _, maxy = region.metric.bounds
    order = walking_order(stops.x.to_numpy(float), stops.y.to_numpy(float), (minx, maxy))
    stops = stops.iloc[order].reset_index(drop=True)
    stops["latitude"], stops["longitude"] = region.projection.inverse(
        stops.x.to_numpy(float), stops.y.to_numpy(float)
    )
    prev_x = np.concatenate([[minx], stops.x.to_numpy(float)[:-1]])
    prev_y = np.concatenate([[maxy], stops.y.to_numpy(float)[:-1]])
    stops["leg_m"] = np.hypot(stops.x - prev_x, stops.y - prev_y).round(1)
    stops["order"] = np.arange(1, len(stops) + 1)
    return stops
