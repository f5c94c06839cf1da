"""Decoding, orientation and hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from gpskit.exifwrite import PhoneExif, save_photo
from gpskit.imaging import decode_oriented, hamming, phash, pixel_hash, sniff_format

from .helpers import photo


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    path = save_photo(photo((64, 48)), tmp_path / "o.jpg", PhoneExif(orientation=orientation))
    ours = decode_oriented(path)
    with Image.open(path) as img:
        reference = ImageOps.exif_transpose(img).convert("RGB")
    assert ours.size == reference.size
    assert np.array_equal(np.asarray(ours), np.asarray(reference))


@pytest.mark.parametrize("suffix", ["heic", "tif", "png", "webp"])
@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_other_formats_are_oriented_once(tmp_path: Path, suffix: str, orientation: int) -> None:
    base = Image.new("RGB", (40, 30))
    base.putpixel((0, 0), (255, 0, 0))
    path = save_photo(
        base, tmp_path / f"o.{suffix}", PhoneExif(orientation=orientation), quality=100
    )
    jpeg = save_photo(base, tmp_path / "o.jpg", PhoneExif(orientation=orientation), quality=100)
    ours, reference = np.asarray(decode_oriented(path)), np.asarray(decode_oriented(jpeg))
    assert ours.shape == reference.shape
    red = np.unravel_index(ours[..., 0].argmax(), ours.shape[:2])
    assert red == np.unravel_index(reference[..., 0].argmax(), reference.shape[:2])


def test_draft_decoding_keeps_at_least_min_side(tmp_path: Path) -> None:
    path = save_photo(photo((2016, 1512)), tmp_path / "big.jpg", PhoneExif())
    img = decode_oriented(path, min_side=256)
    assert min(img.size) >= 256 and img.size[0] < 2016


def test_phash_is_imagehash_phash() -> None:
    imagehash = pytest.importorskip("imagehash", reason="imagehash not installed: parity unchecked")
    for seed in range(5):
        img = photo((300, 200), seed=seed)
        assert phash(img) == str(imagehash.phash(img))


def test_phash_stable_under_reencode_and_resize() -> None:
    img = photo((640, 480), seed=3)
    small = img.resize((320, 240), Image.Resampling.BILINEAR)
    assert hamming(phash(img), phash(small)) <= 4
    assert hamming(phash(img), phash(photo((640, 480), seed=4))) > 12


def test_pixel_hash_ignores_metadata_but_not_pixels() -> None:
    img = photo()
    assert pixel_hash(img) == pixel_hash(img.copy())
    other = img.copy()
    other.putpixel((0, 0), (0, 0, 0))
    assert pixel_hash(img) != pixel_hash(other)


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\xff\xd8\xff\xe0", "JPEG"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"II*\x00", "TIFF"),
        (b"RIFF\x00\x00\x00\x00WEBP", "WEBP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIF"),
        (b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1avif", "AVIF"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isomavc1", None),
        (b"hello world", None),
    ],
)
def test_sniff_format(head: bytes, fmt: str | None) -> None:
    assert sniff_format(head) == fmt


def test_the_manifest_phash_is_imagehash_phash_on_real_photos(shared_samples: Path) -> None:
    """The hash ingest keeps (from the draft-decoded, grey, oriented picture) is
    ``imagehash.phash`` of that picture, bit for bit, on real cameras' and phones' files."""
    imagehash = pytest.importorskip("imagehash", reason="imagehash not installed: parity unchecked")
    from gpskit.imaging import HASH_DECODE_SIDE, perceptual_hashes

    checked = 0
    for path in sorted(
        p for p in shared_samples.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")
    ):
        try:
            with Image.open(path) as img:
                img.draft("L", (HASH_DECODE_SIDE, HASH_DECODE_SIDE))
                gray = ImageOps.exif_transpose(img.convert("L"))
        except Exception:  # a sample Pillow cannot decode (struct.error, ...) has no hash
            continue
        assert perceptual_hashes(gray).phash == str(imagehash.phash(gray)), path
        checked += 1
    assert checked >= 20


@settings(max_examples=60, deadline=None)
@given(
    st.integers(8, 300),
    st.integers(8, 300),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["noise", "flat", "stripes", "gradient"]),
)
def test_phash_is_imagehash_phash_for_any_picture(
    width: int, height: int, seed: int, kind: str
) -> None:
    imagehash = pytest.importorskip("imagehash", reason="imagehash not installed: parity unchecked")
    from gpskit.imaging import perceptual_hashes

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = {
        "noise": rng.integers(0, 256, (height, width)),
        "flat": np.full((height, width), int(rng.integers(0, 256))),
        "stripes": (x // max(1, int(rng.integers(1, 9))) % 2) * 255,
        "gradient": (x * 255 // max(1, width - 1) + y) % 256,
    }[kind]
    gray = Image.fromarray(pixels.astype(np.uint8), "L")
    assert perceptual_hashes(gray).phash == str(imagehash.phash(gray))
