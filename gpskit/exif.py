"""Read the metadata gpskit needs from an opened image, the way ExifTool reads it.

Pillow's EXIF API (``getexif()`` and ``get_ifd``) is the reader: it copes with the real
files of many cameras where piexif throws. Parsing never raises on bad tag values; it
records what it found odd in ``gps_flags`` and leaves the value empty, so the checks in
:mod:`gpskit.checks` decide what a flag means for the photo.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from PIL import Image, TiffImagePlugin

from gpskit.gpsflags import GpsFlag, Problem, position_unreadable

# Tag numbers (EXIF 2.32 / 3.0).
TAG_MAKE = 0x010F
TAG_MODEL = 0x0110
TAG_ORIENTATION = 0x0112
TAG_SOFTWARE = 0x0131
TAG_XMP = 0x02BC
IFD_EXIF = 0x8769
IFD_GPS = 0x8825
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011
TAG_SUBSEC_TIME_ORIGINAL = 0x9291

GPS_LATITUDE_REF = 1
GPS_LATITUDE = 2
GPS_LONGITUDE_REF = 3
GPS_LONGITUDE = 4
GPS_ALTITUDE_REF = 5
GPS_ALTITUDE = 6
GPS_TIMESTAMP = 7
GPS_DOP = 11
GPS_IMG_DIRECTION_REF = 16
GPS_IMG_DIRECTION = 17
GPS_DATESTAMP = 29
GPS_H_POSITIONING_ERROR = 31

#: Formats whose decoder applies the EXIF orientation itself: pillow-heif rotates HEIF/AVIF
#: and resets the tag (keeping the camera's value in ``info["original_orientation"]``);
#: Pillow's TIFF plugin reports the oriented size on open and transposes on load.
SELF_ORIENTING_FORMATS = frozenset({"HEIF", "AVIF", "TIFF"})


@dataclass
class Metadata:
    """What gpskit keeps of one image's metadata."""

    has_exif: bool = False
    orientation: int | None = None
    make: str | None = None
    model: str | None = None
    software: str | None = None
    datetime_original: str | None = None
    utc_offset: str | None = None
    datetime_original_utc: datetime | None = None
    has_gps_ifd: bool = False
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    altitude_ref: int | None = None
    gps_timestamp: datetime | None = None
    img_direction: float | None = None
    img_direction_ref: str | None = None
    gps_h_error: float | None = None
    gps_dop: float | None = None
    gps_source: str | None = None
    gps_flags: list[GpsFlag] = field(default_factory=list)

    def row_fields(self) -> dict[str, Any]:
        """The manifest columns this metadata fills."""
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        del fields["has_gps_ifd"]
        fields["gps_flags"] = [str(flag) for flag in self.gps_flags]
        return fields


class _Unreadable(ValueError):
    """A tag value that is not the number(s) it should be."""


def _text(value: Any) -> str | None:
    """A clean string from an ASCII tag (bytes or str), or None when empty."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, (tuple, list)):
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


#: A decimal number as ExifTool extracts it from text (Image::ExifTool::GPS::ToDegrees).
_TEXT_NUMBER = re.compile(r"((?:[+-]?)(?=\d|\.\d)\d*(?:\.\d*)?(?:[Ee][+-]\d+)?)")
_TEXT_INVALID = re.compile(r"\b(inf|undef)\b")


def _text_numbers(value: str | bytes, *, what: str, flags: list[GpsFlag]) -> list[float]:
    """The numbers in an ASCII tag value, found the way ExifTool finds them."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    found = [] if _TEXT_INVALID.search(text) else _TEXT_NUMBER.findall(text)
    if not found:
        flags.append(GpsFlag(Problem.NON_NUMERIC, what))
        raise _Unreadable(what)
    numbers = [float(n) for n in found]
    if not all(math.isfinite(n) for n in numbers):
        flags.append(GpsFlag(Problem.MALFORMED, what))
        raise _Unreadable(what)
    flags.append(GpsFlag(Problem.TEXT, what))
    return numbers


def _number(value: Any, *, what: str, flags: list[GpsFlag]) -> float:
    """One finite number from a rational/int tag value; flags and raises if it is not."""
    if isinstance(value, (str, bytes)):
        return _text_numbers(value, what=what, flags=flags)[0]
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            flags.append(GpsFlag(Problem.MALFORMED, what))
            raise _Unreadable(what)
        value = value[0]
    if isinstance(value, TiffImagePlugin.IFDRational):
        if value.denominator == 0:
            flags.append(GpsFlag(Problem.ZERO_DENOMINATOR, what))
            raise _Unreadable(what)
        return float(value.numerator) / float(value.denominator)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        flags.append(GpsFlag(Problem.NON_NUMERIC, what))
        raise _Unreadable(what)
    number = float(value)
    if not math.isfinite(number):
        flags.append(GpsFlag(Problem.MALFORMED, what))
        raise _Unreadable(what)
    return number


def _degrees(value: Any, *, what: str, flags: list[GpsFlag]) -> float:
    """Degrees from the (deg, min, sec) rationals; 1 or 2 values, or text, are read as
    ExifTool reads them (text: the first three numbers in it)."""
    if isinstance(value, (str, bytes)):
        d, m, s = [*_text_numbers(value, what=what, flags=flags), 0.0, 0.0][:3]
        return abs(d + (m + s / 60) / 60)
    parts = value if isinstance(value, (tuple, list)) else (value,)
    if any(isinstance(p, float) for p in parts):
        # stored as FLOAT/DOUBLE, not RATIONAL: a writer's mistake (read as such, 5.5e-44°);
        # ExifTool refuses the tag too
        flags.append(GpsFlag(Problem.MALFORMED, what))
        raise _Unreadable(what)
    if not 1 <= len(parts) <= 3:
        flags.append(GpsFlag(Problem.MALFORMED, what))
        raise _Unreadable(what)
    numbers = [_number(p, what=what, flags=flags) for p in parts]
    if len(parts) != 3:
        flags.append(GpsFlag(Problem(f"count_{len(parts)}"), what))
    return float(sum(n / 60**i for i, n in enumerate(numbers)))


def _ref(value: Any, allowed: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text[:1].upper()
    return text if text in allowed else None


def _byte(value: Any) -> int | None:
    """An EXIF BYTE/SHORT value that Pillow may hand over as bytes, int or a 1-tuple."""
    if isinstance(value, bytes):
        return value[0] if value else None
    if isinstance(value, (tuple, list)):
        return _byte(value[0]) if value else None
    if isinstance(value, int):
        return value
    return None


def _parse_exif_datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text.strip()[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def _parse_offset(text: str | None) -> timezone | None:
    match = _OFFSET_RE.match(text or "")
    if not match:
        return None
    sign = -1 if match.group(1) == "-" else 1
    minutes = int(match.group(2)) * 60 + int(match.group(3))
    if minutes > 18 * 60:
        return None
    return timezone(sign * timedelta(minutes=minutes))


def _read_capture_time(meta: Metadata, exif_ifd: dict[int, Any]) -> None:
    local = _parse_exif_datetime(_text(exif_ifd.get(TAG_DATETIME_ORIGINAL)))
    if local is None:
        return
    subsec = _text(exif_ifd.get(TAG_SUBSEC_TIME_ORIGINAL))
    if subsec and subsec.isdigit():
        local = local.replace(microsecond=int(subsec[:6].ljust(6, "0")))
    meta.datetime_original = local.isoformat()
    offset_text = _text(exif_ifd.get(TAG_OFFSET_TIME_ORIGINAL))
    offset = _parse_offset(offset_text)
    if offset is not None:
        meta.utc_offset = offset_text
        meta.datetime_original_utc = local.replace(tzinfo=offset).astimezone(timezone.utc)


def _read_gps_time(meta: Metadata, gps: dict[int, Any]) -> None:
    date_text = _text(gps.get(GPS_DATESTAMP))
    stamp = gps.get(GPS_TIMESTAMP)
    if not date_text or stamp is None:
        return
    try:
        day = datetime.strptime(date_text.strip()[:10], "%Y:%m:%d")
    except ValueError:
        meta.gps_flags.append(GpsFlag(Problem.MALFORMED, "gps_datestamp"))
        return
    parts = stamp if isinstance(stamp, (tuple, list)) else (stamp,)
    try:
        h, m, s = (_number(p, what="gps_timestamp", flags=meta.gps_flags) for p in parts)
    except (_Unreadable, ValueError):
        if GpsFlag(Problem.MALFORMED, "gps_timestamp") not in meta.gps_flags:
            meta.gps_flags.append(GpsFlag(Problem.MALFORMED, "gps_timestamp"))
        return
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 61):
        meta.gps_flags.append(GpsFlag(Problem.MALFORMED, "gps_timestamp"))
        return
    meta.gps_timestamp = (day + timedelta(hours=h, minutes=m, seconds=s)).replace(
        tzinfo=timezone.utc
    )


def _read_position(meta: Metadata, gps: dict[int, Any]) -> None:
    flags = meta.gps_flags
    has_lat, has_lon = GPS_LATITUDE in gps, GPS_LONGITUDE in gps
    if not (has_lat or has_lon):
        return
    lat_ref = _ref(gps.get(GPS_LATITUDE_REF), "NS")
    lon_ref = _ref(gps.get(GPS_LONGITUDE_REF), "EW")
    if lat_ref is None:
        flags.append(GpsFlag(Problem.REF_MISSING, "latitude"))
    if lon_ref is None:
        flags.append(GpsFlag(Problem.REF_MISSING, "longitude"))
    if not (has_lat and has_lon):
        flags.append(GpsFlag(Problem.MISSING, "longitude" if has_lat else "latitude"))
        return
    try:
        lat = _degrees(gps[GPS_LATITUDE], what="latitude", flags=flags)
    except _Unreadable:
        lat = None
    try:
        lon = _degrees(gps[GPS_LONGITUDE], what="longitude", flags=flags)
    except _Unreadable:
        lon = None
    if lat is None or lon is None or lat_ref is None or lon_ref is None:
        return
    meta.latitude = -abs(lat) if lat_ref == "S" else abs(lat)
    meta.longitude = -abs(lon) if lon_ref == "W" else abs(lon)
    meta.gps_source = "exif"


def _read_altitude(meta: Metadata, gps: dict[int, Any]) -> None:
    if GPS_ALTITUDE not in gps:
        return
    try:
        altitude = _number(gps[GPS_ALTITUDE], what="altitude", flags=meta.gps_flags)
    except _Unreadable:
        return
    ref = _byte(gps.get(GPS_ALTITUDE_REF))
    meta.altitude_ref = ref
    # Exif 3.0: 0/1 above/below sea level, 2/3 above/below the WGS 84 ellipsoid.
    meta.altitude = -abs(altitude) if ref in (1, 3) else altitude


def _read_optional_number(
    gps: dict[int, Any], tag: int, what: str, flags: list[GpsFlag]
) -> float | None:
    if tag not in gps:
        return None
    try:
        return _number(gps[tag], what=what, flags=flags)
    except _Unreadable:
        return None


def _read_direction(meta: Metadata, gps: dict[int, Any]) -> None:
    direction = _read_optional_number(gps, GPS_IMG_DIRECTION, "img_direction", meta.gps_flags)
    if direction is None:
        return
    if 0 <= direction <= 360:
        meta.img_direction = direction % 360.0
        meta.img_direction_ref = _ref(gps.get(GPS_IMG_DIRECTION_REF), "TM")
    else:
        meta.gps_flags.append(GpsFlag(Problem.OUT_OF_RANGE, "img_direction"))


def _read_accuracy(meta: Metadata, gps: dict[int, Any]) -> None:
    meta.gps_h_error = _read_optional_number(
        gps, GPS_H_POSITIONING_ERROR, "h_positioning_error", meta.gps_flags
    )
    meta.gps_dop = _read_optional_number(gps, GPS_DOP, "dop", meta.gps_flags)


def _guarded(read: Any, meta: Metadata, ifd: dict[int, Any], what: str) -> None:
    """Run one reader; a value that breaks it (any exception) costs that field only."""
    try:
        read(meta, ifd)
    except Exception:
        meta.gps_flags.append(GpsFlag(Problem.MALFORMED, what))


def read_gps(meta: Metadata, gps: dict[int, Any]) -> None:
    """Fill the GPS fields of ``meta`` from a GPS IFD as Pillow returns it."""
    meta.has_gps_ifd = bool(gps)
    _guarded(_read_position, meta, gps, "latitude")
    _guarded(_read_altitude, meta, gps, "altitude")
    _guarded(_read_gps_time, meta, gps, "gps_timestamp")
    _guarded(_read_direction, meta, gps, "img_direction")
    _guarded(_read_accuracy, meta, gps, "h_positioning_error")


# XMP stores GPS as "DDD,MM.mmk" or "DDD,MM,SSk" (k = N/S/E/W), in attributes or elements.
_XMP_COORD_RE = re.compile(
    rb"exif:GPS(Latitude|Longitude)(?:=\"|>)\s*([0-9.]+),([0-9.]+)(?:,([0-9.]+))?\s*([NSEW])",
    re.IGNORECASE,
)
_XMP_ALT_RE = re.compile(rb"exif:GPSAltitude(?:=\"|>)\s*(\d+)(?:/(\d+))?")
_XMP_ALT_REF_RE = re.compile(rb"exif:GPSAltitudeRef(?:=\"|>)\s*([0-3])")


def read_xmp_position(meta: Metadata, xmp: bytes) -> None:
    """Take the position from XMP when the GPS directory has none (recorded as source xmp)."""
    coords: dict[str, float] = {}
    for match in _XMP_COORD_RE.finditer(xmp):
        axis = match.group(1).decode().lower()
        deg, minutes = float(match.group(2)), float(match.group(3))
        seconds = float(match.group(4)) if match.group(4) else 0.0
        value = deg + minutes / 60 + seconds / 3600
        hemisphere = match.group(5).decode().upper()
        coords[axis] = -value if hemisphere in "SW" else value
    if "latitude" not in coords or "longitude" not in coords:
        return
    meta.latitude, meta.longitude = coords["latitude"], coords["longitude"]
    meta.gps_source = "xmp"
    alt = _XMP_ALT_RE.search(xmp)
    if alt and meta.altitude is None:
        den = int(alt.group(2) or 1)
        if den:
            value = int(alt.group(1)) / den
            ref = _XMP_ALT_REF_RE.search(xmp)
            meta.altitude = -value if ref and ref.group(1) in (b"1", b"3") else value


def raw_xmp(img: Image.Image) -> bytes | None:
    """The XMP packet of an opened image, whatever its container."""
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = img.info.get(key)
        if value:
            return value if isinstance(value, bytes) else str(value).encode("utf-8")
    tags = getattr(img, "tag_v2", None)
    if tags is not None and TAG_XMP in tags:
        value = tags[TAG_XMP]
        if isinstance(value, (bytes, str)):
            return value if isinstance(value, bytes) else value.encode("utf-8")
    return None


def read_metadata(img: Image.Image) -> Metadata:
    """Read everything gpskit keeps from an opened (not yet decoded) image."""
    original = img.info.get("original_orientation") if img.format in ("HEIF", "AVIF") else None
    return metadata_from_exif(
        img.getexif(),
        xmp=raw_xmp(img),
        orientation_override=original if isinstance(original, int) else None,
    )


def metadata_from_exif(
    exif: Image.Exif, *, xmp: bytes | None = None, orientation_override: int | None = None
) -> Metadata:
    """Read gpskit's fields from a parsed EXIF block (and the XMP packet, if any)."""
    meta = Metadata()
    meta.has_exif = len(exif) > 0
    meta.orientation = orientation_override or _byte(exif.get(TAG_ORIENTATION))
    meta.make = _text(exif.get(TAG_MAKE))
    meta.model = _text(exif.get(TAG_MODEL))
    meta.software = _text(exif.get(TAG_SOFTWARE))
    try:
        exif_ifd = dict(exif.get_ifd(IFD_EXIF))
    except Exception:  # a broken sub-IFD pointer must not lose the rest
        exif_ifd = {}
    _guarded(_read_capture_time, meta, exif_ifd, "datetime_original")
    try:
        gps = dict(exif.get_ifd(IFD_GPS))
    except Exception:
        gps = {}
        meta.gps_flags.append(GpsFlag(Problem.MALFORMED, "gps_ifd"))
    read_gps(meta, gps)
    if meta.latitude is None and xmp and not position_unreadable(meta.gps_flags):
        read_xmp_position(meta, xmp)
    return meta


_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")
_EXIF_MARKER = re.compile(rb"Exif\x00\x00")
_TIFF_HEADER = re.compile(rb"II\*\x00\x08\x00\x00\x00|MM\x00\*\x00\x00\x00\x08")


def salvage_metadata(data: bytes) -> Metadata | None:
    """Metadata of a file no decoder opens (no image data, a corrupt container).

    Finds the EXIF block by its ``Exif\\0\\0`` marker or a TIFF header and parses it the
    same way, as ExifTool does for such files. None when there is no EXIF to be found.
    """
    candidates = [m.start() + 6 for m in _EXIF_MARKER.finditer(data)]
    candidates += [m.start() for m in _TIFF_HEADER.finditer(data)]
    if data[:4] in _TIFF_HEADERS:
        candidates.append(0)
    for start in sorted(set(candidates))[:32]:
        if data[start : start + 4] not in _TIFF_HEADERS:
            continue
        exif = Image.Exif()
        try:
            exif.load(data[start:])
            if len(exif):
                return metadata_from_exif(exif)
        except Exception:
            continue
    return None


def displayed_size(img: Image.Image, orientation: int | None) -> tuple[int, int]:
    """Width and height as a viewer shows them (EXIF orientations 5-8 swap the axes)."""
    width, height = img.size
    if img.format not in SELF_ORIENTING_FORMATS and orientation in (5, 6, 7, 8):
        return height, width
    return width, height


_TRANSPOSE: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}


def orient(img: Image.Image, fmt: str | None, orientation: int | None) -> Image.Image:
    """Apply the EXIF orientation to decoded pixels, unless the decoder already did."""
    if fmt in SELF_ORIENTING_FORMATS or orientation not in _TRANSPOSE:
        return img
    for op in _TRANSPOSE[orientation]:
        img = img.transpose(op)
    return img
