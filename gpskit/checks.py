"""Validation rules for ingested photos, as a registry.

Each rule is one small function registered with :func:`check`: a reason code, a
severity (``reject`` or ``warn``), an optional threshold with its default, and a
docstring that says why the rule exists. Adding a rule touches only this file. Rules run
on manifest rows (plain dicts), so changing a threshold re-evaluates every photo without
reading it again; a re-run with the same thresholds and rules (:func:`fingerprint`) keeps
the earlier verdicts.

A rule returns True when its problem is present, or a list of details when the problem
can be present several times in one photo (``tag_unfit`` names each dropped column): each
detail becomes the code ``<code>:<detail>``.

Image-quality checks (severity ``quality``: blurry, dark, washed out, low information,
grayscale, odd aspect ratio) are warnings unless ``strict_quality`` makes them rejections.
They read the measures :mod:`gpskit.quality` takes during ingest's decode. Their default
thresholds were set from those measures on the 89 real camera and phone photos (JPEG and
HEIC, at least 0.3 MP) of the team's sample corpus (``../shared/exif-samples``) and on the
same photos blurred, darkened and brightened (``benchmarks/bench_quality.py``):

- ``min_sharpness`` 50: real photos 100-3,850; a Gaussian blur of 1 % of the width: 36
  (median); a sideways motion smear over 4 % of the width: 4-13.
- ``dark_p99`` 50: real photos 170-255; darkened to 15 %: 25-36 (a night shot).
- ``bright_p05`` 150: real photos up to 95 (141 for a graphic on white).
- ``min_entropy`` 3.0 bits: real photos 3.9-7.8; a uniform frame 0.
- ``gray_spread`` 2.0: real colour photos 8-59; grayscale 0.
- ``max_aspect_ratio`` 2.5: a 21:9 phone photo is 2.33; panoramas are 3 and more.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gpskit.gpsflags import GpsFlag, Problem, position_unreadable

Row = Mapping[str, Any]
Severity = Literal["reject", "warn", "quality"]
Rule = Callable[[Row, float | None], bool | Sequence[str]]

# What the reader says about a file (manifest column ``read_status``).
#: Formats gpskit ingests (Pillow's names; MPO is a multi-picture JPEG).
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "HEIF", "PNG", "WEBP", "TIFF"})

READ_OK = "ok"
READ_EMPTY = "empty"
READ_UNREADABLE = "unreadable"
READ_NOT_IMAGE = "not_image"
READ_DECODE_ERROR = "decode_error"
READ_TOO_MANY_PIXELS = "too_many_pixels"
READ_WORKER_CRASHED = "worker_crashed"
READ_TIMEOUT = "timeout"


@dataclass(frozen=True)
class Check:
    """One registered rule."""

    code: str
    severity: Severity
    description: str
    threshold: str | None
    default: float | None
    unit: str | None
    rule: Rule


REGISTRY: dict[str, Check] = {}


def check(
    code: str,
    severity: Severity = "reject",
    *,
    threshold: str | None = None,
    default: float | None = None,
    unit: str | None = None,
) -> Callable[[Rule], Rule]:
    """Register ``rule(row, threshold_value)``: True (or a non-empty list of details) means
    the problem is present."""

    def register(rule: Rule) -> Rule:
        if code in REGISTRY:
            raise ValueError(f"check {code!r} registered twice")
        doc = " ".join((rule.__doc__ or "").split())
        REGISTRY[code] = Check(code, severity, doc, threshold, default, unit, rule)
        return rule

    return register


def default_thresholds() -> dict[str, float]:
    """Every threshold name with its default value."""
    return {
        c.threshold: c.default for c in REGISTRY.values() if c.threshold and c.default is not None
    }


def _read_ok(row: Row) -> bool:
    return row.get("read_status") == READ_OK


def _usable(row: Row) -> bool:
    """Read fine and in a supported format: the metadata checks apply."""
    return _read_ok(row) and row.get("format") in SUPPORTED_FORMATS


def _flags(row: Row) -> list[GpsFlag]:
    flags = []
    for text in row.get("gps_flags") or ():
        try:
            flags.append(GpsFlag.parse(text))
        except ValueError:  # a flag this gpskit does not know (a newer manifest)
            continue
    return flags


def _has_position(row: Row) -> bool:
    return row.get("latitude") is not None and row.get("longitude") is not None


def _own_fix(row: Row) -> bool:
    """The position is the photo's own fix (not a table's), so the fix's quality tags
    (error, age, malformed coordinates) say how good the label is."""
    return row.get("gps_source") != "table"


def _metres_apart(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (the haversine formula, one pair: no numpy per row)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


# --- reading ---------------------------------------------------------------------------


@check("empty_file")
def _empty_file(row: Row, _: float | None) -> bool:
    """The file has zero bytes: an interrupted copy or sync."""
    return row.get("read_status") == READ_EMPTY


@check("unreadable")
def _unreadable(row: Row, _: float | None) -> bool:
    """The file could not be opened (permissions, I/O error)."""
    return row.get("read_status") == READ_UNREADABLE


@check("not_image")
def _not_image(row: Row, _: float | None) -> bool:
    """No image decoder recognises the content, whatever the extension says."""
    return row.get("read_status") == READ_NOT_IMAGE


@check("unsupported_format")
def _unsupported_format(row: Row, _: float | None) -> bool:
    """An image, but not JPEG, HEIC/HEIF, PNG, WebP or TIFF (e.g. GIF, BMP, AVIF)."""
    return _read_ok(row) and row.get("format") not in SUPPORTED_FORMATS


@check("decompression_bomb")
def _decompression_bomb(row: Row, _: float | None) -> bool:
    """More pixels than ``--max-pixels``: decoding it could exhaust memory."""
    return row.get("read_status") == READ_TOO_MANY_PIXELS


@check("decode_error")
def _decode_error(row: Row, _: float | None) -> bool:
    """The image is truncated or corrupt: its pixels cannot be decoded."""
    return row.get("read_status") == READ_DECODE_ERROR


@check("worker_crashed")
def _worker_crashed(row: Row, _: float | None) -> bool:
    """Reading the file killed its worker process (a decoder crash or a huge allocation)."""
    return row.get("read_status") == READ_WORKER_CRASHED


@check("timeout")
def _timeout(row: Row, _: float | None) -> bool:
    """Reading the file took longer than ``--timeout`` seconds."""
    return row.get("read_status") == READ_TIMEOUT


# --- metadata --------------------------------------------------------------------------


@check("no_exif")
def _no_exif(row: Row, _: float | None) -> bool:
    """No EXIF at all (and no XMP position): stripped by an app or a screenshot."""
    return _usable(row) and not row.get("has_exif") and not _has_position(row)


@check("no_gps")
def _no_gps(row: Row, _: float | None) -> bool:
    """EXIF but no position: location services were off, or the app dropped the tags."""
    return (
        _usable(row)
        and bool(row.get("has_exif"))
        and not _has_position(row)
        and not position_unreadable(_flags(row))
    )


@check("gps_ref_missing")
def _gps_ref_missing(row: Row, _: float | None) -> bool:
    """Latitude or longitude without its N/S or E/W reference: the hemisphere is unknown."""
    return _own_fix(row) and any(flag.problem is Problem.REF_MISSING for flag in _flags(row))


@check("gps_malformed")
def _gps_malformed(row: Row, _: float | None) -> bool:
    """A coordinate with a zero denominator, a non-number, too many values, or its pair missing."""
    return _own_fix(row) and any(
        flag.bad_coordinate or flag.problem is Problem.MISSING for flag in _flags(row)
    )


@check("gps_out_of_range")
def _gps_out_of_range(row: Row, _: float | None) -> bool:
    """Latitude beyond ±90° or longitude beyond ±180°: not a place on Earth."""
    if not _has_position(row):
        return False
    return bool(abs(row["latitude"]) > 90 or abs(row["longitude"]) > 180)


@check("gps_null_island", threshold="null_island_tolerance_deg", default=1e-6, unit="degrees")
def _gps_null_island(row: Row, tolerance: float | None) -> bool:
    """Position (0, 0): the placeholder of a failed fix, not a photo in the Gulf of Guinea."""
    if not _has_position(row):
        return False
    tol = tolerance or 0.0
    return bool(abs(row["latitude"]) <= tol and abs(row["longitude"]) <= tol)


@check("gps_error_too_large", threshold="max_h_error", default=30.0, unit="m")
def _gps_error_too_large(row: Row, limit: float | None) -> bool:
    """The phone's own horizontal error estimate exceeds the limit: the label is too noisy."""
    error = row.get("gps_h_error")
    return _own_fix(row) and error is not None and limit is not None and error > limit


@check("gps_stale_fix", threshold="max_fix_age", default=300.0, unit="s")
def _gps_stale_fix(row: Row, limit: float | None) -> bool:
    """The GPS fix is much older than the capture: phones reuse cached fixes indoors.

    Only judged when the capture time, its UTC offset and the GPS time are all known.
    """
    taken, fix = row.get("datetime_original_utc"), row.get("gps_timestamp")
    if taken is None or fix is None or limit is None or not _has_position(row):
        return False
    if not _own_fix(row):
        return False
    return bool((taken - fix).total_seconds() > limit)


@check("too_small", threshold="min_side", default=224.0, unit="px")
def _too_small(row: Row, limit: float | None) -> bool:
    """The shorter side is below the training input size: upsampling invents detail."""
    width, height = row.get("width"), row.get("height")
    if not _usable(row) or width is None or height is None or limit is None:
        return False
    return bool(min(width, height) < limit)


# --- warnings --------------------------------------------------------------------------


@check("position_disagrees", "warn", threshold="max_position_disagreement", default=30.0, unit="m")
def _position_disagrees(row: Row, limit: float | None) -> bool:
    """A table gave the position and the photo's own GPS is farther from it than the limit:
    one of the two is wrong (phone fixes are off by 5-20 m; more is a mislabel or a stale fix)."""
    own_lat, own_lon = row.get("file_latitude"), row.get("file_longitude")
    if _own_fix(row) or own_lat is None or own_lon is None or limit is None:
        return False
    if not _has_position(row):
        return False
    try:
        apart = _metres_apart(row["latitude"], row["longitude"], own_lat, own_lon)
    except (TypeError, ValueError):  # a position off the globe: gps_out_of_range says so
        return False
    return apart > limit


@check("heading_missing", "warn")
def _heading_missing(row: Row, _: float | None) -> bool:
    """A position without GPSImgDirection: coverage cannot tell which way the photo looks."""
    return _has_position(row) and row.get("img_direction") is None


@check("heading_magnetic", "warn")
def _heading_magnetic(row: Row, _: float | None) -> bool:
    """The heading is relative to magnetic north; it needs the local declination to be true."""
    return row.get("img_direction") is not None and row.get("img_direction_ref") == "M"


@check("gps_from_xmp", "warn")
def _gps_from_xmp(row: Row, _: float | None) -> bool:
    """The EXIF GPS directory has no position; it was taken from XMP (an editor wrote it)."""
    return row.get("gps_source") == "xmp"


@check("gps_tag_malformed", "warn")
def _gps_tag_malformed(row: Row, _: float | None) -> bool:
    """An altitude, time, heading, error or DOP tag could not be read; it was left empty."""
    flags = _flags(row)
    return any(f.drops_value for f in flags) and not any(f.bad_coordinate for f in flags)


@check("orientation_invalid", "warn")
def _orientation_invalid(row: Row, _: float | None) -> bool:
    """An Orientation tag outside 1-8: the image is used as stored."""
    value = row.get("orientation")
    return value is not None and not 1 <= value <= 8


@check("no_capture_time", "warn")
def _no_capture_time(row: Row, _: float | None) -> bool:
    """No DateTimeOriginal: bursts and stale fixes cannot be detected for this photo."""
    return _usable(row) and _has_position(row) and row.get("datetime_original") is None


@check("tag_unfit", "warn")
def _tag_unfit(row: Row, _: float | None) -> list[str]:
    """A tag whose value does not fit its column (e.g. an Orientation of 36865, a date past
    year 9999) was left empty; the code names the column: ``tag_unfit:orientation``."""
    return list(row.get("unfit_tags") or ())


# --- image quality (warnings; rejections with strict_quality) -----------------------------


def _measure(row: Row, column: str) -> float | None:
    value = row.get(column)
    return None if value is None or not _usable(row) else float(value)


@check("blurry", "quality", threshold="min_sharpness", default=50.0, unit="2nd-derivative variance")
def _blurry(row: Row, limit: float | None) -> bool:
    """Edges are smeared (motion blur while walking, missed focus, a smudged lens): the
    places in it are hard to recognise."""
    value = _measure(row, "sharpness")
    return value is not None and limit is not None and value < limit


@check("dark", "quality", threshold="dark_p99", default=50.0, unit="luma 0-255")
def _dark(row: Row, limit: float | None) -> bool:
    """Even the brightest pixels are dark: a night shot, or a finger over the lens."""
    value = _measure(row, "brightness_p99")
    return value is not None and limit is not None and value < limit


@check("too_bright", "quality", threshold="bright_p05", default=150.0, unit="luma 0-255")
def _too_bright(row: Row, limit: float | None) -> bool:
    """Even the darkest pixels are light: shot into the sun, or overexposed."""
    value = _measure(row, "brightness_p05")
    return value is not None and limit is not None and value > limit


@check("low_information", "quality", threshold="min_entropy", default=3.0, unit="bits")
def _low_information(row: Row, limit: float | None) -> bool:
    """Nearly one tone: the sky, the ground, a fingertip; nothing that says where it is."""
    value = _measure(row, "entropy_bits")
    return value is not None and limit is not None and value < limit


@check("grayscale", "quality", threshold="gray_spread", default=2.0, unit="channel spread 0-255")
def _grayscale(row: Row, limit: float | None) -> bool:
    """No colour (a black-and-white filter, a scan): the model sees colour everywhere else."""
    value = _measure(row, "colour_spread")
    return value is not None and limit is not None and value < limit


@check("odd_aspect_ratio", "quality", threshold="max_aspect_ratio", default=2.5, unit="long/short")
def _odd_aspect_ratio(row: Row, limit: float | None) -> bool:
    """Far wider or taller than a phone photo (a panorama, a screenshot crop): centre-cropped
    for training, most of it is lost."""
    width, height = row.get("width"), row.get("height")
    if not _usable(row) or not width or not height or limit is None:
        return False
    return bool(max(width, height) / min(width, height) > limit)


def quality_codes() -> list[str]:
    """Codes of the image-quality checks."""
    return [c.code for c in REGISTRY.values() if c.severity == "quality"]


def evaluate(
    row: Row, thresholds: Mapping[str, float], strict_quality: bool = False
) -> tuple[list[str], list[str]]:
    """Run every check on one row; return (rejection codes, warning codes) in registry order
    (image-quality problems are rejections with ``strict_quality``)."""
    reasons: list[str] = []
    warnings: list[str] = []
    rejecting = {"reject", "quality"} if strict_quality else {"reject"}
    for item in REGISTRY.values():
        value = thresholds.get(item.threshold, item.default) if item.threshold else None
        found = item.rule(row, value)
        if not found:
            continue
        codes = [item.code] if found is True else [f"{item.code}:{d}" for d in found]
        (reasons if item.severity in rejecting else warnings).extend(codes)
    return reasons, warnings


def describe(codes: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The registry as plain data (for ``--list-checks`` and the docs)."""
    wanted = set(codes) if codes is not None else None
    return [
        {
            "code": c.code,
            "severity": c.severity,
            "threshold": c.threshold,
            "default": c.default,
            "unit": c.unit,
            "description": c.description,
        }
        for c in REGISTRY.values()
        if wanted is None or c.code in wanted
    ]


#: The modules besides this one whose source the verdicts depend on.
_PACKAGE = Path(__file__).resolve().parent
_RULE_MODULES = ("exif.py", "gpsflags.py", "imaging.py")


def fingerprint() -> str:
    """What verdicts depend on besides a row and the thresholds: this gpskit's version and
    the source of the rules (this module and the gpskit modules it imports). A re-run
    keeps an earlier manifest's verdicts only when its fingerprint is this one."""
    from gpskit import __version__

    digest = hashlib.sha256(__version__.encode())
    # read, not imported: the start-up path asks for this
    for source in (Path(__file__), *(_PACKAGE / name for name in _RULE_MODULES)):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]
