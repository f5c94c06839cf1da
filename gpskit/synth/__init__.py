"""``gpskit synth``: a procedural campus whose photos depend on where and which way they look.

The world (:mod:`~gpskit.synth.world`) lives in the region's local metric frame:
walkways, box buildings (varied footprint, height, colour, windows and bands), trees, lamp
posts and a few tall landmarks, with more buildings in a ring around the region so edge
views are not empty. Spots are placed evenly along the walkways; each is photographed at
8 headings (jittered a little) and two pitches (level and upward), as in the original
protocol (:mod:`~gpskit.synth.camera`), rendered by a column ray caster
(:mod:`~gpskit.synth.render`). Phones write their EXIF with a GPS fix that is off by a
per-spot error. Defects (:mod:`~gpskit.synth.defects`, a registry) are injected at known
rates and listed in ``truth.csv`` with every photo's true position and heading.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpskit.atomic import OwnedFolder, write_text
from gpskit.exifwrite import save_photo
from gpskit.pool import run_isolated
from gpskit.regions import Region, load_region
from gpskit.synth.camera import Shot, plan_shots
from gpskit.synth.defects import DEFECTS, ShotFiles, assign_defects, of_sort, shot_exif
from gpskit.synth.options import SynthOptions
from gpskit.synth.render import light_at, render
from gpskit.synth.world import World, build_world

__all__ = ["DEFECTS", "SynthOptions", "SynthReport", "build_world", "light_at", "render", "synth"]

TRUTH_FIELDS = (
    "file",
    "kind",
    "source",
    "defects",
    "spot",
    "true_latitude",
    "true_longitude",
    "true_heading",
    "pitch",
    "reported_latitude",
    "reported_longitude",
    "taken",
)


@dataclass
class SynthReport:
    out_dir: str
    photos: int
    files: int
    spots: int
    by_kind: dict[str, int]
    defects: dict[str, int]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- one photo (runs in a worker) -----------------------------------------------------------

_WORLD: World | None = None
_REGION: Region | None = None


class _Init:
    """Picklable worker initializer carrying the world."""

    def __init__(self, world: World, region_source: str) -> None:
        self.world, self.region_source = world, region_source

    def __call__(self) -> None:
        global _WORLD, _REGION
        _WORLD, _REGION = self.world, load_region(self.region_source)


def _truth(shot: Shot, region: Region) -> dict[str, Any]:
    """The truth columns every file of a shot shares."""
    true_lat, true_lon = region.projection.inverse(shot.x, shot.y)
    rep_lat, rep_lon = region.projection.inverse(shot.reported_x, shot.reported_y)
    return {
        "spot": shot.spot,
        "true_latitude": round(float(true_lat), 8),
        "true_longitude": round(float(true_lon), 8),
        "true_heading": round(shot.heading, 2),
        "pitch": shot.pitch,
        "reported_latitude": round(float(rep_lat), 8),
        "reported_longitude": round(float(rep_lon), 8),
        "taken": shot.taken.isoformat(),
    }


def make_shot(shot: Shot, out: str, options: SynthOptions) -> list[dict[str, Any]]:
    """Render one photo and its derived files; return their truth rows."""
    assert _WORLD is not None and _REGION is not None
    world, region = _WORLD, _REGION
    rng = np.random.default_rng([options.seed, shot.index])
    light = light_at(shot.hour, rng)
    img = render(world, shot.x, shot.y, shot.heading, shot.pitch, light, options.size, rng)
    folder = Path(out) / "photos" / f"spot_{shot.spot:03d}"
    name = f"IMG_{shot.index + 1:05d}.jpg"
    path = save_photo(img, folder / name, shot_exif(shot, region), quality=options.quality)
    base = _truth(shot, region)
    original = f"photos/spot_{shot.spot:03d}/{name}"
    lies = [d.name for d in of_sort("exif") if d.name in shot.defects]
    rows = [{"file": original, "kind": "photo", "source": "", "defects": ";".join(lies), **base}]
    files = ShotFiles(
        shot=shot,
        image=img,
        photo=path,
        folder=folder,
        exports=Path(out) / "photos" / "exports",
        world=world,
        region=region,
        light=light,
        size=options.size,
        quality=options.quality,
        rng=rng,
    )
    for defect in (DEFECTS[d] for d in shot.defects if DEFECTS[d].sort == "file"):
        target = defect.apply(files)
        rows.append(
            {
                "file": str(target.relative_to(out)),
                "kind": defect.name,
                "source": original,
                "defects": defect.name,
                **base,
            }
        )
    return rows


# --- the run -------------------------------------------------------------------------------


def _render_all(
    out_dir: Path,
    shots: list[Shot],
    world: World,
    region: Region,
    options: SynthOptions,
    progress: Any,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tasks = [(shot, str(out_dir), options) for shot in shots]
    init = _Init(world, region.source)
    outcomes = run_isolated(
        make_shot, tasks, workers=options.workers, timeout=300, initializer=init
    )
    for done, outcome in enumerate(outcomes, start=1):
        if outcome.failure is not None or outcome.value is None:
            raise RuntimeError(f"rendering photo {outcome.index} failed: {outcome.detail}")
        rows.extend(outcome.value)
        if progress:
            progress(done, len(tasks))
    return rows


def _dataset_files(out_dir: Path, options: SynthOptions) -> list[dict[str, Any]]:
    rows = []
    for item in of_sort("dataset"):
        for i in range(int(options.rate(item.name))):
            target = item.apply(out_dir, i)
            name = str(target.relative_to(out_dir))
            rows.append({"file": name, "kind": item.name, "source": "", "defects": item.name})
    return rows


def _write_truth(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TRUTH_FIELDS))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "truth.csv", buffer.getvalue())


def synth(
    out_dir: Path,
    options: SynthOptions | None = None,
    progress: Any = None,
    *,
    force: bool = False,
) -> SynthReport:
    """Write OUT_DIR/photos/ (the campus photos and injected defects) and OUT_DIR/truth.csv.

    A re-run replaces only what the last one wrote; a non-empty folder that synth did not
    make is refused unless ``force`` (and even then, nothing in it is deleted).
    """
    options = options or SynthOptions()
    options.validate()
    started = time.perf_counter()
    folder = OwnedFolder(out_dir, "synth")
    folder.claim(force)
    region = load_region(options.region)
    world = build_world(region, options.spots, options.seed)
    rng = np.random.default_rng(options.seed)
    shots = plan_shots(world, options.headings, options.pitches, options.gps_noise_m, rng)
    assign_defects(shots, options.rates, rng)
    rows = _render_all(out_dir, shots, world, region, options, progress)
    rows += _dataset_files(out_dir, options)
    rows.sort(key=lambda r: r["file"])
    _write_truth(out_dir, rows)
    folder.record([r["file"] for r in rows] + ["truth.csv"])
    kinds: dict[str, int] = {}
    defects: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        for d in filter(None, str(row.get("defects", "")).split(";")):
            defects[d] = defects.get(d, 0) + 1
    return SynthReport(
        str(out_dir),
        len(shots),
        len(rows),
        len(world.spots),
        kinds,
        defects,
        round(time.perf_counter() - started, 1),
    )
