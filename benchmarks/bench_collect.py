"""Collect: how long a phone waits for a shot's verdict (saved, EXIF written, the inbox
ingested with every check, the answer), by the size of the dataset it lands in, beside
ExifTool writing the same GPS tags into one photo.

Each shot is a 1600x1200 JPEG received by :class:`gpskit.collect.Collector` (the library
call the web layer makes); the dataset holds R earlier rows of another folder (kept, as a
campus dataset's photos are), which the ingest writes again. Medians of ``--shots``.

    python benchmarks/bench_collect.py [--rows 2400,24000,240000] [--shots 7]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import _copies, _fake_manifest, make_photos


def _jpeg(seed: int) -> bytes:
    from gpskit.synth.samples import textured_image

    buffer = io.BytesIO()
    textured_image(1600, 1200, seed).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _shot(k: int, lat: float, lon: float) -> dict[str, object]:
    now = time.time() * 1000
    return {
        "id": f"bench-shot-{k:06d}",
        "latitude": lat,
        "longitude": lon + k * 1e-5,
        "accuracy_m": 5.0,
        "heading": 45.0 * (k % 8),
        "taken_ms": now,
        "fix_ms": now - 500,
        "utc_offset_minutes": -300,
    }


def _spread(manifest: Path) -> None:
    """Earlier rows at spots of 8 photos over the region (copies of one row all stand at
    one place, which no walk makes: coverage would cluster them as one giant spot)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from gpskit.regions import load_region

    table = pq.read_table(manifest)
    west, south, east, north = load_region("penn_campus").geometry.bounds
    rng = np.random.default_rng(len(table))
    spots = -(-len(table) // 8)
    lat = np.repeat(rng.uniform(south, north, spots), 8)[: len(table)]
    lon = np.repeat(rng.uniform(west, east, spots), 8)[: len(table)]
    heading = (np.arange(len(table)) % 8) * 45.0
    for name, values in (("latitude", lat), ("longitude", lon), ("img_direction", heading)):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index), pa.array(values))
    pq.write_table(table, manifest, row_group_size=16_384)


def per_shot(dataset: Path, shots: int) -> list[float]:
    from gpskit.collect import Collector
    from gpskit.regions import load_region

    centre = load_region("penn_campus").geometry.centroid
    collector = Collector(dataset)
    collector.prepare()
    pictures = [_jpeg(k) for k in range(shots)]
    times = []
    for k, picture in enumerate(pictures):
        start = time.perf_counter()
        collector.receive(_shot(k, centre.y, centre.x), picture)
        times.append(time.perf_counter() - start)
    return times


def exiftool_write(work: Path, shots: int) -> list[float] | None:
    if shutil.which("exiftool") is None:
        return None
    times = []
    for k in range(shots):
        path = work / f"exiftool-{k}.jpg"
        path.write_bytes(_jpeg(k))
        start = time.perf_counter()
        subprocess.run(
            ["exiftool", "-q", "-overwrite_original", "-GPSLatitude=39.9515",
             "-GPSLatitudeRef=N", "-GPSLongitude=75.1915", "-GPSLongitudeRef=W",
             "-GPSHPositioningError=5", "-GPSImgDirection=45", "-GPSImgDirectionRef=T",
             "-DateTimeOriginal=2026:12:07 20:00:00", "-OffsetTimeOriginal=-05:00", str(path)],
            check=True,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="2400,24000,240000")
    parser.add_argument("--shots", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gpskit-collect-"))
    template = work / "template"
    make_photos(template, 1, (640, 480))
    base = work / "base"
    folder = work / "files"
    for i in range(100):
        (folder / f"d{i // 10}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{i // 10}" / f"p{i:04d}.jpg").write_bytes(b"x")
    _fake_manifest(template, folder, base)
    anchor = exiftool_write(work, args.shots)
    if anchor is not None:
        print(f"ExifTool writing the GPS tags into one photo: {statistics.median(anchor):.3f} s")
    print(f"{'earlier rows':>12} {'median s/shot':>14} {'max':>6}")
    for rows in [int(r) for r in args.rows.split(",")]:
        dataset = work / f"ds-{rows}"
        shutil.rmtree(dataset, ignore_errors=True)
        _copies(base / "manifest.parquet", dataset / "manifest.parquet", rows)
        _spread(dataset / "manifest.parquet")
        times = per_shot(dataset, args.shots)
        print(f"{rows:>12} {statistics.median(times):>14.3f} {max(times):>6.2f}", flush=True)


if __name__ == "__main__":
    main()
