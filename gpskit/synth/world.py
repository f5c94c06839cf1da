"""The synthetic campus: walkways, buildings, landmarks, trees and lamp posts, and spots.

Everything lives in the region's local metric frame (x east, y north), as flat arrays the
renderer reads. Built deterministically from a seed: the same seed gives the same world.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from gpskit.regions import Region

FloatArray = npt.NDArray[np.float64]
PATH_WIDTH = 4.0
BUILDINGS = 160
MARGIN = 60.0  # buildings also stand this far around the region, so edge views are not empty
FACADES = np.array(
    [
        [150, 70, 55],
        [185, 160, 125],
        [120, 120, 125],
        [200, 195, 180],
        [95, 60, 45],
        [170, 110, 80],
        [140, 150, 160],
        [210, 200, 160],
    ],
    float,
)
WINDOWS = [[60, 80, 100], [140, 170, 200], [40, 45, 50], [200, 200, 170]]
#: Style quarters of the campus, and the share of buildings in another quarter's style.
QUARTERS = 7
OUTLIERS = 0.12
LANDMARK_COLOURS = ([200, 40, 40], [40, 60, 200], [230, 200, 40])


@dataclass
class World:
    """Everything the renderer needs, as flat arrays (metres, local frame)."""

    boxes: FloatArray  # (n, 4): x0, y0, x1, y1
    box_height: FloatArray
    box_colour: FloatArray  # (n, 3)
    box_window: FloatArray  # (n, 3) window colour
    box_pattern: FloatArray  # (n, 3): window spacing, floor height, band flag
    circles: FloatArray  # (m, 3): x, y, radius
    circle_z: FloatArray  # (m, 2): bottom, top
    circle_colour: FloatArray  # (m, 3)
    paths: FloatArray  # (p, 4): x0, y0, x1, y1 segments
    path_width: float
    spots: FloatArray  # (s, 2)


def segments_distance(px: FloatArray, py: FloatArray, seg: FloatArray) -> FloatArray:
    """Distance from points to the nearest of the segments."""
    x0, y0, x1, y1 = (seg[:, i][None, :] for i in range(4))
    dx, dy = x1 - x0, y1 - y0
    length2 = np.maximum(dx * dx + dy * dy, 1e-9)
    t = np.clip(((px[:, None] - x0) * dx + (py[:, None] - y0) * dy) / length2, 0, 1)
    distance: FloatArray = np.min(
        np.hypot(px[:, None] - (x0 + t * dx), py[:, None] - (y0 + t * dy)), axis=1
    )
    return distance


def walkways(metric: Any, rng: np.random.Generator) -> FloatArray:
    """A loose grid of long straight paths clipped to the region, as segments."""
    minx, miny, maxx, maxy = metric.bounds
    lines = []
    for x in np.linspace(minx, maxx, 5)[1:-1] + rng.uniform(-8, 8, 3):
        lines.append(shapely.LineString([(x, miny - 10), (x + rng.uniform(-15, 15), maxy + 10)]))
    for y in np.linspace(miny, maxy, 6)[1:-1] + rng.uniform(-8, 8, 4):
        lines.append(shapely.LineString([(minx - 10, y), (maxx + 10, y + rng.uniform(-15, 15))]))
    segments = []
    for geom in (metric.intersection(line) for line in lines):
        for part in getattr(geom, "geoms", [geom]):
            coords = np.asarray(part.coords) if not part.is_empty else np.empty((0, 2))
            for a, b in itertools.pairwise(coords):
                segments.append([a[0], a[1], b[0], b[1]])
    return np.asarray(segments, float)


def spots_along(paths: FloatArray, spots: int) -> FloatArray:
    """``spots`` points spread evenly along the walkways."""
    lengths = np.hypot(paths[:, 2] - paths[:, 0], paths[:, 3] - paths[:, 1])
    offsets = (np.arange(spots) + 0.5) * (lengths.sum() / spots)
    cumulative = np.concatenate([[0], np.cumsum(lengths)])
    which = np.clip(np.searchsorted(cumulative, offsets, side="right") - 1, 0, len(paths) - 1)
    frac = (offsets - cumulative[which]) / np.maximum(lengths[which], 1e-9)
    return np.column_stack(
        [
            paths[which, 0] + frac * (paths[which, 2] - paths[which, 0]),
            paths[which, 1] + frac * (paths[which, 3] - paths[which, 1]),
        ]
    )


@dataclass
class _Buildings:
    """Boxes as they are placed, with their looks."""

    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)
    colours: list[Any] = field(default_factory=list)
    windows: list[Any] = field(default_factory=list)
    patterns: list[list[float]] = field(default_factory=list)

    def free(self, box: Any, gap: float) -> bool:
        """No placed box within ``gap`` metres of ``box`` (as shapely's buffer says: its
        round corners are chords, up to 0.4 % inside the circle). The exact box-to-box
        distance settles every box but those within 1 % of the limit (rounding included),
        which shapely decides as before: the same campus, 3-5x faster."""
        if not self.boxes:
            return True
        placed = np.asarray(self.boxes)
        x0, y0, x1, y1 = box.bounds
        dx = np.maximum(0.0, np.maximum(placed[:, 0] - x1, x0 - placed[:, 2]))
        dy = np.maximum(0.0, np.maximum(placed[:, 1] - y1, y0 - placed[:, 3]))
        distance = np.hypot(dx, dy)
        if (distance < gap * 0.99).any():
            return False
        doubtful = np.flatnonzero(distance <= gap * 1.0001 + 1e-9)  # rounding either way
        if gap:
            return not any(
                shapely.box(*self.boxes[i]).buffer(gap).intersects(box) for i in doubtful
            )
        return not any(shapely.box(*self.boxes[i]).intersects(box) for i in doubtful)


def _clear_of_paths(x0: float, y0: float, w: float, d: float, paths: FloatArray) -> bool:
    corners = np.array(
        [[x0, y0], [x0 + w, y0], [x0, y0 + d], [x0 + w, y0 + d], [x0 + w / 2, y0 + d / 2]]
    )
    if segments_distance(corners[:, 0], corners[:, 1], paths).min() < PATH_WIDTH + 3:
        return False
    if not len(paths):
        return True
    lines = shapely.MultiLineString([[(s[0], s[1]), (s[2], s[3])] for s in paths])
    return bool(shapely.distance(shapely.box(x0, y0, x0 + w, y0 + d), lines) >= PATH_WIDTH + 2)


@dataclass(frozen=True)
class _Quarter:
    """A part of campus built in one style: real campuses are quarters of one era or
    architect (a brick quad, a glass science block), which is what lets a photo of a few
    facades say roughly where it was taken."""

    x: float
    y: float
    facade: int
    window: int
    heights: tuple[float, float, float]  # chance of low, mid, tall


def quarters(metric: Any, rng: np.random.Generator) -> list[_Quarter]:
    """QUARTERS style centres over the region, each with its own facade and window colour."""
    minx, miny, maxx, maxy = metric.bounds
    facades = rng.permutation(len(FACADES))
    out = []
    for i in range(QUARTERS):
        heights = rng.dirichlet([2.0, 2.0, 0.8])
        out.append(
            _Quarter(
                x=float(rng.uniform(minx, maxx)),
                y=float(rng.uniform(miny, maxy)),
                facade=int(facades[i % len(facades)]),
                window=int(rng.integers(len(WINDOWS))),
                heights=(float(heights[0]), float(heights[1]), float(heights[2])),
            )
        )
    return out


def place_buildings(metric: Any, paths: FloatArray, rng: np.random.Generator) -> _Buildings:
    """Boxes away from the walkways, inside and around the region, in the style of the
    quarter they stand in (one in OUTLIERS of another style)."""
    minx, miny, maxx, maxy = metric.bounds
    styles = quarters(metric, rng)
    centres = np.array([[q.x, q.y] for q in styles])
    out = _Buildings()
    outer = metric.buffer(MARGIN)
    tries = 0
    while len(out.boxes) < BUILDINGS and tries < 6000:
        tries += 1
        w, d = rng.uniform(10, 38), rng.uniform(10, 38)
        x0 = rng.uniform(minx - MARGIN, maxx + MARGIN - w)
        y0 = rng.uniform(miny - MARGIN, maxy + MARGIN - d)
        box = shapely.box(x0, y0, x0 + w, y0 + d)
        if not outer.contains(box) or not _clear_of_paths(x0, y0, w, d, paths):
            continue
        if not out.free(box, 3):
            continue
        quarter = styles[int(np.argmin(np.hypot(*(centres - [x0 + w / 2, y0 + d / 2]).T)))]
        facade, window = quarter.facade, quarter.window
        if rng.random() < OUTLIERS:
            facade, window = int(rng.integers(len(FACADES))), int(rng.integers(len(WINDOWS)))
        out.boxes.append((x0, y0, x0 + w, y0 + d))
        low, mid, tall = rng.uniform(6, 14), rng.uniform(14, 30), rng.uniform(30, 45)
        out.heights.append(rng.choice([low, mid, tall], p=quarter.heights))
        out.colours.append(FACADES[facade] * rng.uniform(0.9, 1.1) + rng.normal(0, 6, 3))
        out.windows.append(np.asarray(WINDOWS[window], float) + rng.normal(0, 8, 3))
        out.patterns.append(
            [rng.uniform(2.5, 5.0), rng.uniform(3.2, 4.2), float(rng.random() < 0.5)]
        )
    return out


def place_landmarks(
    metric: Any, paths: FloatArray, buildings: _Buildings, rng: np.random.Generator
) -> None:
    """Three slim towers with loud colours, inside the region: seen from afar, they orient."""
    minx, miny, maxx, maxy = metric.bounds
    for colour in LANDMARK_COLOURS:
        for _ in range(200):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            box = shapely.box(x, y, x + 6, y + 6)
            if (
                metric.contains(box)
                and segments_distance(np.array([x + 3]), np.array([y + 3]), paths)[0]
                > PATH_WIDTH + 4
                and buildings.free(box, 0)
            ):
                buildings.boxes.append((x, y, x + 6, y + 6))
                buildings.heights.append(rng.uniform(55, 75))
                buildings.colours.append(np.array(colour, float))
                buildings.windows.append(np.array([250, 250, 250], float))
                buildings.patterns.append([3.0, 6.0, 1.0])
                break


def street_furniture(
    paths: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Trees (trunk and crown) and lamp posts along the walkways: circles, z ranges, colours."""
    circles: list[Any] = []
    zs: list[Any] = []
    colours: list[Any] = []
    for seg in paths:
        length = math.hypot(seg[2] - seg[0], seg[3] - seg[1])
        ux, uy = (seg[2] - seg[0]) / max(length, 1e-9), (seg[3] - seg[1]) / max(length, 1e-9)
        nx, ny = -uy, ux
        for s in np.arange(rng.uniform(0, 12), length, rng.uniform(9, 16)):
            side = rng.choice([-1, 1])
            x = seg[0] + ux * s + nx * side * rng.uniform(4.5, 7)
            y = seg[1] + uy * s + ny * side * rng.uniform(4.5, 7)
            if rng.random() < 0.75:
                radius = rng.uniform(1.8, 3.5)
                circles += [(x, y, 0.25), (x, y, radius)]
                zs += [(0, 3.0), (2.6, 2.6 + rng.uniform(3, 7))]
                colours += [
                    [90, 65, 45],
                    [rng.uniform(30, 70), rng.uniform(100, 150), rng.uniform(30, 60)],
                ]
            else:
                circles += [(x, y, 0.12)]
                zs += [(0, 4.5)]
                colours += [[45, 45, 50]]
    return (
        np.asarray(circles, float).reshape(-1, 3),
        np.asarray(zs, float).reshape(-1, 2),
        np.asarray(colours, float).reshape(-1, 3),
    )


def build_world(region: Region, spots: int, seed: int) -> World:
    """A deterministic campus for ``seed`` inside (and around) the region."""
    rng = np.random.default_rng(seed)
    metric = region.metric
    paths = walkways(metric, rng)
    spot_xy = spots_along(paths, spots)
    buildings = place_buildings(metric, paths, rng)
    place_landmarks(metric, paths, buildings, rng)
    circles, circle_z, circle_colour = street_furniture(paths, rng)
    return World(
        boxes=np.asarray(buildings.boxes, float),
        box_height=np.asarray(buildings.heights, float),
        box_colour=np.asarray(buildings.colours, float),
        box_window=np.asarray(buildings.windows, float),
        box_pattern=np.asarray(buildings.patterns, float),
        circles=circles,
        circle_z=circle_z,
        circle_colour=circle_colour,
        paths=paths,
        path_width=PATH_WIDTH,
        spots=spot_xy,
    )
