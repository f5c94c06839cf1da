"""Pictures a person would rather look at than read: contact sheets, maps, plots.

Drawn with Pillow alone (no matplotlib), so curation stays a light install.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from gpskit.atomic import atomic_path
from gpskit.geo import SECTORS, heading_sector
from gpskit.imaging import decode_oriented
from gpskit.storage import join

THUMB = 160
PAD = 8
CAPTION = 16


def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """A readable font: Pillow's scalable default where FreeType is available."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def _thumbnail(path: str) -> Image.Image:
    try:
        img = decode_oriented(path, min_side=THUMB)
        img.thumbnail((THUMB, THUMB))
        return img
    except Exception:  # a photo that went missing or cannot be decoded: show a grey tile
        tile = Image.new("RGB", (THUMB, THUMB), (200, 200, 200))
        ImageDraw.Draw(tile).text((8, THUMB // 2), "unreadable", fill=(90, 90, 90), font=font())
        return tile


def quality_sheet(offenders: dict[str, pd.DataFrame], target: Path) -> None:
    """The worst offenders of each image-quality check, one row per check, each thumbnail
    captioned with the measure that put it there."""
    rows = max(1, len(offenders))
    shown = max((len(frame) for frame in offenders.values()), default=1)
    width = max(PAD + shown * (THUMB + PAD), 420)
    thumb_h = THUMB * 3 // 4
    row_h = CAPTION + thumb_h + CAPTION + PAD
    sheet = Image.new("RGB", (width, PAD + row_h * rows), "white")
    draw = ImageDraw.Draw(sheet)
    small, title = font(11), font(13)
    for r, (code, frame) in enumerate(offenders.items()):
        y = PAD + r * row_h
        measure = str(frame.measure.iloc[0]) if len(frame) else ""
        draw.text((PAD, y), f"{code} (worst {measure} first)", fill=(0, 0, 0), font=title)
        for c, item in enumerate(frame.itertuples()):
            x = PAD + c * (THUMB + PAD)
            thumb = _thumbnail(join(str(item.root), str(item.path)))
            if thumb.height > thumb_h:
                thumb.thumbnail((THUMB, thumb_h))
            sheet.paste(thumb, (x, y + CAPTION))
            caption = f"{item.value:.1f}  {Path(str(item.path)).name}"
            draw.text(
                (x, y + CAPTION + thumb.height + 3), caption[:28], fill=(40, 40, 40), font=small
            )
    with atomic_path(target) as tmp:
        sheet.save(tmp, format="PNG")


def contact_sheet(
    frame: pd.DataFrame,
    groups: pd.DataFrame,
    target: Path,
    *,
    max_groups: int = 12,
    max_members: int = 8,
) -> None:
    """Thumbnails of the largest duplicate groups, keeper first (green frame), one row each."""
    grouped = groups[groups.group_id.notna()].copy()
    grouped["pos"] = grouped.index
    sizes = grouped.drop_duplicates("group_id").sort_values(
        ["group_size", "group_id"], ascending=[False, True]
    )
    # the largest groups of each kind in turn, so every kind of link can be checked by eye
    by_kind = [list(sizes[sizes.kind == kind].group_id) for kind in ("near", "burst", "exact")]
    chosen: list[Any] = []
    while len(chosen) < max_groups and any(by_kind):
        for queue in by_kind:
            if queue and len(chosen) < max_groups:
                chosen.append(queue.pop(0))
    shown = max((min(int(n), max_members) for n in sizes.group_size.head(max_groups)), default=1)
    width = max(PAD + shown * (THUMB + PAD), 420)
    thumb_h = THUMB * 3 // 4  # phone photos are 4:3
    row_h = CAPTION + thumb_h + CAPTION + PAD
    sheet = Image.new("RGB", (width, PAD + row_h * max(1, len(chosen))), "white")
    draw = ImageDraw.Draw(sheet)
    small, title = font(11), font(13)
    for r, gid in enumerate(chosen):
        members = grouped[grouped.group_id == gid].sort_values("keep", ascending=False)
        y = PAD + r * row_h
        head = members.iloc[0]
        conflict = " GPS CONFLICT" if members.gps_conflict.any() else ""
        draw.text(
            (PAD, y),
            f"group {gid}: {head.kind}, {int(head.group_size)} photos{conflict}",
            fill=(180, 0, 0) if conflict else (0, 0, 0),
            font=title,
        )
        for c, (_, member) in enumerate(members.head(max_members).iterrows()):
            x = PAD + c * (THUMB + PAD)
            row = frame.iloc[int(member.pos)]
            thumb = _thumbnail(f"{row.root}/{row.path}")
            if thumb.height > thumb_h:
                thumb.thumbnail((THUMB, thumb_h))
            sheet.paste(thumb, (x, y + CAPTION))
            colour = (0, 160, 0) if member.keep else (200, 120, 0)
            draw.rectangle(
                [x - 2, y + CAPTION - 2, x + thumb.width + 1, y + CAPTION + thumb.height + 1],
                outline=colour,
                width=2,
            )
            label = "keeper" if member.keep else f"{member.match or member.kind}"
            if not member.keep and pd.notna(member.phash_distance):
                label += f" d={int(member.phash_distance)}"
            if not member.keep and pd.notna(member.gps_offset_m):
                label += f" {float(member.gps_offset_m):.0f} m"
            name = Path(str(member.path)).name
            draw.text(
                (x, y + CAPTION + thumb.height + 3),
                f"{label}  {name}"[:28],
                fill=(40, 40, 40),
                font=small,
            )
    with atomic_path(target) as tmp:
        sheet.save(tmp, format="PNG")


# --- coverage map ---------------------------------------------------------------------------

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
        img.save(tmp, format="PNG")


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


# --- evaluation -------------------------------------------------------------------------------

CURVE_COLOURS = (
    (200, 30, 30),
    (120, 120, 120),
    (30, 120, 200),
    (40, 160, 60),
    (230, 140, 0),
    (140, 60, 170),
)


def error_cdf(
    curves: dict[str, Any],
    target: Path,
    *,
    title: str = "error CDF",
    size: tuple[int, int] = (900, 560),
) -> None:
    """Cumulative share of photos within each error (m), one curve per entry."""
    import numpy as np

    width, height = size
    left, right, top, bottom = 70, 30, 50, 60
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    values = [np.sort(np.asarray(v, float)[np.isfinite(v)]) for v in curves.values()]
    upper = max((float(np.percentile(v, 99)) for v in values if len(v)), default=1.0)
    upper = max(upper * 1.05, 1.0)
    step = _nice_step(upper / 6)
    upper = step * np.ceil(upper / step)

    def px(x: float, y: float) -> tuple[float, float]:
        return left + x / upper * (width - left - right), height - bottom - y * (
            height - top - bottom
        )

    small, big = font(12), font(16)
    for tick in np.arange(0, upper + step / 2, step):
        x, _ = px(tick, 0)
        draw.line([(x, top), (x, height - bottom)], fill=(230, 230, 230))
        draw.text((x - 10, height - bottom + 6), f"{tick:g}", fill=(60, 60, 60), font=small)
    for share in np.linspace(0, 1, 6):
        _, y = px(0, share)
        draw.line([(left, y), (width - right, y)], fill=(230, 230, 230))
        draw.text((left - 40, y - 7), f"{share:.0%}", fill=(60, 60, 60), font=small)
    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    draw.text((width / 2 - 60, height - 28), "error (m)", fill=(0, 0, 0), font=small)
    draw.text((left, 14), title, fill=(0, 0, 0), font=big)
    for i, (name, v) in enumerate(zip(curves, values, strict=True)):
        if not len(v):
            continue
        colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        share = np.arange(1, len(v) + 1) / len(v)
        points = [px(min(float(x), upper), float(s)) for x, s in zip(v, share, strict=True)]
        points = [px(0, 0), *points]
        draw.line(points, fill=colour, width=3 if i == 0 else 2)
        median = float(np.median(v))
        draw.text(
            (left + 12, top + 10 + 18 * i),
            f"{name}: median {median:.1f} m, mean {v.mean():.1f} m",
            fill=colour,
            font=small,
        )
    with atomic_path(target) as tmp:
        img.save(tmp, format="PNG")


def _nice_step(raw: float) -> float:
    import math

    power = 10 ** math.floor(math.log10(max(raw, 1e-9)))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)


def _panel(
    draw: ImageDraw.ImageDraw,
    px: Any,
    projection: Any,
    true: tuple[Any, Any],
    predicted: tuple[Any, Any],
    region: Any,
    centre: tuple[float, float] | None,
) -> float:
    """One prediction map panel (``px``: metres to this panel's pixels); its mean error (m)."""
    import numpy as np

    if region is not None:
        for poly in getattr(region.metric, "geoms", [region.metric]):
            rx, ry = px(*np.asarray(poly.exterior.coords).T)
            draw.line(list(zip(rx.tolist(), ry.tolist(), strict=True)), fill=(0, 0, 0), width=2)
    tx, ty = projection.forward(*true)
    qx, qy = projection.forward(*predicted)
    ax, ay = px(tx, ty)
    bx, by = px(qx, qy)
    shown = np.isfinite(bx) & np.isfinite(by)
    for a, b, c, d in zip(ax[shown], ay[shown], bx[shown], by[shown], strict=True):
        draw.line([(a, b), (c, d)], fill=(190, 190, 190), width=1)
    for a, b in zip(bx[shown], by[shown], strict=True):
        draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=(210, 40, 40))
    for a, b in zip(ax, ay, strict=True):
        draw.ellipse([a - 3, b - 3, a + 3, b + 3], fill=(30, 150, 60))
    if centre is not None:
        cx, cy = px(*projection.forward(np.array([centre[0]]), np.array([centre[1]])))
        c0, c1 = float(cx[0]), float(cy[0])
        draw.line([(c0 - 8, c1 - 8), (c0 + 8, c1 + 8)], fill=(30, 60, 200), width=3)
        draw.line([(c0 - 8, c1 + 8), (c0 + 8, c1 - 8)], fill=(30, 60, 200), width=3)
    return float(np.nanmean(np.hypot(qx - tx, qy - ty)))


def prediction_map(
    true: tuple[Any, Any],
    panels: dict[str, tuple[Any, Any]],
    target: Path,
    *,
    region: Any = None,
    centre: tuple[float, float] | None = None,
    title: str = "",
    size: int = 620,
) -> None:
    """One panel per way of predicting (e.g. head, retrieval): true (green) and predicted
    (red) positions joined by lines, over the region outline; the training centre (the
    baseline every prediction is measured against) as a blue cross."""
    import numpy as np

    from gpskit.geo import LocalProjection, centre_of

    lat = np.concatenate(
        [np.asarray(true[0], float), *(np.asarray(p[0], float) for p in panels.values())]
    )
    lon = np.concatenate(
        [np.asarray(true[1], float), *(np.asarray(p[1], float) for p in panels.values())]
    )
    finite = np.isfinite(lat) & np.isfinite(lon)
    projection = (
        region.projection
        if region is not None
        else LocalProjection(*centre_of(lat[finite], lon[finite]))
    )
    x, y = projection.forward(lat[finite], lon[finite])
    boxes = [(float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y)))]
    if region is not None:
        boxes.append(tuple(region.metric.bounds))
    minx, miny = min(b[0] for b in boxes), min(b[1] for b in boxes)
    maxx, maxy = max(b[2] for b in boxes), max(b[3] for b in boxes)
    pad = 0.06 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    scale = size / max(maxx - minx, maxy - miny)
    panel_w, panel_h = int((maxx - minx) * scale), int((maxy - miny) * scale) + 52
    img = Image.new("RGB", (panel_w * max(len(panels), 1), panel_h), "white")
    draw = ImageDraw.Draw(img)
    for i, (name, predicted) in enumerate(panels.items()):
        left = i * panel_w

        def px(xs: Any, ys: Any, left: int = left) -> tuple[Any, Any]:
            return left + (np.asarray(xs) - minx) * scale, 52 + (maxy - np.asarray(ys)) * scale

        mean = _panel(draw, px, projection, true, predicted, region, centre)
        draw.text((left + 8, 28), f"{name}: mean {mean:.1f} m", font=font(13), fill=(0, 0, 0))
        if i:
            draw.line([(left, 0), (left, panel_h)], fill=(200, 200, 200), width=1)
    draw.text((8, 6), title, fill=(0, 0, 0), font=font(14))
    with atomic_path(target) as tmp:
        img.save(tmp, format="PNG")


def sweep_chart(
    table: pd.DataFrame, target: Path, *, title: str = "sweep: test error and training time per run"
) -> None:
    """One row per run: mean and median test error (bars, m) beside the training-centre
    baseline (dashed), and training time (bars, s) in a second panel."""
    import numpy as np

    rows = len(table)
    label_w, panel_w, gap, row_h, top = 300, 420, 50, 26, 60
    width, height = label_w + 2 * panel_w + gap + 30, top + rows * row_h + 50
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    small, big = font(12), font(16)
    draw.text((10, 12), title, fill=(0, 0, 0), font=big)
    errors = table[["test_mean_m", "test_median_m", "baseline_mean_m"]].to_numpy(float)
    upper = max(float(np.nanmax(errors)) if errors.size else 1.0, 1.0) * 1.05
    seconds = table.train_seconds.to_numpy(float)
    slowest = max(float(np.nanmax(seconds)) if seconds.size else 1.0, 1.0) * 1.05
    x0, x1 = label_w, label_w + panel_w + gap
    draw.text(
        (x0, 38),
        "test error (m): mean (dark), median (light), baseline (dashed)",
        fill=(60, 60, 60),
        font=small,
    )
    draw.text((x1, 38), "training time (s)", fill=(60, 60, 60), font=small)
    best = (
        int(np.nanargmin(table.val_mean_m.to_numpy(float)))
        if table.val_mean_m.notna().any()
        else -1
    )
    records: list[Any] = table.to_dict("records")
    for i, row in enumerate(records):
        y = top + i * row_h
        name = str(row["run"]) + (" (best on val)" if i == best else "")
        draw.text((10, y + 5), name[:48], fill=(0, 0, 0), font=small)
        mean_w = panel_w * float(row["test_mean_m"]) / upper
        median_w = panel_w * float(row["test_median_m"]) / upper
        draw.rectangle([x0, y + 3, x0 + mean_w, y + 12], fill=(40, 90, 170))
        draw.rectangle([x0, y + 13, x0 + median_w, y + 21], fill=(140, 180, 230))
        draw.text(
            (x0 + max(mean_w, median_w) + 4, y + 5),
            f"{row['test_mean_m']:.1f}",
            fill=(0, 0, 0),
            font=small,
        )
        base = x0 + panel_w * float(row["baseline_mean_m"]) / upper
        for dy in range(0, row_h, 6):
            draw.line([(base, y + dy), (base, y + min(dy + 3, row_h))], fill=(200, 40, 40), width=2)
        if np.isfinite(row["train_seconds"]):
            w = panel_w * float(row["train_seconds"]) / slowest
            draw.rectangle([x1, y + 5, x1 + w, y + 19], fill=(120, 120, 120))
            draw.text(
                (x1 + w + 4, y + 5), f"{row['train_seconds']:.0f}", fill=(0, 0, 0), font=small
            )
    draw.line([(x0, top - 4), (x0, top + rows * row_h)], fill=(0, 0, 0))
    draw.line([(x1, top - 4), (x1, top + rows * row_h)], fill=(0, 0, 0))
    with atomic_path(target) as tmp:
        img.save(tmp, format="PNG")
