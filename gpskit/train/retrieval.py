"""Retrieval: where were the most similar training photos taken? (im2gps, Vo et al. 2017)

After training, every training photo is embedded once with the trained backbone (its
pooled features, L2-normalised: see :class:`~gpskit.train.model.Descriptor`) and stored in
the run (``retrieval.npz``: embeddings as float16, their standardised positions, their
paths, headings, and which descriptor made them, so queries are made the same way). A new photo's position is the
similarity-weighted mean of its ``k`` nearest training photos' positions: at the scale of
a campus, where a test spot sits metres from training spots, that beats regressing
coordinates. An exact match (a training photo itself) returns its own position.

Phones record the compass heading (EXIF ``GPSImgDirection``). A photo facing north looks at
other buildings than one facing south from the same spot, so with a ``window`` the
neighbours are drawn only from training photos facing within that many degrees of the
query (when both headings are known and at least ``k`` such photos exist).

The search is exact. With ``faiss`` installed (``gpskit[faiss]``) it runs on faiss's
``IndexFlatIP`` (the same inner products, 2-3x faster on 2 cores: docs/benchmarks.md);
numpy stays the fallback, and the heading window always uses numpy (it rules photos out
before ranking). ``GPSKIT_NO_FAISS=1`` forces numpy. The index file stays numpy's (no
pickle): faiss's index is built from it in memory when first queried. Indexes of more than
:data:`~gpskit.train.ann.APPROX_ROWS` photos also keep clusters for an approximate search
(:mod:`~gpskit.train.ann`), used where faiss is installed; ``GPSKIT_EXACT_SEARCH=1``
searches them exactly, and ``gpskit eval`` reports the approximate search's recall.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gpskit import paths
from gpskit.atomic import atomic_path
from gpskit.errors import InputError
from gpskit.runfolder import INDEX_FILE
from gpskit.train import require_torch
from gpskit.train.ann import APPROX_ROWS, Clusters, faiss_module, recall_at_k
from gpskit.train.model import DESCRIPTOR, Descriptor, features

#: Softmax temperature of the cosine similarities that weight the neighbours.
TEMPERATURE = 0.02
#: Cosine similarity within this of 1 is the same photo (float16 storage costs ~1e-7).
EXACT = 1e-5
#: Queries compared at once (bounds memory: chunk x index size floats).
QUERY_CHUNK = 256
#: Heading window (degrees either side) tried against none when a run picks its method.
HEADING_WINDOW = 90.0


def embed(
    model: Any, loader: Any, device: Any, views: Any = None, descriptor: str = DESCRIPTOR
) -> npt.NDArray[np.float32]:
    """L2-normalised backbone features of every item of ``loader``, in dataset order
    (``views``: a function giving test-time augmented batches to average over)."""
    torch, _ = require_torch()
    model.eval()
    out, order = [], []
    with torch.no_grad():
        for images, _, index in loader:
            batches = views(images) if views is not None else [images]
            vectors = sum(
                torch.nn.functional.normalize(
                    features(model, b.to(device), descriptor).float(), dim=1
                )
                for b in batches
            )
            out.append(torch.nn.functional.normalize(vectors, dim=1).cpu())
            order.append(index)
    if not out:
        return np.zeros((0, 0), np.float32)
    stacked = torch.cat(out)[torch.cat(order).argsort()]
    result: npt.NDArray[np.float32] = stacked.numpy().astype(np.float32)
    return result


@dataclass
class RetrievalIndex:
    """Training photos' embeddings and standardised positions."""

    embeddings: npt.NDArray[np.float32]  # (N, D), unit length
    positions: npt.NDArray[np.float64]  # (N, 2), standardised east/north
    paths: npt.NDArray[np.str_]
    headings: npt.NDArray[np.float64] | None = None  # (N,), degrees; NaN: unknown
    descriptor: str = DESCRIPTOR  # how the embeddings were made (see Descriptor)
    clusters: Clusters | None = None  # for the approximate search of big indexes
    _flat: Any = field(default=None, init=False, repr=False, compare=False)  # faiss's index
    _ivf: Any = field(default=None, init=False, repr=False, compare=False)
    #: with audit on: [rows found, rows wanted] by the approximate search, against exact
    _audit: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.headings is None:
            self.headings = np.full(len(self.embeddings), np.nan)
        self.headings = np.asarray(self.headings, dtype=np.float64)

    def save(self, run_dir: Path) -> Path:
        target = run_dir / INDEX_FILE
        arrays: dict[str, Any] = {
            "embeddings": self.embeddings.astype(np.float16),
            "positions": self.positions,
            "paths": self.paths.astype(str),
            "headings": np.asarray(self.headings, dtype=np.float64),
            "descriptor": np.array(self.descriptor),
            **(self._cluster_arrays() if self.clusters is not None else {}),
        }
        with atomic_path(target) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return target

    def _cluster_arrays(self) -> dict[str, npt.NDArray[Any]]:
        assert self.clusters is not None
        return {
            "ivf_centroids": self.clusters.centroids.astype(np.float32),
            "ivf_lists": self.clusters.lists.astype(np.int32),
            "ivf_nprobe": np.array(self.clusters.nprobe),
            "ivf_recall": np.array(self.clusters.tuned_recall),
        }

    def cluster_if_large(self, k: int) -> bool:
        """Make the approximate search's clusters when the index is big enough to need
        them and faiss is installed (see :mod:`~gpskit.train.ann`)."""
        if len(self.embeddings) < APPROX_ROWS or faiss_module() is None:
            return False
        clusters = Clusters.build(self.embeddings, max(1, k))
        self.clusters = clusters if clusters.worth_it else None  # else exact stays faster
        self._ivf = None
        return self.clusters is not None

    @classmethod
    def load(cls, run_dir: Path) -> RetrievalIndex | None:
        path = run_dir / INDEX_FILE
        found = paths.kind(path)
        if found == paths.MISSING:
            return None
        if found != paths.FILE:  # a FIFO would block the read forever
            raise _unreadable(path, f"it is {found}, not a file")
        try:
            _check_sizes(path)
            with np.load(path, allow_pickle=False) as data:
                index = cls(
                    data["embeddings"].astype(np.float32),
                    data["positions"].astype(np.float64),
                    data["paths"].astype(str),
                    data["headings"] if "headings" in data.files else None,
                    # indexes from before descriptors were recorded: the last block's
                    str(data["descriptor"]) if "descriptor" in data.files else "layer4",
                    _clusters(data),
                )
        except (OSError, ValueError, KeyError, TypeError, MemoryError, zipfile.BadZipFile) as exc:
            raise _unreadable(path, f"not a readable retrieval index ({exc})") from None
        if index.descriptor not in {d.value for d in Descriptor}:
            raise InputError(
                f"{path}: made with descriptor {index.descriptor!r}, which this gpskit does "
                "not know",
                hint="upgrade gpskit, or train the run again",
            )
        n = len(index.embeddings)
        if (
            index.embeddings.ndim != 2
            or index.positions.shape != (n, 2)
            or len(index.paths) != n
            or np.asarray(index.headings).shape != (n,)
        ):
            raise _unreadable(path, "embeddings, positions and paths disagree in shape")
        if not n or not index.embeddings.shape[1]:
            raise _unreadable(path, "it holds no training photos")
        if not (np.isfinite(index.embeddings).all() and np.isfinite(index.positions).all()):
            raise _unreadable(path, "it holds numbers that are not finite")
        # stored as float16: unit length again, so a training photo's own vector scores 1
        norms = np.linalg.norm(index.embeddings, axis=1, keepdims=True)
        index.embeddings /= np.maximum(norms, 1e-12)
        wrong = index.clusters.problem(n, index.embeddings.shape[1]) if index.clusters else None
        if wrong:
            raise _unreadable(path, wrong)
        return index

    def query(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        headings: npt.ArrayLike | None = None,
        window: float | None = None,
    ) -> npt.NDArray[np.float64]:
        """Standardised positions of ``queries`` (unit vectors) from their ``k`` nearest
        training photos, weighted by a softmax of their cosine similarities; with
        ``headings`` (degrees, NaN unknown) and ``window``, only photos facing the same way."""
        top, weights, _ = self.nearest(queries, k, headings, window)
        out: npt.NDArray[np.float64] = (weights[..., None] * self.positions[top]).sum(axis=1)
        return out

    def nearest(
        self,
        queries: npt.NDArray[np.float32],
        k: int,
        headings: npt.ArrayLike | None = None,
        window: float | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The ``k`` training photos each query's position is made from: their rows (most
        similar first), their weights (summing to 1) and cosine similarities."""
        k = max(1, min(k, len(self.embeddings)))
        if queries.ndim != 2 or queries.shape[1] != self.embeddings.shape[1]:
            raise InputError(
                f"the retrieval index holds embeddings of {self.embeddings.shape[1]} numbers, "
                f"this model makes {queries.shape[-1]}: it was made by another model",
                hint="train the run again, or predict with --method head",
            )
        rows = np.zeros((len(queries), k), np.int64)
        weights = np.zeros((len(queries), k))
        similarity = np.zeros((len(queries), k))
        facing = None if headings is None else np.asarray(headings, dtype=np.float64)
        windowed = facing is not None and window is not None and window < 180
        searcher = None if windowed else self._searcher()
        for lo in range(0, len(queries), QUERY_CHUNK):
            chunk = queries[lo : lo + QUERY_CHUNK]
            if searcher is not None:
                top, top_sims = self._faiss_top(searcher, chunk, k)
            else:
                top, top_sims = self._numpy_top(chunk, k, facing, lo, window if windowed else None)
            w = np.exp((top_sims - top_sims.max(axis=1, keepdims=True)) / TEMPERATURE)
            exact = top_sims >= 1.0 - EXACT  # the query is a training photo itself
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), w)
            w /= w.sum(axis=1, keepdims=True)
            end = lo + len(chunk)
            rows[lo:end], weights[lo:end], similarity[lo:end] = top, w, top_sims
        return rows, weights, similarity

    def _numpy_top(
        self,
        chunk: npt.NDArray[np.float32],
        k: int,
        facing: npt.NDArray[np.float64] | None,
        lo: int,
        window: float | None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
        """The ``k`` most similar rows of each query (most similar first), by numpy."""
        sims = chunk @ self.embeddings.T
        if facing is not None and window is not None:
            sims = self._same_way(sims, facing[lo : lo + len(chunk)], window, k)
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        return np.take_along_axis(top, order, 1), np.take_along_axis(top_sims, order, 1)

    def _searcher(self) -> Any:
        """faiss's index to search (None: numpy searches): the approximate one where the
        index has clusters, unless ``GPSKIT_EXACT_SEARCH=1``."""
        if self.clusters is not None and os.environ.get("GPSKIT_EXACT_SEARCH") != "1":
            if self._ivf is None and self._faiss() is not None:
                self._ivf = self.clusters.index(self.embeddings)
            if self._ivf is not None:
                return self._ivf
        return self._faiss()

    def _faiss(self) -> Any:
        """faiss's exact inner-product index of the embeddings (None: numpy searches)."""
        if self._flat is None and len(self.embeddings) and os.environ.get("GPSKIT_NO_FAISS") != "1":
            faiss = faiss_module()
            if faiss is None:
                return None
            flat = faiss.IndexFlatIP(self.embeddings.shape[1])
            flat.add(np.ascontiguousarray(self.embeddings, np.float32))
            self._flat = flat
        return self._flat

    def _faiss_top(
        self, searcher: Any, chunk: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The k nearest rows by faiss (an approximate search may find fewer: the rest are
        filled with the nearest it found, at no weight)."""
        rows = np.ascontiguousarray(chunk, np.float32)
        found_sims, found = searcher.search(rows, k)
        top, top_sims = found.astype(np.int64), found_sims.astype(np.float64)
        if searcher is self._ivf and self._audit is not None:
            _, exact = self._faiss().search(rows, k)
            self._audit[0] += round(recall_at_k(top, exact) * int((exact >= 0).sum()))
            self._audit[1] += int((exact >= 0).sum())
        missing = top < 0
        if missing.any():  # a visited cluster held fewer than k photos
            top = np.where(missing, top[:, :1], top)
            top_sims = np.where(missing, -np.inf, top_sims)
        return top, top_sims

    def audit(self) -> None:
        """From now on, measure the approximate search against the exact one."""
        self._audit = [0, 0]

    def search_report(self) -> dict[str, Any]:
        """How the searches were made: exact or approximate (its clusters, nprobe, the
        recall measured when it was tuned and, after :meth:`audit`, on the queries)."""
        if self.clusters is None or self._ivf is None:
            engine = "numpy" if self._flat is None else "faiss"
            return {"search": "exact", "engine": engine, "rows": len(self.embeddings)}
        hits, wanted = self._audit or (0, 0)
        return {
            "search": "approximate (faiss IVF)",
            "rows": len(self.embeddings),
            "clusters": len(self.clusters.centroids),
            "nprobe": self.clusters.nprobe,
            "recall_at_k_tuned": round(self.clusters.tuned_recall, 4),
            "recall_at_k": round(hits / wanted, 4) if wanted else None,
        }

    def _same_way(
        self, sims: npt.NDArray[Any], facing: npt.NDArray[np.float64], window: float, k: int
    ) -> npt.NDArray[Any]:
        """``sims`` with training photos facing more than ``window`` degrees away from each
        query ruled out (kept where either heading is unknown, or fewer than ``k`` remain)."""
        turn = np.abs(
            (facing[:, None] - np.asarray(self.headings)[None, :] + 180.0) % 360.0 - 180.0
        )
        away = turn > window  # NaN compares False: unknown headings stay in
        enough = (~away).sum(axis=1) >= k
        return np.where(away & enough[:, None], -np.inf, sims)


def _clusters(data: Any) -> Clusters | None:
    """The approximate search's clusters kept in an index file, if any."""
    if "ivf_centroids" not in data.files:
        return None
    return Clusters(
        data["ivf_centroids"].astype(np.float32),
        data["ivf_lists"].astype(np.int64),
        int(data["ivf_nprobe"]),
        float(data["ivf_recall"]),
    )


def _unreadable(path: Path, why: str) -> InputError:
    return InputError(
        f"{path}: {why}",
        hint="delete it to predict with the head alone, or train the run again",
    )


def _check_sizes(path: Path) -> None:
    """Refuse arrays whose headers claim more bytes than the file holds (a damaged or
    hostile index would otherwise ask for any amount of memory before failing)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }.get(version)
                if read is None:
                    raise ValueError(f"{info.filename}: .npy version {version}")
                shape, _, dtype = read(member)
            claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if claimed > info.file_size:
                raise ValueError(f"{info.filename} claims {claimed:,} bytes in {info.file_size:,}")
