"""Ingest throughput on phone-sized photos, beside ExifTool when it is installed.

Generates N 4032x3024 JPEGs with phone EXIF (cached between runs), then times:
- full ingest (sha256 + draft decode + perceptual and pixel hashes), 1 worker and all cores;
- ``--no-decode`` (metadata only);
- ``exiftool -n -json -GPSLatitude -GPSLongitude`` over the same folder, if on PATH
  (Debian: ``apt-get install libimage-exiftool-perl``).

    python benchmarks/bench_ingest.py [--count 120] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.samples import phone_exif, textured_image


def make_photos(folder: Path, count: int) -> None:
    existing = len(list(folder.glob("*.jpg"))) if folder.exists() else 0
    if existing >= count:
        return
    rng = random.Random(0)
    base = [textured_image(4032, 3024, seed=s) for s in range(4)]
    for i in range(count):
        save_photo(base[i % 4], folder / f"IMG_{i:05d}.jpg", phone_exif(rng, i), quality=88)


def timed_ingest(folder: Path, options: IngestOptions) -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        report = ingest([folder], Path(out), options)
        elapsed = time.perf_counter() - start
    assert report.files > 0
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120)
    parser.add_argument("--meta-count", type=int, default=3000, help="files for --no-decode")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gpskit-bench")
    args = parser.parse_args()

    folder = args.cache / f"phone-{args.count}"
    t0 = time.perf_counter()
    make_photos(folder, args.count)
    size_mb = sum(p.stat().st_size for p in folder.glob("*.jpg")) / 1e6
    print(
        f"{args.count} JPEGs 4032x3024 ({size_mb / args.count:.1f} MB each) ready in "
        f"{time.perf_counter() - t0:.1f} s under {folder}"
    )

    rows = []
    for workers in sorted({1, args.workers}):
        elapsed = timed_ingest(folder, IngestOptions(workers=workers, force=True))
        rate = args.count / elapsed
        rows.append((f"full ingest, {workers} worker(s)", rate, rate / workers))
    # metadata-only reads are fast: measure them on many files (hard links to the same photos)
    many = args.cache / f"links-{args.meta_count}"
    if not many.exists():
        many.mkdir(parents=True)
        sources = sorted(folder.glob("*.jpg"))
        for i in range(args.meta_count):
            os.link(sources[i % len(sources)], many / f"IMG_{i:05d}.jpg")
    elapsed = timed_ingest(many, IngestOptions(workers=args.workers, decode=False, force=True))
    no_decode = args.meta_count / elapsed
    rows.append((f"--no-decode, {args.workers} worker(s)", no_decode, no_decode / args.workers))
    exiftool = shutil.which("exiftool")
    exif_rate = None
    if exiftool:
        for flags, label in (([], ""), (["-fast"], " -fast")):
            start = time.perf_counter()
            subprocess.run(
                [exiftool, "-n", "-json", *flags, "-GPSLatitude", "-GPSLongitude", "-r", str(many)],
                check=True,
                capture_output=True,
            )
            rate = args.meta_count / (time.perf_counter() - start)
            exif_rate = exif_rate or rate
            rows.append((f"exiftool -n -json{label} GPS (1 process)", rate, rate))
    print(f"{'what':42} {'files/s':>10} {'per core':>10}")
    for name, rate, per_core in rows:
        print(f"{name:42} {rate:10.1f} {per_core:10.1f}")
    if exif_rate:
        print(f"--no-decode / exiftool: {no_decode / exif_rate:.1f}x")
    else:
        print("exiftool not installed: apt-get install libimage-exiftool-perl to compare")


if __name__ == "__main__":
    main()
