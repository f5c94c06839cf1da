"""Pictures the app serves: thumbnails made once and cached in the dataset folder
(``.gpskit/thumbs/``), larger views, and uploads decoded with ingest's guards.

Files are found by manifest row id only (:meth:`Catalog.location`), never by a path a
request names. A thumbnail's cache name holds the photo's size and modification time, so
a changed photo gets a new one.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image

from gpskit import checks, storage
from gpskit.dataset import Dataset
from gpskit.errors import InputError

THUMB_SIDE = 256
VIEW_SIDE = 1600
#: Uploads to the predict page: at most this many bytes and pixels.
MAX_UPLOAD_BYTES = 40 * 1024**2
MAX_UPLOAD_PIXELS = 120_000_000
_PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="256" height="192" viewBox="0 0 256 192">'
    b'<rect width="256" height="192" fill="#ddd"/><text x="128" y="100" font-size="14" '
    b'text-anchor="middle" fill="#555" font-family="sans-serif">no picture</text></svg>'
)


def placeholder() -> bytes:
    """What stands for a photo that cannot be shown (not an image, unreadable now)."""
    return _PLACEHOLDER


def thumbs_dir(dataset: Dataset) -> Path:
    return dataset.state_dir / "thumbs"


def picture(
    dataset: Dataset,
    root: str,
    path: str,
    size: int | None,
    mtime: int | None,
    read_status: str,
    side: int,
) -> bytes | None:
    """A JPEG of the photo at most ``side`` pixels on its longer side (None: cannot be
    shown). Thumbnails are cached; larger views are made on request."""
    if read_status != checks.READ_OK:
        return None  # ingest could not decode it: neither can the app, safely
    cache = None
    if side <= THUMB_SIDE:
        name = hashlib.sha256(
            f"{root}\0{path}\0{size}\0{mtime}\0{side}".encode("utf-8", "surrogateescape")
        )
        cache = thumbs_dir(dataset) / f"{name.hexdigest()[:32]}.jpg"
        try:
            return cache.read_bytes()
        except OSError:
            pass
    from gpskit.imaging import decode_oriented

    try:
        image = decode_oriented(storage.join(root, path), max_side=side)
    except Exception:  # moved, changed or broken since ingest: no picture, not an error
        return None
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=82)
    data = buffer.getvalue()
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            staged = cache.with_name(f".{cache.name}.{os.getpid()}.part")
            staged.write_bytes(data)
            os.replace(staged, cache)
        except OSError:
            pass  # a read-only dataset still shows its pictures
    return data


def decode_upload(
    data: bytes, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS
) -> Image.Image:
    """An uploaded photo, decoded under limits: its bytes, then its pixels read from the
    header before any decoding (a decompression bomb is refused, not decoded)."""
    if not data:
        raise InputError("the upload is empty", hint="drop a photo (JPEG, HEIC, PNG, WebP)")
    if len(data) > max_bytes:
        raise InputError(f"the upload is {len(data) / 1e6:.1f} MB, above {max_bytes / 1e6:.0f} MB")
    from gpskit.imaging import decode_oriented, open_image

    try:
        probe = open_image(io.BytesIO(data))
        width, height = probe.size
    except Image.DecompressionBombError:
        raise InputError(f"the upload has more pixels than {max_pixels:,}") from None
    except Exception:
        raise InputError("the upload is not an image gpskit can read") from None
    if width * height > max_pixels:
        raise InputError(f"the upload has {width * height:,} pixels, above {max_pixels:,}")
    try:  # the pixels were counted above: Pillow's own bomb check stays as it is
        return decode_oriented(data)
    except Exception as exc:
        raise InputError(f"the upload cannot be decoded ({type(exc).__name__})") from None
