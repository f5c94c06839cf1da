"""The figures of a coverage run (coverage.json and the printed summary)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.coverage.cells import Grid
from gpskit.coverage.options import CoverageOptions
from gpskit.coverage.spots import Layout, missing_sectors
from gpskit.geo import SECTORS
from gpskit.regions import Region


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
    generation: str = ""  # the run's id, in coverage.json and coverage.parquet's stamp

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def placement_warnings(photos: pd.DataFrame, layout: Layout, region: Region) -> list[str]:
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


def region_figures(region: Region) -> dict[str, Any]:
    return {
        "name": region.name,
        "source": region.source,
        "area_m2": round(region.area_m2, 1),
        "centre": [region.projection.lat0, region.projection.lon0],
        "projection": "azimuthal equidistant (sphere R = 6,371,008.8 m) at the region centre",
    }


def grid_figures(
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


def spot_figures(
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
