"""Opening, decoding and hashing photos: one place for formats, orientation and draft decoding.

Every step that needs pixels (ingest's decode check and hashes, split's embedded images,
training's data loader) goes through :func:`decode_oriented`, so a photo is oriented the
same way everywhere and never rotated twice.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from gpskit.exif import orient, read_metadata
from gpskit.storage import is_url, read_bytes

#: Smallest side of the image that hashing works on: JPEGs are DCT-scaled down to it (and
#: other formats resized to at most 4x it). The hashes work on 32x32 to 128x128 copies, so
#: decoding more only costs time (a 640x480 photo decodes at 1/4, a 12 MP one at 1/8).
HASH_DECODE_SIDE = 128


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
    if isinstance(source, str) and is_url(source):
        source = read_bytes(source)
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


def _low_frequencies(img: Image.Image, hash_size: int) -> npt.NDArray[np.float64]:
    """The ``hash_size`` x ``hash_size`` lowest DCT coefficients, as imagehash's pHash takes
    them: grey, Lanczos to 4x the hash size, 2-D DCT."""
    n = hash_size * 4
    small = img.convert("L").resize((n, n), Image.Resampling.LANCZOS)
    basis = _dct_matrix(n)[:hash_size]
    low: npt.NDArray[np.float64] = basis @ np.asarray(small, dtype=np.float64) @ basis.T
    return low


def dct_hash_bits(img: Image.Image, hash_size: int = 8) -> npt.NDArray[np.bool_]:
    """The bits of imagehash's pHash algorithm with ``hash_size`` (highfreq_factor 4)."""
    return _bits(_low_frequencies(img, hash_size))


def _bits(low: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Coefficients above the block's median (the last two axes are the block).

    Rounded first to 1e-6: where a picture has flat areas, imagehash's FFT-based DCT gives
    exact zeros and this matrix DCT gives rounding residue (1e-10) that would compare
    above or below a zero median at random."""
    flat = np.round(low, 6).reshape(*low.shape[:-2], -1)
    bits: npt.NDArray[np.bool_] = flat > np.median(flat, axis=-1, keepdims=True)
    return bits


def _hex64(bits: npt.NDArray[np.bool_]) -> str:
    return f"{int.from_bytes(np.packbits(bits).tobytes(), 'big'):016x}"


def phash(img: Image.Image) -> str:
    """64-bit DCT perceptual hash, the algorithm of ``imagehash.phash`` (hash_size 8).

    Grey, 32x32 Lanczos, 2-D DCT, the 8x8 lowest frequencies compared with their median.
    Returned as 16 hex digits, first coefficient as the most significant bit, which is
    ``str(imagehash.phash(img))``.
    """
    return _hex64(dct_hash_bits(img, 8))


def phash256(img: Image.Image) -> bytes:
    """256-bit pHash (hash_size 16), 32 bytes: more detail, to confirm 64-bit matches.

    Computed as :func:`perceptual_hashes` does (from a 128x128 box-filtered copy). Copies
    (re-encoded, resized, brightened) stay within about 12 of 256 bits; different scenes
    that the 64-bit hash confuses are 54 or more apart.
    """
    return perceptual_hashes(img.convert("L")).phash256


# --- rotations and mirror images: the dihedral group ---------------------------------------

#: The 8 ways to turn or mirror a picture, as numpy does them to an array ``a``.
#: (rot90 is counter-clockwise, as ``np.rot90``; transverse mirrors about the other diagonal.)
TRANSFORMS: dict[str, Any] = {
    "identity": lambda a: a,
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "flip_lr": lambda a: a[..., :, ::-1],
    "flip_ud": lambda a: a[..., ::-1, :],
    "transpose": lambda a: np.swapaxes(a, -1, -2),
    "transverse": lambda a: np.rot90(a, 2).swapaxes(-1, -2),
}
#: The transforms other than identity, in the order of the manifest's dihedral columns.
DIHEDRAL = tuple(name for name in TRANSFORMS if name != "identity")
_PROBE = np.arange(6).reshape(2, 3)


def _which(array: npt.NDArray[Any]) -> str:
    for name, transform in TRANSFORMS.items():
        moved = transform(_PROBE)
        if moved.shape == array.shape and np.array_equal(moved, array):
            return name
    raise ValueError("not a dihedral image of the probe")


def compose(first: str, then: str) -> str:
    """The transform that does ``first`` and then ``then``."""
    return _which(TRANSFORMS[then](TRANSFORMS[first](_PROBE)))


def inverse(name: str) -> str:
    """The transform that undoes ``name``."""
    return next(t for t in TRANSFORMS if compose(name, t) == "identity")


def _dct_signs(n: int) -> npt.NDArray[np.float64]:
    return np.where(np.arange(n) % 2, -1.0, 1.0)


def dihedral_blocks(low: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The low-frequency DCT blocks of the 7 turned or mirrored pictures, from one block.

    Mirroring an axis flips the sign of that axis's odd frequencies, and turning the
    picture a quarter transposes the block, so no second decode or DCT is needed
    (stacked in the order of :data:`DIHEDRAL`).
    """
    n = low.shape[-1]
    rows, cols = _dct_signs(n)[:, None], _dct_signs(n)[None, :]
    flip_lr, flip_ud = low * cols, low * rows
    rot180 = low * rows * cols
    blocks = {
        "rot90": flip_lr.T,  # a quarter turn: transpose, then mirror top to bottom
        "rot180": rot180,
        "rot270": flip_ud.T,
        "flip_lr": flip_lr,
        "flip_ud": flip_ud,
        "transpose": low.T,
        "transverse": rot180.T,
    }
    return np.stack([blocks[name] for name in DIHEDRAL])


# --- every hash of a photo from one decode ------------------------------------------------

#: Crop variants hashed per photo: 95 % and 90 % of each side, each anchored on a 3x3 grid
#: (row by row from the top-left): a copy cropped by 2-10 % is close to one of them.
CROP_FRACTIONS = (0.95, 0.90)
CROP_ANCHORS = tuple((fx, fy) for fy in (0.0, 0.5, 1.0) for fx in (0.0, 0.5, 1.0))
_CROP_BASE = 128
#: Borders: rows or columns this close to the edge colour (grey levels), on this share of
#: their pixels, are a uniform border (letterbox bars, a screenshot's background).
_BORDER_TOLERANCE = 12
_BORDER_SHARE = 0.97
_MIN_BORDER = 0.03  # trimmed only when borders take at least this share of a side


def _lanczos(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)
    return out


@cache
def _resample_matrix(size_in: int, size_out: int) -> npt.NDArray[np.float64]:
    """Pillow's Lanczos weights for resizing ``size_in`` samples to ``size_out``, as a matrix."""
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = 3.0 * filterscale
    matrix = np.zeros((size_out, size_in))
    for out in range(size_out):
        centre = (out + 0.5) * scale
        low = max(int(centre - support + 0.5), 0)
        high = min(int(centre + support + 0.5), size_in)
        taps = np.arange(low, high)
        weights = _lanczos(np.asarray((taps - centre + 0.5) / filterscale, dtype=np.float64))
        matrix[out, low:high] = weights / weights.sum()
    return matrix


@cache
def _projection(side: int, hash_size: int) -> npt.NDArray[np.float64]:
    """Lanczos from ``side`` to 4x the hash size, then the low DCT rows: one matrix."""
    n = hash_size * 4
    projection: npt.NDArray[np.float64] = _dct_matrix(n)[:hash_size] @ _resample_matrix(side, n)
    return projection


def _base(gray: Image.Image) -> npt.NDArray[np.float64]:
    """One small copy (128x128, box filter) that the 256-bit and crop hashes come from."""
    small = gray.resize((_CROP_BASE, _CROP_BASE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


@cache
def _crop_projections(fraction: float, hash_size: int) -> npt.NDArray[np.float64]:
    """For each anchor offset of a crop of ``fraction`` of the base copy, the projection
    (resample + DCT rows) padded to the base width: offsets 0, middle, end."""
    side = round(_CROP_BASE * fraction)
    projection = _projection(side, hash_size)
    padded = np.zeros((3, hash_size, _CROP_BASE))
    for k, anchor in enumerate((0.0, 0.5, 1.0)):
        offset = round((_CROP_BASE - side) * anchor)
        padded[k, :, offset : offset + side] = projection
    return padded


def _crop_blocks(
    base: npt.NDArray[np.float64], fraction: float, hash_size: int
) -> npt.NDArray[np.float64]:
    """Low DCT blocks of the nine crops of ``fraction`` of the base copy (CROP_ANCHORS
    order: row by row), without cutting them out: each crop is a padded projection."""
    flat = _crop_projections(fraction, hash_size).reshape(3 * hash_size, _CROP_BASE)
    # every (vertical anchor, horizontal anchor) block in two matrix products, one BLAS
    # call each: (3h x 128) @ (128 x 128) @ (128 x 3h), then the 3 x 3 blocks taken apart
    grid = (flat @ base @ flat.T).reshape(3, hash_size, 3, hash_size)
    blocks: npt.NDArray[np.float64] = grid.transpose(0, 2, 1, 3).reshape(9, hash_size, hash_size)
    return blocks


def _blocks(pictures: npt.NDArray[np.float64], hash_size: int) -> npt.NDArray[np.float64]:
    """Low DCT blocks of pictures (stacked), through one projection matrix per axis."""
    rows = _projection(pictures.shape[-2], hash_size)
    cols = (
        rows
        if pictures.shape[-1] == pictures.shape[-2]
        else _projection(pictures.shape[-1], hash_size)
    )
    blocks: npt.NDArray[np.float64] = rows @ pictures @ cols.T
    return blocks


def _edge(uniform: npt.NDArray[np.bool_]) -> int:
    """How many leading entries are True."""
    return int(np.argmin(uniform)) if not uniform.all() else len(uniform)


def content_box(gray: npt.NDArray[np.float64]) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the picture inside uniform borders, or None when
    there are none worth trimming (a screenshot's bars, a letterboxed or padded copy)."""
    h, w = gray.shape
    edge_value = np.median(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
    near = np.abs(gray - edge_value) <= _BORDER_TOLERANCE
    rows, cols = near.mean(axis=1) >= _BORDER_SHARE, near.mean(axis=0) >= _BORDER_SHARE
    top, bottom = _edge(rows), h - _edge(rows[::-1])
    left, right = _edge(cols), w - _edge(cols[::-1])
    if bottom - top < 0.3 * h or right - left < 0.3 * w:
        return None  # mostly uniform: a sky or a blank page, not a picture in a frame
    trimmed = max(top + h - bottom, 0) / h, max(left + w - right, 0) / w
    return (top, bottom, left, right) if max(trimmed) >= _MIN_BORDER else None


@dataclass(frozen=True)
class PerceptualHashes:
    """Every perceptual hash gpskit keeps of one picture."""

    phash: str  # 64 bits, = imagehash.phash
    phash256: bytes  # 256 bits, confirms a 64-bit match
    dihedral: list[str]  # 64-bit hashes of the picture turned or mirrored (DIHEDRAL order)
    dihedral256: list[bytes]
    crops: list[str]  # 64-bit hashes of the crops (CROP_FRACTIONS x CROP_ANCHORS order)
    crops256: list[bytes]
    trimmed: str | None = None  # the picture inside uniform borders, when it has some
    trimmed256: bytes | None = None


def perceptual_hashes(gray: Image.Image) -> PerceptualHashes:
    """All of a picture's perceptual hashes from one decoded (grey, oriented) image.

    The 64-bit hash uses Pillow's Lanczos resize, so it is imagehash's pHash bit for bit;
    the 256-bit and crop hashes come from one 128x128 copy through precomputed
    resample-and-DCT matrices, and the turned and mirrored variants from the same DCT
    blocks (sign flips and transposes): two resizes and two medians in all.
    """
    low8 = _low_frequencies(gray, 8)
    base = _base(gray)
    low16 = _blocks(base, 16)
    # one median per size over every block: whole, its 7 variants, the crops
    crops8 = [_crop_blocks(base, f, 8) for f in CROP_FRACTIONS]
    crops16 = [_crop_blocks(base, f, 16) for f in CROP_FRACTIONS]
    bits8 = _bits(np.concatenate([low8[None], dihedral_blocks(low8), *crops8]))
    bits16 = _bits(np.concatenate([low16[None], dihedral_blocks(low16), *crops16]))
    hex64 = [_hex64(b) for b in bits8]
    packed = [np.packbits(b).tobytes() for b in bits16]
    turned = slice(1, 1 + len(DIHEDRAL))
    cut = slice(1 + len(DIHEDRAL), None)
    hashes = PerceptualHashes(
        phash=hex64[0],
        phash256=packed[0],
        dihedral=hex64[turned],
        dihedral256=packed[turned],
        crops=hex64[cut],
        crops256=packed[cut],
    )
    return _with_trimmed(hashes, gray, base)


def _with_trimmed(
    hashes: PerceptualHashes, gray: Image.Image, base: npt.NDArray[np.float64]
) -> PerceptualHashes:
    """Add the hashes of the picture inside its uniform borders, when it has some (found
    on the small copy, cut from the decoded picture)."""
    box = content_box(base)
    if box is None:
        return hashes
    top, bottom, left, right = box
    sy, sx = gray.height / _CROP_BASE, gray.width / _CROP_BASE
    # one base pixel inwards on each side: the box filter blurs the border's edge
    cut = (
        math.ceil((left + 1) * sx),
        math.ceil((top + 1) * sy),
        math.floor((right - 1) * sx),
        math.floor((bottom - 1) * sy),
    )
    inner = gray.crop(cut)
    base = _base(inner)
    return PerceptualHashes(
        **{
            **hashes.__dict__,
            "trimmed": _hex64(_bits(_low_frequencies(inner, 8))),
            "trimmed256": np.packbits(_bits(_blocks(base, 16))).tobytes(),
        }
    )


def crop_hashes(img: Image.Image) -> tuple[list[str], list[bytes]]:
    """pHashes of the 95 % and 90 % crops of ``img`` (corners, edge midpoints, centre).

    pHash alone is not crop-tolerant: a 5 % crop moves a photo up to 26 bits away, as far
    as a view 45° to the side. A cropped copy's full hash is close (within a few bits) to
    one of these crop hashes of the original, so dedup compares each photo's hash with the
    other photos' crop hashes too. Returns the 64-bit hashes (hex) and the 256-bit ones
    that confirm a match.
    """
    hashes = perceptual_hashes(img.convert("L"))
    return hashes.crops, hashes.crops256


def pixel_hash(img: Image.Image) -> str:
    """BLAKE2b-256 of the decoded pixels, their mode and size: equal for metadata-only
    copies (BLAKE2b: as collision-resistant as SHA-256 and 2-3x faster without SHA CPU
    instructions).

    Ingest hashes the luma plane of the draft-decoded, oriented image (the decode it
    already does for the perceptual hash): two files get the same value exactly when
    their pixels decode the same, whatever their tags say.
    """
    digest = hashlib.blake2b(f"{img.mode}:{img.width}x{img.height}:".encode(), digest_size=32)
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

    feature: ClassVar[dict[str, str]] = {"_type": "Image"}
    quality: ClassVar[int] = 90

    @staticmethod
    def arrow_type() -> Any:
        """The Arrow type: a struct of ``bytes`` (binary) and ``path`` (string)."""
        import pyarrow as pa  # only the writers need it, not the readers in workers

        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])

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
