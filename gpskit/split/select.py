"""Which photos a split uses: accepted, kept (not a redundant copy), inside the region.

Each default can be turned off (``--include-rejected``, ``--include-duplicates``,
``--include-outside``); dedup and coverage run first when their outputs are missing or
stale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from gpskit.coverage import CoverageOptions, coverage
from gpskit.dataset import COVERAGE, DUPLICATES, Dataset, StepOutput
from gpskit.dedup import DedupOptions, dedup
from gpskit.errors import GpskitError
from gpskit.geo import sector_names
from gpskit.regions import DEFAULT_REGION, load_region
from gpskit.split.options import SplitOptions

#: Manifest columns a split needs beside coverage's (the positions renamed m_lat, m_lon).
MANIFEST_COLUMNS = [
    "root",
    "path",
    "status",
    "sha256",
    "width",
    "height",
    "gps_h_error",
    "phash",
    "phash256",
    "crop_hashes",
    "crop_phash256",
    "dihedral_hashes",
    "dihedral_phash256",
    "trimmed_phash",
    "trimmed_phash256",
    "pixel_hash",
    "stored_pixel_hash",
    "read_status",
    "datetime_original",
    "datetime_original_utc",
    "img_direction",
    "latitude",
    "longitude",
    "file_size",
    "source_split",
]
#: Rejections that leave no usable label at all.
NO_LABEL = frozenset({"gps_null_island", "gps_out_of_range"})


def _why_rebuild(dataset: Dataset, output: StepOutput) -> str | None:
    """Why a step's output cannot be used as it is (None when it can)."""
    if not dataset.output_path(output).exists():
        return f"no {output.file}"
    if not dataset.is_current(output):
        return f"{output.file} is older than the manifest or unreadable"
    try:
        dataset.load(output)
    except GpskitError as exc:
        return f"{output.file} is unreadable ({exc})"
    return None


def prepare_inputs(dataset: Dataset, notes: list[str]) -> None:
    """Run dedup and coverage with their defaults when their outputs are missing, stale or
    corrupt (each said in a note)."""
    if why := _why_rebuild(dataset, DUPLICATES):
        notes.append(f"ran `gpskit dedup {dataset.root}` first ({why})")
        dedup(dataset, DedupOptions(), contact_sheet=False)
    if why := _why_rebuild(dataset, COVERAGE):
        notes.append(f"ran `gpskit coverage {dataset.root}` first with the default region ({why})")
        coverage(dataset, CoverageOptions(), draw=False)


def candidate_photos(
    dataset: Dataset, options: SplitOptions
) -> tuple[pd.DataFrame, dict[str, int], str, list[dict[str, Any]]]:
    """Rows eligible for splitting, how many were left out why, the hash of the manifest
    bytes read, and each photo a duplicate rule left out."""
    table, digest = dataset.manifest_snapshot()
    manifest = table.to_pandas()
    cover = dataset.load_coverage().to_pandas()
    rejected_in = 0
    if options.include_rejected:
        extra = rejected_with_position(dataset, manifest, cover)
        rejected_in = len(extra)
        cover = pd.concat([cover, extra], ignore_index=True) if len(extra) else cover
    dups = dataset.load_duplicates().to_pandas()[
        ["root", "path", "group_id", "keep", "kind", "match", "keeper_root", "keeper_path"]
    ]
    frame = cover.merge(
        dups.rename(columns={"keep": "dedup_keep", "kind": "dup_kind", "match": "dup_match"}),
        on=["root", "path"],
        how="left",
    )
    frame = frame.merge(
        manifest[MANIFEST_COLUMNS].rename(columns={"latitude": "m_lat", "longitude": "m_lon"}),
        on=["root", "path"],
        how="left",
    )
    covered = pd.MultiIndex.from_frame(cover[["root", "path"]])
    placed = pd.MultiIndex.from_frame(manifest[["root", "path"]]).isin(covered)
    excluded = {
        "rejected": int((manifest.status != "accepted").sum()) - rejected_in,
        "duplicates": 0,
        "outside_region": 0,
        # accepted (a person included it) but with no position: nowhere to put it
        "no_position": int(((manifest.status == "accepted").to_numpy() & ~placed).sum()),
    }
    keep = np.ones(len(frame), bool)
    removed: list[dict[str, Any]] = []
    # a given split moves nothing: its copies stay on the sides they came on, so the
    # leakage report can count the pairs across
    if not options.include_duplicates and options.strategy != "given":
        dropped = ~frame.dedup_keep.fillna(True).astype(bool).to_numpy()
        excluded["duplicates"] = int(dropped.sum())
        keep &= ~dropped
        removed = duplicates_left_out(frame[dropped])
    if not options.include_outside:
        dropped = frame.outside_region.to_numpy(bool)
        excluded["outside_region"] = int((dropped & keep).sum())
        keep &= ~dropped
    frame = frame[keep].sort_values(["root", "path"]).reset_index(drop=True)
    return frame, excluded, digest, removed


def duplicates_left_out(dropped: pd.DataFrame) -> list[dict[str, Any]]:
    """Which photos a duplicate rule kept out of the splits, each with the photo kept in
    its place and the rule (kind and link), so a person can check them."""
    rows = dropped.sort_values(["root", "path"]).astype(object)
    rows = rows.where(rows.notna(), None)
    return [
        {
            "photo": f"{r['root']}/{r['path']}",
            "kept_instead": None
            if r["keeper_path"] is None
            else f"{r['keeper_root']}/{r['keeper_path']}",
            "kind": r["dup_kind"],
            "match": r["dup_match"],
        }
        for r in rows[
            ["root", "path", "keeper_root", "keeper_path", "dup_kind", "dup_match"]
        ].to_dict("records")
    ]


def _join_spots(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    spots: pd.DataFrame,
    spot_xy: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    radius: float,
    next_id: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Index into ``spots`` of the nearest spot within ``radius`` of each point (-1: none),
    and spot ids: the joined spot's, or a new one per lone point."""
    sx, sy = spot_xy
    joined = np.full(len(x), -1, np.int64)
    spot_id = np.zeros(len(x), np.int64)
    for i in range(len(x)):
        d = np.hypot(sx - x[i], sy - y[i]) if len(spots) else np.array([])
        if len(d) and d.min() <= radius:
            joined[i] = int(d.argmin())
            spot_id[i] = int(spots.spot_id.iloc[joined[i]])
        else:
            spot_id[i], next_id = next_id, next_id + 1
    return joined, spot_id


def rejected_with_position(
    dataset: Dataset, manifest: pd.DataFrame, cover: pd.DataFrame
) -> pd.DataFrame:
    """Rejected photos that still have a usable position, shaped like coverage rows.

    Each joins the nearest accepted spot within the spot radius coverage used, else a
    spot of its own; positions at (0, 0) or out of range stay out (no label at all).
    """
    settings = dataset.stamped_options(COVERAGE)
    region = load_region(settings.get("region", DEFAULT_REGION))
    radius = float(settings.get("spot_radius_m", CoverageOptions().spot_radius_m))
    rows = manifest[
        (manifest.status != "accepted")
        & manifest.latitude.notna()
        & manifest.longitude.notna()
        & ~manifest.reasons.map(lambda r: bool(NO_LABEL & set(r)))
    ]
    if rows.empty:
        return cover.iloc[:0]
    lat, lon = rows.latitude.to_numpy(float), rows.longitude.to_numpy(float)
    x, y = region.project(lat, lon)
    spots = cover.drop_duplicates("spot_id")
    spot_xy = region.project(
        spots.spot_latitude.to_numpy(float), spots.spot_longitude.to_numpy(float)
    )
    next_id = int(cover.spot_id.max()) + 1 if len(cover) else 1
    joined, spot_id = _join_spots(x, y, spots, spot_xy, radius, next_id)
    has_spot = joined >= 0
    spot_lat, spot_lon, size = lat.copy(), lon.copy(), np.ones(len(rows), np.int32)
    spot_lat[has_spot] = spots.spot_latitude.to_numpy(float)[joined[has_spot]]
    spot_lon[has_spot] = spots.spot_longitude.to_numpy(float)[joined[has_spot]]
    size[has_spot] = spots.spot_size.to_numpy(np.int32)[joined[has_spot]]
    heading = rows.img_direction.to_numpy(float, na_value=np.nan)
    inside = region.contains(lat, lon)
    return pd.DataFrame(
        {
            "root": rows.root.to_numpy(),
            "path": rows.path.to_numpy(),
            "latitude": lat,
            "longitude": lon,
            "x_m": x,
            "y_m": y,
            "inside_region": inside,
            "outside_region": ~inside,
            "keep": True,
            "cell": None,
            "spot_id": spot_id,
            "spot_latitude": spot_lat,
            "spot_longitude": spot_lon,
            "spot_size": size,
            "heading_true": pd.Series(heading, dtype="Float64")
            .where(np.isfinite(heading))
            .to_numpy(),
            "heading_sector": sector_names(heading),
            "heading_magnetic": (rows.img_direction_ref == "M").to_numpy(bool),
        }
    )
