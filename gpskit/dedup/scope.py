"""Where dedup's perceptual searches look, decided before they start.

Every pair of photos is compared when that is predicted to take at most
:data:`MAX_SEARCH_SECONDS`; beyond, photos with positions are compared only with photos
within :data:`~gpskit.dedup.options.DEFAULT_WITHIN_M` of them (copies keep their
photo's EXIF: :mod:`gpskit.dedup.nearby`), and photos without one with every photo. A
search predicted to take longer even so is refused before it starts, with what to change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.dedup.lists import list_lengths
from gpskit.dedup.nearby import Where, estimate
from gpskit.dedup.options import DEFAULT_WITHIN_M, DedupOptions
from gpskit.errors import UsageError
from gpskit.imaging import DIHEDRAL

#: Longest predicted hash search accepted before a run starts (seconds).
MAX_SEARCH_SECONDS = 3600.0

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SearchScope:
    """The options the searches run with (``within_m`` decided) and their predicted time."""

    options: DedupOptions
    seconds: float

    def to_dict(self) -> dict[str, object]:
        within = self.options.within_m
        return {
            "compared": "every pair" if within is None else "nearby",
            "within_m": within,
            "predicted_seconds": round(self.seconds, 1),
        }


def _entries(frame: pd.DataFrame, column: str, size: int) -> I64:
    """How many entries of a list column each row label has (the lists' lengths, read off
    Arrow's offsets: nothing is parsed or flattened)."""
    counts = np.zeros(size, np.int64)
    if column in frame and len(frame):
        counts[frame.index.to_numpy(np.int64)] = list_lengths(frame[column])
    return counts


Search = tuple[str, I64, "I64 | None", int]


def _searches(frame: pd.DataFrame, options: DedupOptions, size: int) -> list[Search]:
    """Each perceptual search dedup will run: (its flag, query entries per row, index
    entries per row or None for a self-join, radius)."""
    labels = frame.index.to_numpy(np.int64)
    whole = np.zeros(size, np.int64)
    whole[labels[frame.phash.notna().to_numpy()]] = 1
    near = options.near_threshold
    found: list[Search] = [("--near", whole, None, near)]
    if "trimmed_phash" in frame:
        trimmed = np.zeros(size, np.int64)
        trimmed[labels[frame.trimmed_phash.notna().to_numpy()]] = 1
        found += [("--near", trimmed, whole, near), ("--near", trimmed, None, near)]
    if options.dihedral:
        turned = _entries(frame, "dihedral_hashes", size)
        turned[turned != len(DIHEDRAL)] = 0
        found.append(("--near", turned * whole, whole, near))
    if options.crop_variants:
        found.append(
            ("--crop", whole, _entries(frame, "crop_hashes", size) * whole, options.crop_threshold)
        )
    return found


def plan_search(frame: pd.DataFrame, options: DedupOptions) -> SearchScope:
    """Decide ``within_m`` (unless given) and refuse searches that would take too long."""
    ok = frame[(frame.read_status == "ok") & frame.phash.notna()]
    where = Where.of(ok)
    return decide(where, _searches(ok, options, len(where.lat)), options)


def decide(where: Where, searches: list[Search], options: DedupOptions) -> SearchScope:
    """:func:`plan_search` for searches given as entry counts per row label."""

    def seconds(within: float | None) -> float:
        return sum(estimate(where, q, i, radius, within) for _, q, i, radius in searches)

    within = options.within_m
    if within is None and not options.everywhere:
        within = None if seconds(None) <= MAX_SEARCH_SECONDS else DEFAULT_WITHIN_M
    total = seconds(within)
    if total > MAX_SEARCH_SECONDS:
        _refuse(where, searches, options, within, total)
    return SearchScope(replace(options, within_m=within, everywhere=within is None), total)


def _refuse(
    where: Where,
    searches: list[Search],
    options: DedupOptions,
    within: float | None,
    total: float,
) -> None:
    by_flag: dict[str, float] = {}
    for flag, q, i, radius in searches:
        by_flag[flag] = by_flag.get(flag, 0.0) + estimate(where, q, i, radius, within)
    flag = max(by_flag, key=by_flag.__getitem__)
    defaults = DedupOptions()
    radius = options.near_threshold if flag == "--near" else options.crop_threshold
    default = defaults.near_threshold if flag == "--near" else defaults.crop_threshold
    photos = int((searches[0][1] > 0).sum())
    if radius > default:
        hint = f"use a smaller {flag} (the default is {default})"
    elif within is None:
        hint = (
            f"compare only nearby photos: --within {DEFAULT_WITHIN_M:g} (copies are of one place)"
        )
    elif flag == "--crop":
        hint = "run with --no-crops (near and turned copies are still found), or a smaller --within"
    else:
        hint = "use a smaller --within, or dedup each area's photos as its own dataset"
    scope = "every pair" if within is None else f"photos within {within:g} m"
    raise UsageError(
        f"{flag} {radius} on {photos:,} photos ({scope}) would take about {total / 3600:.1f} h "
        "(an exact search compares almost every pair at that radius)",
        hint=hint,
    )
