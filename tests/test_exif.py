"""Reading EXIF: positions, references, rationals, times, orientation, XMP."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from gpskit.exif import (
    Metadata,
    metadata_from_exif,
    read_metadata,
    read_xmp_position,
    salvage_metadata,
)
from gpskit.exifwrite import PhoneExif, save_photo
from gpskit.imaging import open_image

from .helpers import TAKEN, good_exif, photo


def _meta(tmp_path: Path, exif: PhoneExif, name: str = "x.jpg") -> Metadata:
    path = save_photo(photo(), tmp_path / name, exif)
    with open_image(path) as img:
        return read_metadata(img)


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(39.9515, -75.191), (-33.8568, 151.2153), (64.1466, -21.9426), (-22.9519, -43.2105)],
)
def test_position_signed_by_hemisphere(tmp_path: Path, lat: float, lon: float) -> None:
    meta = _meta(tmp_path, good_exif(latitude=lat, longitude=lon))
    assert meta.latitude == pytest.approx(lat, abs=1e-9)
    assert meta.longitude == pytest.approx(lon, abs=1e-9)
    assert meta.gps_source == "exif"


def test_phone_fields(tmp_path: Path) -> None:
    meta = _meta(tmp_path, good_exif(altitude=-3.5, heading=271.25, h_error=4.5, dop=1.2))
    assert meta.altitude == pytest.approx(-3.5)
    assert meta.altitude_ref == 1
    assert meta.img_direction == pytest.approx(271.25)
    assert meta.img_direction_ref == "T"
    assert meta.gps_h_error == pytest.approx(4.5)
    assert meta.gps_dop == pytest.approx(1.2)
    assert meta.make == "Apple"
    assert meta.datetime_original == "2024-05-01T14:03:07"
    assert meta.utc_offset == "-04:00"
    assert meta.datetime_original_utc == datetime(2024, 5, 1, 18, 3, 7, tzinfo=timezone.utc)
    assert meta.gps_timestamp == datetime(2024, 5, 1, 18, 3, 7, tzinfo=timezone.utc)


@pytest.mark.parametrize(("ref", "sign"), [(0, 1), (1, -1), (2, 1), (3, -1)])
def test_altitude_ref_exif3(tmp_path: Path, ref: int, sign: int) -> None:
    meta = _meta(tmp_path, good_exif(altitude=None, raw_gps={5: ref, 6: (125, 10)}))
    assert meta.altitude == pytest.approx(sign * 12.5)
    assert meta.altitude_ref == ref


def test_missing_ref_gives_no_position(tmp_path: Path) -> None:
    meta = _meta(tmp_path, good_exif(lon_ref=""))
    assert meta.latitude is None and meta.longitude is None
    assert "ref_missing:longitude" in meta.row_fields()["gps_flags"]


def test_zero_denominator_is_flagged_not_raised(tmp_path: Path) -> None:
    meta = _meta(tmp_path, good_exif(raw_gps={4: ((75, 1), (11, 0), (0, 1)), 6: (10, 0)}))
    assert meta.longitude is None
    assert "zero_denominator:longitude" in meta.row_fields()["gps_flags"]
    assert "zero_denominator:altitude" in meta.row_fields()["gps_flags"]


def test_no_offset_means_no_utc(tmp_path: Path) -> None:
    meta = _meta(tmp_path, good_exif(taken=TAKEN.replace(tzinfo=None)))
    assert meta.datetime_original == "2024-05-01T14:03:07"
    assert meta.utc_offset is None and meta.datetime_original_utc is None


def test_magnetic_heading_keeps_ref(tmp_path: Path) -> None:
    meta = _meta(tmp_path, good_exif(heading=10.0, heading_ref="M"))
    assert meta.img_direction_ref == "M"


def test_xmp_position_used_when_gps_directory_has_none() -> None:
    meta = Metadata()
    xmp = (
        b'<x:xmpmeta><rdf:Description exif:GPSLatitude="38,24.31168800S" '
        b'exif:GPSLongitude="144,11.33748000E" exif:GPSAltitude="1234/10" '
        b'exif:GPSAltitudeRef="1"/></x:xmpmeta>'
    )
    read_xmp_position(meta, xmp)
    assert meta.latitude == pytest.approx(-(38 + 24.311688 / 60))
    assert meta.longitude == pytest.approx(144 + 11.33748 / 60)
    assert meta.altitude == pytest.approx(-123.4)
    assert meta.gps_source == "xmp"


def test_xmp_read_from_file_without_gps_tags(tmp_path: Path) -> None:
    xmp = (
        b'<x:xmpmeta><rdf:Description exif:GPSLatitude="39,57.09N" '
        b'exif:GPSLongitude="75,11.46W"/></x:xmpmeta>'
    )
    path = tmp_path / "xmp.jpg"
    photo().save(path, exif=PhoneExif(orientation=1).to_bytes(), xmp=xmp)
    with open_image(path) as img:
        meta = read_metadata(img)
    assert meta.gps_source == "xmp"
    assert meta.latitude == pytest.approx(39 + 57.09 / 60)
    assert meta.longitude == pytest.approx(-(75 + 11.46 / 60))


def test_salvage_reads_exif_of_undecodable_jpeg(tmp_path: Path) -> None:
    exif = good_exif(orientation=6).to_bytes()
    data = b"\xff\xd8\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif  # no image data
    meta = salvage_metadata(data)
    assert meta is not None
    assert meta.orientation == 6
    assert meta.latitude == pytest.approx(39.9515)


def test_heif_orientation_is_the_original_and_not_applied_twice(tmp_path: Path) -> None:
    path = save_photo(photo((40, 30)), tmp_path / "x.heic", good_exif(orientation=6))
    with open_image(path) as img:
        meta = read_metadata(img)
        assert img.size == (30, 40)  # pillow-heif already rotated it
    assert meta.orientation == 6


def test_garbage_exif_values_never_raise() -> None:
    exif = Image.Exif()
    exif[0x0112] = "sideways"
    meta = metadata_from_exif(exif)
    assert meta.orientation is None
    assert meta.has_exif is True


def test_metadata_from_raw_bytes_roundtrip() -> None:
    buf = io.BytesIO()
    photo().save(buf, "JPEG", exif=good_exif(latitude=-1.5, longitude=2.25).to_bytes())
    with Image.open(io.BytesIO(buf.getvalue())) as img:
        meta = read_metadata(img)
    assert (meta.latitude, meta.longitude) == (pytest.approx(-1.5), pytest.approx(2.25))
    assert meta.gps_timestamp is not None and meta.gps_timestamp - TAKEN == timedelta(0)


def test_gps_flags_round_trip_as_text() -> None:
    from gpskit.gpsflags import GpsFlag, Problem, position_unreadable

    for problem in Problem:
        for tag in ("latitude", "altitude", "img_direction"):
            flag = GpsFlag(problem, tag)
            assert GpsFlag.parse(str(flag)) == flag
    assert position_unreadable([GpsFlag(Problem.ZERO_DENOMINATOR, "longitude")])
    assert position_unreadable([GpsFlag(Problem.REF_MISSING, "latitude")])
    assert not position_unreadable([GpsFlag(Problem.ZERO_DENOMINATOR, "altitude")])
    assert not position_unreadable([GpsFlag(Problem.COUNT_2, "latitude")])
