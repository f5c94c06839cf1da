"""Where every photo falls: spots (single-linkage clusters of fixes), cells, headings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.coverage.cells import Grid
from gpskit.coverage.options import CoverageOptions
from gpskit.geo import SECTORS, heading_sector
from gpskit.graph import connected_components, pairs_within
from gpskit.regions import Region


def cluster_spots(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], radius: float
) -> npt.NDArray[np.int64]:
    """Spot label per point (single linkage within ``radius``), unnumbered. Points at the
    same position are one point to the search: thousands of photos given one position
    (a table with one place for a batch) would otherwise be millions of pairs."""
    if not len(x):
        return np.empty(0, np.int64)
    places, inverse = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)
    a, b = pairs_within(places[:, 0], places[:, 1], radius)
    labels: npt.NDArray[np.int64] = connected_components(len(places), a, b)[inverse.ravel()]
    return labels


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
