"""Ingest speed beside ExifTool, the whole command timed (start-up included), median of runs.

Generates (and caches) photos with phone EXIF, then times, hyperfine-style (several runs,
the median; ``hyperfine`` itself is used when it is installed):

1. full ingest of many small photos (640x480: the size of most photos in curated
   collections and of ``gpskit synth``) beside ``exiftool -n -json -GPSLatitude
   -GPSLongitude -r`` (ExifTool reading GPS only: the cheapest thing that can be asked);
2. ``gpskit ingest --no-decode`` on 12 MP phone photos beside the same ExifTool command;
3. per file, in one process: full reading (``gpskit.reader.read_file``) beside the floor
   no ingest can beat, reading the file and draft-decoding it (libjpeg's DCT scaling).

    python benchmarks/bench_ingest.py [--small 3827] [--big 90] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
GPSKIT = [sys.executable, "-m", "gpskit"]


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> Path:
    from gpskit.exifwrite import save_photo
    from gpskit.synth.samples import phone_exif, textured_image

    if folder.exists() and len(list(folder.glob("*.jpg"))) >= count:
        return folder
    rng = random.Random(0)
    base = [textured_image(*size, seed=s) for s in range(8)]
    for i in range(count):
        save_photo(base[i % len(base)], folder / f"IMG_{i:05d}.jpg", phone_exif(rng, i), quality=88)
    return folder


def median_seconds(command: list[str], runs: int, prepare: str | None = None) -> float:
    """The median wall time of ``command`` (hyperfine's when it is installed)."""
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            extra = ["--prepare", prepare] if prepare else []
            subprocess.run(
                ["hyperfine", "--runs", str(runs), "--warmup", "1", *extra,
                 "--export-json", out.name, " ".join(command)],
                check=True, capture_output=True,
            )  # fmt: skip
            import json

            return float(json.loads(Path(out.name).read_text())["results"][0]["median"])
    times = []
    for _ in range(runs):
        if prepare:
            subprocess.run(prepare, shell=True, check=True)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_file(folder: Path, count: int) -> tuple[float, float]:
    """(full read, draft-decode floor) milliseconds per file, one process, best of 3."""
    sys.path.insert(0, str(ROOT))
    from gpskit.imaging import HASH_DECODE_SIDE
    from gpskit.reader import _init_worker, read_file

    _init_worker(256_000_000)
    files = sorted(folder.glob("*.jpg"))[:count]
    full = floor = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for f in files:
            read_file(str(f), True, 256_000_000)
        full = min(full, (time.perf_counter() - start) / len(files) * 1000)
        start = time.perf_counter()
        for f in files:
            with Image.open(io.BytesIO(f.read_bytes())) as img:
                img.draft("L", (HASH_DECODE_SIDE, HASH_DECODE_SIDE))
                img.load()
        floor = min(floor, (time.perf_counter() - start) / len(files) * 1000)
    return full, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=3827)
    parser.add_argument("--big", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "gpskit-bench")
    args = parser.parse_args()
    small = make_photos(args.cache / f"small-{args.small}", args.small, (640, 480))
    big = make_photos(args.cache / f"big-{args.big}", args.big, (4032, 3024))
    out = args.cache / "dataset"
    exiftool = shutil.which("exiftool")
    rows = []
    for label, folder, flags, runs in (
        (f"{args.small} small photos, full ingest", small, [], min(args.runs, 3)),
        (f"{args.big} 12 MP photos, --no-decode", big, ["--no-decode"], args.runs),
    ):
        ours = median_seconds(
            [*GPSKIT, "ingest", str(folder), "--out", str(out), "--json", *flags], runs,
            prepare=f"rm -rf {out}",
        )  # fmt: skip
        theirs = None
        if exiftool:
            command = [exiftool, "-n", "-json", "-GPSLatitude", "-GPSLongitude", "-r", str(folder)]
            theirs = median_seconds(command, runs)
        rows.append((label, ours, theirs))
    print(f"{'what':40} {'gpskit s':>9} {'exiftool s':>10} {'speed-up':>9}")
    for label, ours, theirs in rows:
        ratio = f"{theirs / ours:8.2f}x" if theirs else "        -"
        print(f"{label:40} {ours:9.2f} {theirs or float('nan'):10.2f} {ratio}")
    if not exiftool:
        print("exiftool not installed: apt-get install libimage-exiftool-perl to compare")
    for label, folder, count in (("small", small, 300), ("12 MP", big, 40)):
        full, floor = per_file(folder, count)
        print(
            f"per {label} file, one process: full read {full:.1f} ms, draft-decode floor "
            f"{floor:.1f} ms ({floor / full:.0%} of the floor's speed)"
        )


if __name__ == "__main__":
    main()
