"""The renderer: a vectorised column ray caster over the world (numpy).

One horizontal ray per image column finds the nearest walls, trunks and crowns in plan;
each pixel then takes the nearest of them that its vertical angle meets, else ground
(walkways, grass) or sky. Lighting comes from a per-photo sun (time of day) and exposure.
About 20 ms per 640x480 view. ``render`` and ``_column_hits`` are the vectorised kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from gpskit.synth.world import FloatArray, World, segments_distance

EYE_HEIGHT = 1.6
FOV_DEG = 66.0


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
            segments_distance(gx, gy, world.paths) < world.path_width / 2
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
