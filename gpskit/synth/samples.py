"""Generated images for tests and benchmarks: textured photos with phone EXIF, and
panoramic spots whose views at neighbouring headings overlap (dedup's evaluation set).

Not a realistic campus: that is ``gpskit synth``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
from PIL import Image

from gpskit.exifwrite import PhoneExif

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


# --- panoramic spots: views of one place at several headings -------------------------------


def panorama(seed: int, *, height: int = 480, px_per_degree: int = 8) -> Image.Image:
    """A 360° street panorama: sky, a row of buildings with windows, trees, lamp posts, ground.

    Views cut from it at headings 45° apart overlap by about a third, as phone photos of
    one spot do, so they are similar but not duplicates.
    """
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    width = 360 * px_per_degree
    horizon = int(height * rng.uniform(0.55, 0.65))
    sky_top, sky_bottom = rng.integers(90, 180, 3), rng.integers(170, 250, 3)
    ramp = np.linspace(0, 1, horizon)[:, None, None]
    sky = (sky_top[None, None, :] * (1 - ramp) + sky_bottom[None, None, :] * ramp).astype(np.uint8)
    canvas = np.zeros((height, width, 3), np.uint8)
    canvas[:horizon] = np.broadcast_to(sky, (horizon, width, 3))
    ground = rng.integers(60, 130, 3)
    canvas[horizon:] = ground
    img = Image.fromarray(canvas, "RGB")
    draw = ImageDraw.Draw(img)
    x = 0
    while x < width:
        w = int(rng.integers(120, 420))
        h = int(rng.integers(int(horizon * 0.3), int(horizon * 0.95)))
        colour = tuple(int(c) for c in rng.integers(40, 220, 3))
        top = horizon - h
        draw.rectangle([x, top, x + w, horizon], fill=colour)
        window = tuple(int(c) for c in rng.integers(0, 255, 3))
        step_x, step_y = int(rng.integers(18, 40)), int(rng.integers(20, 45))
        for wx in range(x + 8, x + w - 12, step_x):
            for wy in range(top + 10, horizon - 20, step_y):
                draw.rectangle([wx, wy, wx + step_x // 2, wy + step_y // 2], fill=window)
        if rng.random() < 0.4:  # a tree in front
            cx, r = x + int(rng.integers(0, w)), int(rng.integers(25, 60))
            draw.rectangle([cx - 4, horizon - 2 * r, cx + 4, horizon], fill=(80, 60, 40))
            draw.ellipse([cx - r, horizon - 3 * r, cx + r, horizon - r], fill=(40, 120, 50))
        if rng.random() < 0.3:  # a lamp post
            lx = x + int(rng.integers(0, w))
            draw.rectangle([lx, horizon - 150, lx + 3, horizon], fill=(30, 30, 30))
        x += w + int(rng.integers(0, 60))
    grain = rng.normal(0, 4, size=(height, width, 1))
    pixels = np.clip(np.asarray(img, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def view(
    pano: Image.Image, heading: float, *, fov: float = 66.0, size: tuple[int, int] = (640, 480)
) -> Image.Image:
    """The photo a phone with a ``fov``-degree horizontal field of view takes at ``heading``."""
    px_per_degree = pano.width / 360.0
    half = fov / 2 * px_per_degree
    centre = (heading % 360.0) * px_per_degree
    left = round(centre - half)
    right = round(centre + half)
    strip = Image.new("RGB", (right - left, pano.height))
    for offset in (-pano.width, 0, pano.width):  # wrap around north
        strip.paste(pano, (offset - left, 0))
    return strip.resize(size, Image.Resampling.BILINEAR)
