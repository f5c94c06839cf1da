"""Dedup speed and memory, on the hash distributions real collections have, and its accuracy
on real copies.

Sections (each size runs in its own process, so peak memory is its own):

- ``index``: the Hamming-radius self-join (``gpskit.hashindex``) plus connected components,
  on uniform random 64-bit hashes and on clustered ones (10k clusters of 100 codes within 4
  bits of their centre: thousands of near-identical views of the same places), with time
  and peak memory; a brute-force popcount baseline where feasible.
- ``joins``: the crop join (each photo's hash against 18 crop hashes per photo) and the
  dihedral join (7 turned or mirrored hashes per photo against every photo's hash).
- ``dedup``: the whole link-and-group step (``find_links`` + ``build_groups``) on a
  synthetic manifest of N photos with every hash gpskit keeps.
- ``--real``: precision and recall per kind of copy on real photos and copies made by
  ImageMagick and Pillow (``tests/real_copies.py``; needs ``../shared/exif-samples``).

    python benchmarks/bench_dedup.py [--sizes 100000,1000000] [--real]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def uniform(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64 - 1, size=n, dtype=np.uint64)


def clustered(n: int, per: int = 100, bits: int = 4, seed: int = 0) -> np.ndarray:
    """n codes in clusters of ``per``, each code ``bits`` random flips from its centre."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(rng.integers(0, 2**64 - 1, size=max(1, n // per), dtype=np.uint64), per)
    for _ in range(bits):
        codes ^= np.left_shift(np.uint64(1), rng.integers(0, 64, len(codes)).astype(np.uint64))
    return codes


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def run_index(kind: str, n: int, radius: int) -> dict[str, float]:
    from gpskit.graph import connected_components
    from gpskit.hashindex import self_join

    codes = clustered(n) if kind == "clustered" else uniform(n)
    start = time.perf_counter()
    a, b, _ = self_join(codes, radius)
    connected_components(len(codes), a, b)
    return {"seconds": time.perf_counter() - start, "pairs": len(a), "peak_gb": _peak_gb()}


def run_joins(n: int) -> dict[str, float]:
    from gpskit.hashindex import cross_join

    codes = uniform(n)
    start = time.perf_counter()
    cross_join(codes, uniform(18 * n, seed=1), 6)
    crop = time.perf_counter() - start
    start = time.perf_counter()
    cross_join(uniform(7 * n, seed=2), codes, 8)
    return {"crop_s": crop, "dihedral_s": time.perf_counter() - start, "peak_gb": _peak_gb()}


def synthetic_manifest(n: int):  # type: ignore[no-untyped-def]
    """A manifest frame of n photos with every hash (uniform, 1 % planted copies)."""
    import pandas as pd

    rng = np.random.default_rng(0)

    def hexes(count: int) -> list[str]:
        return [f"{v:016x}" for v in uniform(count, int(rng.integers(1 << 30)))]

    def blobs(count: int) -> list[bytes]:
        return list(rng.integers(0, 256, size=(count, 32), dtype=np.uint8))

    phash = hexes(n)
    for i in range(0, n, 100):  # 1 % copies: a few bits from another photo
        phash[i] = f"{int(phash[i + 1], 16) ^ 0b1011:016x}"
    crops, turned = hexes(18 * n), hexes(7 * n)
    crops256, turned256 = blobs(18 * n), blobs(7 * n)
    return pd.DataFrame(
        {
            "root": "/photos",
            "path": [f"p{i:07d}.jpg" for i in range(n)],
            "read_status": "ok",
            "status": "accepted",
            "sha256": [f"{i:064x}" for i in range(n)],
            "pixel_hash": [f"{i:064x}" for i in range(n)],
            "stored_pixel_hash": [f"{i:064x}" for i in range(n)],
            "phash": phash,
            "phash256": [bytes(b) for b in blobs(n)],
            "crop_hashes": [crops[18 * i : 18 * i + 18] for i in range(n)],
            "crop_phash256": [[bytes(x) for x in crops256[18 * i : 18 * i + 18]] for i in range(n)],
            "dihedral_hashes": [turned[7 * i : 7 * i + 7] for i in range(n)],
            "dihedral_phash256": [
                [bytes(x) for x in turned256[7 * i : 7 * i + 7]] for i in range(n)
            ],
            "trimmed_phash": None,
            "trimmed_phash256": None,
            "latitude": 39.95 + rng.normal(0, 0.001, n),
            "longitude": -75.19 + rng.normal(0, 0.001, n),
            "img_direction": rng.uniform(0, 360, n),
            "datetime_original": None,
            "datetime_original_utc": pd.NaT,
            "width": 4032,
            "height": 3024,
            "gps_h_error": 5.0,
            "file_size": 3_000_000,
            "mtime_ns": 1,
            "orientation": 1,
            "make": "Apple",
        }
    )


def run_dedup(n: int) -> dict[str, float]:
    from gpskit.dedup import DedupOptions, build_groups, find_links

    frame = synthetic_manifest(n)
    start = time.perf_counter()
    pairs = find_links(frame, DedupOptions())
    build_groups(frame, pairs, DedupOptions())
    return {"seconds": time.perf_counter() - start, "pairs": len(pairs), "peak_gb": _peak_gb()}


def _in_child(function: str, *args: object) -> dict[str, float]:
    """Run one measurement in a fresh process (its own peak memory)."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"from benchmarks.bench_dedup import {function}; "
        f"print(json.dumps({function}(*{args!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def brute_force_seconds(n: int) -> float:
    codes = uniform(min(n, 20_000))
    start = time.perf_counter()
    for lo in range(0, len(codes), 2048):
        np.bitwise_count(codes[lo : lo + 2048, None] ^ codes[None, :])
    return (time.perf_counter() - start) / len(codes) ** 2 * n**2


def real_copies() -> None:
    import tempfile

    from gpskit.dataset import Dataset
    from gpskit.dedup import dedup
    from gpskit.ingest import IngestOptions, ingest
    from tests.real_copies import build, score

    shared = ROOT.parent / "shared" / "exif-samples"
    if not shared.is_dir():
        print(f"(no {shared}: the real-copies evaluation needs the team's corpus)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        evalset = build(shared, Path(tmp) / "photos")
        ingest([Path(tmp) / "photos"], Path(tmp) / "ds", IngestOptions())
        dedup(Path(tmp) / "ds", contact_sheet=False)
        table = score(evalset, Dataset(Path(tmp) / "ds").load_duplicates().to_pandas())
    print(table.to_string(index=False))
    print(
        f"recall {table.attrs['recall']:.3f}, pair precision {table.attrs['pair_precision']:.4f} "
        f"({table.attrs['pairs']} pairs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--radius", type=int, default=8)
    parser.add_argument("--dedup-size", type=int, default=100_000)
    parser.add_argument("--real", action="store_true", help="also the real-copies evaluation")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'hashes':>10} {'kind':>10} {'pairs':>10} {'seconds':>8} {'peak GB':>8} {'brute s':>9}")
    for n in sizes:
        for kind in ("uniform", "clustered"):
            r = _in_child("run_index", kind, n, args.radius)
            print(
                f"{n:>10} {kind:>10} {int(r['pairs']):>10} {r['seconds']:>8.2f} "
                f"{r['peak_gb']:>8.2f} {brute_force_seconds(n):>9.0f}",
                flush=True,
            )
    r = _in_child("run_index", "uniform", 20_000, 16)
    print(f"radius 16 on 20,000 uniform hashes: {r['seconds']:.2f} s, peak {r['peak_gb']:.2f} GB")
    n = args.dedup_size
    r = _in_child("run_joins", n)
    print(
        f"joins at {n:,} photos: crops (18 each) {r['crop_s']:.2f} s, dihedral (7 each) "
        f"{r['dihedral_s']:.2f} s, peak {r['peak_gb']:.2f} GB"
    )
    r = _in_child("run_dedup", n)
    print(f"dedup links + groups at {n:,} photos: {r['seconds']:.2f} s, peak {r['peak_gb']:.2f} GB")
    if args.real:
        real_copies()


if __name__ == "__main__":
    main()
