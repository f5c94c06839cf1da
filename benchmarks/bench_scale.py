"""Ingest at scale: files/s from disk and from S3, memory per million manifest rows, resume
after a kill, and coverage on millions of rows. Every figure is a whole ``gpskit`` command
run as a user runs it (start-up included), its peak memory read from the kernel.

Sections:

- ``reads``: ``gpskit ingest`` of N tiny phone photos (64x48 JPEG with EXIF: the per-file
  overhead, not decoding) and of M 12 MP photos, from a local folder (local and Ray
  engines) and from S3 (a local S3 server, moto, over HTTP); files/s and the ingest
  process's peak memory.
- ``manifest``: a re-run over R files whose rows are all in the manifest already (the
  common case of a growing collection): time and peak memory at R/10 and R, so memory per
  million rows can be read off.
- ``kept``: a run over a few files beside K earlier rows of a folder not named (all
  kept): the keys of every row are sorted (in spilled runs of ``--sort-rows``) and every
  row rewritten; peak memory at each K shows whether it grows with the rows.
- ``resume``: ingest killed (SIGKILL) half-way, then run again: files read again and
  whether the manifest equals an uninterrupted run's.
- ``coverage``: ``gpskit coverage`` on manifests of C synthetic rows, spots of 8 photos
  over a 20 km city square, 100 m cells (coverage reads 10 of the manifest's columns).

    python benchmarks/bench_scale.py [--tiny 10000] [--big 200] [--rows 1000000]
                                     [--coverage-rows 1000000,10000000] [--skip SECTION]

Disk reads run on each ``--engines`` (``local``: gpskit's process pool; ``ray``: a local
Ray instance started by the command, its start-up counted); S3 reads on the local engine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GPSKIT = [sys.executable, "-m", "gpskit"]


def run(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Seconds and peak resident GB of one command (its largest process). The peak comes
    from GNU time, whose child starts small: a child forked from this (large) process
    would count this process's pages as its own until it execs."""
    timer = shutil.which("time") or "/usr/bin/time"
    start = time.perf_counter()
    proc = subprocess.run(
        [timer, "-f", "gpskit-peak-kb %M", *GPSKIT, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"gpskit {' '.join(args)} failed: {proc.stderr[-2000:]}")
    peak_kb = int(proc.stderr.rsplit("gpskit-peak-kb", 1)[1].split()[0])
    return seconds, peak_kb / 1024**2


def make_photos(folder: Path, count: int, size: tuple[int, int]) -> Path:
    from gpskit.exifwrite import save_photo
    from gpskit.synth.samples import phone_exif, textured_image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) >= count:
        return folder
    base = textured_image(*size, seed=0)
    rng = random.Random(0)
    for i in range(count):
        image = base if size[0] > 1000 else textured_image(*size, seed=i)
        save_photo(image, folder / f"p{i:07d}.jpg", phone_exif(rng, i))
    return folder


def s3_server() -> tuple[Any, dict[str, str]]:
    """A local S3 API (moto) and the environment that points clients at it."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    return server, env


def upload(folder: Path, bucket: str, env: dict[str, str]) -> str:
    import s3fs

    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if not fs.exists(bucket):
        fs.mkdir(bucket)
    fs.put(str(folder) + "/", f"{bucket}/{folder.name}/", recursive=True)
    return f"s3://{bucket}/{folder.name}"


def reads(work: Path, tiny: int, big: int, runs: int, engines: list[str], s3_max: int) -> None:
    print(f"\n## reads (median of {runs} runs, fresh dataset each, start-up included)")
    print(
        f"{'photos':>22} {'source':>6} {'engine':>6} {'files/s':>8} {'seconds':>8} {'peak GB':>8}"
    )
    sets = [
        (f"{tiny} tiny (64x48)", make_photos(work / "tiny", tiny, (64, 48)), tiny),
        (f"{big} x 12 MP", make_photos(work / "big", big, (4032, 3024)), big),
    ]
    try:
        server, env = s3_server()
    except ImportError:
        server, env = None, {}
        print("(no S3 figures: pip install 'moto[server]' s3fs)")
    for name, folder, count in sets:
        sources = [("disk", str(folder), None, engine) for engine in engines]
        if server is not None and count <= s3_max:
            sources.append(("S3", upload(folder, "bench", env), env, "local"))
        for source, location, environ, engine in sources:
            timings = []
            for i in range(runs):
                out = work / f"ds-{source}-{engine}-{i}"
                shutil.rmtree(out, ignore_errors=True)
                args = ["ingest", location, "--out", str(out), "--engine", engine]
                timings.append(run(args, environ))
            seconds = float(np.median([t for t, _ in timings]))
            peak = max(p for _, p in timings)
            print(
                f"{name:>22} {source:>6} {engine:>6} {count / seconds:>8.1f} {seconds:>8.2f} "
                f"{peak:>8.2f}",
                flush=True,
            )
    if server is not None:
        server.stop()


def manifest_rows(work: Path, rows: int) -> None:
    """Re-runs where every file is in the manifest already: memory per million rows. Once
    as a re-run usually is (same thresholds: the earlier verdicts are kept), once with a
    threshold changed (every row judged again)."""
    print("\n## manifest: re-run, every row reused")
    print(f"{'rows':>10} {'verdicts':>10} {'seconds':>8} {'peak GB':>8} {'manifest MB':>12}")
    template = work / "template"
    make_photos(template, 1, (640, 480))
    for n in (rows // 10, rows):
        folder = work / f"files-{n}"
        if not folder.exists():
            for d in range(-(-n // 10_000)):
                sub = folder / f"d{d:04d}"
                sub.mkdir(parents=True)
                for i in range(d * 10_000, min(n, (d + 1) * 10_000)):
                    (sub / f"p{i:07d}.jpg").write_bytes(b"x")
        for verdicts, extra in (("kept", []), ("judged", ["--max-h-error", "31"])):
            out = work / f"manifest-{n}"
            _fake_manifest(template, folder, out)
            seconds, peak = run(["ingest", str(folder), "--out", str(out), *extra])
            size = (out / "manifest.parquet").stat().st_size / 1e6
            print(f"{n:>10} {verdicts:>10} {seconds:>8.1f} {peak:>8.2f} {size:>12.0f}", flush=True)


def _fake_manifest(template: Path, folder: Path, out: Path) -> None:
    """A manifest whose rows match every file of ``folder`` (size, mtime): all reusable,
    with the settings an ingest with default options records."""
    import pyarrow as pa

    from gpskit.ingest import IngestOptions, ingest
    from gpskit.ingest.assemble import MANIFEST_ROW_GROUP
    from gpskit.ingest.find import scan
    from gpskit.schema import file_metadata, load_schema, read_table, write_table

    shutil.rmtree(out, ignore_errors=True)
    ingest([template], out, IngestOptions(workers=1))
    schema = load_schema("manifest")
    one = read_table(out / "manifest.parquet", schema)
    settings = {"gpskit.ingest": file_metadata(out / "manifest.parquet")["gpskit.ingest"]}
    files = scan([folder])
    table = one.take(np.zeros(len(files), dtype=np.int64))
    for name, values, kind in (
        ("root", [f.root for f in files], pa.string()),
        ("path", [f.path for f in files], pa.string()),
        ("file_size", [f.size for f in files], pa.int64()),
        ("mtime_ns", [f.mtime_ns for f in files], pa.int64()),
    ):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, table.schema.field(index), pa.array(values, kind))
    write_table(
        table,
        out / "manifest.parquet",
        schema,
        extra_metadata=settings,
        row_group_rows=MANIFEST_ROW_GROUP,
    )


def kept_rows(work: Path, sizes: list[int], sort_rows: list[str]) -> None:
    """Earlier rows of a folder this run does not name, all kept, beside 1,000 files read
    (then reused): the manifest's keys are sorted and every row is written again."""
    from gpskit.ingest.stamp import discard

    print("\n## kept: earlier rows of a folder not named, all kept")
    print(f"{'rows':>11} {'--sort-rows':>12} {'seconds':>8} {'peak GB':>8}")
    template = work / "template"
    make_photos(template, 1, (640, 480))
    base = work / "kept-base"
    if not (base / "manifest.parquet").exists():
        folder = work / "kept-files"
        for i in range(1000):
            (folder / f"d{i // 100}").mkdir(parents=True, exist_ok=True)
            (folder / f"d{i // 100}" / f"p{i:04d}.jpg").write_bytes(b"x")
        _fake_manifest(template, folder, base)
    few = make_photos(work / "kept-few", 1000, (64, 48))
    for n in sizes:
        out = work / f"kept-{n}"
        _copies(base / "manifest.parquet", out / "manifest.parquet", n)
        run(["ingest", str(few), "--out", str(out)])  # reads the 1,000 files once
        for rows in sort_rows:
            discard(out)  # else the run answers from the last one: the pass is what is timed
            seconds, peak = run(["ingest", str(few), "--out", str(out), "--sort-rows", rows])
            print(f"{n:>11} {rows:>12} {seconds:>8.1f} {peak:>8.2f}", flush=True)


def _copies(source: Path, target: Path, rows: int) -> None:
    """``rows`` rows: the source's, again and again under paths ``c0/...``, ``c1/...``
    (still sorted), with its metadata."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    template = pq.read_table(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(target, template.schema) as out:
        for copy in range(-(-rows // template.num_rows)):
            part = template.slice(0, rows - copy * template.num_rows)
            index = part.schema.get_field_index("path")
            paths = pc.binary_join_element_wise(f"c{copy:05d}", part["path"], "/")
            out.write_table(part.set_column(index, part.schema.field(index), paths), 16_384)


def resume(work: Path, count: int) -> None:
    print(f"\n## resume: {count} photos, killed half-way")
    folder = make_photos(work / "resume", count, (320, 240))
    whole, killed = work / "whole", work / "killed"
    for path in (whole, killed):
        shutil.rmtree(path, ignore_errors=True)
    run(["ingest", str(folder), "--out", str(whole), "--workers", "1"])
    proc = subprocess.Popen(
        [*GPSKIT, "ingest", str(folder), "--out", str(killed), "--workers", "1", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    journal = killed / ".gpskit" / "ingest-journal"
    while len(list(journal.glob("part-*.parquet"))) * 256 < count // 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(journal.glob("part-*.parquet"))) * 256
    result = subprocess.run(
        [*GPSKIT, "ingest", str(folder), "--out", str(killed), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    report = json.loads(result.stdout)
    same = _digest(whole / "manifest.parquet") == _digest(killed / "manifest.parquet")
    print(
        f"killed with ~{done} rows journaled; the re-run read {report['read']} files and "
        f"reused {report['reused']}; manifest identical to an uninterrupted run: {same}"
    )


def _digest(path: Path) -> str:
    """The manifest's rows, without the file-level metadata that names the run."""
    import pyarrow.parquet as pq

    table = pq.read_table(path).drop_columns(["mtime_ns"]).replace_schema_metadata(None)
    return hashlib.sha256(str(table.to_pydict()).encode()).hexdigest()


#: A 20 km x 20 km square around Philadelphia: a city-sized collection, where millions of
#: photos sit 8 to a spot, spots about 20 m apart at 10M photos (not uniform noise, which
#: no collection looks like and which chains every photo into one spot).
CITY = {"lat": (39.86, 40.04), "lon": (-75.31, -75.07)}


def coverage(work: Path, sizes: list[int]) -> None:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    print("\n## coverage: spots of 8 photos (one per heading) over a 20 km x 20 km city")
    print(f"{'rows':>10} {'seconds':>8} {'peak GB':>8}")
    region = work / "city.geojson"
    (lat0, lat1), (lon0, lon1) = CITY["lat"], CITY["lon"]
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    region.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    template = work / "manifest-template"
    _fake_manifest(make_photos(work / "template", 1, (640, 480)), work / "template", template)
    one = pq.read_table(template / "manifest.parquet")
    for n in sizes:
        out = work / f"coverage-{n}"
        out.mkdir(exist_ok=True)
        rng = np.random.default_rng(n)
        spots = -(-n // 8)
        spot_lat = rng.uniform(lat0, lat1, spots)
        spot_lon = rng.uniform(lon0, lon1, spots)
        with pq.ParquetWriter(out / "manifest.parquet", one.schema) as writer:
            for lo in range(0, n, 1_000_000):
                m = min(1_000_000, n - lo)
                index = np.arange(lo, lo + m)
                jitter = rng.normal(0, 1.5e-5, (2, m))  # ~1.5 m
                part = one.take(np.zeros(m, dtype=np.int64))
                for name, values in (
                    ("path", pa.array([f"p{i:08d}.jpg" for i in index])),
                    ("latitude", pa.array(spot_lat[index // 8] + jitter[0])),
                    ("longitude", pa.array(spot_lon[index // 8] + jitter[1])),
                    ("img_direction", pa.array((index % 8) * 45.0 + rng.uniform(-5, 5, m))),
                ):
                    column = part.schema.get_field_index(name)
                    part = part.set_column(column, part.schema.field(column), values)
                writer.write_table(part, row_group_size=256_000)
        seconds, peak = run(
            ["coverage", str(out), "--region", str(region), "--cell", "100", "--json"]
        )
        print(f"{n:>10} {seconds:>8.1f} {peak:>8.2f}", flush=True)


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex16(values: np.ndarray) -> Any:
    """64-bit values as 16-digit hex strings (how the manifest keeps a pHash), vectorised."""
    import pyarrow as pa

    octets = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    digits = np.empty((len(values), 16), dtype=np.uint8)
    digits[:, 0::2], digits[:, 1::2] = _HEX[octets >> 4], _HEX[octets & 15]
    offsets = np.arange(0, 16 * len(values) + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(digits)]
    )


def _blobs(rows: np.ndarray) -> Any:
    """Each row of a 2-D uint8 array as one binary value (a 256-bit hash), vectorised."""
    import pyarrow as pa

    count, size = rows.shape
    offsets = np.arange(0, size * count + 1, size, dtype=np.int32)
    data = np.ascontiguousarray(rows)
    return pa.Array.from_buffers(
        pa.binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", type=int, default=10_000)
    parser.add_argument("--big", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kept-rows", default="1000000,10000000")
    parser.add_argument("--sort-rows", default="1000000,100000", help="--sort-rows to try")
    parser.add_argument("--resume-photos", type=int, default=2000)
    parser.add_argument("--coverage-rows", default="1000000,10000000")
    parser.add_argument("--engines", default="local,ray", help="engines for the disk reads")
    parser.add_argument("--s3-max", type=int, default=2000, help="largest set also read from S3")
    parser.add_argument("--skip", action="append", default=[], help="a section to leave out")
    parser.add_argument("--work", type=Path, default=None, help="keep generated files here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gpskit-scale-"))
    print(f"work folder: {work}; {os.cpu_count()} CPUs")
    if "reads" not in args.skip:
        engines = args.engines.split(",")
        reads(work, args.tiny, args.big, args.runs, engines, args.s3_max)
    if "manifest" not in args.skip:
        manifest_rows(work, args.rows)
    if "kept" not in args.skip:
        sizes = [int(s) for s in args.kept_rows.split(",")]
        kept_rows(work, sizes, args.sort_rows.split(","))
    if "resume" not in args.skip:
        resume(work, args.resume_photos)
    if "coverage" not in args.skip:
        coverage(work, [int(s) for s in args.coverage_rows.split(",")])


if __name__ == "__main__":
    main()
