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
from typing import IO, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
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
    source: str | Path | IO[bytes] | bytes,
    min_side: int | None = None,
    *,
    max_side: int | None = None,
) -> Image.Image:
    """Decode an image as a viewer shows it, in RGB.

    JPEGs are DCT-scaled while decoding (Pillow's ``draft``), 4-8x faster for 12 MP
    photos than a full decode followed by a resize, to the smallest power-of-two
    reduction that keeps both sides at least ``min_side``, or the longer side at least
    ``max_side`` (the size it will be resized to).
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    img = open_image(source)
    meta = read_metadata(img)
    fmt = img.format
    if fmt in ("JPEG", "MPO"):
        if max_side:
            ratio = max_side / max(img.size)
            img.draft("RGB", (max(1, int(img.width * ratio)), max(1, int(img.height * ratio))))
        elif min_side:
            img.draft("RGB", (min_side, min_side))
    img.load()
    img = orient(img, fmt, meta.orientation)
    return img.convert("RGB") if img.mode != "RGB" else img


@cache
def _dct_matrix(n: int) -> npt.NDArray[np.float64]:
    """DCT-II basis as scipy.fftpack.dct(type=2, norm=None) uses it: X_k = 2 sum x_n cos(...)."""
    return 2.0 * np.cos(np.pi * np.outer(np.arange(n), 2 * np.arange(n) + 1) / (2 * n))


def dct_hash_bits(img: Image.Image, hash_size: int = 8) -> npt.NDArray[np.bool_]:
    """The bits of imagehash's pHash algorithm with ``hash_size`` (highfreq_factor 4)."""
    n = hash_size * 4
    small = img.convert("L").resize((n, n), Image.Resampling.LANCZOS)
    basis = _dct_matrix(n)
    coefficients = basis @ np.asarray(small, dtype=np.float64) @ basis.T
    low = coefficients[:hash_size, :hash_size]
    return (low > np.median(low)).flatten()


def phash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash, the algorithm of ``imagehash.phash`` (hash_size 8).

    Grey, 32x32 Lanczos, 2-D DCT, the 8x8 lowest frequencies compared with their median.
    Returned as 16 hex digits, first coefficient as the most significant bit, which is
    ``str(imagehash.phash(img))``.
    """
    return f"{int.from_bytes(np.packbits(dct_hash_bits(img, 8)).tobytes(), 'big'):016x}"


def phash256(img: Image.Image) -> bytes:
    """256-bit pHash (hash_size 16), 32 bytes: more detail, to confirm 64-bit matches.

    Copies (re-encoded, resized, brightened) stay within about 12 of 256 bits; different
    scenes that the 64-bit hash confuses are 54 or more apart.
    """
    return np.packbits(dct_hash_bits(img, 16)).tobytes()


#: Crop variants hashed per photo: 95 % of each side, anchored on a 3x3 grid.
CROP_FRACTION = 0.95
CROP_ANCHORS = tuple((fx, fy) for fy in (0.0, 0.5, 1.0) for fx in (0.0, 0.5, 1.0))


def crop_hashes(img: Image.Image) -> tuple[list[str], list[bytes]]:
    """pHashes of nine 95 % crops of ``img`` (corners, edge midpoints, centre).

    pHash alone is not crop-tolerant: a 5 % crop moves a photo up to 26 bits away, as far
    as a view 45° to the side. A cropped copy's full hash is close (within a few bits) to
    one of these crop hashes of the original, so dedup compares each photo's hash with the
    other photos' crop hashes too. Computed on a 128x128 box-filtered copy: cheap.
    Returns the 64-bit hashes (hex) and the 256-bit ones that confirm a match.
    """
    small = img.convert("L").resize((128, 128), Image.Resampling.BOX)
    side = round(128 * CROP_FRACTION)
    short, long = [], []
    for fx, fy in CROP_ANCHORS:
        x0, y0 = round((128 - side) * fx), round((128 - side) * fy)
        crop = small.crop((x0, y0, x0 + side, y0 + side))
        short.append(phash(crop))
        long.append(phash256(crop))
    return short, long


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


class ImageColumn:
    """The image column of split files, as Hugging Face ``datasets`` defines its Image feature.

    One place owns it: the Arrow type (a ``{bytes, path}`` struct), how a photo is
    embedded (oriented, resized, JPEG), the cell value, and how a cell is decoded again.
    ``bytes`` null means "not embedded: read ``path``", as in ``datasets``.
    """

    arrow_type: ClassVar[pa.DataType] = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    feature: ClassVar[dict[str, str]] = {"_type": "Image"}
    quality: ClassVar[int] = 90

    @classmethod
    def encode(cls, img: Image.Image, max_side: int) -> bytes:
        """JPEG bytes of ``img`` with its longer side at most ``max_side``."""
        if max(img.size) > max_side:
            scale = max_side / max(img.size)
            size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
            img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=cls.quality, optimize=False)
        return buf.getvalue()

    @classmethod
    def embed(cls, path: str, max_side: int) -> bytes:
        """The embedded form of the photo at ``path`` (decoded draft-scaled, oriented)."""
        return cls.encode(decode_oriented(path, max_side=max_side), max_side)

    @staticmethod
    def value(data: bytes | None, root: str, path: str) -> dict[str, object]:
        """A cell: the embedded bytes with the relative path, or the absolute path alone."""
        return {"bytes": data, "path": path if data is not None else f"{root}/{path}"}

    @staticmethod
    def decode(cell: dict[str, object], min_side: int) -> Image.Image:
        """The photo of a cell as RGB: embedded bytes, else the original (draft-decoded)."""
        data = cell.get("bytes")
        if isinstance(data, bytes):
            with Image.open(io.BytesIO(data)) as img:
                return img.convert("RGB")
        return decode_oriented(str(cell["path"]), min_side=min_side)
