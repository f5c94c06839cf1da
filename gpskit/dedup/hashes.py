"""Perceptual hashes as searchable sets, and the one search every perceptual link uses.

A :class:`HashSet` is one kind of hash of some photos (the whole photo, the photo turned
or mirrored, the picture inside its borders, its crops), each entry with the row it
belongs to. :func:`join` finds the entries of two sets within a radius (64-bit, by the
exact Hamming index) and keeps those the 256-bit hashes confirm: the same tail for every
link and for both a dataset's own search and a search against another dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

import gpskit.dedup.nearby as nearby
from gpskit.dedup.lists import ListedLong, flat_codes
from gpskit.dedup.options import DedupOptions
from gpskit.hashindex import hex_to_u64
from gpskit.imaging import DIHEDRAL

#: Where a frame read from a manifest keeps its :class:`~gpskit.dedup.lists.ManifestSource`
#: (``frame.attrs``), for the 256-bit hashes of list entries read when needed.
SOURCE = "gpskit_manifest"


@dataclass(frozen=True)
class HashSet:
    """Hash entries: the row each belongs to, the 64-bit hash, the 256-bit one (``(n, 5)``,
    a fifth column of 1 where unknown; read from the manifest when indexed, for lists) and
    the transform code that made it (0: none), and where the rows were taken."""

    rows: npt.NDArray[np.int64]
    short: npt.NDArray[np.uint64]
    long: npt.NDArray[np.uint64] | ListedLong
    transform: npt.NDArray[np.int8]
    where: nearby.Where

    def located(self) -> nearby.Located:
        return nearby.Located(self.short, self.rows, self.where)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class Pairs:
    """Matches between rows ``a`` and ``b``: b looks like a turned by ``transform`` (a
    code), at ``distance`` bits of the 64-bit hashes (0 for exact matches)."""

    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    transform: npt.NDArray[np.int8]
    distance: npt.NDArray[np.int64]

    def swapped(self, inverse: npt.NDArray[np.int8]) -> Pairs:
        """The same matches seen from the other side (``inverse``: the inverse of each code)."""
        return Pairs(self.b, self.a, inverse[self.transform], self.distance)


def _hash_set(
    frame: pd.DataFrame, rows: Any, short: Any, long: Any, transform: Any = None
) -> HashSet:
    rows = np.asarray(rows, np.int64)
    codes = np.zeros(len(rows), np.int8) if transform is None else np.asarray(transform, np.int8)
    short = short if isinstance(short, np.ndarray) else hex_to_u64(list(short))
    long = long if isinstance(long, (np.ndarray, ListedLong)) else long_hashes(long)
    return HashSet(rows, short, long, codes, nearby.Where.of(frame))


def hashed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that have a perceptual hash (decoded images); the frame itself when all
    have one (a copy of a 10M-row frame is gigabytes)."""
    has = frame.phash.notna()
    return frame if bool(has.all()) else frame[has]


def whole(frame: pd.DataFrame) -> HashSet:
    """Each photo's hash, as it is shown (rows with a hash: see :func:`hashed`)."""
    return _hash_set(frame, frame.index.to_numpy(), frame.phash.tolist(), frame.phash256)


def turned(frame: pd.DataFrame) -> HashSet:
    """Every turned or mirrored hash, with the transform that made it (photos with all
    seven)."""
    if "dihedral_hashes" not in frame:  # a manifest from before version 3
        return _hash_set(frame, [], [], [])
    at, position, codes = flat_codes(frame.dihedral_hashes)
    complete = np.bincount(at, minlength=len(frame)) == len(DIHEDRAL)
    keep = complete[at]
    at, position, codes = at[keep], position[keep], codes[keep]
    rows = frame.index.to_numpy(np.int64)[at]
    long = _listed_long(frame, "dihedral_phash256", at, position)
    return _hash_set(frame, rows, codes, long, position + 1)


def trimmed(frame: pd.DataFrame) -> HashSet:
    """The hashes of the picture inside uniform borders, of the photos that have borders."""
    if "trimmed_phash" not in frame:
        return _hash_set(frame, [], [], [])
    bordered = frame[frame.trimmed_phash.notna()]
    return _hash_set(
        frame,
        bordered.index.to_numpy(np.int64),
        bordered.trimmed_phash.tolist(),
        bordered.trimmed_phash256,
    )


def crops(frame: pd.DataFrame) -> HashSet:
    """Every crop hash with its owner row and its 256-bit twin."""
    if "crop_hashes" not in frame:
        return _hash_set(frame, [], [], [])
    at, position, codes = flat_codes(frame.crop_hashes)
    rows = frame.index.to_numpy(np.int64)[at]
    del at  # 180M entries at 10M photos: one array of rows at a time
    long = _listed_long(frame, "crop_phash256", rows, position, labels=True)
    return _hash_set(frame, rows, codes, long)


def _listed_long(
    frame: pd.DataFrame,
    column: str,
    at: npt.NDArray[np.int64],
    position: npt.NDArray[np.int64],
    labels: bool = False,
) -> npt.NDArray[np.uint64] | ListedLong:
    """The 256-bit twins of list entries (row ``at``, a position in the frame or, with
    ``labels``, a row label; ``position`` in its list): from the frame where it holds
    them, else read from its manifest when a search needs them."""
    if labels and (column in frame or frame.attrs.get(SOURCE) is None):
        at = frame.index.get_indexer(pd.Index(at)).astype(np.int64)
    if column in frame:
        lists = frame[column].tolist()
        values = []
        for row, slot in zip(at.tolist(), position.tolist(), strict=True):
            entries = lists[row]
            values.append(entries[slot] if entries is not None and slot < len(entries) else None)
        return long_hashes(values)
    source = frame.attrs.get(SOURCE)
    if source is None:
        return long_hashes([None] * len(at))
    rows = at if labels else frame.index.to_numpy(np.int64)[at]
    return ListedLong(source, column, rows, position.astype(np.int32))


def long_hashes(values: Any) -> npt.NDArray[np.uint64]:
    """256-bit hashes as (n, 4) uint64; a missing hash is all ones in a fifth column."""
    values = list(values)
    out = np.zeros((len(values), 5), np.uint64)
    valid = np.array([isinstance(v, (bytes, bytearray)) and len(v) == 32 for v in values], bool)
    if valid.any():
        joined = b"".join(v for v, ok in zip(values, valid, strict=True) if ok)
        out[valid, :4] = np.frombuffer(joined, dtype=">u8").reshape(-1, 4)
    out[~valid, 4] = 1
    return out


def confirmed(
    left: npt.NDArray[np.uint64], right: npt.NDArray[np.uint64], options: DedupOptions
) -> npt.NDArray[np.bool_]:
    """True where the 256-bit hashes agree (or one is unknown: nothing to contradict)."""
    if options.confirm_bits is None or not len(left):
        return np.ones(len(left), bool)
    distance = np.bitwise_count(left[:, :4] ^ right[:, :4]).sum(axis=1)
    unknown = (left[:, 4] == 1) | (right[:, 4] == 1)
    agreed: npt.NDArray[np.bool_] = unknown | (distance <= options.confirm_bits)
    return agreed


def join(query: HashSet, index: HashSet | None, radius: int, options: DedupOptions) -> Pairs:
    """Entries of ``query`` within ``radius`` bits of entries of ``index`` (of each other
    when ``index`` is None), among photos within ``options.within_m`` of each other where
    both positions are known (:mod:`gpskit.dedup.nearby`), confirmed by the 256-bit hashes.
    ``a`` is the query's row, ``b`` the index's, ``transform`` the query entry's."""
    if not len(query) or (index is not None and not len(index)):
        q, i, d = _no_hits()
    else:
        located = None if index is None else index.located()
        q, i, d = nearby.join(query.located(), located, radius, options.within_m)  # type: ignore[assignment]
    index = query if index is None else index
    ok = confirmed(query.long[q], index.long[i], options)
    q, i = q[ok], i[ok]
    return Pairs(query.rows[q], index.rows[i], query.transform[q], np.asarray(d[ok], np.int64))


def _no_hits() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    empty = np.empty(0, np.int64)
    return empty, empty, empty
