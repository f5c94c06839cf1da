"""Write EXIF the way a phone does (with piexif), for fixtures, benchmarks and synthetic data.

piexif is a good writer and a poor reader (it throws on many real files), so gpskit reads
with Pillow (:mod:`gpskit.exif`) and writes with piexif here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import piexif
from PIL import Image

from gpskit.imaging import register_heif

Rational = tuple[int, int]


def rational(value: float, max_denominator: int = 1_000_000) -> Rational:
    """A non-negative number as an EXIF RATIONAL."""
    frac = Fraction(abs(value)).limit_denominator(max_denominator)
    return frac.numerator, frac.denominator


def dms(value: float) -> tuple[Rational, Rational, Rational]:
    """Decimal degrees as the (degrees, minutes, seconds) rationals of GPSLatitude/Longitude."""
    value = abs(value)
    degrees = int(value)
    minutes_float = (value - degrees) * 60
    minutes = int(minutes_float)
    seconds = (minutes_float - minutes) * 60
    return (degrees, 1), (minutes, 1), (round(seconds * 1_000_000), 1_000_000)


@dataclass
class PhoneExif:
    """The tags a phone camera writes; None leaves a tag out."""

    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    heading: float | None = None
    heading_ref: str = "T"
    h_error: float | None = None
    dop: float | None = None
    taken: datetime | None = None  # aware: local time with its offset
    gps_time: datetime | None = None  # aware; defaults to the capture time
    make: str | None = "Apple"
    model: str | None = "iPhone 14"
    software: str | None = "17.1"
    orientation: int | None = 1
    lat_ref: str | None = None  # override the N/S reference (e.g. "" to test a missing one)
    lon_ref: str | None = None
    raw_gps: dict[int, Any] | None = None  # extra/overriding GPS tags, written as given

    def to_dict(self) -> dict[str, Any]:
        zeroth: dict[int, Any] = {}
        exif: dict[int, Any] = {}
        gps: dict[int, Any] = {}
        if self.make:
            zeroth[piexif.ImageIFD.Make] = self.make.encode()
        if self.model:
            zeroth[piexif.ImageIFD.Model] = self.model.encode()
        if self.software:
            zeroth[piexif.ImageIFD.Software] = self.software.encode()
        if self.orientation is not None:
            zeroth[piexif.ImageIFD.Orientation] = self.orientation
        if self.taken is not None:
            exif[piexif.ExifIFD.DateTimeOriginal] = self.taken.strftime(
                "%Y:%m:%d %H:%M:%S"
            ).encode()
            if self.taken.tzinfo is not None:
                offset = self.taken.utcoffset() or timedelta(0)
                minutes = int(offset.total_seconds() // 60)
                sign = "-" if minutes < 0 else "+"
                text = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
                exif[piexif.ExifIFD.OffsetTimeOriginal] = text.encode()
        if self.latitude is not None and self.longitude is not None:
            gps[piexif.GPSIFD.GPSVersionID] = (2, 3, 0, 0)
            lat_ref = (
                self.lat_ref if self.lat_ref is not None else ("S" if self.latitude < 0 else "N")
            )
            lon_ref = (
                self.lon_ref if self.lon_ref is not None else ("W" if self.longitude < 0 else "E")
            )
            if lat_ref:
                gps[piexif.GPSIFD.GPSLatitudeRef] = lat_ref.encode()
            if lon_ref:
                gps[piexif.GPSIFD.GPSLongitudeRef] = lon_ref.encode()
            gps[piexif.GPSIFD.GPSLatitude] = dms(self.latitude)
            gps[piexif.GPSIFD.GPSLongitude] = dms(self.longitude)
            if self.altitude is not None:
                gps[piexif.GPSIFD.GPSAltitudeRef] = 1 if self.altitude < 0 else 0
                gps[piexif.GPSIFD.GPSAltitude] = rational(self.altitude, 1000)
            fix = self.gps_time or self.taken
            if fix is not None and fix.tzinfo is not None:
                utc = fix.astimezone(timezone.utc)
                gps[piexif.GPSIFD.GPSDateStamp] = utc.strftime("%Y:%m:%d").encode()
                gps[piexif.GPSIFD.GPSTimeStamp] = (
                    (utc.hour, 1),
                    (utc.minute, 1),
                    (utc.second * 100 + utc.microsecond // 10000, 100),
                )
            if self.heading is not None:
                gps[piexif.GPSIFD.GPSImgDirectionRef] = self.heading_ref.encode()
                gps[piexif.GPSIFD.GPSImgDirection] = rational(self.heading % 360.0, 10000)
            if self.h_error is not None:
                gps[piexif.GPSIFD.GPSHPositioningError] = rational(self.h_error, 1000)
            if self.dop is not None:
                gps[piexif.GPSIFD.GPSDOP] = rational(self.dop, 1000)
        if self.raw_gps:
            gps.update(self.raw_gps)
        return {"0th": zeroth, "Exif": exif, "GPS": gps, "1st": {}, "thumbnail": None}

    def to_bytes(self) -> bytes:
        return bytes(piexif.dump(self.to_dict()))


def save_photo(
    img: Image.Image,
    path: Path,
    exif: PhoneExif | bytes | None,
    *,
    fmt: str | None = None,
    quality: int = 90,
) -> Path:
    """Save ``img`` with EXIF in JPEG, HEIF, PNG (eXIf), WebP or TIFF, by ``fmt`` or suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = (fmt or path.suffix.lstrip(".")).upper()
    fmt = {"JPG": "JPEG", "HEIC": "HEIF", "TIF": "TIFF"}.get(fmt, fmt)
    data = exif.to_bytes() if isinstance(exif, PhoneExif) else exif
    kwargs: dict[str, Any] = {}
    if data:
        kwargs["exif"] = data
    if fmt in ("JPEG", "WEBP", "HEIF"):
        kwargs["quality"] = quality
    if fmt == "HEIF":
        register_heif()
    img.save(path, format=fmt, **kwargs)
    return path


# --- raw EXIF: any tag, any TIFF type, any count (fuzzing, odd writers) -------------------------

#: TIFF field types: code -> (name, bytes per value).
TIFF_TYPES: dict[int, tuple[str, int]] = {
    1: ("BYTE", 1),
    2: ("ASCII", 1),
    3: ("SHORT", 2),
    4: ("LONG", 4),
    5: ("RATIONAL", 8),
    6: ("SBYTE", 1),
    7: ("UNDEFINED", 1),
    8: ("SSHORT", 2),
    9: ("SLONG", 4),
    10: ("SRATIONAL", 8),
    11: ("FLOAT", 4),
    12: ("DOUBLE", 8),
}


@dataclass(frozen=True)
class RawTag:
    """One IFD entry written exactly as given: tag number, TIFF type, count and value bytes
    (in the file's byte order). ``count`` may disagree with ``data`` on purpose."""

    tag: int
    type: int
    count: int
    data: bytes


def _ifd(entries: list[RawTag], start: int, order: str) -> tuple[bytes, bytes]:
    """An IFD at offset ``start``: its entries block and the out-of-line values after it."""
    e = ">" if order == "MM" else "<"
    entries = sorted(entries, key=lambda t: t.tag)
    head = len(entries).to_bytes(2, "big" if e == ">" else "little")
    values_at = start + 2 + 12 * len(entries) + 4
    block, extra = bytearray(head), bytearray()
    for item in entries:
        data = item.data
        block += struct.pack(f"{e}HHI", item.tag, item.type, item.count)
        if len(data) <= 4:
            block += data.ljust(4, b"\0")
        else:
            block += struct.pack(f"{e}I", values_at + len(extra))
            extra += data + (b"\0" if len(data) % 2 else b"")
    block += b"\0\0\0\0"  # no next IFD
    return bytes(block), bytes(extra)


def raw_exif(
    ifd0: list[RawTag],
    exif: list[RawTag] | None = None,
    gps: list[RawTag] | None = None,
    *,
    order: str = "II",
) -> bytes:
    """An ``Exif\\0\\0`` APP1 payload with IFD0 and, when given, the Exif and GPS IFDs.

    Unlike piexif, nothing is checked: tags of any type and count go in as they are, so a
    test can write what odd or broken writers write.
    """
    e = ">" if order == "MM" else "<"
    header = (b"MM\0*" if order == "MM" else b"II*\0") + struct.pack(f"{e}I", 8)
    pointers = []
    if exif is not None:
        pointers.append(RawTag(0x8769, 4, 1, b"\0\0\0\0"))
    if gps is not None:
        pointers.append(RawTag(0x8825, 4, 1, b"\0\0\0\0"))
    first = [t for t in ifd0 if t.tag not in (0x8769, 0x8825)] + pointers
    block0, extra0 = _ifd(first, 8, order)
    offset = 8 + len(block0) + len(extra0)
    subs: dict[int, bytes] = {}
    for tag, entries in ((0x8769, exif), (0x8825, gps)):
        if entries is None:
            continue
        block, extra = _ifd(entries, offset, order)
        subs[tag] = block + extra
        pointer = struct.pack(f"{e}I", offset)
        first = [t if t.tag != tag else RawTag(tag, 4, 1, pointer) for t in first]
        offset += len(block) + len(extra)
    block0, extra0 = _ifd(first, 8, order)
    body = header + block0 + extra0 + b"".join(subs[t] for t in (0x8769, 0x8825) if t in subs)
    return b"Exif\0\0" + body
