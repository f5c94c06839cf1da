"""Retrieval search speed: gpskit's index (faiss when installed, numpy when not) beside a
bare faiss ``IndexFlatIP``, in one run, interleaved, medians.

Random unit vectors stand in for embeddings (an exact search costs the same whatever they
hold): ``--rows`` training photos of ``--dim`` floats, 1,024 queries, ``k`` = 8.

``--approximate``: the approximate search (gpskit.train.ann) beside a bare faiss
``IndexIVFFlat`` with the same clusters count and nprobe, and both exact searches, on
embeddings shaped like a campus's (an approximate search's recall depends on that): photos
around ``rows / 8`` places, two photos of a place at cosine ~0.6, other places ~0; the
queries are new photos of the same places. Reports the clusters' build time, queries/s and
recall@8 against the exact search.

    python benchmarks/bench_retrieval.py [--rows 100000] [--dim 512] [--runs 3] [--approximate]
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
    parser.add_argument("--approximate", action="store_true")
    parser.add_argument("--graded", action="store_true", help="places grouped into areas")
    args = parser.parse_args()
    if args.approximate:
        approximate(args.rows, args.dim, args.runs, args.graded)
        return
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


def campus(rows: int, dim: int, queries: int, graded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings of photos around rows/8 places, and new photos of the same places.
    ``graded``: places grouped 8 to an area (a building's sides look alike), else every
    place unlike every other."""
    rng = np.random.default_rng(0)
    places = max(1, rows // 8)
    centres = rng.standard_normal((places, dim)).astype(np.float32)
    if graded:
        areas = rng.standard_normal((max(1, places // 8), dim)).astype(np.float32)
        centres = areas[np.arange(places) // 8 % len(areas)] + 0.8 * centres

    def photos(n: int) -> np.ndarray:
        out = np.empty((n, dim), np.float32)
        for lo in range(0, n, 65_536):
            hi = min(n, lo + 65_536)
            picked = centres[rng.integers(0, len(centres), hi - lo)]
            out[lo:hi] = picked + 0.8 * rng.standard_normal((hi - lo, dim)).astype(np.float32)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    return photos(rows), photos(queries)


def approximate(rows: int, dim: int, runs: int, graded: bool) -> None:
    import faiss

    from gpskit.train.ann import Clusters, recall_at_k

    vectors, queries = campus(rows, dim, 1024, graded)
    index = RetrievalIndex(vectors, np.zeros((rows, 2)), np.array([f"p{i}" for i in range(rows)]))
    started = time.perf_counter()
    index.clusters = Clusters.build(vectors, 8)
    build = time.perf_counter() - started
    nlist, nprobe = len(index.clusters.centroids), index.clusters.nprobe
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    _, exact = flat.search(queries, 8)
    started = time.perf_counter()
    coarse = faiss.IndexFlatIP(dim)
    bare = faiss.IndexIVFFlat(coarse, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    bare.train(vectors[np.random.default_rng(1).choice(rows, min(rows, 64 * nlist), replace=False)])
    bare.add(vectors)
    bare.nprobe = nprobe
    bare_build = time.perf_counter() - started
    index.nearest(queries[:1], 8)  # faiss's indexes built from the stored clusters, once
    timings: dict[str, list[float]] = {"faiss IndexFlatIP": [], "faiss IndexIVFFlat": []}
    timings.update({"gpskit approximate": [], "gpskit exact (faiss)": []})
    found: dict[str, np.ndarray] = {}
    for _ in range(runs):
        for name, search in (
            ("faiss IndexFlatIP", lambda: flat.search(queries, 8)[1]),
            ("faiss IndexIVFFlat", lambda: bare.search(queries, 8)[1]),
            ("gpskit approximate", lambda: index.nearest(queries, 8)[0]),
            ("gpskit exact (faiss)", lambda: _exact(index, queries)),
        ):
            started = time.perf_counter()
            found[name] = search()
            timings[name].append(time.perf_counter() - started)
    shape = "places in areas" if graded else "places"
    print(f"{rows:,} x {dim} ({shape}), k=8, 1,024 queries, {os.cpu_count()} cores, ")
    print(f"median of {runs}; {nlist:,} clusters, nprobe {nprobe} (tuned recall "
          f"{index.clusters.tuned_recall:.3f}); clusters built in {build:.1f} s "
          f"(bare faiss train+add {bare_build:.1f} s)")  # fmt: skip
    for name, took in timings.items():
        recall = recall_at_k(found[name], exact)
        print(
            f"  {name:22s} {1024 / statistics.median(took):8.0f} queries/s  recall@8 {recall:.3f}"
        )


def _exact(index: RetrievalIndex, queries: np.ndarray) -> np.ndarray:
    os.environ["GPSKIT_EXACT_SEARCH"] = "1"
    try:
        return index.nearest(queries, 8)[0]
    finally:
        os.environ.pop("GPSKIT_EXACT_SEARCH")


if __name__ == "__main__":
    main()
