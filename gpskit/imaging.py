"""Opening, decoding and hashing photos: one place for formats, orientation and draft decoding.

Every step that needs pixels (ingest's decode check and hashes, split's embedded images,
training's data loader) goes through :func:`decode_oriented`, so a photo is oriented the
same way everywhere and never rotated twice.
"""

from __future__ import annotations

import hashlib
import io
from functools import cache
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from gpskit.exif import orient, read_metadata

#: Formats gpskit ingests (Pillow's names; MPO is a multi-picture JPEG).
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "HEIF", "PNG", "WEBP", "TIFF"})

#: Smallest side of the image that hashing works on: JPEGs are DCT-scaled down to it.
HASH_DECODE_SIDE = 256


@cache
def register_heif() -> bool:
    """Teach Pillow to open HEIC/HEIF (pillow-heif); False when it is not installed."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a hard dependency, but keep reading JPEGs
        return False
    pillow_heif.register_heif_opener()
    return True


def sniff_format(head: bytes) -> str | None:
    """The image container named by a file's first bytes (None when it is no image we know)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        # major brand, then the compatible brands of the ftyp box
        box_end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[i : i + 4] for i in range(8, box_end - 3, 4)}
        if brands & {b"avif", b"avis"}:
            return "AVIF"
        if brands & {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}:
            return "HEIF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    return None


def normalise_format(fmt: str | None) -> str | None:
    """One name per family: MPO is read as JPEG."""
    return "JPEG" if fmt == "MPO" else fmt


def open_image(source: str | Path | IO[bytes]) -> Image.Image:
    """Open any supported image lazily (header only)."""
    register_heif()
    return Image.open(source)


def decode_oriented(
    source: str | Path | IO[bytes] | bytes, min_side: int | None = None
) -> Image.Image:
    """Decode an image as a viewer shows it, in RGB.

    With ``min_side``, JPEGs are DCT-scaled while decoding (Pillow's ``draft``) to the
    smallest power-of-two reduction whose both sides stay at least ``min_side``: 4-8x
    faster for 12 MP photos than a full decode followed by a resize.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    img = open_image(source)
    meta = read_metadata(img)
    fmt = img.format
    if min_side and fmt in ("JPEG", "MPO"):
        img.draft("RGB", (min_side, min_side))
    img.load()
    img = orient(img, fmt, meta.orientation)
    return img.convert("RGB") if img.mode != "RGB" else img


# DCT-II basis as scipy.fftpack.dct(type=2, norm=None) uses it: X_k = 2 sum x_n cos(...).
_N = 32
_DCT = 2.0 * np.cos(np.pi * np.outer(np.arange(_N), 2 * np.arange(_N) + 1) / (2 * _N))


def phash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash, the algorithm of ``imagehash.phash`` (hash_size 8).

    Grey, 32x32 Lanczos, 2-D DCT, the 8x8 lowest frequencies compared with their median.
    Returned as 16 hex digits, first coefficient as the most significant bit, which is
    ``str(imagehash.phash(img))``.
    """
    small = img.convert("L").resize((_N, _N), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, dtype=np.float64)
    coefficients = _DCT @ pixels @ _DCT.T
    low = coefficients[:8, :8]
    bits = (low > np.median(low)).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return f"{value:016x}"


def pixel_hash(img: Image.Image) -> str:
    """SHA-256 of the decoded pixels, their mode and size: equal for metadata-only copies.

    Ingest hashes the luma plane of the draft-decoded, oriented image (the decode it
    already does for the perceptual hash): two files get the same value exactly when
    their pixels decode the same, whatever their tags say.
    """
    digest = hashlib.sha256(f"{img.mode}:{img.width}x{img.height}:".encode())
    digest.update(img.tobytes())
    return digest.hexdigest()


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()
