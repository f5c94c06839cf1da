"""Start-up beside the anchors: whole commands, start-up included, interleaved, medians.

Each round runs every command once, in turn, so load on the machine falls on all alike:

- ``gpskit ingest`` of an empty folder, and of an unchanged folder of photos (a re-run:
  nothing to read), beside ``exiftool -n -json -GPSLatitude -GPSLongitude -r`` on the same
  folder (ExifTool reading GPS only, the cheapest question it can be asked);
- ``gpskit info`` of that dataset beside DuckDB counting the manifest's rows by status
  (``python -c "import duckdb; ..."``: DuckDB's own start-up included);
- ``gpskit --version``, the floor of any gpskit command (Python, Typer).

    python benchmarks/bench_startup.py [--photos 200] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
GPSKIT = [sys.executable, "-m", "gpskit"]
DUCKDB = (
    'import duckdb, sys; print(duckdb.sql("select status, count(*) from read_parquet(\'" '
    '+ sys.argv[1] + "\') group by 1").fetchall())'
)


def commands(work: Path, photos: Path, empty: Path) -> dict[str, list[str]]:
    exiftool = ["exiftool", "-n", "-json", "-GPSLatitude", "-GPSLongitude", "-r"]
    found = {
        "gpskit --version": [*GPSKIT, "--version"],
        "gpskit ingest EMPTY (re-run)": [*GPSKIT, "ingest", str(empty), "--out", str(work / "e")],
        "gpskit ingest PHOTOS (re-run, nothing new)": [
            *GPSKIT,
            "ingest",
            str(photos),
            "--out",
            str(work / "p"),
        ],
        "gpskit info": [*GPSKIT, "info", str(work / "p")],
        "duckdb: rows by status": [
            sys.executable,
            "-c",
            DUCKDB,
            str(work / "p" / "manifest.parquet"),
        ],
    }
    if shutil.which("exiftool"):
        found["exiftool -r EMPTY"] = [*exiftool, str(empty)]
        found["exiftool -r PHOTOS"] = [*exiftool, str(photos)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from bench_ingest import make_photos

    cache = Path(tempfile.gettempdir()) / "gpskit-bench" / f"startup-{args.photos}"
    photos = make_photos(cache, args.photos, (640, 480))
    with tempfile.TemporaryDirectory(prefix="gpskit-startup-") as tmp:
        work = Path(tmp)
        empty = work / "empty"
        empty.mkdir()
        todo = commands(work, photos, empty)
        for command in todo.values():  # first runs: the datasets exist, caches are warm
            subprocess.run(command, check=False, capture_output=True)
        times: dict[str, list[float]] = {name: [] for name in todo}
        for _ in range(args.runs):
            for name, command in todo.items():
                start = time.perf_counter()
                done = subprocess.run(command, check=False, capture_output=True)
                times[name].append(time.perf_counter() - start)
                if done.returncode not in (0, 1):
                    raise SystemExit(f"{name}: exit {done.returncode}: {done.stderr[-500:]!r}")
    medians = {name: statistics.median(values) for name, values in times.items()}
    if args.json:
        print(json.dumps(medians, indent=2))
        return
    print(f"{args.photos} photos (640x480), {args.runs} interleaved runs, medians:")
    for name, seconds in medians.items():
        print(f"  {name:45s} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
