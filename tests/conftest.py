"""Shared fixtures: photos written by the tests themselves (Pillow + piexif)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from gpskit.exifwrite import PhoneExif, save_photo
from gpskit.samples import textured_image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "exif-samples"
EDT = timezone(timedelta(hours=-4))
TAKEN = datetime(2024, 5, 1, 14, 3, 7, tzinfo=EDT)


def good_exif(**overrides: object) -> PhoneExif:
    """EXIF of a good campus photo; override any field."""
    exif = PhoneExif(
        latitude=39.9515,
        longitude=-75.1910,
        altitude=14.0,
        heading=90.0,
        h_error=5.0,
        taken=TAKEN,
    )
    for key, value in overrides.items():
        setattr(exif, key, value)
    return exif


def photo(size: tuple[int, int] = (320, 240), seed: int = 0) -> Image.Image:
    return textured_image(*size, seed=seed)


#: file name -> the one rejection reason code it must get (None: accepted)
REASON_FILES: dict[str, str | None] = {
    "good.jpg": None,
    "empty.jpg": "empty_file",
    "text.jpg": "not_image",
    "truncated.jpg": "decode_error",
    "picture.gif": "unsupported_format",
    "no_exif.jpg": "no_exif",
    "no_gps.jpg": "no_gps",
    "no_ref.jpg": "gps_ref_missing",
    "zero_den.jpg": "gps_malformed",
    "out_of_range.jpg": "gps_out_of_range",
    "null_island.jpg": "gps_null_island",
    "poor_fix.jpg": "gps_error_too_large",
    "stale_fix.jpg": "gps_stale_fix",
    "tiny.jpg": "too_small",
}


def write_reason_set(folder: Path) -> Path:
    """One photo per reason code (see REASON_FILES)."""
    folder.mkdir(parents=True, exist_ok=True)
    img = photo()
    save_photo(img, folder / "good.jpg", good_exif())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, I am not a photo\n")
    data = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    img.save(folder / "picture.gif")
    img.save(folder / "no_exif.jpg")
    save_photo(img, folder / "no_gps.jpg", good_exif(latitude=None, longitude=None))
    save_photo(img, folder / "no_ref.jpg", good_exif(lat_ref=""))
    save_photo(img, folder / "zero_den.jpg", good_exif(raw_gps={2: ((39, 0), (57, 1), (5, 1))}))
    save_photo(img, folder / "out_of_range.jpg", good_exif(raw_gps={2: ((95, 1), (0, 1), (0, 1))}))
    save_photo(img, folder / "null_island.jpg", good_exif(latitude=0.0, longitude=0.0))
    save_photo(img, folder / "poor_fix.jpg", good_exif(h_error=45.0))
    save_photo(img, folder / "stale_fix.jpg", good_exif(gps_time=TAKEN - timedelta(hours=2)))
    save_photo(photo((160, 120)), folder / "tiny.jpg", good_exif())
    return folder


@pytest.fixture(scope="session")
def reason_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reason_set(tmp_path_factory.mktemp("reasons"))


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared EXIF corpus not found at {SHARED} (only in the team's workspace)")
    return SHARED
