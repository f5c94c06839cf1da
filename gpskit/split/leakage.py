"""The leakage report: how close evaluation photos are to training ones, and whether any
duplicate link crosses two splits."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.dedup import DedupOptions, find_links
from gpskit.split.options import SPLIT_NAMES


def nearest_train_distance(
    train: pd.DataFrame, other: pd.DataFrame, limit: int = 20_000
) -> dict[str, Any]:
    """Distance (m) from each photo of ``other`` to its nearest training photo."""
    if not len(train) or not len(other):
        return {"photos": len(other), "min_m": None, "median_m": None}
    sample = other if len(other) <= limit else other.sample(limit, random_state=0)
    tx, ty = train.x_m.to_numpy(float), train.y_m.to_numpy(float)
    best = []
    for lo in range(0, len(sample), 512):
        part = sample.iloc[lo : lo + 512]
        d = np.hypot(
            part.x_m.to_numpy(float)[:, None] - tx[None, :],
            part.y_m.to_numpy(float)[:, None] - ty[None, :],
        )
        best.append(d.min(axis=1))
    distance = np.concatenate(best)
    result: dict[str, Any] = {
        "photos": len(other),
        "min_m": round(float(distance.min()), 2),
        "median_m": round(float(np.median(distance)), 2),
    }
    if len(other) > limit:
        result["sampled"] = limit
    return result


def cross_split_pairs(rows: pd.DataFrame, split: npt.NDArray[np.int64]) -> dict[str, int]:
    """Duplicate links (exact, near, burst) between photos of different splits."""
    frame = rows.assign(latitude=rows.m_lat, longitude=rows.m_lon).reset_index(drop=True)
    links = find_links(frame, DedupOptions())
    counts = {f"{SPLIT_NAMES[i]}-{SPLIT_NAMES[j]}": 0 for i in range(3) for j in range(i + 1, 3)}
    for a, b in zip(links.a.to_numpy(), links.b.to_numpy(), strict=True):
        i, j = sorted((int(split[a]), int(split[b])))
        if i != j:
            counts[f"{SPLIT_NAMES[i]}-{SPLIT_NAMES[j]}"] += 1
    return counts


def spots_across(frame: pd.DataFrame, split: npt.NDArray[np.int64]) -> dict[str, int]:
    """Spots whose photos fall in more than one split (views of one place on both sides:
    what makes a random split's errors optimistic), and the evaluation photos at a spot
    that training also has."""
    spots = frame.spot_id.to_numpy(np.int64)
    splits_of = pd.Series(split).groupby(spots).nunique()
    train_spots = set(np.unique(spots[split == 0]).tolist())
    at_train = np.array([s in train_spots for s in spots.tolist()], bool)
    return {
        "spots": int((splits_of > 1).sum()),
        "of_spots": len(splits_of),
        "val_photos_at_train_spots": int((at_train & (split == 1)).sum()),
        "test_photos_at_train_spots": int((at_train & (split == 2)).sum()),
    }


def leakage_report(frame: pd.DataFrame, split: npt.NDArray[np.int64]) -> dict[str, Any]:
    """Nearest training photo of each val/test photo, val to test, duplicate pairs across,
    and spots on both sides."""
    train = frame[split == 0]
    report: dict[str, Any] = {
        "nearest_train_m": {},
        "duplicate_pairs_across": cross_split_pairs(frame, split),
        "spots_across": spots_across(frame, split),
    }
    for index, name in ((1, "val"), (2, "test")):
        report["nearest_train_m"][name] = nearest_train_distance(train, frame[split == index])
    report["nearest_train_m"]["val_to_test"] = nearest_train_distance(
        frame[split == 1], frame[split == 2]
    )
    return report
