"""Units and their assignment to splits.

A unit is what never straddles two splits: a spot (merged with every spot that shares a
duplicate group with it), a square block, or one photo (random). Units are taken in the
order of a Hilbert curve over their positions (shuffled within short runs by the seed)
and each goes to the split furthest below its target share, so every neighbourhood feeds
every split and the ratios hold within one unit's worth.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.graph import connected_components
from gpskit.split.options import SplitOptions, Strategy


def _hilbert_index(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], order: int = 16
) -> npt.NDArray[np.int64]:
    """Position along a Hilbert curve over the bounding box (vectorised)."""
    n = 1 << order
    span_x = max(float(np.ptp(x)), 1e-9)
    span_y = max(float(np.ptp(y)), 1e-9)
    xi = np.clip(((x - x.min()) / span_x * (n - 1)).astype(np.int64), 0, n - 1)
    yi = np.clip(((y - y.min()) / span_y * (n - 1)).astype(np.int64), 0, n - 1)
    d = np.zeros(len(x), np.int64)
    s = n >> 1
    while s > 0:
        rx = (xi & s) > 0
        ry = (yi & s) > 0
        d += s * s * ((3 * rx) ^ ry)
        # rotate the quadrant
        flip = ~ry
        swap_x = np.where(flip & rx, s - 1 - xi, xi)
        swap_y = np.where(flip & rx, s - 1 - yi, yi)
        xi = np.where(flip, swap_y, swap_x)
        yi = np.where(flip, swap_x, swap_y)
        s >>= 1
    return d


def unit_labels(frame: pd.DataFrame, options: SplitOptions) -> npt.NDArray[np.int64]:
    """Unit per row, duplicate groups merged into one unit."""
    n = len(frame)
    if options.strategy == Strategy.SPOT.value:
        base = frame.spot_id.to_numpy(np.int64)
    elif options.strategy == Strategy.BLOCK.value:
        col = np.floor(frame.x_m.to_numpy(float) / options.block_m).astype(np.int64)
        row = np.floor(frame.y_m.to_numpy(float) / options.block_m).astype(np.int64)
        base = pd.factorize(pd.Series(list(zip(col, row, strict=True))))[0].astype(np.int64)
    else:
        base = np.arange(n, dtype=np.int64)
    # merge units that share a duplicate group (when duplicates are included)
    codes_base = pd.factorize(base)[0]
    groups = frame.group_id.to_numpy(dtype=float, na_value=np.nan)
    a_list, b_list = [], []
    grouped = np.flatnonzero(np.isfinite(groups))
    if grouped.size:
        first = pd.Series(grouped).groupby(groups[grouped]).transform("first").to_numpy()
        a_list.append(codes_base[grouped])
        b_list.append(codes_base[first])
    if a_list:
        labels = connected_components(
            int(codes_base.max()) + 1, np.concatenate(a_list), np.concatenate(b_list)
        )
        return labels[codes_base]
    return codes_base.astype(np.int64)


def assign(
    frame: pd.DataFrame, units: npt.NDArray[np.int64], options: SplitOptions
) -> npt.NDArray[np.int64]:
    """Split index (0 train, 1 val, 2 test) per row."""
    unit_ids, inverse, sizes = np.unique(units, return_inverse=True, return_counts=True)
    ux = np.bincount(inverse, weights=frame.x_m.to_numpy(float)) / sizes
    uy = np.bincount(inverse, weights=frame.y_m.to_numpy(float)) / sizes
    curve = _hilbert_index(ux, uy)
    rng = np.random.default_rng(options.seed)
    # shuffle within short runs along the curve: local randomness, global stratification
    run = max(2, round(1 / max(min(r for r in options.ratios if r > 0), 1e-9)))
    jitter = rng.random(len(unit_ids))
    order = np.lexsort((jitter, np.argsort(np.argsort(curve)) // run))
    ratios = np.asarray(options.ratios)
    assigned = np.zeros(3)
    split_of_unit = np.zeros(len(unit_ids), np.int64)
    for u in order:
        size = sizes[u]
        deficit = ratios * (assigned.sum() + size) - assigned
        deficit[ratios == 0] = -np.inf
        best = np.flatnonzero(deficit == deficit.max())
        choice = int(best[0] if len(best) == 1 else rng.choice(best))
        split_of_unit[u] = choice
        assigned[choice] += size
    return split_of_unit[inverse]


def buffer_mask(
    frame: pd.DataFrame, split: npt.NDArray[np.int64], options: SplitOptions
) -> npt.NDArray[np.bool_]:
    """Rows to drop: evaluation photos within ``buffer_m`` of a block of another split."""
    if options.strategy != Strategy.BLOCK.value or options.buffer_m <= 0:
        return np.zeros(len(frame), bool)
    x, y = frame.x_m.to_numpy(float), frame.y_m.to_numpy(float)
    b = options.block_m
    col, row = np.floor(x / b).astype(np.int64), np.floor(y / b).astype(np.int64)
    block_split: dict[tuple[int, int], set[int]] = {}
    for c, r, s in zip(col, row, split, strict=True):
        block_split.setdefault((int(c), int(r)), set()).add(int(s))
    drop = np.zeros(len(frame), bool)
    for i in np.flatnonzero(split > 0):
        c, r = int(col[i]), int(row[i])
        for dc in (-1, 0, 1):
            for dr in (-1, 0, 1):
                if (dc, dr) == (0, 0):
                    continue
                others = block_split.get((c + dc, r + dr))
                if not others or others == {int(split[i])}:
                    continue
                # distance from the point to that neighbouring block's square
                x0, y0 = (c + dc) * b, (r + dr) * b
                dx = max(x0 - x[i], 0.0, x[i] - (x0 + b))
                dy = max(y0 - y[i], 0.0, y[i] - (y0 + b))
                if np.hypot(dx, dy) < options.buffer_m:
                    drop[i] = True
    return drop


def unit_names(
    frame: pd.DataFrame, units: npt.NDArray[np.int64], options: SplitOptions
) -> npt.NDArray[np.object_]:
    if options.strategy == Strategy.SPOT.value:
        first = pd.Series(frame.spot_id.to_numpy()).groupby(units).transform("min").to_numpy()
        return np.array([f"spot:{s}" for s in first], dtype=object)
    if options.strategy == Strategy.BLOCK.value:
        col = np.floor(frame.x_m.to_numpy(float) / options.block_m).astype(np.int64)
        row = np.floor(frame.y_m.to_numpy(float) / options.block_m).astype(np.int64)
        names = pd.Series([f"block:{c},{r}" for c, r in zip(col, row, strict=True)])
        return names.groupby(units).transform("min").to_numpy(dtype=object)
    names = pd.Series([f"photo:{p}" for p in frame.path])
    return names.groupby(units).transform("min").to_numpy(dtype=object)
