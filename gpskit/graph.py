"""Graph helpers shared by dedup (duplicate groups) and coverage (spots)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def connected_components(
    n: int, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Component label (smallest member) of each of n nodes, by vectorised label propagation."""
    labels = np.arange(n, dtype=np.int64)
    if not len(a):
        return labels
    while True:
        low = np.minimum(labels[a], labels[b])
        before = labels.copy()
        np.minimum.at(labels, a, low)
        np.minimum.at(labels, b, low)
        labels = labels[labels]  # pointer jumping
        if np.array_equal(labels, before):
            return labels


def pairs_within(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], radius: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """All pairs (i < j) of points closer than ``radius`` (grid hashing; exact)."""
    n = len(x)
    if n < 2 or radius <= 0:
        empty = np.empty(0, np.int64)
        return empty, empty.copy()
    cx = np.floor(x / radius).astype(np.int64)
    cy = np.floor(y / radius).astype(np.int64)
    cx -= cx.min()
    cy -= cy.min()
    width = int(cy.max()) + 3
    key = (cx + 1) * width + (cy + 1)
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    found_a, found_b = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            target = key + dx * width + dy
            left = np.searchsorted(sorted_keys, target, "left")
            counts = np.searchsorted(sorted_keys, target, "right") - left
            total = int(counts.sum())
            if not total:
                continue
            i = np.repeat(np.arange(n), counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            j = order[np.repeat(left, counts) + offsets]
            keep = (i < j) & (np.hypot(x[i] - x[j], y[i] - y[j]) <= radius)
            found_a.append(i[keep])
            found_b.append(j[keep])
    a = np.concatenate(found_a) if found_a else np.empty(0, np.int64)
    b = np.concatenate(found_b) if found_b else np.empty(0, np.int64)
    return a.astype(np.int64), b.astype(np.int64)
