"""What the collect page draws, made from the same survey ``gpskit coverage`` reports
(:func:`gpskit.coverage.survey`): the region, its covered and empty cells, the spots with
the headings each still misses, and the walking plan's stops."""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from gpskit.coverage import CoverageOptions, Survey
from gpskit.geo import SECTORS
from gpskit.regions import Region


def _bounds(region: Region, survey: Survey, cols: Any, rows: Any) -> list[list[float]]:
    """Each cell's south-west and north-east corners (lat, lon), as the map draws them."""
    grid = survey.grid
    x0 = grid.x0 + np.asarray(cols, float) * grid.cell_m
    y0 = grid.y0 + np.asarray(rows, float) * grid.cell_m
    south, west = region.projection.inverse(x0, y0)
    north, east = region.projection.inverse(x0 + grid.cell_m, y0 + grid.cell_m)
    corners = np.column_stack([south, west, north, east]).round(7)
    return [[float(v) for v in row] for row in corners]


def page_state(region: Region, survey: Survey, options: CoverageOptions) -> dict[str, Any]:
    """The map's layers and the figures above it, as JSON."""
    grid = survey.grid
    covered = grid.in_region & (survey.counts >= options.min_per_cell)
    empty_cols, empty_rows = survey.empty
    inside = survey.kept & survey.layout.inside
    medians = survey.layout.medians
    place = dict(
        zip(
            medians.spot_id.astype(int),
            zip(medians.lat.to_numpy(float), medians.lon.to_numpy(float), strict=True),
            strict=True,
        )
    )
    spots = [
        {
            "id": int(spot_id),
            "lat": round(place[spot_id][0], 7),
            "lon": round(place[spot_id][1], 7),
            "have": sorted(int(s) for s in sectors),
            "missing": [int(s) for s in survey.incomplete.get(int(spot_id), [])],
        }
        for spot_id, sectors in sorted(survey.sectors_by_spot.items())
        if spot_id in place
    ]
    plan = survey.stops
    stops = [
        {"lat": round(lat, 7), "lon": round(lon, 7), "kind": str(kind), "todo": str(todo)}
        for lat, lon, kind, todo in zip(
            plan.latitude.to_numpy(float).tolist(),
            plan.longitude.to_numpy(float).tolist(),
            plan.kind.tolist(),
            plan.todo.tolist(),
            strict=True,
        )
    ]
    cells = int(grid.in_region.sum())
    return {
        "region": shapely.geometry.mapping(region.geometry),
        "sectors": list(SECTORS),
        "cell_m": options.cell_m,
        "cells": {
            "covered": _bounds(region, survey, *np.nonzero(covered)),
            "empty": _bounds(region, survey, empty_cols, empty_rows),
        },
        "spots": spots,
        "stops": stops,
        "figures": {
            "cells": cells,
            "covered_cells": int(covered.sum()),
            "covered_pct": round(100.0 * int(covered.sum()) / cells, 1) if cells else 0.0,
            "photos_inside": int(inside.sum()),
            "spots": len(spots),
            "complete_spots": sum(1 for s in spots if not s["missing"]),
        },
    }
