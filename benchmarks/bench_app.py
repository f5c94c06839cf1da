"""The review app under load, on loopback: start-up on a big manifest, the first page of
the grid, and many clients at once asking for pages and thumbnails.

1. A manifest of ``--rows`` photos (100k by default; 200 real files, the rest named
   apart): the start-up (the catalog built before the app listens, as ``gpskit app``
   does), the first ``/api/photos`` page, and pages after it (median of 20).
2. ``--clients`` concurrent clients (20) making ``--requests`` requests (5,000) in all:
   grid pages with filters, photo pages and thumbnails, at random: errors, p50, p95, p99
   and requests/s. A thumbnail is made once and then read from the cache.

    python benchmarks/bench_app.py [--rows 100000] [--clients 20] [--requests 5000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa

from gpskit.app import AppOptions, bind
from gpskit.app.server import create_app
from gpskit.dataset import Dataset
from gpskit.schema import load_schema, write_table
from gpskit.synth.samples import textured_image


def manifest(folder: Path, rows: int) -> Dataset:
    """``rows`` photos at a campus's positions: 200 real files, every row one of them."""
    photos = folder / "photos"
    photos.mkdir(parents=True)
    for k in range(200):
        textured_image(640, 480, seed=k).save(photos / f"p{k:03d}.jpg", quality=85)
    schema = load_schema("manifest")
    statuses = ["accepted"] * 9 + ["rejected"]
    columns: dict[str, list[object]] = {name: [None] * rows for name in schema.names}
    columns.update(
        root=[str(photos)] * rows,
        path=[f"p{k % 200:03d}.jpg" if k < 200 else f"more/p{k:07d}.jpg" for k in range(rows)],
        file_size=[1000] * rows, mtime_ns=[k for k in range(rows)], read_status=["ok"] * rows,
        format=["JPEG"] * rows, width=[640] * rows, height=[480] * rows, has_exif=[True] * rows,
        latitude=[39.951 + (k % 97) * 1e-5 for k in range(rows)],
        longitude=[-75.192 + (k % 89) * 1e-5 for k in range(rows)],
        img_direction=[float(45 * (k % 8)) for k in range(rows)],
        gps_flags=[[]] * rows, unfit_tags=[[]] * rows, decoded=[True] * rows,
        dihedral_hashes=[[]] * rows, dihedral_phash256=[[]] * rows, crop_hashes=[[]] * rows,
        crop_phash256=[[]] * rows,
        status=[statuses[k % 10] for k in range(rows)],
        reasons=[["too_small"] if k % 10 == 9 else [] for k in range(rows)],
        warnings=[["blurry"] if k % 7 == 0 else [] for k in range(rows)],
    )  # fmt: skip
    table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
    dataset = Dataset(folder / "ds")
    write_table(table, dataset.manifest_path, schema)
    return dataset


def serve(dataset: Dataset) -> tuple[str, object, threading.Thread]:
    """The app as ``gpskit app`` starts it: the catalog built before it listens."""
    import uvicorn

    options = AppOptions(port=0)
    sock = bind(options)
    app = create_app(dataset, options)
    started = time.perf_counter()
    app.state.catalog.snapshot()
    print(f"start-up: the catalog of the manifest built in {time.perf_counter() - started:.2f} s")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{options.port}", server, thread


def load(url: str, rows: int, clients: int, requests: int) -> None:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    ids = httpx.get(f"{url}/api/photos", params={"limit": 500}).json()["photos"]
    ids = [p["id"] for p in ids]
    per_client = requests // clients

    def work(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(per_client):
                pick = rng.random()
                if pick < 0.5:
                    path = f"/thumb/{rng.choice(ids)}"
                elif pick < 0.8:
                    query = rng.choice(["", "status=rejected", "warning=blurry", "q=more/p00"])
                    path = f"/api/photos?offset={rng.randrange(0, rows // 2)}&limit=60&{query}"
                else:
                    path = f"/api/photos/{rng.choice(ids)}"
                started = time.perf_counter()
                answer = client.get(path)
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    if answer.status_code != 200:
                        errors.append(f"{path}: {answer.status_code}")

    started = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000  # noqa: E731
    print(f"{clients} clients, {len(latencies)} requests in {wall:.1f} s ({len(latencies) / wall:.0f}/s), "
          f"errors {len(errors)}; p50 {q(0.5):.0f} ms, p95 {q(0.95):.0f} ms, p99 {q(0.99):.0f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        dataset = manifest(Path(work), args.rows)
        url, server, thread = serve(dataset)
        started = time.perf_counter()
        httpx.get(f"{url}/api/photos", timeout=120).raise_for_status()
        first = time.perf_counter() - started
        pages = []
        for k in range(20):
            started = time.perf_counter()
            httpx.get(
                f"{url}/api/photos", params={"offset": k * 60, "status": "accepted"}
            ).raise_for_status()
            pages.append(time.perf_counter() - started)
        print(f"{args.rows:,} rows, {os.cpu_count()} cores: the first page {first * 1000:.0f} ms; "
              f"pages after it (new connection each), median {statistics.median(pages) * 1000:.0f} ms")  # fmt: skip
        load(url, args.rows, args.clients, args.requests)
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(10)


if __name__ == "__main__":
    main()
