"""Evaluation pictures: the error CDF, prediction maps, the sweep chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw

from gpskit.atomic import atomic_path
from gpskit.plots.common import font, save_png

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
        save_png(img, tmp)


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
        save_png(img, tmp)


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
        save_png(img, tmp)
