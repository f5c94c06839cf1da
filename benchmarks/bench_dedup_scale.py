"""Whole ``gpskit dedup`` runs on manifests of millions of campus-style synthetic rows,
with every search (exact, near, turned, crop, border, burst): time, peak memory, and
recall on planted copies, beside the same command comparing every pair.

Each manifest: spots of 8 headings over a city (Philadelphia's extent), 10 s apart; every
hash a real manifest has (18 crop and 7 turned hashes a photo, 256-bit twins), uniform
random except the planted copies, each a copy of the photo before it:

- exact (1 %): the same bytes, pixels and hashes;
- near (2 %): pHash 1-4 bits away, re-saved (same EXIF);
- crop (1 %): pHash within 2 bits of one of the photo's crop hashes;
- turned (1 %): pHash equal to one of the photo's turned hashes;
- bursts (1 %): the same place and heading again 2 s later, other hashes.

Of the planted near copies, some had their GPS rewritten: 5 % moved 20-150 m (a photo
app re-deriving the position), 5 % stripped (no GPS), and 2 % moved 1-3 km (a wrong
position: these only a search of every pair can find). Recall is per planted kind.

    python benchmarks/bench_dedup_scale.py [--rows 1000000,10000000]
        [--compare 1000000] [--work DIR]

``--compare`` sizes run with ``--everywhere`` (every pair compared: the anchor for recall)
and ``--within 200`` (what the defaults choose at 10M); other sizes with the defaults. Peak memory comes from GNU time (``bench_scale.run``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import CITY, _blobs, _fake_manifest, _hex16, make_photos, run

CHUNK = 500_000


def _planted(index: np.ndarray) -> dict[str, np.ndarray]:
    """Which rows are copies of the row before, by kind (disjoint)."""
    return {
        "exact": np.flatnonzero(index % 100 == 1),
        "near": np.flatnonzero(index % 50 == 7),
        "crop": np.flatnonzero(index % 100 == 23),
        "turned": np.flatnonzero(index % 100 == 37),
    }


def _gps_rewritten(index: np.ndarray) -> dict[str, np.ndarray]:
    """Planted near copies whose GPS was rewritten, by how (positions in ``index``)."""
    near = index % 50 == 7
    step = (index // 50) % 100
    return {
        "moved 20-150 m": np.flatnonzero(near & (step < 5)),
        "no GPS": np.flatnonzero(near & (step >= 5) & (step < 10)),
        "moved 1-3 km": np.flatnonzero(near & (step >= 10) & (step < 12)),
    }


def _lists(flat: Any, per: int) -> Any:
    import pyarrow as pa

    offsets = pa.array(np.arange(len(flat) // per + 1, dtype=np.int32) * per)
    return pa.ListArray.from_arrays(offsets, flat)


def _chunk(
    rng: np.random.Generator, lo: int, m: int, spots: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    """The hash and position columns of rows lo .. lo + m."""
    index = np.arange(lo, lo + m)
    ident = index.astype(np.uint64)
    phash = rng.integers(0, 2**64 - 1, size=m, dtype=np.uint64)
    p256 = rng.integers(0, 256, size=(m, 32), dtype=np.uint8)
    crops = rng.integers(0, 2**64 - 1, size=(m, 18), dtype=np.uint64)
    crops256 = rng.integers(0, 256, size=(m, 18, 32), dtype=np.uint8)
    turned = rng.integers(0, 2**64 - 1, size=(m, 7), dtype=np.uint64)
    turned256 = rng.integers(0, 256, size=(m, 7, 32), dtype=np.uint8)
    lat = spots[0][index // 8] + rng.normal(0, 1.5e-5, m)  # ~1.5 m
    lon = spots[1][index // 8] + rng.normal(0, 1.5e-5, m)
    heading = (index % 8) * 45.0 + rng.uniform(-5, 5, m)
    taken = np.datetime64("2024-05-01T10:00:00", "s") + (index // 8) * 600 + (index % 8) * 10
    planted = _planted(index)
    # a copy is of the row before, which is in this chunk unless the copy is its first row
    for kind, rows in planted.items():
        planted[kind] = rows[rows > 0]
    exact = planted["exact"]
    for values in (
        ident,
        phash,
        p256,
        crops,
        crops256,
        turned,
        turned256,
        lat,
        lon,
        heading,
        taken,
    ):
        values[exact] = values[exact - 1]
    near = planted["near"]
    bits = rng.integers(0, 64, size=(len(near), 4)).astype(np.uint64)
    used = np.arange(4) < rng.integers(1, 5, size=(len(near), 1))
    masks = np.bitwise_or.reduce(np.where(used, np.uint64(1) << bits, 0), axis=1)
    phash[near] = phash[near - 1] ^ masks.astype(np.uint64)
    p256[near] = p256[near - 1]
    p256[near, 0] ^= 1
    crop = planted["crop"]
    which = rng.integers(0, 18, len(crop))
    phash[crop] = crops[crop - 1, which] ^ (
        np.uint64(1) << rng.integers(0, 64, len(crop)).astype(np.uint64)
    )
    p256[crop] = crops256[crop - 1, which]
    p256[crop, 5] ^= 4
    turn = planted["turned"]
    which = rng.integers(0, 7, len(turn))
    phash[turn] = turned[turn - 1, which]
    p256[turn] = turned256[turn - 1, which]
    for rows in (near, crop, turn):  # a copy keeps its EXIF
        for values in (lat, lon, heading, taken):
            values[rows] = values[rows - 1]
    rewritten = _gps_rewritten(index)
    moved = rewritten["moved 20-150 m"]
    lat[moved] += rng.uniform(20, 150, len(moved)) / 111_000
    far = rewritten["moved 1-3 km"]
    lon[far] += rng.uniform(1_000, 3_000, len(far)) / 85_000
    lat[rewritten["no GPS"]] = np.nan
    lon[rewritten["no GPS"]] = np.nan
    burst = np.flatnonzero((index % 100 == 51) & (index > lo))
    lat[burst], lon[burst] = lat[burst - 1], lon[burst - 1] + 5e-6
    heading[burst], taken[burst] = heading[burst - 1] + 2, taken[burst - 1] + 2
    return {
        "index": index, "ident": ident, "phash": phash, "p256": p256, "crops": crops,
        "crops256": crops256, "turned": turned, "turned256": turned256, "lat": lat,
        "lon": lon, "heading": heading, "taken": taken,
    }  # fmt: skip


def write_manifest(template: Path, out: Path, n: int) -> None:
    """The manifest described in the module docstring, written a chunk at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    one = pq.read_table(template / "manifest.parquet")
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    (lat0, lat1), (lon0, lon1) = CITY["lat"], CITY["lon"]
    spots = (rng.uniform(lat0, lat1, -(-n // 8)), rng.uniform(lon0, lon1, -(-n // 8)))
    with pq.ParquetWriter(out / "manifest.parquet.part", one.schema) as writer:
        for lo in range(0, n, CHUNK):
            m = min(CHUNK, n - lo)
            c = _chunk(rng, lo, m, spots)
            content = pc.binary_join_element_wise("0" * 48, _hex16(c["ident"]), "")
            part = one.take(np.zeros(m, dtype=np.int64))
            for name, values in (
                ("path", pa.array([f"p{i:09d}.jpg" for i in c["index"]])),
                ("sha256", content),
                ("pixel_hash", content),
                ("stored_pixel_hash", content),
                ("phash", _hex16(c["phash"])),
                ("phash256", _blobs(c["p256"])),
                ("dihedral_hashes", _lists(_hex16(c["turned"].ravel()), 7)),
                ("dihedral_phash256", _lists(_blobs(c["turned256"].reshape(-1, 32)), 7)),
                ("crop_hashes", _lists(_hex16(c["crops"].ravel()), 18)),
                ("crop_phash256", _lists(_blobs(c["crops256"].reshape(-1, 32)), 18)),
                ("latitude", pa.array(c["lat"], mask=np.isnan(c["lat"]))),
                ("longitude", pa.array(c["lon"], mask=np.isnan(c["lon"]))),
                ("img_direction", pa.array(c["heading"] % 360)),
                ("datetime_original", pa.array(np.datetime_as_string(c["taken"]))),
                (
                    "datetime_original_utc",
                    pa.array(c["taken"].astype("datetime64[us]"), pa.timestamp("us", "UTC")),
                ),
            ):
                column = part.schema.get_field_index(name)
                field = part.schema.field(column)
                part = part.set_column(column, field, values.cast(field.type))
            writer.write_table(part, row_group_size=16_384)
    (out / "manifest.parquet.part").replace(out / "manifest.parquet")


def recall(out: Path, n: int) -> dict[str, float]:
    """Share of planted copies grouped with the photo they copy, by kind and by how
    their GPS was rewritten."""
    import pyarrow.parquet as pq

    table = pq.read_table(out / "duplicates.parquet", columns=["path", "group_id"]).to_pandas()
    rows = table.path.str.slice(1, 10).astype(np.int64).to_numpy()
    group = np.full(n, -1, np.int64)
    group[rows] = table.group_id.fillna(-1).astype(np.int64).to_numpy()
    index = np.arange(n)
    result = {}
    for name, copies in {**_planted(index), **_gps_rewritten(index)}.items():
        copies = copies[copies > 0]
        same = (group[copies] >= 0) & (group[copies] == group[copies - 1])
        result[name] = round(float(same.mean()), 4) if len(copies) else float("nan")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000")
    parser.add_argument(
        "--compare", default="1000000", help="sizes run with --everywhere and --within 200"
    )
    parser.add_argument("--work", type=Path, default=None, help="keep generated files here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="gpskit-dedup-scale-"))
    print(f"work folder: {work}")
    template = work / "manifest-template"
    if not (template / "manifest.parquet").exists():
        _fake_manifest(make_photos(work / "template", 1, (640, 480)), work / "template", template)
    compare = {int(s) for s in args.compare.split(",") if s}
    print(f"{'rows':>10} {'options':>14} {'seconds':>8} {'peak GB':>8}  recall")
    for n in [int(s) for s in args.rows.split(",")]:
        out = work / f"dedup-{n}"
        if not (out / "manifest.parquet").exists():
            write_manifest(template, out, n)
        for flags in (["--everywhere"], ["--within", "200"]) if n in compare else ([],):
            seconds, peak = run(["dedup", str(out), *flags, "--no-sheet", "--json"])
            found = recall(out, n) if (out / "duplicates.parquet").exists() else "no output"
            label = " ".join(flags) or "defaults"
            print(f"{n:>10} {label:>14} {seconds:>8.1f} {peak:>8.2f}  {found}", flush=True)


if __name__ == "__main__":
    main()
