"""``gpskit split``: leak-free, reproducible train/val/test Parquet splits.

Units, not photos, are assigned to splits, so that nothing that looks alike straddles two
splits:

- ``spot`` (default): a unit is a spot from coverage (photos of one place, all headings),
  merged with every spot that shares a duplicate group with it;
- ``block``: a unit is a square block of ``block_m`` metres; with ``buffer_m``, evaluation
  photos closer than that to a block of another split are dropped;
- ``random``: a unit is one photo (duplicates still kept together). This leaks: views of
  one spot land on both sides, and errors measured on such a split are optimistic.

Assignment is stratified over space and meets the ratios by photo count within one
unit's worth: units are taken in the order of a Hilbert curve over their positions
(shuffled within short runs by the seed) and each goes to the split furthest below its
target share. Every neighbourhood therefore feeds every split, and the same inputs and
seed give byte-identical files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from gpskit import __version__
from gpskit.atomic import write_text
from gpskit.config import MANIFEST_FILE
from gpskit.coverage import CoverageOptions, coverage, coverage_is_current, load_coverage
from gpskit.dedup import (
    DedupOptions,
    dedup,
    duplicates_are_current,
    find_links,
    load_duplicates,
)
from gpskit.errors import InputError, MissingStepError, UsageError
from gpskit.graph import connected_components
from gpskit.ingest import load_manifest, manifest_fingerprint
from gpskit.pool import run_isolated
from gpskit.schema import Schema, load_schema, write_table
from gpskit.train.metrics import label_noise

SPLITS_DIR = "splits"
SPLIT_NAMES = ("train", "val", "test")
STRATEGIES = ("spot", "block", "random")
EMBED_QUALITY = 90


@dataclass(frozen=True)
class SplitOptions:
    """What to split and how (see the module docstring)."""

    strategy: str = "spot"
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    block_m: float = 50.0
    buffer_m: float = 0.0
    include_rejected: bool = False
    include_duplicates: bool = False
    include_outside: bool = False
    embed: bool = False
    max_side: int = 384
    workers: int | None = None
    export_csv: bool = False
    force: bool = False

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(
                f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if (
            len(self.ratios) != 3
            or any(r < 0 for r in self.ratios)
            or not np.isclose(sum(self.ratios), 1.0)
        ):
            raise UsageError(
                f"--ratios must be three non-negative numbers summing to 1, got {self.ratios}"
            )
        if self.ratios[0] == 0:
            raise UsageError("--ratios: the train share must be above 0")
        if self.block_m <= 0:
            raise UsageError(f"--block must be positive, got {self.block_m}")
        if not 0 <= self.buffer_m < self.block_m:
            raise UsageError(f"--buffer must be at least 0 and below --block ({self.block_m:g} m)")
        if self.buffer_m and self.strategy != "block":
            raise UsageError("--buffer applies to --strategy block only")
        if not 32 <= self.max_side <= 4096:
            raise UsageError(f"--max-side must be between 32 and 4096, got {self.max_side}")


def parse_ratios(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' (or '80,10,10') as three fractions."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--ratios must be numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) != 3:
        raise UsageError(f"--ratios needs three values (train,val,test), got {text!r}")
    total = sum(values)
    if total <= 0 or any(v < 0 for v in values):
        raise UsageError(f"--ratios must be non-negative with a positive sum, got {text!r}")
    return values[0] / total, values[1] / total, values[2] / total


@dataclass
class SplitReport:
    """What split.json records (and the terminal shows)."""

    dataset_dir: str
    strategy: str
    ratios: list[float]
    seed: int
    counts: dict[str, int]
    units: dict[str, int]
    shares: dict[str, float]
    excluded: dict[str, int]
    leakage: dict[str, Any]
    label_noise_m: dict[str, float]
    options: dict[str, Any]
    manifest_sha256: str
    gpskit_version: str
    warnings: list[str] = field(default_factory=list)
    embed_failures: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what this run did first; not in split.json

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- inputs -------------------------------------------------------------------------------


def prepare_inputs(dataset_dir: Path, notes: list[str]) -> None:
    """Run dedup and coverage with their defaults when their outputs are missing or stale."""
    if not (dataset_dir / MANIFEST_FILE).exists():
        raise MissingStepError(
            f"{dataset_dir / MANIFEST_FILE} does not exist",
            hint=f"run `gpskit ingest PHOTOS --out {dataset_dir}` first",
        )
    if not duplicates_are_current(dataset_dir):
        notes.append(f"ran `gpskit dedup {dataset_dir}` first (no current duplicates.parquet)")
        dedup(dataset_dir, DedupOptions(), contact_sheet=False)
    if not coverage_is_current(dataset_dir):
        notes.append(
            f"ran `gpskit coverage {dataset_dir}` first with the default region (no current coverage.parquet)"
        )
        coverage(dataset_dir, CoverageOptions(), draw=False)


def candidate_photos(
    dataset_dir: Path, options: SplitOptions
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Rows eligible for splitting (and the manifest): accepted, kept, inside by default."""
    manifest = load_manifest(dataset_dir).to_pandas()
    cover = load_coverage(dataset_dir).to_pandas()
    rejected_in = 0
    if options.include_rejected:
        extra = rejected_with_position(dataset_dir, manifest, cover)
        rejected_in = len(extra)
        cover = pd.concat([cover, extra], ignore_index=True) if len(extra) else cover
    dups = load_duplicates(dataset_dir).to_pandas()[["root", "path", "group_id", "keep"]]
    frame = cover.merge(
        dups.rename(columns={"keep": "dedup_keep"}), on=["root", "path"], how="left"
    )
    frame = frame.merge(
        manifest[
            [
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
                "pixel_hash",
                "stored_pixel_hash",
                "read_status",
                "datetime_original",
                "datetime_original_utc",
                "img_direction",
                "latitude",
                "longitude",
                "file_size",
            ]
        ].rename(columns={"latitude": "m_lat", "longitude": "m_lon"}),
        on=["root", "path"],
        how="left",
    )
    excluded = {
        "rejected": int((manifest.status != "accepted").sum()) - rejected_in,
        "duplicates": 0,
        "outside_region": 0,
    }
    keep = np.ones(len(frame), bool)
    if not options.include_duplicates:
        dropped = ~frame.dedup_keep.fillna(True).astype(bool).to_numpy()
        excluded["duplicates"] = int(dropped.sum())
        keep &= ~dropped
    if not options.include_outside:
        dropped = frame.outside_region.to_numpy(bool)
        excluded["outside_region"] = int((dropped & keep).sum())
        keep &= ~dropped
    frame = frame[keep].sort_values(["root", "path"]).reset_index(drop=True)
    return frame, manifest, excluded


def rejected_with_position(
    dataset_dir: Path, manifest: pd.DataFrame, cover: pd.DataFrame
) -> pd.DataFrame:
    """Rejected photos that still have a usable position, shaped like coverage rows.

    Each joins the nearest accepted spot within the spot radius coverage used, else a
    spot of its own; positions at (0, 0) or out of range stay out (no label at all).
    """
    from gpskit.coverage import COVERAGE_FILE, SECTORS, heading_sector
    from gpskit.regions import load_region
    from gpskit.schema import file_metadata

    settings = json.loads(file_metadata(dataset_dir / COVERAGE_FILE).get("gpskit.coverage", "{}"))
    options = settings.get("options", {})
    region = load_region(options.get("region", "penn_campus"))
    radius = float(options.get("spot_radius_m", 3.0))
    rows = manifest[
        (manifest.status != "accepted")
        & manifest.latitude.notna()
        & manifest.longitude.notna()
        & ~manifest.reasons.map(lambda r: bool({"gps_null_island", "gps_out_of_range"} & set(r)))
    ]
    if rows.empty:
        return cover.iloc[:0]
    lat, lon = rows.latitude.to_numpy(float), rows.longitude.to_numpy(float)
    x, y = region.project(lat, lon)
    spots = cover.drop_duplicates("spot_id")
    sx, sy = region.project(
        spots.spot_latitude.to_numpy(float), spots.spot_longitude.to_numpy(float)
    )
    spot_id = np.zeros(len(rows), np.int64)
    spot_lat, spot_lon, size = lat.copy(), lon.copy(), np.ones(len(rows), np.int32)
    next_id = int(cover.spot_id.max()) + 1 if len(cover) else 1
    for i in range(len(rows)):
        d = np.hypot(sx - x[i], sy - y[i]) if len(spots) else np.array([])
        if len(d) and d.min() <= radius:
            j = int(d.argmin())
            spot_id[i] = int(spots.spot_id.iloc[j])
            spot_lat[i], spot_lon[i] = spots.spot_latitude.iloc[j], spots.spot_longitude.iloc[j]
            size[i] = int(spots.spot_size.iloc[j])
        else:
            spot_id[i], next_id = next_id, next_id + 1
    heading = rows.img_direction.to_numpy(float, na_value=np.nan)
    sector = heading_sector(heading)
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
            "heading_sector": [SECTORS[s] if s >= 0 else None for s in sector],
            "heading_magnetic": (rows.img_direction_ref == "M").to_numpy(bool),
        }
    )


# --- units and assignment -------------------------------------------------------------------


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
    if options.strategy == "spot":
        base = frame.spot_id.to_numpy(np.int64)
    elif options.strategy == "block":
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
    if options.strategy != "block" or options.buffer_m <= 0:
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


# --- reports ------------------------------------------------------------------------------


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


# --- images -------------------------------------------------------------------------------


def _encode(img: Any, max_side: int) -> bytes:
    from PIL import Image

    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=EMBED_QUALITY, optimize=False)
    return buf.getvalue()


def embed_from_path(path: str, max_side: int) -> bytes | str:
    """Worker entry: the embedded JPEG of one photo, or why it could not be made."""
    from gpskit.imaging import decode_oriented

    try:
        return _encode(decode_oriented(path, max_side=max_side), max_side)
    except Exception as exc:  # the photo changed or vanished since ingest
        return f"{type(exc).__name__}: {exc}"


def huggingface_features(schema: Schema) -> str:
    """The `datasets` feature description stored in the Parquet metadata."""
    features: dict[str, Any] = {}
    for spec in schema.fields:
        if spec.type == "image":
            features[spec.name] = {"_type": "Image"}
        else:
            dtype = {"timestamp[us, tz=UTC]": "timestamp[us, tz=UTC]"}.get(spec.type, spec.type)
            features[spec.name] = {"dtype": dtype, "_type": "Value"}
    return json.dumps({"info": {"features": features}})


# --- the run ------------------------------------------------------------------------------


def split(
    dataset_dir: Path, options: SplitOptions | None = None, progress: Any = None
) -> SplitReport:
    """Make the splits and write DATASET_DIR/splits/."""
    options = options or SplitOptions()
    options.validate()
    out_dir = dataset_dir / SPLITS_DIR
    if out_dir.exists() and any(out_dir.iterdir()) and not options.force:
        raise UsageError(f"{out_dir} already has splits", hint="pass --force to replace them")
    notes: list[str] = []
    prepare_inputs(dataset_dir, notes)
    frame, _, excluded = candidate_photos(dataset_dir, options)
    if len(frame) < 3:
        raise InputError(
            f"{dataset_dir}: only {len(frame)} photos to split (accepted, kept, inside the region)",
            hint="check `gpskit info` and `gpskit coverage` (is --region right?)",
        )
    units = unit_labels(frame, options)
    split_index = assign(frame, units, options)
    drop = buffer_mask(frame, split_index, options)
    excluded["buffer"] = int(drop.sum())
    frame, units, split_index = (
        frame[~drop].reset_index(drop=True),
        units[~drop],
        split_index[~drop],
    )
    warnings: list[str] = []
    if options.strategy == "random":
        warnings.append(
            "random split: views of one spot fall on both sides; its errors are optimistic (leakage)"
        )
    if options.include_duplicates:
        warnings.append(
            "duplicates included: copies stay within one split, but they weigh more in training"
        )
    if options.include_rejected:
        warnings.append(
            "rejected photos with a position included: their labels are suspect (poor or stale fixes)"
        )
    if options.include_outside:
        warnings.append(
            "photos outside the region included: they may be mislabelled or off the study area"
        )

    schema = load_schema("split")
    images = _images(frame, options, progress)
    failures = [
        f"{r}/{p}: {e}"
        for r, p, e in zip(frame.root, frame.path, images, strict=True)
        if isinstance(e, str)
    ]
    ok = np.array([not isinstance(e, str) for e in images], bool)
    if not ok.all():
        warnings.append(
            f"{int((~ok).sum())} photos could not be embedded and were left out (see embed_failures)"
        )
    frame, units, split_index = frame[ok].reset_index(drop=True), units[ok], split_index[ok]
    images = [e for e in images if not isinstance(e, str)]

    unit_names = _unit_names(frame, units, options)
    tables = {}
    for index, name in enumerate(SPLIT_NAMES):
        mask = split_index == index
        part = frame[mask]
        tables[name] = pd.DataFrame(
            {
                "image": [
                    {"bytes": data, "path": p if data is not None else f"{r}/{p}"}
                    for data, r, p in zip(
                        [images[i] for i in np.flatnonzero(mask)], part.root, part.path, strict=True
                    )
                ],
                "split": name,
                "root": part.root.to_numpy(),
                "path": part.path.to_numpy(),
                "latitude": part.latitude.to_numpy(float),
                "longitude": part.longitude.to_numpy(float),
                "spot_id": part.spot_id.to_numpy(np.int64),
                "spot_latitude": part.spot_latitude.to_numpy(float),
                "spot_longitude": part.spot_longitude.to_numpy(float),
                "unit": unit_names[mask],
                "heading": part.heading_true.astype("Float64").to_numpy(),
                "heading_sector": part.heading_sector.to_numpy(),
                "group_id": part.group_id.astype("Int64").to_numpy(),
                "gps_h_error": part.gps_h_error.astype("Float64").to_numpy(),
                "width": part.width.astype("Int32").to_numpy(),
                "height": part.height.astype("Int32").to_numpy(),
                "sha256": part.sha256.to_numpy(),
            }
        )
    train = frame[split_index == 0]
    leakage: dict[str, Any] = {
        "nearest_train_m": {},
        "duplicate_pairs_across": cross_split_pairs(frame, split_index),
    }
    for index, name in ((1, "val"), (2, "test")):
        leakage["nearest_train_m"][name] = nearest_train_distance(
            train, frame[split_index == index]
        )
    leakage["nearest_train_m"]["val_to_test"] = nearest_train_distance(
        frame[split_index == 1], frame[split_index == 2]
    )
    counts = {name: int((split_index == i).sum()) for i, name in enumerate(SPLIT_NAMES)}
    total = max(1, sum(counts.values()))
    report = SplitReport(
        dataset_dir=str(dataset_dir),
        strategy=options.strategy,
        ratios=list(options.ratios),
        seed=options.seed,
        counts=counts,
        units={name: len(np.unique(units[split_index == i])) for i, name in enumerate(SPLIT_NAMES)},
        shares={name: round(counts[name] / total, 4) for name in SPLIT_NAMES},
        excluded=excluded,
        leakage=leakage,
        label_noise_m=label_noise(
            frame.latitude,
            frame.longitude,
            frame.spot_latitude,
            frame.spot_longitude,
            frame.spot_id,
        ),
        options={k: v for k, v in asdict(options).items() if k not in ("force", "workers")},
        manifest_sha256=manifest_fingerprint(dataset_dir),
        gpskit_version=__version__,
        warnings=warnings,
        embed_failures=failures,
        notes=notes,
    )
    _write(out_dir, tables, report, schema, options)
    return report


def _unit_names(
    frame: pd.DataFrame, units: npt.NDArray[np.int64], options: SplitOptions
) -> npt.NDArray[np.object_]:
    if options.strategy == "spot":
        first = pd.Series(frame.spot_id.to_numpy()).groupby(units).transform("min").to_numpy()
        return np.array([f"spot:{s}" for s in first], dtype=object)
    if options.strategy == "block":
        col = np.floor(frame.x_m.to_numpy(float) / options.block_m).astype(np.int64)
        row = np.floor(frame.y_m.to_numpy(float) / options.block_m).astype(np.int64)
        names = pd.Series([f"block:{c},{r}" for c, r in zip(col, row, strict=True)])
        return names.groupby(units).transform("min").to_numpy(dtype=object)
    names = pd.Series([f"photo:{p}" for p in frame.path])
    return names.groupby(units).transform("min").to_numpy(dtype=object)


def _images(frame: pd.DataFrame, options: SplitOptions, progress: Any) -> list[bytes | str | None]:
    if not options.embed:
        return [None] * len(frame)
    paths = [(f"{r}/{p}", options.max_side) for r, p in zip(frame.root, frame.path, strict=True)]
    results: list[bytes | str | None] = [None] * len(paths)
    outcomes = run_isolated(embed_from_path, paths, workers=options.workers, timeout=120)
    for done, outcome in enumerate(outcomes, start=1):
        results[outcome.index] = (
            outcome.value if outcome.failure is None else f"{outcome.failure}: {outcome.detail}"
        )
        if progress:
            progress(done, len(paths))
    return results


def _write(
    out_dir: Path,
    tables: dict[str, pd.DataFrame],
    report: SplitReport,
    schema: Schema,
    options: SplitOptions,
) -> None:
    """Write every file into a fresh folder, then swap it in for the old one."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".splits-", dir=out_dir.parent))
    try:
        meta = {
            "huggingface": huggingface_features(schema),
            "gpskit.split": json.dumps(
                {
                    "strategy": options.strategy,
                    "seed": options.seed,
                    "manifest_sha256": report.manifest_sha256,
                },
                sort_keys=True,
            ),
        }
        for name, table in tables.items():
            arrow = (
                pa.Table.from_pandas(table, preserve_index=False)
                if len(table)
                else schema.arrow_schema().empty_table()
            )
            write_table(arrow, staging / f"{name}.parquet", schema, extra_metadata=meta)
            report.written.append(str(out_dir / f"{name}.parquet"))
            if options.export_csv:
                csv = pd.DataFrame(
                    {
                        "image_path": table.root + "/" + table.path,
                        "latitude": table.latitude,
                        "longitude": table.longitude,
                    }
                )
                write_text(staging / f"{name}.csv", csv.to_csv(index=False))
                report.written.append(str(out_dir / f"{name}.csv"))
        report.written.append(str(out_dir / "split.json"))
        record = report.to_dict()
        record.pop("notes")
        write_text(
            staging / "split.json",
            json.dumps(record, indent=2, sort_keys=True, default=str) + "\n",
        )
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(staging, out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
