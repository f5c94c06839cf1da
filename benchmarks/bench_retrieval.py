"""Retrieval search speed: gpskit's index (faiss when installed, numpy when not) beside a
bare faiss ``IndexFlatIP``, in one run, interleaved, medians.

Random unit vectors stand in for embeddings (an exact search costs the same whatever they
hold): ``--rows`` training photos of ``--dim`` floats, 1,024 queries, ``k`` = 8.

    python benchmarks/bench_retrieval.py [--rows 100000] [--dim 512] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from gpskit.train.retrieval import RetrievalIndex


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((1024, args.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    positions = rng.uniform(-1, 1, (args.rows, 2))
    paths = np.array([f"p{i}" for i in range(args.rows)])
    import faiss

    bare = faiss.IndexFlatIP(args.dim)
    bare.add(vectors)
    timings: dict[str, list[float]] = {
        "faiss IndexFlatIP": [],
        "gpskit (faiss)": [],
        "gpskit (numpy)": [],
    }
    for _ in range(args.runs):
        started = time.perf_counter()
        bare.search(queries, 8)
        timings["faiss IndexFlatIP"].append(time.perf_counter() - started)
        os.environ.pop("GPSKIT_NO_FAISS", None)
        index = RetrievalIndex(vectors, positions, paths)
        started = time.perf_counter()
        index.nearest(queries[:1], 8)  # faiss's index is built on the first query, once
        timings.setdefault("gpskit faiss build (s)", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        index.nearest(queries, 8)
        timings["gpskit (faiss)"].append(time.perf_counter() - started)
        os.environ["GPSKIT_NO_FAISS"] = "1"
        index = RetrievalIndex(vectors, positions, paths)
        started = time.perf_counter()
        index.nearest(queries, 8)
        timings["gpskit (numpy)"].append(time.perf_counter() - started)
    print(
        f"{args.rows:,} x {args.dim}, k=8, 1,024 queries, {os.cpu_count()} cores, median of {args.runs}:"
    )
    for name, took in timings.items():
        if name.endswith("(s)"):
            print(f"  {name:18s} {statistics.median(took):8.2f} s, once per loaded model")
        else:
            print(f"  {name:18s} {1024 / statistics.median(took):8.0f} queries/s")


if __name__ == "__main__":
    main()
