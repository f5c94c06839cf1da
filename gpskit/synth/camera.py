"""The photographers: which photos are taken where, when and how, and the EXIF phones write.

Each spot is photographed at ``headings`` headings (jittered ±4°) and each pitch, six
seconds apart, by one of three phones. A phone's GPS fix is off by a per-spot error of
about ``gps_noise_m`` plus a little per-shot jitter: fixes drift slowly, so one spot's
photos agree with each other more than with the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from gpskit.exifwrite import PhoneExif
from gpskit.regions import Region
from gpskit.synth.world import World

EDT = timezone(timedelta(hours=-4))
START = datetime(2024, 5, 1, 9, 0, 0, tzinfo=EDT)
SECONDS_BETWEEN_SHOTS = 6
PHONES = (
    ("Apple", "iPhone 13", "17.1"),
    ("Apple", "iPhone 14 Pro", "17.2"),
    ("Google", "Pixel 7", "UQ1A"),
)


@dataclass
class Shot:
    """One planned photo and what happens to it."""

    index: int
    spot: int
    heading: float  # true heading of the camera
    pitch: float
    x: float
    y: float
    taken: datetime
    hour: float
    phone: int
    reported_x: float
    reported_y: float
    h_error: float
    defects: list[str] = field(default_factory=list)


def plan_shots(
    world: World,
    headings: int,
    pitches: tuple[float, ...],
    gps_noise_m: float,
    rng: np.random.Generator,
) -> list[Shot]:
    """Every photo: spot, heading (jittered), pitch, time, light, GPS fix with its error."""
    shots: list[Shot] = []
    directions = np.arange(headings) * 360.0 / headings
    per_spot_s = SECONDS_BETWEEN_SHOTS * headings * len(pitches) + 60
    for spot, (sx, sy) in enumerate(world.spots):
        offset = rng.normal(0, gps_noise_m / math.sqrt(2), 2)
        phone = spot * len(PHONES) // max(1, len(world.spots))
        spot_start = START + timedelta(seconds=spot * per_spot_s)
        k = 0
        for pitch in pitches:
            for heading in directions:
                taken = spot_start + timedelta(
                    seconds=SECONDS_BETWEEN_SHOTS * k + float(rng.uniform(0, 2))
                )
                k += 1
                x, y = sx + rng.normal(0, 0.3), sy + rng.normal(0, 0.3)
                shots.append(
                    Shot(
                        index=len(shots),
                        spot=spot,
                        heading=float((heading + rng.uniform(-4, 4)) % 360),
                        pitch=pitch,
                        x=x,
                        y=y,
                        taken=taken,
                        hour=9 + 8 * spot / max(1, len(world.spots)),
                        phone=phone,
                        reported_x=x + offset[0] + rng.normal(0, 0.7),
                        reported_y=y + offset[1] + rng.normal(0, 0.7),
                        h_error=float(max(3.0, gps_noise_m * rng.uniform(0.6, 1.4))),
                    )
                )
    return shots


def phone_exif(shot: Shot, region: Region) -> PhoneExif:
    """The EXIF the shot's phone writes: its reported fix, heading, error, time and model."""
    lat, lon = region.projection.inverse(shot.reported_x, shot.reported_y)
    make, model, software = PHONES[shot.phone % len(PHONES)]
    return PhoneExif(
        latitude=float(lat),
        longitude=float(lon),
        altitude=12.0 + (shot.index % 5) * 0.3,
        heading=shot.heading,
        h_error=round(shot.h_error, 1),
        taken=shot.taken,
        make=make,
        model=model,
        software=software,
    )
