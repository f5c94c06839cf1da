"""``gpskit coverage``: where the photos are, where they are missing, where to go next.

- Inside/outside: photos against the region polygon (the boundary counts as inside).
- Grid: square cells of ``cell_m`` metres laid from the south-west corner of the region's
  bounding box, in the region's local projection. A cell belongs to the region when at
  least half of it lies inside; a cell is covered when it holds ``min_per_cell`` kept,
  accepted photos or more.
- Spots: single-linkage clustering of the photos' fixes: two photos share a spot when a
  chain of photos, each within ``spot_radius_m`` of the next, links them. Phones at one
  spot report nearly the same fix for shots seconds apart (their error drifts slowly),
  while spots of a survey are metres apart. A spot's position is the median of its fixes.
- Headings: 8 sectors of 45° centred on N, NE, ... NW; a spot is complete with all 8.
  Magnetic headings are corrected by ``declination`` (east positive) when given.
- Plan: the empty cells and the incomplete spots, ordered as a short walking route
  (nearest neighbour, then 2-opt), starting from the region's north-west corner.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely

from gpskit import arguments
from gpskit.atomic import write_text
from gpskit.dataset import COVERAGE, DUPLICATES, Dataset
from gpskit.errors import GpskitError, UsageError
from gpskit.geo import SECTORS, heading_sector
from gpskit.graph import connected_components, pairs_within
from gpskit.regions import DEFAULT_REGION, Region, load_region
from gpskit.schema import load_schema, write_table


@dataclass(frozen=True)
class CoverageOptions:
    """Grid, spot and heading settings (see the module docstring)."""

    region: str = DEFAULT_REGION
    cell_m: float = 20.0
    min_per_cell: int = 1
    spot_radius_m: float = 3.0
    declination: float | None = None

    def validate(self) -> None:
        arguments.number("--cell", self.cell_m, above=0)
        arguments.number("--min-per-cell", self.min_per_cell, minimum=1, integer=True)
        arguments.number("--spot-radius", self.spot_radius_m, above=0)
        arguments.optional_number("--declination", self.declination, minimum=-90, maximum=90)


@dataclass
class Grid:
    """The region's cells: origin, size, shape and which cells belong to the region."""

    x0: float
    y0: float
    cell_m: float
    columns: int
    rows: int
    in_region: npt.NDArray[np.bool_]  # (columns, rows)

    def index(self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> tuple[Any, Any]:
        col = np.floor((x - self.x0) / self.cell_m).astype(np.int64)
        row = np.floor((y - self.y0) / self.cell_m).astype(np.int64)
        return np.clip(col, 0, self.columns - 1), np.clip(row, 0, self.rows - 1)

    def centre(self, col: Any, row: Any) -> tuple[Any, Any]:
        return self.x0 + (np.asarray(col) + 0.5) * self.cell_m, self.y0 + (
            np.asarray(row) + 0.5
        ) * self.cell_m


#: Below this many vertices (or cells) a piece of the region is intersected cell by cell.
_LEAF_VERTICES = 512
_LEAF_CELLS = 16


def _cell_fractions(
    geometry: Any, x0: float, y0: float, cell_m: float, columns: int, rows: int
) -> npt.NDArray[np.float64]:
    """Share of each cell's area inside ``geometry`` (columns x rows).

    Quadtree clipping: the region is clipped to halves of the grid, recursively, so a
    polygon of a million vertices costs seconds (each level touches each vertex about once),
    not an intersection of the whole polygon with every cell.
    """
    fractions = np.zeros((columns, rows))

    def fill(piece: Any, c0: int, r0: int, c1: int, r1: int) -> None:
        if piece.is_empty:
            return
        if abs(piece.area - (c1 - c0) * (r1 - r0) * cell_m**2) < 1e-9 * cell_m**2:
            fractions[c0:c1, r0:r1] = 1.0  # the whole block is inside
            return
        if (c1 - c0) * (r1 - r0) <= _LEAF_CELLS or shapely.get_num_coordinates(
            piece
        ) <= _LEAF_VERTICES:
            col, row = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1), indexing="ij")
            boxes = shapely.box(
                x0 + col * cell_m,
                y0 + row * cell_m,
                x0 + (col + 1) * cell_m,
                y0 + (row + 1) * cell_m,
            )
            shapely.prepare(piece)
            fractions[c0:c1, r0:r1] = shapely.area(shapely.intersection(boxes, piece)) / cell_m**2
            return
        if c1 - c0 >= r1 - r0:
            mid = (c0 + c1) // 2
            halves = [(c0, r0, mid, r1), (mid, r0, c1, r1)]
        else:
            mid = (r0 + r1) // 2
            halves = [(c0, r0, c1, mid), (c0, mid, c1, r1)]
        for a0, b0, a1, b1 in halves:
            box = (x0 + a0 * cell_m, y0 + b0 * cell_m, x0 + a1 * cell_m, y0 + b1 * cell_m)
            fill(shapely.make_valid(shapely.clip_by_rect(piece, *box)), a0, b0, a1, b1)

    fill(geometry, 0, 0, columns, rows)
    return np.clip(fractions, 0.0, 1.0)


def make_grid(region: Region, cell_m: float) -> Grid:
    """Cells over the region's bounding box; those at least half inside belong to it."""
    minx, miny, maxx, maxy = region.metric.bounds
    columns = max(1, int(np.ceil((maxx - minx) / cell_m)))
    rows = max(1, int(np.ceil((maxy - miny) / cell_m)))
    if columns * rows > 4_000_000:
        raise UsageError(f"--cell {cell_m:g} m gives {columns * rows:,} cells; use larger cells")
    overlap = _cell_fractions(region.metric, minx, miny, cell_m, columns, rows)
    in_region = overlap >= 0.5
    if not in_region.any():  # a region smaller than one cell: keep the cells it touches
        in_region = overlap > 0
    return Grid(minx, miny, cell_m, columns, rows, in_region)


def cluster_spots(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], radius: float
) -> npt.NDArray[np.int64]:
    """Spot label per point (single linkage within ``radius``), unnumbered."""
    a, b = pairs_within(x, y, radius)
    return connected_components(len(x), a, b)


# --- routes -----------------------------------------------------------------------------


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


#: What coverage reads of the manifest.
MANIFEST_COLUMNS = [
    "root",
    "path",
    "status",
    "latitude",
    "longitude",
    "img_direction",
    "img_direction_ref",
]


def _photos(dataset: Dataset) -> tuple[pd.DataFrame, bool, str]:
    """Accepted photos with a position, whether dedup's keep flags were applied, and the
    hash of the manifest read."""
    table, digest = dataset.manifest_snapshot(MANIFEST_COLUMNS)
    manifest = table.to_pandas()
    photos = manifest[
        (manifest.status == "accepted") & manifest.latitude.notna() & manifest.longitude.notna()
    ]
    photos = photos.reset_index(drop=True)
    keep = _keep_flags(dataset)
    if keep is not None:
        photos = photos.merge(keep, on=["root", "path"], how="left")
        photos["keep"] = photos["keep"].fillna(True).astype(bool)
    else:
        photos["keep"] = True
    return photos, keep is not None, digest


def _keep_flags(dataset: Dataset) -> pd.DataFrame | None:
    """Dedup's keep flags when duplicates.parquet is current and readable (else None: a
    stale or corrupt one is not used, and coverage counts every photo)."""
    if not dataset.is_current(DUPLICATES):
        return None
    try:
        table = dataset.load_duplicates()
    except GpskitError:
        return None
    frame: pd.DataFrame = table.select(["root", "path", "keep"]).to_pandas()
    return frame


def true_headings(
    photos: pd.DataFrame, declination: float | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Headings from true north (magnetic ones corrected when the declination is known),
    and which were magnetic."""
    heading = photos.img_direction.to_numpy(float, na_value=np.nan)
    magnetic = (photos.img_direction_ref == "M").to_numpy(bool) & np.isfinite(heading)
    if declination is not None:
        heading = np.where(magnetic, (heading + declination) % 360.0, heading)
    return heading, magnetic


def spot_medians(
    labels: npt.NDArray[np.int64], lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> pd.DataFrame:
    """Per spot label: median position, photo count and spot_id (numbered north to south,
    then west to east)."""
    frame = pd.DataFrame({"label": labels, "lat": lat, "lon": lon})
    medians = frame.groupby("label").agg(
        lat=("lat", "median"), lon=("lon", "median"), n=("lat", "size")
    )
    medians = medians.sort_values(["lat", "lon"], ascending=[False, True])
    medians["spot_id"] = np.arange(1, len(medians) + 1)
    return medians


@dataclass
class Layout:
    """Where every photo falls: projected position, region, cell, spot and heading."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    inside: npt.NDArray[np.bool_]
    col: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    in_cell: npt.NDArray[np.bool_]
    heading: npt.NDArray[np.float64]
    magnetic: npt.NDArray[np.bool_]
    sector: npt.NDArray[np.int64]
    medians: pd.DataFrame
    spot: pd.DataFrame  # the medians row of each photo


def lay_out(photos: pd.DataFrame, region: Region, grid: Grid, options: CoverageOptions) -> Layout:
    lat, lon = photos.latitude.to_numpy(float), photos.longitude.to_numpy(float)
    x, y = region.project(lat, lon)
    inside = region.contains(lat, lon)
    col, row = grid.index(x, y)
    heading, magnetic = true_headings(photos, options.declination)
    labels = cluster_spots(x, y, options.spot_radius_m)
    medians = spot_medians(labels, lat, lon)
    return Layout(
        x=x,
        y=y,
        inside=inside,
        col=col,
        row=row,
        in_cell=inside & grid.in_region[col, row],
        heading=heading,
        magnetic=magnetic,
        sector=heading_sector(heading),
        medians=medians,
        spot=medians.loc[labels],
    )


def photo_table(photos: pd.DataFrame, layout: Layout) -> pd.DataFrame:
    """coverage.parquet's rows."""
    heading = layout.heading
    table = pd.DataFrame(
        {
            "root": photos.root,
            "path": photos.path,
            "latitude": photos.latitude.to_numpy(float),
            "longitude": photos.longitude.to_numpy(float),
            "x_m": layout.x,
            "y_m": layout.y,
            "inside_region": layout.inside,
            "outside_region": ~layout.inside,
            "keep": photos.keep.to_numpy(bool),
            "cell": [
                f"{c},{r}" if ok else None
                for c, r, ok in zip(layout.col, layout.row, layout.in_cell, strict=True)
            ],
            "spot_id": layout.spot.spot_id.to_numpy(np.int64),
            "spot_latitude": layout.spot.lat.to_numpy(float),
            "spot_longitude": layout.spot.lon.to_numpy(float),
            "spot_size": layout.spot.n.to_numpy(np.int32),
            "heading_true": np.where(np.isfinite(heading), heading, np.nan),
            "heading_sector": [SECTORS[s] if s >= 0 else None for s in layout.sector],
            "heading_magnetic": layout.magnetic,
        }
    )
    table["heading_true"] = table.heading_true.astype("Float64").where(np.isfinite(heading))
    return table


def cell_counts(grid: Grid, layout: Layout, kept: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Kept photos per cell (columns x rows), counting photos inside the region only."""
    counted = kept & layout.in_cell
    counts = np.zeros((grid.columns, grid.rows), np.int64)
    np.add.at(counts, (layout.col[counted], layout.row[counted]), 1)
    return counts


def spot_sectors(
    spot_ids: npt.NDArray[np.int64], sector: npt.NDArray[np.int64], used: npt.NDArray[np.bool_]
) -> dict[int, set[int]]:
    """Heading sectors present at each spot (kept photos inside the region)."""
    sectors_by_spot: dict[int, set[int]] = {}
    for sid, sec in zip(spot_ids[used], sector[used], strict=True):
        sectors_by_spot.setdefault(int(sid), set())
        if sec >= 0:
            sectors_by_spot[int(sid)].add(int(sec))
    return sectors_by_spot


def missing_sectors(sectors_by_spot: dict[int, set[int]]) -> dict[int, list[int]]:
    """Spots lacking some of the 8 sectors, with the sectors they lack."""
    return {s: sorted(set(range(8)) - secs) for s, secs in sectors_by_spot.items() if len(secs) < 8}


# --- the plan -----------------------------------------------------------------------------


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


# --- the run ------------------------------------------------------------------------------


@dataclass
class CoverageReport:
    """All figures, as written to coverage.json and printed."""

    dataset_dir: str
    region: dict[str, Any]
    photos: dict[str, int]
    grid: dict[str, Any]
    spots: dict[str, Any]
    headings: dict[str, Any]
    outside: list[str]
    plan: dict[str, Any]
    dedup_applied: bool
    written: list[str]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def coverage(
    dataset_dir: Path | Dataset, options: CoverageOptions | None = None, *, draw: bool = True
) -> CoverageReport:
    """Compute coverage, write coverage.parquet and the coverage/ folder."""
    options = options or CoverageOptions()
    options.validate()
    dataset = Dataset.at(dataset_dir)
    region = load_region(options.region)
    dataset.require_manifest()
    with dataset.writing("coverage"):
        return _coverage(dataset, region, options, draw)


def _coverage(
    dataset: Dataset, region: Region, options: CoverageOptions, draw: bool
) -> CoverageReport:
    photos, dedup_applied, digest = _photos(dataset)
    grid = make_grid(region, options.cell_m)
    layout = lay_out(photos, region, grid, options)
    table = photo_table(photos, layout)
    kept = photos.keep.to_numpy(bool)
    counts = cell_counts(grid, layout, kept)
    sectors_by_spot = spot_sectors(table.spot_id.to_numpy(), layout.sector, kept & layout.inside)
    incomplete = missing_sectors(sectors_by_spot)
    empty = np.nonzero(grid.in_region & (counts < options.min_per_cell))
    stops = plan_stops(region, grid, empty, layout.medians, incomplete, options)
    report = CoverageReport(
        dataset_dir=str(dataset.root),
        region=_region_figures(region),
        photos={
            "accepted_with_position": len(photos),
            "kept": int(kept.sum()),
            "inside": int((kept & layout.inside).sum()),
            "outside": int((kept & ~layout.inside).sum()),
        },
        grid=_grid_figures(grid, counts, options),
        spots=_spot_figures(
            table.spot_id.to_numpy(), kept & layout.inside, sectors_by_spot, options
        ),
        headings={
            "with_heading": int((kept & layout.inside & (layout.sector >= 0)).sum()),
            "without_heading": int((kept & layout.inside & (layout.sector < 0)).sum()),
            "magnetic": int((kept & layout.magnetic).sum()),
            "declination": options.declination,
            "magnetic_corrected": options.declination is not None,
        },
        outside=sorted((table.root + "/" + table.path)[kept & ~layout.inside].tolist()),
        plan={
            "stops": len(stops),
            "empty_cells": len(empty[0]),
            "incomplete_spots": len(incomplete),
            "route_m": round(float(stops.leg_m.sum()), 1) if len(stops) else 0.0,
        },
        dedup_applied=dedup_applied,
        written=[],
    )
    report.warnings = _placement_warnings(photos, layout, region)
    stamp = dataset.stamp(COVERAGE, options, digest)
    _write(dataset, region, grid, counts, table, stops, report, stamp, options, draw)
    return report


def _placement_warnings(photos: pd.DataFrame, layout: Layout, region: Region) -> list[str]:
    """Say when no photo lies in the region, and whether swapped coordinates explain it."""
    if not len(photos) or layout.inside.any():
        return []
    lat, lon = photos.latitude.to_numpy(float), photos.longitude.to_numpy(float)
    message = f"none of the {len(photos)} photos lies inside the region {region.name!r}"
    if region.contains(lon, lat).any():
        return [f"{message}; with latitude and longitude swapped they would: check the writer"]
    return [
        f"{message}: is --region right? (photos centre near {np.median(lat):.5f}, "
        f"{np.median(lon):.5f})"
    ]


def _region_figures(region: Region) -> dict[str, Any]:
    return {
        "name": region.name,
        "source": region.source,
        "area_m2": round(region.area_m2, 1),
        "centre": [region.projection.lat0, region.projection.lon0],
        "projection": "azimuthal equidistant (sphere R = 6,371,008.8 m) at the region centre",
    }


def _grid_figures(
    grid: Grid, counts: npt.NDArray[np.int64], options: CoverageOptions
) -> dict[str, Any]:
    region_counts = counts[grid.in_region]
    covered = region_counts >= options.min_per_cell
    per_cell = region_counts if len(region_counts) else np.zeros(1, np.int64)
    return {
        "cell_m": options.cell_m,
        "min_per_cell": options.min_per_cell,
        "cells": int(grid.in_region.sum()),
        "covered_cells": int(covered.sum()),
        "covered_pct": round(100.0 * float(covered.mean()) if len(covered) else 0.0, 2),
        "photos_per_cell": {
            "min": int(per_cell.min()),
            "median": float(np.median(per_cell)),
            "max": int(per_cell.max()),
        },
    }


def _spot_figures(
    spot_ids: npt.NDArray[np.int64],
    used: npt.NDArray[np.bool_],
    sectors_by_spot: dict[int, set[int]],
    options: CoverageOptions,
) -> dict[str, Any]:
    complete = [s for s, secs in sectors_by_spot.items() if len(secs) == 8]
    incomplete = missing_sectors(sectors_by_spot)
    ids, counts = np.unique(spot_ids[used], return_counts=True)
    photos_in = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    per_spot = [photos_in.get(s, 0) for s in sectors_by_spot]
    return {
        "spot_radius_m": options.spot_radius_m,
        "spots": len(sectors_by_spot),
        "complete": len(complete),
        "complete_pct": round(100.0 * len(complete) / len(sectors_by_spot), 2)
        if sectors_by_spot
        else 0.0,
        "photos_per_spot_median": float(np.median(per_spot)) if sectors_by_spot else 0.0,
        "missing_by_sector": {
            name: sum(1 for m in incomplete.values() if i in m) for i, name in enumerate(SECTORS)
        },
    }


# --- outputs ------------------------------------------------------------------------------


def _ring(region: Region, grid: Grid, c: int, r: int) -> list[list[float]]:
    """A cell's outline as GeoJSON (lon, lat) pairs."""
    xs = grid.x0 + np.array([c, c + 1, c + 1, c, c]) * grid.cell_m
    ys = grid.y0 + np.array([r, r, r + 1, r + 1, r]) * grid.cell_m
    lat, lon = region.projection.inverse(xs, ys)
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


def gaps_geojson(
    region: Region,
    grid: Grid,
    counts: npt.NDArray[np.int64],
    stops: pd.DataFrame,
    options: CoverageOptions,
) -> dict[str, Any]:
    """Empty cells as squares and incomplete spots as points."""
    features: list[dict[str, Any]] = []
    cols, rows = np.nonzero(grid.in_region & (counts < options.min_per_cell))
    for c, r in zip(cols, rows, strict=True):
        properties = {
            "gap": "empty_cell",
            "cell": f"{c},{r}",
            "photos": int(counts[c, r]),
            "needed": options.min_per_cell,
        }
        geometry: dict[str, Any] = {
            "type": "Polygon",
            "coordinates": [_ring(region, grid, int(c), int(r))],
        }
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    stop: Any
    for stop in stops[stops.kind == "spot"].itertuples():
        properties = {"gap": "missing_headings", "spot_id": int(stop.ref), "todo": stop.todo}
        point = [round(float(stop.longitude), 7), round(float(stop.latitude), 7)]
        geometry = {"type": "Point", "coordinates": point}
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    return {"type": "FeatureCollection", "features": features}


def plan_table(stops: pd.DataFrame) -> pd.DataFrame:
    """plan.csv's rows: the stops in walking order."""
    plan = stops[["order", "kind", "ref", "latitude", "longitude", "leg_m", "todo"]].copy()
    plan["latitude"] = plan.latitude.round(7)
    plan["longitude"] = plan.longitude.round(7)
    return plan


def plan_geojson(plan: pd.DataFrame, route_m: float) -> dict[str, Any]:
    """The stops as points, and the route through them as a line."""
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {
                "order": int(s["order"]),
                "kind": s["kind"],
                "ref": s["ref"],
                "todo": s["todo"],
            },
            "geometry": {
                "type": "Point",
                "coordinates": [float(s["longitude"]), float(s["latitude"])],
            },
        }
        for s in plan.to_dict("records")
    ]
    if len(plan) > 1:
        line = [[float(a), float(b)] for a, b in zip(plan.longitude, plan.latitude, strict=True)]
        features.append(
            {
                "type": "Feature",
                "properties": {"route_m": route_m},
                "geometry": {"type": "LineString", "coordinates": line},
            }
        )
    return {"type": "FeatureCollection", "features": features}


#: Characters XML 1.0 cannot hold at all, even escaped (controls other than tab, LF, CR;
#: lone surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(text: Any) -> str:
    """Text fit for an XML element: escaped, and without what XML cannot hold (a region's
    name comes from a user's GeoJSON)."""
    from xml.sax.saxutils import escape

    return escape(_NOT_XML.sub("\ufffd", str(text)), {"\r": "&#13;"})  # parsers drop a bare CR


def plan_gpx(plan: pd.DataFrame, name: str) -> str:
    """The plan as GPX 1.1, what phone map apps import (OsmAnd, Organic Maps): a waypoint per
    stop in walking order, named by its order and what to do there, and the walk as a route."""
    points = [
        (
            f'  <wpt lat="{s["latitude"]:.7f}" lon="{s["longitude"]:.7f}">'
            f"<name>{int(s['order'])}: {_escape(s['todo'])}</name>"
            f"<desc>{_escape(s['kind'])} {_escape(s['ref'])}</desc><type>{_escape(s['kind'])}</type></wpt>"
        )
        for s in plan.to_dict("records")
    ]
    route = [
        f'    <rtept lat="{s["latitude"]:.7f}" lon="{s["longitude"]:.7f}"><name>{int(s["order"])}</name></rtept>'
        for s in plan.to_dict("records")
    ]
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<gpx version="1.1" creator="gpskit" xmlns="http://www.topografix.com/GPX/1/1">',
            f"  <metadata><name>{_escape(name)}: where to photograph next</name></metadata>",
            *points,
            f"  <rte><name>{_escape(name)}: walking plan</name>",
            *route,
            "  </rte>",
            "</gpx>",
            "",
        ]
    )


def plan_kml(plan: pd.DataFrame, name: str) -> str:
    """The plan as KML 2.2 (Google My Maps, Organic Maps): a placemark per stop and the walk."""
    marks = [
        f"    <Placemark><name>{int(s['order'])}: {_escape(s['todo'])}</name>"
        f"<description>{_escape(s['kind'])} {_escape(s['ref'])}</description>"
        f"<Point><coordinates>{s['longitude']:.7f},{s['latitude']:.7f}</coordinates></Point></Placemark>"
        for s in plan.to_dict("records")
    ]
    line = " ".join(f"{a:.7f},{b:.7f}" for a, b in zip(plan.longitude, plan.latitude, strict=True))
    walk = (
        [
            f"    <Placemark><name>walking plan</name><LineString><coordinates>{line}</coordinates></LineString></Placemark>"
        ]
        if len(plan) > 1
        else []
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<kml xmlns="http://www.opengis.net/kml/2.2">',
            f"  <Document><name>{_escape(name)}: where to photograph next</name>",
            *marks,
            *walk,
            "  </Document>",
            "</kml>",
            "",
        ]
    )


def _write(
    dataset: Dataset,
    region: Region,
    grid: Grid,
    counts: npt.NDArray[np.int64],
    table: pd.DataFrame,
    stops: pd.DataFrame,
    report: CoverageReport,
    stamp: dict[str, str],
    options: CoverageOptions,
    draw: bool,
) -> None:
    out = dataset.coverage_dir
    write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        dataset.coverage_path,
        load_schema("coverage"),
        extra_metadata=stamp,
    )
    report.written.append(str(dataset.coverage_path))
    gaps = gaps_geojson(region, grid, counts, stops, options)
    write_text(out / "gaps.geojson", json.dumps(gaps, indent=1))
    plan = plan_table(stops)
    write_text(out / "plan.csv", plan.to_csv(index=False))
    route = plan_geojson(plan, report.plan["route_m"])
    write_text(out / "plan.geojson", json.dumps(route, indent=1))
    write_text(out / "plan.gpx", plan_gpx(plan, region.name))
    write_text(out / "plan.kml", plan_kml(plan, region.name))
    report.written += [
        str(out / name)
        for name in ("gaps.geojson", "plan.csv", "plan.geojson", "plan.gpx", "plan.kml")
    ]
    if draw:
        from gpskit.plots import coverage_map

        coverage_map(
            region, grid, counts, table, stops, report, out / "coverage.png", options.min_per_cell
        )
        report.written.append(str(out / "coverage.png"))
        from gpskit.webmap import map_html, photo_points

        page = map_html(region, photo_points(table), gaps, route, int(table.keep.sum()))
        write_text(out / "map.html", page)
        report.written.append(str(out / "map.html"))
    write_text(
        out / "coverage.json", json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str)
    )
    report.written.append(str(out / "coverage.json"))
