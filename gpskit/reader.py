"""Reading one file, in a worker process: metadata, the decode check and every hash.

Kept apart from :mod:`gpskit.ingest` so that worker processes import only what reading
needs (Pillow, numpy, the EXIF reader), not pyarrow or the manifest code: workers start
faster, which is most of the time of a small ``--no-decode`` run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import warnings
from typing import Any

from PIL import Image, UnidentifiedImageError

from gpskit import checks, quality, storage
from gpskit.checks import SUPPORTED_FORMATS
from gpskit.exif import (
    Metadata,
    displayed_size,
    orient,
    read_metadata,
    salvage_metadata,
)
from gpskit.gpsflags import GpsFlag, Problem
from gpskit.imaging import (
    HASH_DECODE_SIDE,
    normalise_format,
    open_image,
    perceptual_hashes,
    pixel_hash,
    register_heif,
    sniff_format,
)
from gpskit.pool import quiet_stderr


def _init_worker(max_pixels: int) -> None:
    register_heif()
    warnings.simplefilter("ignore")
    # Pillow raises DecompressionBombError above twice this; we refuse above max_pixels first.
    Image.MAX_IMAGE_PIXELS = max_pixels


def read_file(path: str, decode: bool, max_pixels: int) -> dict[str, Any]:
    """Read one file's metadata (and, with ``decode``, its pixels and hashes).

    Never raises for a bad file: the problem goes into ``read_status`` and ``error``.
    """
    out: dict[str, Any] = {"read_status": checks.READ_OK, "decoded": False, "has_exif": False}
    try:
        source = _source(path, decode, out)
    except Exception as exc:  # OSError locally; a remote store adds its own kinds
        out.update(read_status=checks.READ_UNREADABLE, error=f"{type(exc).__name__}: {exc}")
        return out
    if source is None:
        out["read_status"] = checks.READ_EMPTY
        return out
    try:
        img = open_image(source)
    except Image.DecompressionBombError as exc:
        out.update(read_status=checks.READ_TOO_MANY_PIXELS, error=_bomb(exc, max_pixels))
        return out
    except Exception as exc:  # corrupt headers raise anything from SyntaxError to struct.error
        return _unopenable(path, out, exc)
    with img:
        meta = _read_header(img, source, out)
        if out.get("width") and out["width"] * out["height"] > max_pixels:
            out.update(
                read_status=checks.READ_TOO_MANY_PIXELS,
                error=f"{out['width']}x{out['height']} pixels > --max-pixels {max_pixels}",
            )
            return out
        if decode and img.format in SUPPORTED_FORMATS:
            _decode_and_hash(img, meta, out)
    return out


def _source(path: str, decode: bool, out: dict[str, Any]) -> Any:
    """What to open: the bytes in memory when decoding (hashed once), else the path (a
    remote object: a stream read in blocks); None for an empty file."""
    if not decode:
        if storage.size_of(path) == 0:
            return None
        return storage.open_stream(path) if storage.is_url(path) else path
    data = storage.read_bytes(path)
    if not data:
        return None
    out["sha256"] = hashlib.sha256(data).hexdigest()
    return io.BytesIO(data)


def _read_header(img: Image.Image, source: Any, out: dict[str, Any]) -> Metadata:
    """Format, metadata and displayed size of an opened image, into ``out``."""
    out["format"] = normalise_format(img.format)
    try:
        meta = read_metadata(img)
    except Exception as exc:  # an EXIF block too broken for Pillow: keep the pixels
        meta = Metadata(gps_flags=[GpsFlag(Problem.MALFORMED, "exif")])
        out["error"] = f"EXIF: {type(exc).__name__}: {exc}"
    if not meta.has_exif and isinstance(source, io.BytesIO):
        # a container whose EXIF item the decoder missed (damaged HEIF boxes)
        meta = salvage_metadata(source.getvalue()) or meta
    out.update(meta.row_fields())
    with contextlib.suppress(Exception):  # a size Pillow cannot report stays empty
        out["width"], out["height"] = displayed_size(img, meta.orientation)
    return meta


def _decode_and_hash(img: Image.Image, meta: Metadata, out: dict[str, Any]) -> None:
    """Decode (JPEG draft-scaled), then the perceptual, crop and pixel hashes, into ``out``."""
    try:
        single_channel = img.mode in ("1", "L", "LA", "I", "I;16", "F")
        jpeg = img.format in ("JPEG", "MPO")
        if jpeg:  # luma only: the chroma planes are not decoded at all
            img.draft("L", (HASH_DECODE_SIDE, HASH_DECODE_SIDE))
        img.load()
        stored: Image.Image = img
        if max(stored.size) > 4 * HASH_DECODE_SIDE:
            # hash a bounded-size copy so PNG/TIFF/HEIF cost like a draft-decoded JPEG
            stored = stored.copy()
            stored.thumbnail(
                (4 * HASH_DECODE_SIDE, 4 * HASH_DECODE_SIDE), Image.Resampling.BILINEAR
            )
        colour = None if jpeg or single_channel else stored  # pixel statistics: any orientation
        stored = stored.convert("L")
        gray = orient(stored, img.format, meta.orientation)
        out.update(quality.measure(gray, colour))
        if single_channel:
            out["colour_spread"] = 0.0
        hashes = perceptual_hashes(gray)
        out["phash"], out["phash256"] = hashes.phash, hashes.phash256
        out["dihedral_hashes"], out["dihedral_phash256"] = hashes.dihedral, hashes.dihedral256
        out["crop_hashes"], out["crop_phash256"] = hashes.crops, hashes.crops256
        out["trimmed_phash"], out["trimmed_phash256"] = hashes.trimmed, hashes.trimmed256
        out["pixel_hash"] = pixel_hash(gray)
        # as stored: the same pixels unless the orientation moved them
        out["stored_pixel_hash"] = out["pixel_hash"] if gray is stored else pixel_hash(stored)
        out["decoded"] = True
    except Image.DecompressionBombError as exc:
        out.update(
            read_status=checks.READ_TOO_MANY_PIXELS, error=_bomb(exc, Image.MAX_IMAGE_PIXELS)
        )
    except MemoryError as exc:
        out.update(read_status=checks.READ_DECODE_ERROR, error=f"MemoryError: {exc}")
    except Exception as exc:
        out.update(read_status=checks.READ_DECODE_ERROR, error=f"{type(exc).__name__}: {exc}")


def _bomb(exc: Exception, max_pixels: int | None) -> str:
    """Pillow's refusal in gpskit's terms: the limit the user set (Pillow names twice it)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
    return f"{size} > --max-pixels {max_pixels or 0:,} (a decompression bomb?)"


def _unopenable(path: str, out: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """No decoder opens the file: a known container is corrupt, anything else is no image.

    The EXIF block of a corrupt image is still read (as ExifTool does), so the manifest
    shows what the camera wrote even when the pixels are lost.
    """
    try:
        with storage.open_stream(path) as fh:
            data = fh.read(64 * 1024 * 1024)
    except Exception:  # gone or unreadable since it was opened
        data = b""
    fmt = sniff_format(data[:64])
    if fmt is None:
        out["read_status"] = checks.READ_NOT_IMAGE
        return out
    out.update(format=fmt, read_status=checks.READ_DECODE_ERROR)
    if not isinstance(exc, UnidentifiedImageError):
        out["error"] = f"{type(exc).__name__}: {exc}"
    else:
        out["error"] = f"no decoder could open this {fmt} file"
    meta = salvage_metadata(data)
    if meta is not None:
        out.update(meta.row_fields())
    return out


class WorkerInit:
    """Picklable worker initializer: the pixel limit, where decoder chatter goes, and the
    caller's object-store settings as they are now (local workers fork from a server
    started earlier; Ray workers run elsewhere), which remote stores read from the
    environment."""

    def __init__(self, max_pixels: int, log: str | None) -> None:
        self.max_pixels, self.log = max_pixels, log
        self.store_settings = storage.StoreSettings()

    def __call__(self) -> None:
        self.store_settings()
        _init_worker(self.max_pixels)
        if self.log:
            quiet_stderr(self.log)
