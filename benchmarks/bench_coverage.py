"""Coverage throughput: 1M points against the region and the grid, spots, a full run.

    python benchmarks/bench_coverage.py [--points 1000000]

Prints seconds for: containment in the region polygon (shapely 2, vectorised), projection
plus grid cell counting, spot clustering (grid-hashed single linkage), and a whole
``gpskit coverage`` run (outputs and map included) on a 100k-photo manifest.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gpskit.coverage import CoverageOptions, coverage
from gpskit.coverage.cells import make_grid
from gpskit.coverage.spots import cluster_spots
from gpskit.regions import load_region

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import write_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--full-run", type=int, default=100_000, help="photos in the full run")
    args = parser.parse_args()
    region = load_region("penn_campus")
    rng = np.random.default_rng(0)
    minx, miny, maxx, maxy = region.geometry.bounds
    lon = rng.uniform(minx - 0.0005, maxx + 0.0005, args.points)
    lat = rng.uniform(miny - 0.0005, maxy + 0.0005, args.points)

    t = time.perf_counter()
    inside = region.contains(lat, lon)
    t_contains = time.perf_counter() - t
    t = time.perf_counter()
    x, y = region.project(lat, lon)
    grid = make_grid(region, 20.0)
    col, row = grid.index(x, y)
    counts = np.zeros((grid.columns, grid.rows), np.int64)
    np.add.at(counts, (col[inside], row[inside]), 1)
    t_grid = time.perf_counter() - t
    # spots of 8 photos each, 10 m apart on a jittered lattice (a survey at scale)
    n_spots = args.points // 8
    side = int(np.ceil(np.sqrt(n_spots)))
    gx, gy = np.divmod(np.arange(n_spots), side)
    sx = np.repeat(gx * 10.0 + rng.uniform(-2, 2, n_spots), 8) + rng.normal(0, 0.5, n_spots * 8)
    sy = np.repeat(gy * 10.0 + rng.uniform(-2, 2, n_spots), 8) + rng.normal(0, 0.5, n_spots * 8)
    t = time.perf_counter()
    labels = cluster_spots(sx, sy, 3.0)
    t_spots = time.perf_counter() - t
    print(f"{args.points:,} points: {inside.mean() * 100:.0f} % inside")
    print(
        f"  region containment          {t_contains:6.2f} s  ({args.points / t_contains / 1e6:.1f} M points/s)"
    )
    print(f"  projection + grid counts    {t_grid:6.2f} s")
    print(
        f"  spot clustering (3 m)       {t_spots:6.2f} s  ({len(np.unique(labels)):,} spots found, "
        f"{n_spots:,} laid out 10 m apart)"
    )
    print(f"  total region + grid         {t_contains + t_grid:6.2f} s (target < 10 s)")

    with tempfile.TemporaryDirectory() as tmp:
        n = args.full_run
        spots = n // 8
        sx = rng.uniform(minx, maxx, spots)
        sy = rng.uniform(miny, maxy, spots)
        rows = [
            {
                "latitude": float(sy[i // 8] + rng.normal(0, 3e-6)),
                "longitude": float(sx[i // 8] + rng.normal(0, 3e-6)),
                "img_direction": float((i % 8) * 45 + rng.uniform(-5, 5)),
            }
            for i in range(n)
        ]
        dataset = Path(tmp) / "ds"
        write_manifest(dataset, rows)
        t = time.perf_counter()
        report = coverage(dataset, CoverageOptions())
        print(
            f"full `gpskit coverage` on {n:,} photos: {time.perf_counter() - t:.2f} s "
            f"({report.spots['spots']:,} spots, {report.plan['stops']} plan stops)"
        )


if __name__ == "__main__":
    main()
