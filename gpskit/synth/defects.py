"""Injected defects, as a registry: what goes wrong, how often, and what must catch it.

Each defect is one function registered with its name, its default rate and the report
the pipeline must give for it (a rejection reason, a warning, the outside-region flag, or
a duplicate group of some kind). Three sorts:

- ``exif``: the photo itself carries a lie (no fix, a stale fix, a magnetic heading);
  the function edits the shot's :class:`PhoneExif`;
- ``file``: an extra file made from the photo (a copy, a re-encoding, a truncation, a
  burst shot); the function writes it and returns its path;
- ``dataset``: files that belong to no shot (notes saved as .jpg); the rate is a count.

Shots are picked for the shot defects in registry order, one defect per shot at most, so
adding a defect at the end leaves every earlier pick unchanged. Adding one touches only
this file; ``gpskit demo`` checks each against ``truth.csv``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from gpskit.atomic import write_text
from gpskit.exifwrite import PhoneExif, save_photo
from gpskit.regions import Region
from gpskit.synth.camera import Shot, phone_exif
from gpskit.synth.render import Light, render
from gpskit.synth.world import World

PHILADELPHIA_DECLINATION = -11.5  # degrees (west), for the magnetic-heading defect
Sort = Literal["exif", "file", "dataset"]
How = Literal["reason", "warning", "outside", "group"]


@dataclass(frozen=True)
class Expect:
    """How the pipeline must report a defect: ``how`` (reason, warning, outside, group) and
    the code (a reason or warning code, ``outside_region``, or a group kind)."""

    how: How
    code: str

    def __str__(self) -> str:
        return f"{self.how}: {self.code}"


@dataclass
class ShotFiles:
    """What a ``file`` defect works from: the shot, its photo and where files go."""

    shot: Shot
    image: Image.Image
    photo: Path  # the original photo's file
    folder: Path  # the spot's folder
    exports: Path  # where copies go
    world: World
    region: Region
    light: Light
    size: tuple[int, int]
    quality: int
    rng: np.random.Generator

    @property
    def stem(self) -> str:
        return f"IMG_{self.shot.index + 1:05d}"

    def save_copy(self, img: Image.Image, suffix: str, quality: int) -> Path:
        """Save ``img`` into exports/ as ``<stem><suffix>`` with the phone's clean EXIF."""
        exif = phone_exif(self.shot, self.region)
        return save_photo(img, self.exports / f"{self.stem}{suffix}", exif, quality=quality)


@dataclass(frozen=True)
class Defect:
    """One registered defect; ``rate`` is a share of photos (a count for ``dataset``)."""

    name: str
    sort: Sort
    rate: float
    expect: Expect
    description: str
    apply: Callable[..., Any]


DEFECTS: dict[str, Defect] = {}


def defect(
    name: str, sort: Sort, rate: float, how: How, code: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``apply`` as the defect ``name`` (its docstring says what it is)."""

    def register(apply: Callable[..., Any]) -> Callable[..., Any]:
        if name in DEFECTS:
            raise ValueError(f"defect {name!r} registered twice")
        doc = " ".join((apply.__doc__ or "").split())
        DEFECTS[name] = Defect(name, sort, rate, Expect(how, code), doc, apply)
        return apply

    return register


def default_rates() -> dict[str, float]:
    return {d.name: d.rate for d in DEFECTS.values()}


# --- the photo's own EXIF -------------------------------------------------------------------


@defect("no_gps", "exif", 0.02, "reason", "no_gps")
def _no_gps(exif: PhoneExif, shot: Shot, region: Region) -> None:
    """Location services off: EXIF without a position."""
    exif.latitude = exif.longitude = None


@defect("null_island", "exif", 0.005, "reason", "gps_null_island")
def _null_island(exif: PhoneExif, shot: Shot, region: Region) -> None:
    """A failed fix written as (0, 0)."""
    exif.latitude, exif.longitude = 0.0, 0.0


@defect("outside_region", "exif", 0.01, "outside", "outside_region")
def _outside_region(exif: PhoneExif, shot: Shot, region: Region) -> None:
    """A fix 450 m south of the region's centre (phones do this near tall buildings)."""
    away_lat, away_lon = region.projection.inverse(0.0, -450.0)
    exif.latitude, exif.longitude = float(away_lat), float(away_lon)


@defect("stale_fix", "exif", 0.01, "reason", "gps_stale_fix")
def _stale_fix(exif: PhoneExif, shot: Shot, region: Region) -> None:
    """A cached fix 15 minutes older than the photo."""
    exif.gps_time = shot.taken - timedelta(minutes=15)


@defect("magnetic_heading", "exif", 0.01, "warning", "heading_magnetic")
def _magnetic_heading(exif: PhoneExif, shot: Shot, region: Region) -> None:
    """The heading relative to magnetic north (Philadelphia's declination, -11.5°)."""
    exif.heading = (shot.heading - PHILADELPHIA_DECLINATION) % 360
    exif.heading_ref = "M"


# --- extra files made from the photo --------------------------------------------------------


def _exports(files: ShotFiles, name: str) -> Path:
    target = files.exports / name
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


@defect("exact_copy", "file", 0.02, "group", "exact")
def _exact_copy(files: ShotFiles) -> Path:
    """A byte-for-byte copy (a second import of the same photo)."""
    target = _exports(files, f"{files.stem} (copy).jpg")
    shutil.copyfile(files.photo, target)
    return target


@defect("reencoded_copy", "file", 0.015, "group", "near")
def _reencoded_copy(files: ShotFiles) -> Path:
    """The photo saved again at JPEG quality 60 (a messaging app)."""
    return files.save_copy(files.image, "_q60.jpg", quality=60)


@defect("resized_copy", "file", 0.015, "group", "near")
def _resized_copy(files: ShotFiles) -> Path:
    """The photo at half size (an export for the web)."""
    img = files.image
    small = img.resize((img.width // 2, img.height // 2), Image.Resampling.BILINEAR)
    return files.save_copy(small, "_small.jpg", quality=85)


@defect("heic_copy", "file", 0.005, "group", "near")
def _heic_copy(files: ShotFiles) -> Path:
    """The same photo as HEIC (the phone's own format, beside a JPEG export)."""
    return files.save_copy(files.image, ".HEIC", quality=85)


@defect("burst", "file", 0.01, "group", "burst")
def _burst(files: ShotFiles) -> Path:
    """A second shot one second later, 1° and 15 cm apart (a burst or a double tap)."""
    shot = files.shot
    burst = Shot(
        **{
            **asdict(shot),
            "heading": (shot.heading + 1.0) % 360,
            "x": shot.x + 0.15,
            "taken": shot.taken + timedelta(seconds=1),
            "defects": [],
        }
    )
    view = (burst.x, burst.y, burst.heading, burst.pitch)
    img = render(files.world, *view, files.light, files.size, files.rng)
    target = files.folder / f"{files.stem}_burst.jpg"
    return save_photo(img, target, phone_exif(burst, files.region), quality=files.quality)


@defect("truncated", "file", 0.005, "reason", "decode_error")
def _truncated(files: ShotFiles) -> Path:
    """The first 60 % of the file (an interrupted copy)."""
    target = _exports(files, f"{files.stem}_broken.jpg")
    data = files.photo.read_bytes()
    target.write_bytes(data[: int(len(data) * 0.6)])
    return target


@defect("motion_blur", "file", 0.01, "warning", "blurry")
def _motion_blur(files: ShotFiles) -> Path:
    """A second shot taken while walking: smeared sideways over 4 % of its width."""
    pixels = np.asarray(files.image.convert("RGB"), dtype=np.float32)
    reach = max(2, files.image.width // 25)
    padded = np.pad(pixels, ((0, 0), (reach, reach), (0, 0)), mode="edge")
    windows = np.stack([padded[:, i : i + pixels.shape[1]] for i in range(2 * reach + 1)])
    image = Image.fromarray(windows.mean(axis=0).clip(0, 255).astype(np.uint8))
    return files.save_copy(image, "_blurred.jpg", quality=files.quality)


@defect("dark_shot", "file", 0.01, "warning", "dark")
def _dark_shot(files: ShotFiles) -> Path:
    """A second shot with a finger over the lens: an eighth of the light."""
    pixels = np.asarray(files.image.convert("RGB"), dtype=np.float32) / 8
    return files.save_copy(
        Image.fromarray(pixels.astype(np.uint8)), "_dark.jpg", quality=files.quality
    )


# --- files of no shot -----------------------------------------------------------------------


@defect("non_image", "dataset", 2, "reason", "not_image")
def _non_image(out_dir: Path, index: int) -> Path:
    """A text file named like a photo (notes saved into the photo folder)."""
    target = out_dir / f"photos/exports/notes_{index + 1}.jpg"
    write_text(target, "Meeting notes, not a photo.\n")
    return target


# --- using the registry ---------------------------------------------------------------------


def of_sort(sort: Sort) -> list[Defect]:
    return [d for d in DEFECTS.values() if d.sort == sort]


def assign_defects(shots: list[Shot], rates: dict[str, float], rng: np.random.Generator) -> None:
    """Mark photos for each shot defect at its rate (at least one each when rate > 0)."""
    free = list(rng.permutation(len(shots)))
    for item in DEFECTS.values():
        if item.sort == "dataset":
            continue
        rate = rates.get(item.name, item.rate)
        count = 0 if rate <= 0 else max(1, round(rate * len(shots)))
        for _ in range(min(count, len(free))):
            shots[int(free.pop())].defects.append(item.name)


def shot_exif(shot: Shot, region: Region) -> PhoneExif:
    """The EXIF the photo is saved with: the phone's, with the shot's EXIF defects applied."""
    exif = phone_exif(shot, region)
    for item in of_sort("exif"):
        if item.name in shot.defects:
            item.apply(exif, shot, region)
    return exif
