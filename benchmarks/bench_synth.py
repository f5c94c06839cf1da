"""Rendering speed of the synthetic campus: views per second, and a small full run.

python benchmarks/bench_synth.py [--views 40] [--spots 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from gpskit.regions import load_region
from gpskit.synth import SynthOptions, build_world, light_at, render, synth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=40)
    parser.add_argument("--spots", type=int, default=20)
    args = parser.parse_args()
    region = load_region("penn_campus")
    start = time.perf_counter()
    world = build_world(region, 280, seed=0)
    print(
        f"world: {len(world.boxes)} buildings, {len(world.circles)} trunks/crowns/posts, "
        f"{len(world.paths)} walkway segments, built in {time.perf_counter() - start:.1f} s"
    )
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(args.views):
        x, y = world.spots[i % len(world.spots)]
        render(world, x, y, 45.0 * i, 0.0, light_at(12, rng), (640, 480), rng)
    per_view = (time.perf_counter() - start) / args.views
    print(
        f"render 640x480: {per_view * 1000:.0f} ms per view ({1 / per_view:.1f} views/s on one core)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = synth(Path(tmp), SynthOptions(spots=args.spots))
        elapsed = time.perf_counter() - start
    print(
        f"synth --spots {args.spots}: {report.files} files in {elapsed:.1f} s "
        f"({report.photos / elapsed:.1f} photos/s, all cores, world and JPEG/EXIF included)"
    )


if __name__ == "__main__":
    main()
