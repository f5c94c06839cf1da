"""The region's grid: square cells laid over its bounding box, and which belong to it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from gpskit.errors import UsageError
from gpskit.regions import Region


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
