"""Embedding throughput of ``gpskit split --embed`` on phone-sized JPEGs.

Generates N 4032x3024 JPEGs with phone EXIF (cached, shared with bench_ingest), and
them, then times the embedding step (draft decode + orient + resize + JPEG encode) that
``split --embed`` runs per photo, with 1 worker and all cores.

    python benchmarks/bench_split.py [--count 120] [--max-side 384]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from gpskit.pool import run_isolated
from gpskit.split.write import embed_from_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import make_photos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--max-side", type=int, default=384)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gpskit-bench")
    args = parser.parse_args()
    folder = args.cache / f"phone-{args.count}"
    make_photos(folder, args.count)
    paths = [(str(p), args.max_side) for p in sorted(folder.glob("*.jpg"))]
    print(f"{len(paths)} JPEGs 4032x3024 -> longest side {args.max_side}")
    for workers in sorted({1, args.workers}):
        start = time.perf_counter()
        failures = sum(
            o.failure is not None for o in run_isolated(embed_from_path, paths, workers=workers)
        )
        elapsed = time.perf_counter() - start
        rate = len(paths) / elapsed
        print(
            f"  embed, {workers} worker(s): {rate:6.1f} photos/s ({rate / workers:.1f} per core), "
            f"{failures} failures"
        )


if __name__ == "__main__":
    main()
