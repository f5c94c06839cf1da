"""The coverage map: region, cells, photos by heading, the walking plan, a legend."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw

from gpskit.atomic import atomic_path
from gpskit.geo import SECTORS, heading_sector
from gpskit.plots.common import font, save_png

SECTOR_COLOURS = (
    (228, 26, 28),  # N red
    (255, 127, 0),  # NE orange
    (200, 180, 0),  # E yellow
    (77, 175, 74),  # SE green
    (0, 170, 170),  # S teal
    (55, 126, 184),  # SW blue
    (152, 78, 163),  # W purple
    (247, 129, 191),  # NW pink
)


class _MapFrame:
    """Local metres to pixels for a map of the region (north up, padded by 8 %)."""

    def __init__(self, bounds: tuple[float, float, float, float], size: int) -> None:
        minx, miny, maxx, maxy = bounds
        pad = 0.08 * max(maxx - minx, maxy - miny)
        minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
        self.minx, self.maxy = minx, maxy
        self.scale = size / max(maxx - minx, maxy - miny)
        self.width = int((maxx - minx) * self.scale)
        self.height = int((maxy - miny) * self.scale)

    def px(self, x: Any, y: Any) -> tuple[Any, Any]:
        import numpy as np

        return (np.asarray(x) - self.minx) * self.scale, (self.maxy - np.asarray(y)) * self.scale


def _draw_cells(
    img: Image.Image, frame: _MapFrame, grid: Any, counts: Any, min_per_cell: int
) -> None:
    """Cells of the region: covered in pale green, empty in red (translucent)."""
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    odraw = ImageDraw.Draw(overlay)
    for c in range(grid.columns):
        for r in range(grid.rows):
            if not grid.in_region[c, r]:
                continue
            x0, y1 = frame.px(grid.x0 + c * grid.cell_m, grid.y0 + r * grid.cell_m)
            x1, y0 = frame.px(grid.x0 + (c + 1) * grid.cell_m, grid.y0 + (r + 1) * grid.cell_m)
            empty = counts[c, r] < min_per_cell
            fill = (230, 60, 60, 90) if empty else (120, 200, 120, 45)
            odraw.rectangle(
                [float(x0), float(y0), float(x1), float(y1)], fill=fill, outline=(150, 150, 150, 90)
            )
    img.paste(overlay, (0, 0), overlay)


def _draw_outline(draw: ImageDraw.ImageDraw, frame: _MapFrame, region: Any) -> None:
    import numpy as np

    for poly in getattr(region.metric, "geoms", [region.metric]):
        for ring in [poly.exterior, *poly.interiors]:
            xs, ys = frame.px(*np.asarray(ring.coords).T)
            draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(0, 0, 0), width=3)


#: Photos drawn on the coverage PNG at most (an even sample beyond).
MAX_MAP_PHOTOS = 100_000


def _draw_photos(draw: ImageDraw.ImageDraw, frame: _MapFrame, table: pd.DataFrame) -> int:
    """Kept photos: a dot with a tick where they look (by sector colour); outside ones as
    crosses. Returns how many outside photos fall off the map."""
    import numpy as np

    kept = table[table.keep]
    inside = kept[kept.inside_region]
    if len(inside) > MAX_MAP_PHOTOS:  # an even sample: a picture of millions of dots is ink
        inside = inside.iloc[np.linspace(0, len(inside) - 1, MAX_MAP_PHOTOS).round().astype(int)]
    xs, ys = frame.px(inside.x_m.to_numpy(float), inside.y_m.to_numpy(float))
    headings = inside.heading_true.to_numpy(float, na_value=np.nan)
    sectors = heading_sector(headings)
    for x, y, h, sector in zip(xs, ys, headings, sectors, strict=True):
        colour = SECTOR_COLOURS[sector] if sector >= 0 else (120, 120, 120)
        if sector >= 0:
            dx, dy = 11 * np.sin(np.radians(h)), -11 * np.cos(np.radians(h))
            draw.line([(x, y), (x + dx, y + dy)], fill=colour, width=2)
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour, outline=(40, 40, 40))
    outside = kept[~kept.inside_region]
    oxs, oys = frame.px(outside.x_m.to_numpy(float), outside.y_m.to_numpy(float))
    off_map = 0
    for x, y in zip(oxs, oys, strict=True):
        if not (0 <= x <= frame.width and 0 <= y <= frame.height):
            off_map += 1
            continue
        draw.line([(x - 5, y - 5), (x + 5, y + 5)], fill=(0, 0, 0), width=2)
        draw.line([(x - 5, y + 5), (x + 5, y - 5)], fill=(0, 0, 0), width=2)
    return off_map


def _draw_plan(draw: ImageDraw.ImageDraw, frame: _MapFrame, stops: pd.DataFrame) -> None:
    """Incomplete spots ringed in orange; the walking route dashed and numbered."""
    spots = stops[stops.kind == "spot"]
    sxs, sys_ = frame.px(spots.x.to_numpy(float), spots.y.to_numpy(float))
    for x, y in zip(sxs, sys_, strict=True):
        draw.ellipse([x - 9, y - 9, x + 9, y + 9], outline=(255, 140, 0), width=2)
    if not len(stops):
        return
    rx, ry = frame.px(stops.x.to_numpy(float), stops.y.to_numpy(float))
    points = list(zip(rx.tolist(), ry.tolist(), strict=True))
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        _dashed(draw, (x0, y0), (x1, y1), (30, 60, 200))
    label_font = font(10)
    for i, (x, y) in enumerate(points[:200], start=1):
        draw.text((x + 4, y - 12), str(i), fill=(30, 60, 200), font=label_font)


def coverage_map(
    region: Any,
    grid: Any,
    counts: Any,
    table: pd.DataFrame,
    stops: pd.DataFrame,
    report: Any,
    target: Path,
    min_per_cell: int,
    *,
    size: int = 1000,
) -> None:
    """The region, its grid (empty cells shaded), photos coloured by heading, and the plan."""
    frame = _MapFrame(region.metric.bounds, size)
    legend_w = 300
    img = Image.new("RGB", (frame.width + legend_w, max(frame.height, 560)), "white")
    draw = ImageDraw.Draw(img)
    _draw_cells(img, frame, grid, counts, min_per_cell)
    _draw_outline(draw, frame, region)
    off_map = _draw_photos(draw, frame, table)
    _draw_plan(draw, frame, stops)
    _legend(draw, frame.width + 12, report, off_map, SECTORS, frame.scale)
    with atomic_path(target) as tmp:
        save_png(img, tmp)


def _dashed(
    draw: ImageDraw.ImageDraw,
    a: tuple[float, float],
    b: tuple[float, float],
    colour: tuple[int, int, int],
) -> None:
    import math

    length = math.hypot(b[0] - a[0], b[1] - a[1])
    steps = max(1, int(length // 8))
    for i in range(0, steps, 2):
        t0, t1 = i / steps, min(1.0, (i + 1) / steps)
        draw.line(
            [
                (a[0] + (b[0] - a[0]) * t0, a[1] + (b[1] - a[1]) * t0),
                (a[0] + (b[0] - a[0]) * t1, a[1] + (b[1] - a[1]) * t1),
            ],
            fill=colour,
            width=2,
        )


def _legend(
    draw: ImageDraw.ImageDraw, x: int, report: Any, off_map: int, sectors: Any, scale: float
) -> None:
    import math

    big, small = font(16), font(12)
    y = 12
    draw.text((x, y), f"coverage: {report.region['name']}", fill=(0, 0, 0), font=big)
    y += 26
    g, s, p = report.grid, report.spots, report.photos
    lines = [
        f"{p['inside']} photos inside, {p['outside']} outside",
        f"cells ({g['cell_m']:g} m): {g['covered_cells']}/{g['cells']} covered ({g['covered_pct']:.0f}%)",
        f"spots: {s['complete']}/{s['spots']} with all 8 headings",
        f"plan: {report.plan['stops']} stops, {report.plan['route_m']:.0f} m walk",
    ]
    if off_map:
        lines.append(f"{off_map} outside photos are off this map")
    for line in lines:
        draw.text((x, y), line, fill=(30, 30, 30), font=small)
        y += 18
    y += 10
    draw.text((x, y), "heading of each photo", fill=(0, 0, 0), font=small)
    y += 18
    cx, cy, r = x + 60, y + 60, 45
    for i, name in enumerate(sectors):
        angle = math.radians(i * 45)
        ex, ey = cx + r * math.sin(angle), cy - r * math.cos(angle)
        draw.line([(cx, cy), (ex, ey)], fill=SECTOR_COLOURS[i], width=4)
        draw.text(
            (cx + (r + 12) * math.sin(angle) - 8, cy - (r + 12) * math.cos(angle) - 6),
            name,
            fill=SECTOR_COLOURS[i],
            font=small,
        )
    y += 140
    items = [
        ((120, 200, 120), "covered cell"),
        ((240, 150, 150), "empty cell: go there"),
        ((255, 140, 0), "spot missing headings (ring)"),
        ((30, 60, 200), "walking plan (numbered stops)"),
        ((0, 0, 0), "x  photo outside the region"),
    ]
    for colour, text in items:
        draw.rectangle([x, y + 2, x + 14, y + 14], fill=colour)
        draw.text((x + 22, y), text, fill=(30, 30, 30), font=small)
        y += 20
    # scale bar: a round number of metres near 100 px
    metres = 10 ** math.floor(math.log10(100 / scale))
    for m in (metres, 2 * metres, 5 * metres):
        if m * scale <= 160:
            metres = m
    y += 12
    draw.line([(x, y + 10), (x + metres * scale, y + 10)], fill=(0, 0, 0), width=3)
    draw.text((x, y + 14), f"{metres:g} m", fill=(0, 0, 0), font=small)
    # north arrow
    ax, ay = x + 230, y + 22
    draw.polygon([(ax, ay - 30), (ax - 8, ay - 10), (ax + 8, ay - 10)], fill=(0, 0, 0))
    draw.line([(ax, ay - 12), (ax, ay + 6)], fill=(0, 0, 0), width=3)
    draw.text((ax - 5, ay + 8), "N", fill=(0, 0, 0), font=big)
