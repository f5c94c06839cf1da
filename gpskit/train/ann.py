"""Approximate search for big retrieval indexes: faiss's inverted file (IVF).

Above :data:`APPROX_ROWS` training photos (the size where the exact search stops keeping
up with evaluation: docs/benchmarks.md), training clusters the embeddings once: ``nlist``
centroids (spherical k-means on a sample) and each photo's nearest centroid. A query then
compares itself with the photos of its ``nprobe`` nearest clusters only. ``nprobe`` is
chosen when the clusters are made: the smallest that finds :data:`TARGET_RECALL` of the
exact search's ``k`` nearest neighbours for a sample of the training photos themselves.
``gpskit eval`` measures the same recall on the split it evaluates and reports it.

The clusters are numpy arrays kept in the run's ``retrieval.npz`` (no pickle, no faiss file
format): faiss's index is rebuilt from them in memory, without clustering again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

#: Training photos from which a run builds the approximate index (with faiss installed).
APPROX_ROWS = 250_000
#: Share of the exact search's k nearest neighbours the approximate search must find.
TARGET_RECALL = 0.95
#: Training photos used to choose nprobe (queries against the rest).
TUNING_QUERIES = 1_000
#: Training points per centroid for k-means, and the fewest a cluster is made for (faiss
#: warns below 39).
POINTS_PER_CENTROID = 40
MIN_POINTS = 39
#: The most of the clusters a query may visit for the approximate search to be worth it
#: (above, it costs as much as the exact search: the index keeps searching exactly).
MAX_VISITED_SHARE = 1 / 8


def faiss_module() -> Any:
    """faiss, or None when it is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


@dataclass
class Clusters:
    """The inverted file: coarse centroids, each training photo's cluster, and how many
    clusters a query visits."""

    centroids: npt.NDArray[np.float32]  # (nlist, D), unit length
    lists: npt.NDArray[np.int64]  # (N,), a cluster per training photo
    nprobe: int
    tuned_recall: float  # recall@k found for nprobe when the clusters were made

    @classmethod
    def build(cls, embeddings: npt.NDArray[np.float32], k: int, seed: int = 0) -> Clusters:
        """Cluster ``embeddings`` (unit rows) and choose nprobe for ``k`` neighbours."""
        faiss = faiss_module()
        if faiss is None:
            raise RuntimeError("faiss is not installed")
        n, dim = embeddings.shape
        # ~4 sqrt(N) clusters, each with enough photos to train on (faiss asks for 39)
        nlist = int(max(1, min(4 * math.sqrt(n), 16_384, n // MIN_POINTS)))
        rng = np.random.default_rng(seed)
        sample = embeddings[rng.choice(n, min(n, POINTS_PER_CENTROID * nlist), replace=False)]
        kmeans = faiss.Kmeans(dim, nlist, niter=10, spherical=True, seed=seed, verbose=False)
        kmeans.train(np.ascontiguousarray(sample, np.float32))
        centroids = np.asarray(kmeans.centroids, np.float32)
        coarse = faiss.IndexFlatIP(dim)
        coarse.add(centroids)
        _, nearest = coarse.search(np.ascontiguousarray(embeddings, np.float32), 1)
        clusters = cls(centroids, nearest[:, 0].astype(np.int64), 1, 0.0)
        clusters.tune(embeddings, k, rng)
        return clusters

    def tune(self, embeddings: npt.NDArray[np.float32], k: int, rng: Any) -> None:
        """The smallest nprobe (doubling) that reaches TARGET_RECALL for training photos
        as queries (each one's own row left out of both answers)."""
        faiss = faiss_module()
        picked = rng.choice(len(embeddings), min(len(embeddings), TUNING_QUERIES), replace=False)
        queries = np.ascontiguousarray(embeddings[picked], np.float32)
        exact = faiss.IndexFlatIP(embeddings.shape[1])
        exact.add(np.ascontiguousarray(embeddings, np.float32))
        _, truth = exact.search(queries, k + 1)
        ivf = self.index(embeddings)
        nprobe = 1
        while True:
            ivf.nprobe = nprobe
            _, found = ivf.search(queries, k + 1)
            recall = recall_at_k(_without(found, picked, k), _without(truth, picked, k))
            if recall >= TARGET_RECALL or nprobe >= len(self.centroids):
                self.nprobe, self.tuned_recall = nprobe, recall
                return
            nprobe = min(nprobe * 2, len(self.centroids))

    @property
    def worth_it(self) -> bool:
        """Whether a query visits few enough clusters to beat the exact search."""
        return self.nprobe <= max(1, len(self.centroids) * MAX_VISITED_SHARE)

    def index(self, embeddings: npt.NDArray[np.float32]) -> Any:
        """faiss's IVF index of ``embeddings``, filled from the stored clusters."""
        faiss = faiss_module()
        dim = embeddings.shape[1]
        coarse = faiss.IndexFlatIP(dim)
        coarse.add(np.ascontiguousarray(self.centroids, np.float32))
        ivf = faiss.IndexIVFFlat(coarse, dim, len(self.centroids), faiss.METRIC_INNER_PRODUCT)
        ivf.is_trained = True
        rows = np.ascontiguousarray(embeddings, np.float32)
        lists = np.ascontiguousarray(self.lists, np.int64)
        ivf.add_core(len(rows), faiss.swig_ptr(rows), None, faiss.swig_ptr(lists))
        ivf.nprobe = self.nprobe
        ivf.own_fields = True  # the index owns its quantizer (faiss's documented way)
        coarse.this.disown()
        return ivf

    def problem(self, rows: int, dim: int) -> str | None:
        """What is wrong with clusters read from a file for ``rows`` embeddings of ``dim``."""
        nlist = len(self.centroids)
        if self.centroids.ndim != 2 or self.centroids.shape[1] != dim or nlist == 0:
            return "the clusters' centroids do not match the embeddings"
        if self.lists.shape != (rows,) or (
            rows and not 0 <= self.lists.min() <= self.lists.max() < nlist
        ):
            return "the clusters' lists do not match the embeddings"
        if not 1 <= self.nprobe <= nlist:
            return f"nprobe {self.nprobe} is not between 1 and {nlist}"
        return None


def recall_at_k(found: npt.NDArray[np.int64], exact: npt.NDArray[np.int64]) -> float:
    """Mean share of each query's exact k nearest rows that the search found (-1: none)."""
    if not len(exact):
        return 1.0
    hits = sum(len(set(a[a >= 0]) & set(e[e >= 0])) for a, e in zip(found, exact, strict=True))
    wanted = int((exact >= 0).sum())
    return hits / wanted if wanted else 1.0


def _without(rows: npt.NDArray[np.int64], own: npt.NDArray[Any], k: int) -> npt.NDArray[np.int64]:
    """Each query's rows without its own row, cut to ``k``."""
    out = np.full((len(rows), k), -1, np.int64)
    for i, (found, me) in enumerate(zip(rows, own, strict=True)):
        others = found[found != me][:k]
        out[i, : len(others)] = others
    return out
