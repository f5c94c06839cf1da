"""Near-duplicate grouping time for 10k, 100k and 1M perceptual hashes.

Random 64-bit hashes with 1 % planted near-duplicates (0-7 bits flipped), grouped at the
default radius (8 bits): exact multi-index search (``gpskit.hashindex.self_join``) plus
connected components. Beside it a brute-force all-pairs popcount baseline where it is
feasible (measured at 10k, extrapolated as n² above), and the crop comparison (each hash
against 9 crop hashes per photo) at 10k and 100k.

    python benchmarks/bench_dedup.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from gpskit.graph import connected_components
from gpskit.hashindex import cross_join, self_join


def planted_codes(n: int, seed: int = 0) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)
    k = n // 100
    copies = base[rng.integers(0, n, k)].copy()
    flips = rng.integers(0, 8, k)
    for i in range(k):
        for bit in rng.choice(64, flips[i], replace=False):
            copies[i] ^= np.uint64(1) << np.uint64(bit)
    return np.concatenate([base, copies]), k


def brute_force(codes: np.ndarray, radius: int, block: int = 2048) -> int:
    found = 0
    for lo in range(0, len(codes), block):
        d = np.bitwise_count(codes[lo : lo + block, None] ^ codes[None, :])
        found += int((d <= radius).sum())
    return (found - len(codes)) // 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--radius", type=int, default=8)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{'hashes':>10} {'pairs':>9} {'planted found':>14} {'group s':>9} {'brute s':>9} "
        f"{'crop join s':>12}"
    )
    brute_per_pair = None
    previous = None
    for n in sizes:
        codes, planted = planted_codes(n)
        start = time.perf_counter()
        a, b, _ = self_join(codes, args.radius)
        labels = connected_components(len(codes), a, b)
        elapsed = time.perf_counter() - start
        found = int((labels[n:] != np.arange(n, n + planted)).sum())
        if brute_per_pair is None and n <= 20_000:
            t0 = time.perf_counter()
            brute_pairs = brute_force(codes, args.radius)
            brute = time.perf_counter() - t0
            brute_per_pair = brute / len(codes) ** 2
            assert brute_pairs == len(a), (brute_pairs, len(a))
            brute_text = f"{brute:9.2f}"
        elif brute_per_pair is not None:
            brute_text = f"~{brute_per_pair * len(codes) ** 2:8.0f}"
        else:
            brute_text = f"{'-':>9}"
        crop_text = f"{'-':>12}"
        if n <= 100_000:
            rng = np.random.default_rng(1)
            crops = rng.integers(0, 2**64 - 1, size=9 * len(codes), dtype=np.uint64)
            t0 = time.perf_counter()
            cross_join(codes, crops, 6)
            crop_text = f"{time.perf_counter() - t0:12.2f}"
        print(
            f"{len(codes):>10} {len(a):>9} {found:>7}/{planted:<6} {elapsed:9.2f} {brute_text} {crop_text}",
            flush=True,
        )
        if previous is not None:
            n0, t0_ = previous
            exponent = math.log(elapsed / t0_) / math.log(len(codes) / n0)
            print(f"{'':>10} scaling exponent vs previous size: {exponent:.2f} (n log n ≈ 1.1)")
        previous = (len(codes), elapsed)


if __name__ == "__main__":
    main()
