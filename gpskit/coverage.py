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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely

from gpskit.atomic import write_text
from gpskit.config import MANIFEST_FILE
from gpskit.dedup import duplicates_are_current, load_duplicates
from gpskit.errors import MissingStepError, UsageError
from gpskit.graph import connected_components, pairs_within
from gpskit.ingest import load_manifest, made_from_current_manifest, manifest_stamp
from gpskit.regions import DEFAULT_REGION, Region, load_region
from gpskit.schema import load_schema, read_table, write_table

COVERAGE_FILE = "coverage.parquet"
COVERAGE_DIR = "coverage"
SECTORS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


@dataclass(frozen=True)
class CoverageOptions:
    """Grid, spot and heading settings (see the module docstring)."""

    region: str = DEFAULT_REGION
    cell_m: float = 20.0
    min_per_cell: int = 1
    spot_radius_m: float = 3.0
    declination: float | None = None

    def validate(self) -> None:
        if self.cell_m <= 0:
            raise UsageError(f"--cell must be positive, got {self.cell_m}")
        if self.min_per_cell < 1:
            raise UsageError(f"--min-per-cell must be at least 1, got {self.min_per_cell}")
        if self.spot_radius_m <= 0:
            raise UsageError(f"--spot-radius must be positive, got {self.spot_radius_m}")
        if self.declination is not None and not -90 <= self.declination <= 90:
            raise UsageError(f"--declination must be within ±90 degrees, got {self.declination}")


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


def make_grid(region: Region, cell_m: float) -> Grid:
    """Cells over the region's bounding box; those at least half inside belong to it."""
    minx, miny, maxx, maxy = region.metric.bounds
    columns = max(1, int(np.ceil((maxx - minx) / cell_m)))
    rows = max(1, int(np.ceil((maxy - miny) / cell_m)))
    if columns * rows > 4_000_000:
        raise UsageError(f"--cell {cell_m:g} m gives {columns * rows:,} cells; use larger cells")
    col, row = np.meshgrid(np.arange(columns), np.arange(rows), indexing="ij")
    boxes = shapely.box(
        minx + col * cell_m,
        miny + row * cell_m,
        minx + (col + 1) * cell_m,
        miny + (row + 1) * cell_m,
    )
    overlap = shapely.area(shapely.intersection(boxes, region.metric)) / cell_m**2
    in_region = overlap >= 0.5
    if not in_region.any():  # a region smaller than one cell: keep the cells it touches
        in_region = overlap > 0
    return Grid(minx, miny, cell_m, columns, rows, in_region)


def heading_sector(heading: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Sector index 0..7 (N, NE, ...), -1 where the heading is unknown."""
    sector = np.full(heading.shape, -1, np.int64)
    known = np.isfinite(heading)
    sector[known] = (((heading[known] + 22.5) % 360.0) // 45.0).astype(np.int64)
    return sector


def cluster_spots(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], radius: float
) -> npt.NDArray[np.int64]:
    """Spot label per point (single linkage within ``radius``), unnumbered."""
    a, b = pairs_within(x, y, radius)
    return connected_components(len(x), a, b)


# --- routes -----------------------------------------------------------------------------


def walking_order(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], start: tuple[float, float]
) -> npt.NDArray[np.int64]:
    """Visit order of points: nearest neighbour from ``start``, improved by 2-opt."""
    n = len(x)
    if n == 0:
        return np.empty(0, np.int64)
    points = np.column_stack([x, y])
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_coverage(dataset_dir: Path) -> pa.Table:
    return read_table(
        dataset_dir / COVERAGE_FILE,
        load_schema("coverage"),
        step_hint=f"run `gpskit coverage {dataset_dir}` first",
    )


def coverage_is_current(dataset_dir: Path) -> bool:
    """True when coverage.parquet exists and was made from the current manifest."""
    return made_from_current_manifest(dataset_dir / COVERAGE_FILE, "gpskit.coverage", dataset_dir)


def _photos(dataset_dir: Path) -> tuple[pd.DataFrame, bool]:
    if not (dataset_dir / MANIFEST_FILE).exists():
        raise MissingStepError(
            f"{dataset_dir / MANIFEST_FILE} does not exist",
            hint=f"run `gpskit ingest PHOTOS --out {dataset_dir}` first",
        )
    manifest = load_manifest(dataset_dir).to_pandas()
    photos = manifest[
        (manifest.status == "accepted") & manifest.latitude.notna() & manifest.longitude.notna()
    ]
    photos = photos.reset_index(drop=True)
    dedup_applied = duplicates_are_current(dataset_dir)
    if dedup_applied:
        keep = load_duplicates(dataset_dir).to_pandas()[["root", "path", "keep"]]
        photos = photos.merge(keep, on=["root", "path"], how="left")
        photos["keep"] = photos["keep"].fillna(True).astype(bool)
    else:
        photos["keep"] = True
    return photos, dedup_applied


def coverage(
    dataset_dir: Path, options: CoverageOptions | None = None, *, draw: bool = True
) -> CoverageReport:
    """Compute coverage, write coverage.parquet and the coverage/ folder."""
    options = options or CoverageOptions()
    options.validate()
    region = load_region(options.region)
    photos, dedup_applied = _photos(dataset_dir)
    lat, lon = photos.latitude.to_numpy(float), photos.longitude.to_numpy(float)
    x, y = region.project(lat, lon)
    inside = region.contains(lat, lon)
    grid = make_grid(region, options.cell_m)
    col, row = grid.index(x, y)
    in_cell = inside & grid.in_region[col, row]

    # headings, corrected to true north where possible
    heading = photos.img_direction.to_numpy(float, na_value=np.nan)
    magnetic = (photos.img_direction_ref == "M").to_numpy(bool) & np.isfinite(heading)
    if options.declination is not None:
        heading = np.where(magnetic, (heading + options.declination) % 360.0, heading)
    sector = heading_sector(heading)

    # spots, numbered north to south, then west to east
    labels = cluster_spots(x, y, options.spot_radius_m)
    frame = pd.DataFrame({"label": labels, "lat": lat, "lon": lon})
    medians = frame.groupby("label").agg(
        lat=("lat", "median"), lon=("lon", "median"), n=("lat", "size")
    )
    medians = medians.sort_values(["lat", "lon"], ascending=[False, True])
    medians["spot_id"] = np.arange(1, len(medians) + 1)
    spot = medians.loc[labels]
    kept = photos.keep.to_numpy(bool)

    table = pd.DataFrame(
        {
            "root": photos.root,
            "path": photos.path,
            "latitude": lat,
            "longitude": lon,
            "x_m": x,
            "y_m": y,
            "inside_region": inside,
            "outside_region": ~inside,
            "keep": kept,
            "cell": [
                f"{c},{r}" if ok else None for c, r, ok in zip(col, row, in_cell, strict=True)
            ],
            "spot_id": spot.spot_id.to_numpy(np.int64),
            "spot_latitude": spot.lat.to_numpy(float),
            "spot_longitude": spot.lon.to_numpy(float),
            "spot_size": spot.n.to_numpy(np.int32),
            "heading_true": np.where(np.isfinite(heading), heading, np.nan),
            "heading_sector": [SECTORS[s] if s >= 0 else None for s in sector],
            "heading_magnetic": magnetic,
        }
    )
    table["heading_true"] = table.heading_true.astype("Float64").where(np.isfinite(heading))

    # grid figures: kept photos inside the region
    counted = kept & in_cell
    counts = np.zeros((grid.columns, grid.rows), np.int64)
    np.add.at(counts, (col[counted], row[counted]), 1)
    region_counts = counts[grid.in_region]
    covered = region_counts >= options.min_per_cell
    empty_cols, empty_rows = np.nonzero(grid.in_region & (counts < options.min_per_cell))

    # spot figures: kept photos inside the region
    spot_ids = table.spot_id.to_numpy()
    in_spots = kept & inside
    sectors_by_spot: dict[int, set[int]] = {}
    for sid, sec in zip(spot_ids[in_spots], sector[in_spots], strict=True):
        sectors_by_spot.setdefault(int(sid), set())
        if sec >= 0:
            sectors_by_spot[int(sid)].add(int(sec))
    complete = [s for s, secs in sectors_by_spot.items() if len(secs) == 8]
    incomplete = {
        s: sorted(set(range(8)) - secs) for s, secs in sectors_by_spot.items() if len(secs) < 8
    }
    missing_by_sector = {
        name: sum(1 for m in incomplete.values() if i in m) for i, name in enumerate(SECTORS)
    }

    # the plan: empty cells and incomplete spots, as a walking route
    gx, gy = grid.centre(empty_cols, empty_rows)
    spot_rows = (
        medians.set_index("spot_id").loc[list(incomplete)] if incomplete else medians.iloc[:0]
    )
    sx, sy = region.project(spot_rows.lat.to_numpy(float), spot_rows.lon.to_numpy(float))
    stops = pd.DataFrame(
        {
            "kind": ["cell"] * len(gx) + ["spot"] * len(sx),
            "ref": [f"{c},{r}" for c, r in zip(empty_cols, empty_rows, strict=True)]
            + [str(s) for s in spot_rows.index],
            "x": np.concatenate([gx, sx]),
            "y": np.concatenate([gy, sy]),
            "todo": [
                f"take at least {options.min_per_cell} photo(s) in this {options.cell_m:g} m cell"
            ]
            * len(gx)
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

    per_cell = region_counts if len(region_counts) else np.zeros(1, np.int64)
    report = CoverageReport(
        dataset_dir=str(dataset_dir),
        region={
            "name": region.name,
            "source": region.source,
            "area_m2": round(region.area_m2, 1),
            "centre": [region.projection.lat0, region.projection.lon0],
            "projection": "azimuthal equidistant (sphere R = 6,371,008.8 m) at the region centre",
        },
        photos={
            "accepted_with_position": len(photos),
            "kept": int(kept.sum()),
            "inside": int((kept & inside).sum()),
            "outside": int((kept & ~inside).sum()),
        },
        grid={
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
        },
        spots={
            "spot_radius_m": options.spot_radius_m,
            "spots": len(sectors_by_spot),
            "complete": len(complete),
            "complete_pct": round(100.0 * len(complete) / len(sectors_by_spot), 2)
            if sectors_by_spot
            else 0.0,
            "photos_per_spot_median": float(
                np.median([int((spot_ids[in_spots] == s).sum()) for s in sectors_by_spot])
            )
            if sectors_by_spot
            else 0.0,
            "missing_by_sector": missing_by_sector,
        },
        headings={
            "with_heading": int((kept & inside & (sector >= 0)).sum()),
            "without_heading": int((kept & inside & (sector < 0)).sum()),
            "magnetic": int((kept & magnetic).sum()),
            "declination": options.declination,
            "magnetic_corrected": options.declination is not None,
        },
        outside=sorted((table.root + "/" + table.path)[kept & ~inside].tolist()),
        plan={
            "stops": len(stops),
            "empty_cells": len(gx),
            "incomplete_spots": len(sx),
            "route_m": round(float(stops.leg_m.sum()), 1) if len(stops) else 0.0,
        },
        dedup_applied=dedup_applied,
        written=[],
    )
    _write(dataset_dir, region, grid, counts, table, stops, report, options, draw)
    return report


def _write(
    dataset_dir: Path,
    region: Region,
    grid: Grid,
    counts: np.ndarray,
    table: pd.DataFrame,
    stops: pd.DataFrame,
    report: CoverageReport,
    options: CoverageOptions,
    draw: bool,
) -> None:
    out = dataset_dir / COVERAGE_DIR
    meta = manifest_stamp("gpskit.coverage", options, dataset_dir)
    target = dataset_dir / COVERAGE_FILE
    write_table(
        pa.Table.from_pandas(table, preserve_index=False),
        target,
        load_schema("coverage"),
        extra_metadata=meta,
    )
    report.written.append(str(target))

    # gaps.geojson: empty cells as squares, incomplete spots as points
    features = []
    cols, rows = np.nonzero(grid.in_region & (counts < options.min_per_cell))
    for c, r in zip(cols, rows, strict=True):
        xs = grid.x0 + np.array([c, c + 1, c + 1, c, c]) * grid.cell_m
        ys = grid.y0 + np.array([r, r, r + 1, r + 1, r]) * grid.cell_m
        lat, lon = region.projection.inverse(xs, ys)
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "gap": "empty_cell",
                    "cell": f"{c},{r}",
                    "photos": int(counts[c, r]),
                    "needed": options.min_per_cell,
                },
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [round(float(a), 7), round(float(b), 7)]
                            for a, b in zip(lon, lat, strict=True)
                        ]
                    ],
                },
            }
        )
    stop: Any
    for stop in stops[stops.kind == "spot"].itertuples():
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "gap": "missing_headings",
                    "spot_id": int(stop.ref),
                    "todo": stop.todo,
                },
                "geometry": {
                    "type": "Point",
                    "coordinates": [
                        round(float(stop.longitude), 7),
                        round(float(stop.latitude), 7),
                    ],
                },
            }
        )
    write_text(
        out / "gaps.geojson",
        json.dumps({"type": "FeatureCollection", "features": features}, indent=1),
    )

    plan = stops[["order", "kind", "ref", "latitude", "longitude", "leg_m", "todo"]].copy()
    plan["latitude"] = plan.latitude.round(7)
    plan["longitude"] = plan.longitude.round(7)
    write_text(out / "plan.csv", plan.to_csv(index=False))
    plan_features: list[dict[str, Any]] = [
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
        plan_features.append(
            {
                "type": "Feature",
                "properties": {"route_m": report.plan["route_m"]},
                "geometry": {
                    "type": "LineString",
                    "coordinates": [
                        [float(a), float(b)]
                        for a, b in zip(plan.longitude, plan.latitude, strict=True)
                    ],
                },
            }
        )
    write_text(
        out / "plan.geojson",
        json.dumps({"type": "FeatureCollection", "features": plan_features}, indent=1),
    )
    report.written += [str(out / "gaps.geojson"), str(out / "plan.csv"), str(out / "plan.geojson")]
    if draw:
        from gpskit.plots import coverage_map

        coverage_map(
            region, grid, counts, table, stops, report, out / "coverage.png", options.min_per_cell
        )
        report.written.append(str(out / "coverage.png"))
    write_text(
        out / "coverage.json", json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str)
    )
    report.written.append(str(out / "coverage.json"))
