"""Contact sheets: duplicate groups side by side, the worst photos of each quality check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image, ImageDraw

from gpskit.atomic import atomic_path
from gpskit.plots.common import CAPTION, PAD, THUMB, font, save_png, thumbnail
from gpskit.storage import join


def quality_sheet(offenders: dict[str, pd.DataFrame], target: Path) -> None:
    """The worst offenders of each image-quality check, one row per check, each thumbnail
    captioned with the measure that put it there."""
    rows = max(1, len(offenders))
    shown = max((len(frame) for frame in offenders.values()), default=1)
    width = max(PAD + shown * (THUMB + PAD), 420)
    thumb_h = THUMB * 3 // 4
    row_h = CAPTION + thumb_h + 2 * CAPTION + PAD  # title, photos, how linked, name
    sheet = Image.new("RGB", (width, PAD + row_h * rows), "white")
    draw = ImageDraw.Draw(sheet)
    small, title = font(11), font(13)
    for r, (code, frame) in enumerate(offenders.items()):
        y = PAD + r * row_h
        measure = str(frame.measure.iloc[0]) if len(frame) else ""
        draw.text((PAD, y), f"{code} (worst {measure} first)", fill=(0, 0, 0), font=title)
        for c, item in enumerate(frame.itertuples()):
            x = PAD + c * (THUMB + PAD)
            thumb = thumbnail(join(str(item.root), str(item.path)))
            if thumb.height > thumb_h:
                thumb.thumbnail((THUMB, thumb_h))
            sheet.paste(thumb, (x, y + CAPTION))
            caption = f"{item.value:.1f}  {Path(str(item.path)).name}"
            draw.text(
                (x, y + CAPTION + thumb.height + 3), caption[:28], fill=(40, 40, 40), font=small
            )
    with atomic_path(target) as tmp:
        save_png(sheet, tmp)


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
    row_h = CAPTION + thumb_h + 2 * CAPTION + PAD  # title, photos, how linked, name
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
            thumb = thumbnail(f"{row.root}/{row.path}")
            if thumb.height > thumb_h:
                thumb.thumbnail((THUMB, thumb_h))
            sheet.paste(thumb, (x, y + CAPTION))
            colour = (0, 160, 0) if member.keep else (200, 120, 0)
            draw.rectangle(
                [x - 2, y + CAPTION - 2, x + thumb.width + 1, y + CAPTION + thumb.height + 1],
                outline=colour,
                width=2,
            )
            name = Path(str(member.path)).name
            below = y + CAPTION + thumb.height + 3
            draw.text(
                (x, below), _fitted(draw, _link_label(member), small), fill=(40, 40, 40), font=small
            )
            draw.text(
                (x, below + CAPTION - 3), _fitted(draw, name, small), fill=(90, 90, 90), font=small
            )
    with atomic_path(target) as tmp:
        save_png(sheet, tmp)


def _link_label(member: Any) -> str:
    """How a photo joins its group: keeper, or the link to the keeper (pHash bits apart,
    metres apart); "via the group" when it links to other members only."""
    if member.keep:
        return "keeper"
    how = member.match if isinstance(member.match, str) else f"{member.kind}, via the group"
    details = []
    if pd.notna(member.phash_distance):
        details.append(f"{int(member.phash_distance)} bits")
    if pd.notna(member.gps_offset_m):
        details.append(f"{float(member.gps_offset_m):.0f} m")
    return f"{how} ({', '.join(details)})" if details else str(how)


def _fitted(draw: ImageDraw.ImageDraw, text: str, face: Any, width: int = THUMB) -> str:
    """``text`` shortened in the middle (IMG_20240501…3.jpg) to fit ``width`` pixels."""
    if draw.textlength(text, font=face) <= width:
        return text
    keep = len(text)
    while keep > 2:
        keep -= 1
        head, tail = text[: keep // 2], text[len(text) - (keep - keep // 2) :]
        shortened = f"{head}\u2026{tail}"
        if draw.textlength(shortened, font=face) <= width:
            return shortened
    return text[:1] + "\u2026"
