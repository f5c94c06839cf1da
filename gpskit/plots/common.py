"""What every picture shares: the font and the thumbnail size."""

from __future__ import annotations

from typing import Any

from PIL import Image, ImageDraw, ImageFont

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


def thumbnail(path: str) -> Image.Image:
    try:
        img = decode_oriented(path, min_side=THUMB)
        img.thumbnail((THUMB, THUMB))
        return img
    except Exception:  # a photo that went missing or cannot be decoded: show a grey tile
        tile = Image.new("RGB", (THUMB, THUMB), (200, 200, 200))
        ImageDraw.Draw(tile).text((8, THUMB // 2), "unreadable", fill=(90, 90, 90), font=font())
        return tile


#: What gpskit writes into the PNGs it draws: the output guard lets a run replace those,
#: and no other picture (a PNG photo, a screenshot).
PNG_SOFTWARE = "gpskit"


def save_png(img: Image.Image, target: Any) -> None:
    """Save a picture gpskit drew, marked as gpskit's (a PNG text chunk)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    img.save(target, format="PNG", pnginfo=info)
