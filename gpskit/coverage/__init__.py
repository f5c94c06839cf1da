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

import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.coverage.cells import Grid, make_grid
from gpskit.coverage.export import write_outputs
from gpskit.coverage.options import CoverageOptions
from gpskit.coverage.report import (
    CoverageReport,
    grid_figures,
    placement_warnings,
    region_figures,
    spot_figures,
)
from gpskit.coverage.route import plan_stops
from gpskit.coverage.spots import (
    Layout,
    cell_counts,
    lay_out,
    missing_sectors,
    photo_table,
    spot_sectors,
)
from gpskit.dataset import COVERAGE, DUPLICATES, Dataset
from gpskit.errors import GpskitError
from gpskit.regions import Region, load_region

__all__ = ["CoverageOptions", "CoverageReport", "Survey", "coverage", "survey"]

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


@dataclass
class Survey:
    """Where a dataset's photos stand against a region: what the report, the outputs and
    the collect page's live map are drawn from (computed once, here)."""

    photos: pd.DataFrame
    dedup_applied: bool
    digest: str
    grid: Grid
    layout: Layout
    table: pd.DataFrame
    kept: npt.NDArray[np.bool_]
    counts: npt.NDArray[np.int64]
    sectors_by_spot: dict[int, set[int]]
    incomplete: dict[int, list[int]]
    empty: tuple[npt.NDArray[np.intp], ...]
    stops: pd.DataFrame


def survey(dataset: Dataset, region: Region, options: CoverageOptions) -> Survey:
    """The photos laid out on the region's grid and spots, and the walking plan."""
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
    return Survey(
        photos, dedup_applied, digest, grid, layout, table, kept, counts,
        sectors_by_spot, incomplete, empty, stops,
    )  # fmt: skip


def _coverage(
    dataset: Dataset, region: Region, options: CoverageOptions, draw: bool
) -> CoverageReport:
    found = survey(dataset, region, options)
    photos, layout, table, kept = found.photos, found.layout, found.table, found.kept
    grid, counts, stops = found.grid, found.counts, found.stops
    report = CoverageReport(
        dataset_dir=str(dataset.root),
        region=region_figures(region),
        photos={
            "accepted_with_position": len(photos),
            "kept": int(kept.sum()),
            "inside": int((kept & layout.inside).sum()),
            "outside": int((kept & ~layout.inside).sum()),
        },
        grid=grid_figures(grid, counts, options),
        spots=spot_figures(
            table.spot_id.to_numpy(), kept & layout.inside, found.sectors_by_spot, options
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
            "empty_cells": len(found.empty[0]),
            "incomplete_spots": len(found.incomplete),
            "route_m": round(float(stops.leg_m.sum()), 1) if len(stops) else 0.0,
        },
        dedup_applied=found.dedup_applied,
        written=[],
    )
    report.warnings = placement_warnings(photos, layout, region)
    report.generation = uuid.uuid4().hex
    stamp = dataset.stamp(COVERAGE, options, found.digest, report.generation)
    write_outputs(dataset, region, grid, counts, table, stops, report, stamp, options, draw)
    return report
