"""Perceptual hashes as searchable sets, and the one search every perceptual link uses.

A :class:`HashSet` is one kind of hash of some photos (the whole photo, the photo turned
or mirrored, the picture inside its borders, its crops), each entry with the row it
belongs to. :func:`join` finds the entries of two sets within a radius (64-bit, by the
exact Hamming index) and keeps those the 256-bit hashes confirm: the same tail for every
link and for both a dataset's own search and a search against another dataset.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.dedup.options import DedupOptions
from gpskit.hashindex import cross_join, hex_to_u64, self_join
from gpskit.imaging import DIHEDRAL


@dataclass(frozen=True)
class HashSet:
    """Hash entries: the row each belongs to, the 64-bit hash, the 256-bit one (``(n, 5)``,
    a fifth column of 1 where unknown) and the transform code that made it (0: none)."""

    rows: npt.NDArray[np.int64]
    short: npt.NDArray[np.uint64]
    long: npt.NDArray[np.uint64]
    transform: npt.NDArray[np.int8]

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


def _hash_set(rows: Any, short: Any, long: Any, transform: Any = None) -> HashSet:
    rows = np.asarray(rows, np.int64)
    codes = np.zeros(len(rows), np.int8) if transform is None else np.asarray(transform, np.int8)
    return HashSet(rows, hex_to_u64(list(short)), long_hashes(long), codes)


def hashed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that have a perceptual hash (decoded images)."""
    return frame[frame.phash.notna()]


def whole(frame: pd.DataFrame) -> HashSet:
    """Each photo's hash, as it is shown (rows with a hash: see :func:`hashed`)."""
    return _hash_set(frame.index.to_numpy(), frame.phash.tolist(), frame.phash256)


def turned(frame: pd.DataFrame) -> HashSet:
    """Every turned or mirrored hash, with the transform that made it."""
    owners: list[int] = []
    codes: list[int] = []
    short: list[str] = []
    long: list[Any] = []
    if "dihedral_hashes" not in frame:  # a manifest from before version 3
        frame = frame.assign(dihedral_hashes=None, dihedral_phash256=None)
    for row, hashes, longs in zip(
        frame.index, frame.dihedral_hashes, frame.dihedral_phash256, strict=True
    ):
        if hashes is None or len(hashes) != len(DIHEDRAL):
            continue
        owners += [row] * len(DIHEDRAL)
        codes += range(1, len(DIHEDRAL) + 1)
        short += list(hashes)
        have = longs is not None and len(longs) == len(hashes)
        long += list(longs) if have else [None] * len(hashes)
    return _hash_set(owners, short, long, codes)


def trimmed(frame: pd.DataFrame) -> HashSet:
    """The hashes of the picture inside uniform borders, of the photos that have borders."""
    if "trimmed_phash" not in frame:
        return _hash_set([], [], [])
    bordered = frame[frame.trimmed_phash.notna()]
    return _hash_set(
        bordered.index.to_numpy(np.int64),
        bordered.trimmed_phash.tolist(),
        bordered.trimmed_phash256,
    )


def crops(frame: pd.DataFrame) -> HashSet:
    """Every crop hash with its owner row and its 256-bit twin."""
    lists = frame.crop_hashes
    counts = lists.map(len).to_numpy()
    if not counts.sum():
        return _hash_set([], [], [])
    owners = np.repeat(frame.index.to_numpy(), counts)
    flat = list(itertools.chain.from_iterable(lists))
    long_flat: list[Any] = []
    for hashes, longs in zip(lists, frame.crop_phash256, strict=False):
        have = longs is not None and len(longs) == len(hashes)
        long_flat.extend(longs if have else [None] * len(hashes))
    return _hash_set(owners, flat, long_flat)


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
    when ``index`` is None), confirmed by the 256-bit hashes. ``a`` is the query's row,
    ``b`` the index's, ``transform`` the query entry's."""
    if index is None:
        q, i, d = self_join(query.short, radius) if len(query) else _no_hits()
        index = query
    else:
        q, i, d = (
            cross_join(query.short, index.short, radius)
            if len(query) and len(index)
            else _no_hits()
        )
    ok = confirmed(query.long[q], index.long[i], options)
    q, i = q[ok], i[ok]
    return Pairs(query.rows[q], index.rows[i], query.transform[q], np.asarray(d[ok], np.int64))


def _no_hits() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    empty = np.empty(0, np.int64)
    return empty, empty, empty
