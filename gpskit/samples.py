"""Small generated photo sets with phone EXIF, for ``make demo``, benchmarks and tests.

Not a realistic scene (that is ``gpskit synth``): textured images whose EXIF is what a
phone writes around Penn's campus, plus one file of each common defect.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import Image

from gpskit.exifwrite import PhoneExif, save_photo

#: Centre of the default region (Penn's campus, 33rd-34th St, Walnut-Spruce).
CAMPUS_CENTRE = (39.9515, -75.1915)
EDT = timezone(timedelta(hours=-4))


def textured_image(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like image: smooth random colour fields plus fine grain (JPEG-sized like a photo)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    img = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    grain = rng.normal(0, 6, size=(height, width, 1)).astype(np.int16)
    pixels = np.clip(np.asarray(img, dtype=np.int16) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def phone_exif(rng: random.Random, index: int) -> PhoneExif:
    """EXIF of a campus photo: position near the centre, a heading, a 3-12 m error."""
    lat, lon = CAMPUS_CENTRE
    taken = datetime(2024, 5, 1, 10, 0, 0, tzinfo=EDT) + timedelta(minutes=3 * index)
    return PhoneExif(
        latitude=lat + rng.uniform(-0.0012, 0.0012),
        longitude=lon + rng.uniform(-0.0014, 0.0014),
        altitude=12.0 + rng.uniform(-2, 2),
        heading=45.0 * (index % 8) + rng.uniform(-4, 4),
        h_error=rng.uniform(3, 12),
        taken=taken,
    )


def write_photo_set(
    out: Path,
    count: int = 24,
    *,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    defects: bool = True,
) -> list[Path]:
    """Write ``count`` good JPEGs (and, with ``defects``, one file per common defect)."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(count):
        img = textured_image(*size, seed=seed * 100_003 + i)
        written.append(save_photo(img, out / f"IMG_{i:04d}.jpg", phone_exif(rng, i)))
    if not defects:
        return written
    img = textured_image(*size, seed=seed + 999)
    no_gps = phone_exif(rng, 0)
    no_gps.latitude = no_gps.longitude = None
    written.append(save_photo(img, out / "defects" / "no_gps.jpg", no_gps))
    null_island = phone_exif(rng, 1)
    null_island.latitude, null_island.longitude = 0.0, 0.0
    written.append(save_photo(img, out / "defects" / "null_island.jpg", null_island))
    noisy = phone_exif(rng, 2)
    noisy.h_error = 65.0
    written.append(save_photo(img, out / "defects" / "poor_fix.jpg", noisy))
    truncated = out / "defects" / "truncated.jpg"
    data = (out / "IMG_0000.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    (out / "defects" / "notes.jpg").write_text("not a photo\n")
    (out / "defects" / "empty.jpg").write_bytes(b"")
    written += [truncated, out / "defects" / "notes.jpg", out / "defects" / "empty.jpg"]
    return written


def main() -> None:  # pragma: no cover - used by the Makefile
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else ".demo-photos")
    paths = write_photo_set(target)
    print(f"wrote {len(paths)} files under {target}/")


if __name__ == "__main__":  # pragma: no cover
    main()
