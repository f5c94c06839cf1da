"""Pictures a person would rather look at than read: contact sheets, maps, plots.

Drawn with Pillow alone (no matplotlib), so curation stays a light install.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from gpskit.atomic import atomic_path
from gpskit.imaging import decode_oriented

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
    chosen = sizes.group_id.head(max_groups).tolist()
    shown = max((min(int(n), max_members) for n in sizes.group_size.head(max_groups)), default=1)
    width = max(PAD + shown * (THUMB + PAD), 420)
    row_h = CAPTION + THUMB + CAPTION + PAD
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
                (x, y + CAPTION + THUMB + 2), f"{label}  {name}"[:28], fill=(40, 40, 40), font=small
            )
    with atomic_path(target) as tmp:
        sheet.save(tmp, format="PNG")
