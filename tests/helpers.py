"""Test helpers, plain functions shared by the test modules (fixtures stay in conftest.py).

- photos: ``good_exif``, ``photo``, ``write_photos``, ``write_reason_set`` (+ ``REASON_FILES``)
- manifests written directly (no images), for steps after ingest: ``write_manifest``
- ``free_port`` for a process that must listen (DDP's rendezvous)
- the pool's task: ``work`` (crashes, hangs, runs out of memory, or answers, on request)
- interruptions: ``kill_ingest_half_way`` (SIGKILL an ingest process), ``kill_in_epoch_two``
  (an ``on_batch`` callback that interrupts training)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from gpskit.dataset import Dataset
from gpskit.exifwrite import PhoneExif, save_photo
from gpskit.schema import load_schema, write_table
from gpskit.synth.samples import textured_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "exif-samples"
EDT = timezone(timedelta(hours=-4))
TAKEN = datetime(2024, 5, 1, 14, 3, 7, tzinfo=EDT)


# photos ---------------------------------------------------------------------------------


def good_exif(**overrides: object) -> PhoneExif:
    """EXIF of a good campus photo; override any field."""
    exif = PhoneExif(
        latitude=39.9515,
        longitude=-75.1910,
        altitude=14.0,
        heading=90.0,
        h_error=5.0,
        taken=TAKEN,
    )
    for key, value in overrides.items():
        setattr(exif, key, value)
    return exif


def photo(size: tuple[int, int] = (320, 240), seed: int = 0) -> Image.Image:
    return textured_image(*size, seed=seed)


def write_photos(
    folder: Path,
    count: int,
    size: tuple[int, int] = (320, 240),
    exif: Callable[[int], PhoneExif] = lambda i: good_exif(),
) -> Path:
    """``count`` good photos ``p000.jpg``, ``p001.jpg``, ... (photo ``i``: seed ``i``, EXIF
    ``exif(i)``) in ``folder``; returns the folder."""
    for i in range(count):
        save_photo(photo(size, seed=i), folder / f"p{i:03d}.jpg", exif(i))
    return folder


#: file name -> the one rejection reason code it must get (None: accepted)
REASON_FILES: dict[str, str | None] = {
    "good.jpg": None,
    "empty.jpg": "empty_file",
    "text.jpg": "not_image",
    "truncated.jpg": "decode_error",
    "picture.gif": "unsupported_format",
    "no_exif.jpg": "no_exif",
    "no_gps.jpg": "no_gps",
    "no_ref.jpg": "gps_ref_missing",
    "zero_den.jpg": "gps_malformed",
    "out_of_range.jpg": "gps_out_of_range",
    "null_island.jpg": "gps_null_island",
    "poor_fix.jpg": "gps_error_too_large",
    "stale_fix.jpg": "gps_stale_fix",
    "tiny.jpg": "too_small",
}


def write_reason_set(folder: Path) -> Path:
    """One photo per reason code (see REASON_FILES)."""
    folder.mkdir(parents=True, exist_ok=True)
    img = photo()
    save_photo(img, folder / "good.jpg", good_exif())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, I am not a photo\n")
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    img.save(folder / "picture.gif")
    img.save(folder / "no_exif.jpg")
    save_photo(img, folder / "no_gps.jpg", good_exif(latitude=None, longitude=None))
    save_photo(img, folder / "no_ref.jpg", good_exif(lat_ref=""))
    save_photo(img, folder / "zero_den.jpg", good_exif(raw_gps={2: ((39, 0), (57, 1), (5, 1))}))
    save_photo(img, folder / "out_of_range.jpg", good_exif(raw_gps={2: ((95, 1), (0, 1), (0, 1))}))
    save_photo(img, folder / "null_island.jpg", good_exif(latitude=0.0, longitude=0.0))
    save_photo(img, folder / "poor_fix.jpg", good_exif(h_error=45.0))
    save_photo(img, folder / "stale_fix.jpg", good_exif(gps_time=TAKEN - timedelta(hours=2)))
    save_photo(photo((160, 120)), folder / "tiny.jpg", good_exif())
    return folder


# manifests ------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "root": "/photos",
    "file_size": 1000,
    "mtime_ns": 1,
    "read_status": "ok",
    "format": "JPEG",
    "has_exif": True,
    "width": 640,
    "height": 480,
    "gps_flags": [],
    "unfit_tags": [],
    "crop_hashes": [],
    "dihedral_hashes": [],
    "dihedral_phash256": [],
    "crop_phash256": [],
    "decoded": True,
    "status": "accepted",
    "reasons": [],
    "warnings": [],
    "img_direction_ref": "T",
}


def write_manifest(dataset: Path, rows: list[dict[str, Any]]) -> None:
    """A manifest from partial rows (path, latitude, longitude, img_direction, ...)."""
    schema = load_schema("manifest")
    full = []
    for i, row in enumerate(rows):
        merged = {name: None for name in schema.names}
        merged.update(DEFAULTS)
        merged["path"] = f"p{i:05d}.jpg"
        merged.update(row)
        full.append(merged)
    columns = {name: [r[name] for r in full] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema.arrow_schema())
    write_table(table, Dataset(dataset).manifest_path, schema)


# processes ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# the pool's task --------------------------------------------------------------------------


def work(kind: str) -> str:
    """A task for the isolated pools: ``crash`` (SIGKILLs its worker), ``hang`` (sleeps far
    past any test's timeout), ``memory`` (raises MemoryError); anything else comes back
    upper-cased."""
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        time.sleep(120)
    if kind == "memory":
        raise MemoryError("too big")
    return kind.upper()


# interruptions --------------------------------------------------------------------------


def kill_ingest_half_way(photos: Path, dataset: Path, files: int, engine: str = "local") -> int:
    """Start an ingest in another process and SIGKILL it (workers too) half way through;
    returns how many rows its journal holds."""
    code = (
        "import sys; from pathlib import Path; from gpskit.ingest import IngestOptions, ingest; "
        "from gpskit.engines import EngineOptions; ingest([Path(sys.argv[1])], Path(sys.argv[2]), "
        f"IngestOptions(workers=1, journal_rows=4, engine=EngineOptions({engine!r})))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(photos), str(dataset)], start_new_session=True
    )
    journal = Dataset(dataset).journal_dir
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(journal.glob("part-*.parquet"))) * 4 >= files // 2:
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    return sum(1 for _ in pq.ParquetDataset(journal).read().to_pylist())


def kill_in_epoch_two(batch: int | None = None) -> Callable[[int, int], None]:
    """An ``on_batch(step, total)`` callback for ``train`` that raises KeyboardInterrupt (what
    Ctrl-C raises) at batch ``batch`` (1-based) of epoch two; by default half way through it
    (batch ``total // 2``). The epoch's ``total`` batches come from training itself."""
    seen = 0

    def on_batch(step: int, total: int) -> None:
        nonlocal seen
        seen += 1
        if seen == total + (total // 2 if batch is None else batch):
            raise KeyboardInterrupt

    return on_batch


BROWSER = next(
    (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)),
    None,
)


def launch_chromium(*args: str) -> Iterator[Any]:
    """The Debian chromium driven by Playwright, until the generator is closed (skips,
    saying why, where there is none)."""
    import pytest

    if BROWSER is None:
        pytest.skip("no chromium installed (apt-get install chromium): the browser tests need one")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=BROWSER, args=["--no-sandbox", *args])
        yield launched
        launched.close()


@contextmanager
def live_app(
    dataset: Path,
    run: Path | None = None,
    collector: Any = None,
    tls: bool = False,
    **options: Any,
) -> Iterator[tuple[str, Any]]:
    """``gpskit app`` on a free loopback port, in a thread, until the block ends (with a
    collector: the collect page too; ``tls``: over HTTPS with gpskit's certificate)."""
    import uvicorn

    from gpskit.app import AppOptions, bind
    from gpskit.app.server import create_app

    settings = AppOptions(port=0, tls=tls, **options)
    sock = bind(settings)
    certificate: dict[str, str] = {}
    if tls:
        from gpskit.collect.tls import ensure_certificate

        made = ensure_certificate(Dataset(dataset).state_dir, ["127.0.0.1"])
        certificate = {"ssl_certfile": str(made.cert), "ssl_keyfile": str(made.key)}
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Dataset(dataset), settings, run, collector),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            **certificate,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{settings.port}", settings
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
