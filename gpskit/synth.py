"""``gpskit synth``: a procedural campus whose photos depend on where and which way they look.

The world lives in the region's local metric frame (x east, y north): walkways, box
buildings (varied footprint, height, colour, windows and bands), trees, lamp posts and a
few tall landmarks, with more buildings in a ring around the region so edge views are not
empty. Spots are placed evenly along the walkways; each is photographed at 8 headings
(jittered a little) and two pitches (level and upward), as in the original protocol.

Rendering is a vectorised column ray caster (numpy): one horizontal ray per image column
finds the nearest walls, trunks and crowns in plan; each pixel then takes the nearest of
them that its vertical angle meets, else ground (walkways, grass) or sky. Lighting comes
from a per-photo sun (time of day) and exposure. About 20 ms per 640x480 view.

Phone behaviour: EXIF as a phone writes it (piexif), and a GPS fix that is off by a
per-spot error of about ``gps_noise_m`` (fixes drift slowly, so one spot's photos agree
with each other more than with the truth). Defects are injected at known rates and listed
in ``truth.csv`` with every photo's true position and heading.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from gpskit.errors import UsageError
from gpskit.exifwrite import PhoneExif, save_photo
from gpskit.regions import DEFAULT_REGION, Region, load_region

EYE_HEIGHT = 1.6
FOV_DEG = 66.0
PHILADELPHIA_DECLINATION = -11.5  # degrees (west), for the magnetic-heading defect
EDT = timezone(timedelta(hours=-4))
HEADINGS8 = tuple(range(0, 360, 45))

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DefectRates:
    """Share of photos that get each defect (copies are extra files)."""

    no_gps: float = 0.02
    null_island: float = 0.005
    outside_region: float = 0.01
    exact_copy: float = 0.02
    reencoded_copy: float = 0.015
    resized_copy: float = 0.015
    burst: float = 0.01
    truncated: float = 0.005
    heic_copy: float = 0.005
    magnetic_heading: float = 0.01
    stale_fix: float = 0.01
    non_image_files: int = 2


@dataclass(frozen=True)
class SynthOptions:
    region: str = DEFAULT_REGION
    spots: int = 280
    headings: int = 8
    pitches: tuple[float, ...] = (0.0, 20.0)
    size: tuple[int, int] = (640, 480)
    gps_noise_m: float = 8.0
    seed: int = 0
    quality: int = 90
    workers: int | None = None
    defects: DefectRates = field(default_factory=DefectRates)

    def validate(self) -> None:
        if self.spots < 1 or self.headings < 1 or not self.pitches:
            raise UsageError("--spots and --headings must be at least 1")
        if self.size[0] < 64 or self.size[1] < 48:
            raise UsageError("--size must be at least 64x48")
        if self.gps_noise_m < 0:
            raise UsageError("--gps-noise must not be negative")


# --- the world --------------------------------------------------------------------------------


@dataclass
class World:
    """Everything the renderer needs, as flat arrays (metres, local frame)."""

    boxes: FloatArray  # (n, 4): x0, y0, x1, y1
    box_height: FloatArray
    box_colour: FloatArray  # (n, 3)
    box_window: FloatArray  # (n, 3) window colour
    box_pattern: FloatArray  # (n, 3): window spacing, floor height, band flag
    circles: FloatArray  # (m, 3): x, y, radius
    circle_z: FloatArray  # (m, 2): bottom, top
    circle_colour: FloatArray  # (m, 3)
    paths: FloatArray  # (p, 4): x0, y0, x1, y1 segments
    path_width: float
    spots: FloatArray  # (s, 2)


def _segments_distance(px: FloatArray, py: FloatArray, seg: FloatArray) -> FloatArray:
    """Distance from points to the nearest of the segments."""
    x0, y0, x1, y1 = (seg[:, i][None, :] for i in range(4))
    dx, dy = x1 - x0, y1 - y0
    length2 = np.maximum(dx * dx + dy * dy, 1e-9)
    t = np.clip(((px[:, None] - x0) * dx + (py[:, None] - y0) * dy) / length2, 0, 1)
    distance: FloatArray = np.min(
        np.hypot(px[:, None] - (x0 + t * dx), py[:, None] - (y0 + t * dy)), axis=1
    )
    return distance


def build_world(region: Region, spots: int, seed: int) -> World:
    """A deterministic campus for ``seed`` inside (and around) the region."""
    import shapely

    rng = np.random.default_rng(seed)
    metric = region.metric
    minx, miny, maxx, maxy = metric.bounds
    # walkways: a loose grid of long straight paths, clipped to the region
    lines = []
    for x in np.linspace(minx, maxx, 5)[1:-1] + rng.uniform(-8, 8, 3):
        lines.append(shapely.LineString([(x, miny - 10), (x + rng.uniform(-15, 15), maxy + 10)]))
    for y in np.linspace(miny, maxy, 6)[1:-1] + rng.uniform(-8, 8, 4):
        lines.append(shapely.LineString([(minx - 10, y), (maxx + 10, y + rng.uniform(-15, 15))]))
    clipped = [metric.intersection(line) for line in lines]
    segments = []
    for geom in clipped:
        for part in getattr(geom, "geoms", [geom]):
            coords = np.asarray(part.coords) if not part.is_empty else np.empty((0, 2))
            for a, b in itertools.pairwise(coords):
                segments.append([a[0], a[1], b[0], b[1]])
    paths = np.asarray(segments, float)
    # spots: evenly along the walkways
    lengths = np.hypot(paths[:, 2] - paths[:, 0], paths[:, 3] - paths[:, 1])
    total = lengths.sum()
    step = total / spots
    offsets = (np.arange(spots) + 0.5) * step
    cumulative = np.concatenate([[0], np.cumsum(lengths)])
    which = np.clip(np.searchsorted(cumulative, offsets, side="right") - 1, 0, len(paths) - 1)
    frac = (offsets - cumulative[which]) / np.maximum(lengths[which], 1e-9)
    spot_xy = np.column_stack(
        [
            paths[which, 0] + frac * (paths[which, 2] - paths[which, 0]),
            paths[which, 1] + frac * (paths[which, 3] - paths[which, 1]),
        ]
    )
    path_width = 4.0
    # buildings: random boxes away from the walkways, inside and around the region
    boxes: list[tuple[float, float, float, float]] = []
    heights: list[float] = []
    colours: list[Any] = []
    windows: list[Any] = []
    patterns: list[list[float]] = []
    outer = metric.buffer(60)
    tries = 0
    while len(boxes) < 160 and tries < 6000:
        tries += 1
        w, d = rng.uniform(10, 38), rng.uniform(10, 38)
        x0 = rng.uniform(minx - 60, maxx + 60 - w)
        y0 = rng.uniform(miny - 60, maxy + 60 - d)
        box = shapely.box(x0, y0, x0 + w, y0 + d)
        if not outer.contains(box):
            continue
        corners = np.array(
            [[x0, y0], [x0 + w, y0], [x0, y0 + d], [x0 + w, y0 + d], [x0 + w / 2, y0 + d / 2]]
        )
        if _segments_distance(corners[:, 0], corners[:, 1], paths).min() < path_width + 3:
            continue
        if (
            len(paths)
            and shapely.distance(
                box, shapely.MultiLineString([[(s[0], s[1]), (s[2], s[3])] for s in paths])
            )
            < path_width + 2
        ):
            continue
        if any(shapely.box(*b).buffer(3).intersects(box) for b in boxes):
            continue
        boxes.append((x0, y0, x0 + w, y0 + d))
        heights.append(
            rng.choice(
                [rng.uniform(6, 14), rng.uniform(14, 30), rng.uniform(30, 45)], p=[0.45, 0.4, 0.15]
            )
        )
        palette = np.array(
            [
                [150, 70, 55],
                [185, 160, 125],
                [120, 120, 125],
                [200, 195, 180],
                [95, 60, 45],
                [170, 110, 80],
                [140, 150, 160],
                [210, 200, 160],
            ],
            float,
        )
        colours.append(
            palette[rng.integers(len(palette))] * rng.uniform(0.85, 1.15) + rng.normal(0, 8, 3)
        )
        windows.append(
            rng.choice([[60, 80, 100], [140, 170, 200], [40, 45, 50], [200, 200, 170]])
            + rng.normal(0, 8, 3)
        )
        patterns.append([rng.uniform(2.5, 5.0), rng.uniform(3.2, 4.2), float(rng.random() < 0.5)])
    # landmarks: three slim towers with loud colours
    for colour in ([200, 40, 40], [40, 60, 200], [230, 200, 40]):
        for _ in range(200):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            box = shapely.box(x, y, x + 6, y + 6)
            if (
                metric.contains(box)
                and _segments_distance(np.array([x + 3]), np.array([y + 3]), paths)[0]
                > path_width + 4
                and not any(shapely.box(*b).intersects(box) for b in boxes)
            ):
                boxes.append((x, y, x + 6, y + 6))
                heights.append(rng.uniform(55, 75))
                colours.append(np.array(colour, float))
                windows.append(np.array([250, 250, 250], float))
                patterns.append([3.0, 6.0, 1.0])
                break
    # trees and lamp posts along the walkways
    circles, zs, ccolours = [], [], []
    for seg in paths:
        length = math.hypot(seg[2] - seg[0], seg[3] - seg[1])
        ux, uy = (seg[2] - seg[0]) / max(length, 1e-9), (seg[3] - seg[1]) / max(length, 1e-9)
        nx, ny = -uy, ux
        for s in np.arange(rng.uniform(0, 12), length, rng.uniform(9, 16)):
            side = rng.choice([-1, 1])
            x = seg[0] + ux * s + nx * side * rng.uniform(4.5, 7)
            y = seg[1] + uy * s + ny * side * rng.uniform(4.5, 7)
            if rng.random() < 0.75:
                radius = rng.uniform(1.8, 3.5)
                circles += [(x, y, 0.25), (x, y, radius)]
                zs += [(0, 3.0), (2.6, 2.6 + rng.uniform(3, 7))]
                ccolours += [
                    [90, 65, 45],
                    [rng.uniform(30, 70), rng.uniform(100, 150), rng.uniform(30, 60)],
                ]
            else:
                circles += [(x, y, 0.12)]
                zs += [(0, 4.5)]
                ccolours += [[45, 45, 50]]
    return World(
        boxes=np.asarray(boxes, float),
        box_height=np.asarray(heights, float),
        box_colour=np.asarray(colours, float),
        box_window=np.asarray(windows, float),
        box_pattern=np.asarray(patterns, float),
        circles=np.asarray(circles, float).reshape(-1, 3),
        circle_z=np.asarray(zs, float).reshape(-1, 2),
        circle_colour=np.asarray(ccolours, float).reshape(-1, 3),
        paths=paths,
        path_width=path_width,
        spots=spot_xy,
    )


# --- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Light:
    sun_azimuth: float  # degrees
    sun_elevation: float
    exposure: float
    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]


def light_at(hour: float, rng: np.random.Generator) -> Light:
    """Sun and sky for an hour of the day (8-18 h), with a random exposure."""
    azimuth = 90 + (hour - 6) * 15  # east in the morning, west in the evening
    elevation = max(5.0, 60 * math.sin(math.pi * (hour - 6) / 14))
    warm = max(0.0, 1 - elevation / 30)
    top = (70 + 40 * warm, 120 + 20 * warm, 200 - 40 * warm)
    horizon = (190 + 50 * warm, 205 + 20 * warm, 225 - 50 * warm)
    return Light(azimuth, elevation, float(rng.uniform(0.8, 1.2)), top, horizon)


def render(
    world: World,
    x: float,
    y: float,
    heading: float,
    pitch: float,
    light: Light,
    size: tuple[int, int],
    rng: np.random.Generator,
    scale: float = 0.5,
) -> Image.Image:
    """The view from (x, y) at eye height looking at ``heading`` (deg) tilted by ``pitch``.

    Rendered at ``scale`` of ``size`` and enlarged (bilinear), then given sensor noise:
    four times faster at half scale, and as soft as a phone photo.
    """
    full = size
    width, height = max(16, round(size[0] * scale)), max(12, round(size[1] * scale))
    f = (width / 2) / math.tan(math.radians(FOV_DEG) / 2)
    xc = (np.arange(width) + 0.5 - width / 2) / f
    yc = (height / 2 - np.arange(height) - 0.5) / f
    az = math.radians(heading) + np.arctan(xc)
    dx, dy = np.sin(az), np.cos(az)
    th = math.radians(pitch)
    forward = math.cos(th) - yc * math.sin(th)
    slope = ((math.sin(th) + yc * math.cos(th)) / forward)[:, None] / np.sqrt(1 + xc * xc)[None, :]

    hits_t, hits_obj, hits_u, hits_face = _column_hits(world, x, y, dx, dy)
    k = hits_t.shape[1]
    image = np.zeros((height, width, 3))
    done = np.zeros((height, width), bool)
    sun = np.array(
        [math.sin(math.radians(light.sun_azimuth)), math.cos(math.radians(light.sun_azimuth))]
    )
    ground_t = np.where(slope < 0, EYE_HEIGHT / np.maximum(-slope, 1e-9), np.inf)
    n_boxes = len(world.boxes)
    for layer in range(k):
        t = hits_t[:, layer][None, :]
        obj = hits_obj[:, layer]
        valid_col = np.isfinite(hits_t[:, layer])
        if not valid_col.any():
            break
        z = EYE_HEIGHT + t * slope
        is_box = obj < n_boxes
        zlow = np.where(
            is_box,
            0.0,
            world.circle_z[np.clip(obj - n_boxes, 0, None), 0] if len(world.circle_z) else 0.0,
        )
        ztop = np.where(
            is_box,
            world.box_height[np.clip(obj, 0, max(n_boxes - 1, 0))] if n_boxes else 0.0,
            world.circle_z[np.clip(obj - n_boxes, 0, None), 1] if len(world.circle_z) else 0.0,
        )
        hit = (
            (~done)
            & valid_col[None, :]
            & (z >= zlow[None, :])
            & (z <= ztop[None, :])
            & (t < ground_t)
        )
        if not hit.any():
            continue
        rows, cols = np.nonzero(hit)
        o = obj[cols]
        zz = z[rows, cols]
        u = hits_u[cols, layer]
        colour = np.zeros((len(rows), 3))
        box_mask = o < n_boxes
        if box_mask.any():
            b = o[box_mask]
            base = world.box_colour[b]
            spacing, floor, band = (
                world.box_pattern[b, 0],
                world.box_pattern[b, 1],
                world.box_pattern[b, 2],
            )
            uu, z2 = u[box_mask], zz[box_mask]
            in_window = (
                ((uu % spacing) > 0.35 * spacing)
                & ((z2 % floor) > 0.3 * floor)
                & ((z2 % floor) < 0.85 * floor)
                & (z2 > floor)
            )
            banded = (band > 0) & ((z2 % floor) < 0.18 * floor)
            c = np.where(in_window[:, None], world.box_window[b], base)
            c = np.where(banded[:, None], base * 0.7, c)
            face = hits_face[cols[box_mask], layer]
            normals = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], float)[face]
            shade = 0.55 + 0.45 * np.clip(normals @ sun, 0, 1) * math.sin(
                math.radians(light.sun_elevation) + 0.3
            )
            colour[box_mask] = c * shade[:, None]
        if (~box_mask).any():
            c = o[~box_mask] - n_boxes
            base = world.circle_colour[c]
            grain = 0.85 + 0.3 * (np.sin(u[~box_mask] * 7.3 + zz[~box_mask] * 5.1) * 0.5 + 0.5)
            colour[~box_mask] = base * grain[:, None]
        # atmospheric perspective: far things fade towards the horizon colour
        fog = np.clip(t[0, cols] / 400.0, 0, 0.6)[:, None]
        colour = colour * (1 - fog) + np.array(light.sky_horizon) * fog
        image[rows, cols] = colour
        done[rows, cols] = True
    # ground: walkways and grass
    ground = (~done) & np.isfinite(ground_t)
    if ground.any():
        rows, cols = np.nonzero(ground)
        t = ground_t[rows, cols]
        gx, gy = x + dx[cols] * t, y + dy[cols] * t
        on_path = (
            _segments_distance(gx, gy, world.paths) < world.path_width / 2
            if len(world.paths)
            else np.zeros(len(gx), bool)
        )
        texture = 0.9 + 0.1 * np.sin(gx * 3.1) * np.cos(gy * 2.7)
        grass = np.array([75, 120, 55]) * texture[:, None]
        stone = np.array([175, 170, 160]) * texture[:, None]
        colour = np.where(on_path[:, None], stone, grass)
        fog = np.clip(t / 400.0, 0, 0.6)[:, None]
        image[rows, cols] = colour * (1 - fog) + np.array(light.sky_horizon) * fog
        done[rows, cols] = True
    # sky
    sky = ~done
    if sky.any():
        rows, cols = np.nonzero(sky)
        elevation = np.clip(slope[rows, cols] * 2.0, 0, 1)[:, None]
        image[rows, cols] = (
            np.array(light.sky_horizon) * (1 - elevation) + np.array(light.sky_top) * elevation
        )
    small = Image.fromarray(np.clip(image * light.exposure, 0, 255).astype(np.uint8), "RGB")
    big = np.asarray(small.resize(full, Image.Resampling.BILINEAR), dtype=np.float32)
    big = big + rng.normal(0, 2.5, big.shape).astype(np.float32)
    return Image.fromarray(np.clip(big, 0, 255).astype(np.uint8), "RGB")


def _column_hits(
    world: World, x: float, y: float, dx: FloatArray, dy: FloatArray, keep: int = 8
) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray, npt.NDArray[np.int64]]:
    """Per column, the nearest ``keep`` object hits: distance, object, u on the surface, face."""
    cols = len(dx)
    all_t, all_obj, all_u, all_face = [], [], [], []
    if len(world.boxes):
        b = world.boxes
        with np.errstate(divide="ignore", invalid="ignore"):
            inv_x, inv_y = 1.0 / dx[:, None], 1.0 / dy[:, None]
            tx0, tx1 = (b[None, :, 0] - x) * inv_x, (b[None, :, 2] - x) * inv_x
            ty0, ty1 = (b[None, :, 1] - y) * inv_y, (b[None, :, 3] - y) * inv_y
        txmin, txmax = np.minimum(tx0, tx1), np.maximum(tx0, tx1)
        tymin, tymax = np.minimum(ty0, ty1), np.maximum(ty0, ty1)
        tmin = np.maximum(txmin, tymin)
        tmax = np.minimum(txmax, tymax)
        ok = (tmax >= tmin) & (tmin > 0.3)
        t = np.where(ok, tmin, np.inf)
        x_face = txmin >= tymin  # entered through an x face (west/east wall)
        hx, hy = x + dx[:, None] * t, y + dy[:, None] * t
        face = np.where(x_face, np.where(dx[:, None] > 0, 0, 1), np.where(dy[:, None] > 0, 2, 3))
        u = np.where(x_face, hy - b[None, :, 1], hx - b[None, :, 0])
        all_t.append(t)
        all_obj.append(np.broadcast_to(np.arange(len(b)), t.shape))
        all_u.append(u)
        all_face.append(face)
    if len(world.circles):
        c = world.circles
        ox, oy = x - c[None, :, 0], y - c[None, :, 1]
        bq = ox * dx[:, None] + oy * dy[:, None]
        cq = ox * ox + oy * oy - c[None, :, 2] ** 2
        disc = bq * bq - cq
        root = np.sqrt(np.maximum(disc, 0))
        t = -bq - root
        t = np.where((disc >= 0) & (t > 0.3), t, np.inf)
        hx, hy = x + dx[:, None] * t, y + dy[:, None] * t
        u = np.arctan2(hy - c[None, :, 1], hx - c[None, :, 0]) * c[None, :, 2]
        all_t.append(t)
        all_obj.append(np.broadcast_to(np.arange(len(c)) + len(world.boxes), t.shape))
        all_u.append(u)
        all_face.append(np.zeros(t.shape, np.int64))
    if not all_t:
        empty = np.full((cols, 1), np.inf)
        return (
            empty,
            np.zeros((cols, 1), np.int64),
            np.zeros((cols, 1)),
            np.zeros((cols, 1), np.int64),
        )
    t = np.concatenate(all_t, axis=1)
    obj = np.concatenate(all_obj, axis=1)
    u = np.concatenate(all_u, axis=1)
    face = np.concatenate(all_face, axis=1)
    keep = min(keep, t.shape[1])
    nearest = np.argpartition(t, keep - 1, axis=1)[:, :keep]
    order = np.take_along_axis(t, nearest, 1).argsort(axis=1)
    nearest = np.take_along_axis(nearest, order, 1)
    return (
        np.take_along_axis(t, nearest, 1),
        np.take_along_axis(obj, nearest, 1),
        np.take_along_axis(u, nearest, 1),
        np.take_along_axis(face, nearest, 1),
    )


# --- photos, EXIF and defects -------------------------------------------------------------------

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


def plan_shots(world: World, options: SynthOptions, rng: np.random.Generator) -> list[Shot]:
    """Every photo: spot, heading (jittered), pitch, time, light, GPS fix with its error."""
    shots: list[Shot] = []
    start = datetime(2024, 5, 1, 9, 0, 0, tzinfo=EDT)
    headings = np.arange(options.headings) * 360.0 / options.headings
    per_spot_s = 6 * options.headings * len(options.pitches) + 60
    for spot, (sx, sy) in enumerate(world.spots):
        offset = rng.normal(0, options.gps_noise_m / math.sqrt(2), 2)
        phone = spot * len(PHONES) // max(1, len(world.spots))
        spot_start = start + timedelta(seconds=spot * per_spot_s)
        k = 0
        for pitch in options.pitches:
            for heading in headings:
                taken = spot_start + timedelta(seconds=6 * k + float(rng.uniform(0, 2)))
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
                        h_error=float(max(3.0, options.gps_noise_m * rng.uniform(0.6, 1.4))),
                    )
                )
    return shots


def assign_defects(shots: list[Shot], rates: DefectRates, rng: np.random.Generator) -> None:
    """Mark photos for each defect at its rate (at least one each when rate > 0)."""
    n = len(shots)
    free = list(rng.permutation(n))
    for name in (
        "no_gps",
        "null_island",
        "outside_region",
        "stale_fix",
        "magnetic_heading",
        "exact_copy",
        "reencoded_copy",
        "resized_copy",
        "heic_copy",
        "burst",
        "truncated",
    ):
        rate = getattr(rates, name)
        count = 0 if rate <= 0 else max(1, round(rate * n))
        for _ in range(min(count, len(free))):
            shots[int(free.pop())].defects.append(name)


def _exif_for(shot: Shot, region: Region, gps_ok: bool = True) -> PhoneExif:
    lat, lon = region.projection.inverse(shot.reported_x, shot.reported_y)
    make, model, software = PHONES[shot.phone % len(PHONES)]
    exif = PhoneExif(
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
    if "no_gps" in shot.defects or not gps_ok:
        exif.latitude = exif.longitude = None
    if "null_island" in shot.defects:
        exif.latitude, exif.longitude = 0.0, 0.0
    if "outside_region" in shot.defects:
        # a fix far south of the region (phones do this near tall buildings)
        away_lat, away_lon = region.projection.inverse(0.0, -450.0)
        exif.latitude, exif.longitude = float(away_lat), float(away_lon)
    if "stale_fix" in shot.defects:
        exif.gps_time = shot.taken - timedelta(minutes=15)
    if "magnetic_heading" in shot.defects:
        exif.heading = (shot.heading - PHILADELPHIA_DECLINATION) % 360
        exif.heading_ref = "M"
    return exif


_WORLD: World | None = None
_REGION: Region | None = None


def _init(world: World, region_source: str) -> None:
    global _WORLD, _REGION
    _WORLD, _REGION = world, load_region(region_source)


def make_shot(shot: Shot, out: str, options: SynthOptions) -> list[dict[str, Any]]:
    """Render one photo and its derived files; return their truth rows."""
    assert _WORLD is not None and _REGION is not None
    world, region = _WORLD, _REGION
    rng = np.random.default_rng([options.seed, shot.index])
    light = light_at(shot.hour, rng)
    img = render(world, shot.x, shot.y, shot.heading, shot.pitch, light, options.size, rng)
    folder = Path(out) / "photos" / f"spot_{shot.spot:03d}"
    name = f"IMG_{shot.index + 1:05d}.jpg"
    path = save_photo(img, folder / name, _exif_for(shot, region), quality=options.quality)
    true_lat, true_lon = region.projection.inverse(shot.x, shot.y)
    rep_lat, rep_lon = region.projection.inverse(shot.reported_x, shot.reported_y)
    base = {
        "spot": shot.spot,
        "true_latitude": round(float(true_lat), 8),
        "true_longitude": round(float(true_lon), 8),
        "true_heading": round(shot.heading, 2),
        "pitch": shot.pitch,
        "reported_latitude": round(float(rep_lat), 8),
        "reported_longitude": round(float(rep_lon), 8),
        "taken": shot.taken.isoformat(),
    }
    original = f"photos/spot_{shot.spot:03d}/{name}"
    exif_defects = [
        d
        for d in shot.defects
        if d in ("no_gps", "null_island", "outside_region", "stale_fix", "magnetic_heading")
    ]
    rows = [
        {"file": original, "kind": "photo", "source": "", "defects": ";".join(exif_defects), **base}
    ]
    exports = Path(out) / "photos" / "exports"
    for defect in shot.defects:
        stem = f"IMG_{shot.index + 1:05d}"
        if defect == "exact_copy":
            target = exports / f"{stem} (copy).jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        elif defect == "reencoded_copy":
            target = save_photo(
                img, exports / f"{stem}_q60.jpg", _exif_for(shot, region), quality=60
            )
        elif defect == "resized_copy":
            small = img.resize((img.width // 2, img.height // 2), Image.Resampling.BILINEAR)
            target = save_photo(
                small, exports / f"{stem}_small.jpg", _exif_for(shot, region), quality=85
            )
        elif defect == "heic_copy":
            target = save_photo(img, exports / f"{stem}.HEIC", _exif_for(shot, region), quality=85)
        elif defect == "truncated":
            target = exports / f"{stem}_broken.jpg"
            data = path.read_bytes()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data[: int(len(data) * 0.6)])
        elif defect == "burst":
            burst = Shot(
                **{
                    **asdict(shot),
                    "heading": (shot.heading + 1.0) % 360,
                    "x": shot.x + 0.15,
                    "taken": shot.taken + timedelta(seconds=1),
                    "defects": [],
                }
            )
            extra = render(
                world, burst.x, burst.y, burst.heading, burst.pitch, light, options.size, rng
            )
            target = save_photo(
                extra,
                folder / f"{stem}_burst.jpg",
                _exif_for(burst, region),
                quality=options.quality,
            )
        else:
            continue
        rows.append(
            {
                "file": str(target.relative_to(out)),
                "kind": defect,
                "source": original,
                "defects": defect,
                **base,
            }
        )
    return rows


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


def synth(out_dir: Path, options: SynthOptions | None = None, progress: Any = None) -> SynthReport:
    """Write OUT_DIR/photos/ (the campus photos and injected defects) and OUT_DIR/truth.csv."""
    import time

    from gpskit.atomic import write_text
    from gpskit.pool import run_isolated

    options = options or SynthOptions()
    options.validate()
    started = time.perf_counter()
    region = load_region(options.region)
    world = build_world(region, options.spots, options.seed)
    rng = np.random.default_rng(options.seed)
    shots = plan_shots(world, options, rng)
    assign_defects(shots, options.defects, rng)
    if (out_dir / "photos").exists():
        shutil.rmtree(out_dir / "photos")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    tasks = [(shot, str(out_dir), options) for shot in shots]
    outcomes = run_isolated(
        make_shot,
        tasks,
        workers=options.workers,
        timeout=300,
        initializer=_Init(world, region.source),
    )
    for done, outcome in enumerate(outcomes, start=1):
        if outcome.failure is not None or outcome.value is None:
            raise RuntimeError(f"rendering photo {outcome.index} failed: {outcome.detail}")
        rows.extend(outcome.value)
        if progress:
            progress(done, len(tasks))
    for i in range(options.defects.non_image_files):
        name = f"photos/exports/notes_{i + 1}.jpg"
        write_text(out_dir / name, "Meeting notes, not a photo.\n")
        rows.append({"file": name, "kind": "non_image", "source": "", "defects": "non_image"})
    rows.sort(key=lambda r: r["file"])
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(TRUTH_FIELDS))
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "truth.csv", buffer.getvalue())
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


class _Init:
    """Picklable worker initializer carrying the world."""

    def __init__(self, world: World, region_source: str) -> None:
        self.world, self.region_source = world, region_source

    def __call__(self) -> None:
        _init(self.world, self.region_source)
