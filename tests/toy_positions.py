"""A position-encoding toy dataset: photos whose colours and stripes change smoothly with
where they were taken, so any model that learns anything beats the training centre."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gpskit.exifwrite import save_photo
from gpskit.geo import LocalProjection
from gpskit.ingest import IngestOptions, ingest
from gpskit.split import SplitOptions, split

from .helpers import good_exif

CAMPUS = LocalProjection(39.9515, -75.1915)


def colour_photo(x: float, y: float, heading: float, rng: np.random.Generator) -> Image.Image:
    """A photo whose colours change smoothly with where it was taken (learnable)."""
    base = np.array([128 + 1.6 * x, 128 + 1.6 * y, 60 + 0.3 * heading])
    pixels = base[None, None, :] + rng.normal(0, 12, size=(240, 320, 3))
    stripes = (np.arange(320) // (12 + int(abs(x)) % 9) % 2)[None, :, None] * 25
    return Image.fromarray(np.clip(pixels + stripes, 0, 255).astype(np.uint8), "RGB")


def toy_dataset(root: Path, side: int = 8, headings: int = 4) -> Path:
    """``side`` x ``side`` spots 15 m apart, ``headings`` photos each; ingested and split
    (photos embedded at 64 px). Returns the dataset folder."""
    rng = np.random.default_rng(0)
    offset = 7.5 * (side - 1)
    for i in range(side):
        for j in range(side):
            x, y = -offset + 15 * i, -offset + 15 * j
            for k in range(headings):
                heading = 360.0 * k / headings
                lat, lon = CAMPUS.inverse(x + rng.normal(0, 1), y + rng.normal(0, 1))
                exif = good_exif(latitude=float(lat), longitude=float(lon), heading=heading)
                save_photo(
                    colour_photo(x, y, heading, rng),
                    root / "photos" / f"s{i}{j}_{k}.jpg",
                    exif,
                    quality=85,
                )
    dataset = root / "ds"
    ingest([root / "photos"], dataset, IngestOptions(workers=2))
    split(dataset, SplitOptions(embed=True, max_side=64, ratios=(0.7, 0.15, 0.15)))
    return dataset
