"""The check registry: one rule per reason code, thresholds, severities."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from gpskit import checks


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "read_status": "ok",
        "format": "JPEG",
        "has_exif": True,
        "width": 4032,
        "height": 3024,
        "latitude": 39.95,
        "longitude": -75.19,
        "img_direction": 90.0,
        "img_direction_ref": "T",
        "gps_h_error": 5.0,
        "datetime_original": "2024-05-01T10:00:00",
        "gps_flags": [],
    }
    base.update(overrides)
    return base


def test_good_row_passes_every_check() -> None:
    assert checks.evaluate(row(), checks.default_thresholds()) == ([], [])


def test_every_check_is_documented_and_unique() -> None:
    for item in checks.REGISTRY.values():
        assert item.description, item.code
        assert item.severity in ("reject", "warn", "quality")
        assert (item.threshold is None) == (item.default is None)


def test_registering_a_code_twice_fails() -> None:
    with pytest.raises(ValueError, match="twice"):
        checks.check("no_gps")(lambda r, t: False)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"read_status": "empty"}, "empty_file"),
        ({"read_status": "not_image"}, "not_image"),
        ({"read_status": "decode_error"}, "decode_error"),
        ({"read_status": "worker_crashed"}, "worker_crashed"),
        ({"read_status": "timeout"}, "timeout"),
        ({"read_status": "too_many_pixels"}, "decompression_bomb"),
        ({"format": "GIF"}, "unsupported_format"),
        ({"has_exif": False, "latitude": None, "longitude": None}, "no_exif"),
        ({"latitude": None, "longitude": None}, "no_gps"),
        (
            {"latitude": None, "longitude": None, "gps_flags": ["ref_missing:latitude"]},
            "gps_ref_missing",
        ),
        ({"latitude": None, "gps_flags": ["zero_denominator:latitude"]}, "gps_malformed"),
        ({"latitude": 91.0}, "gps_out_of_range"),
        ({"longitude": -180.5}, "gps_out_of_range"),
        ({"latitude": 0.0, "longitude": 0.0}, "gps_null_island"),
        ({"gps_h_error": 30.5}, "gps_error_too_large"),
        ({"width": 200}, "too_small"),
    ],
)
def test_each_rejection(overrides: dict[str, Any], code: str) -> None:
    reasons, _ = checks.evaluate(row(**overrides), checks.default_thresholds())
    assert reasons == [code]


def test_stale_fix_needs_both_times() -> None:
    taken = datetime(2024, 5, 1, 14, 0, tzinfo=timezone.utc)
    stale = row(datetime_original_utc=taken, gps_timestamp=taken - timedelta(minutes=10))
    fresh = row(datetime_original_utc=taken, gps_timestamp=taken - timedelta(seconds=20))
    unknown = row(datetime_original_utc=None, gps_timestamp=taken - timedelta(days=3))
    thresholds = checks.default_thresholds()
    assert checks.evaluate(stale, thresholds)[0] == ["gps_stale_fix"]
    assert checks.evaluate(fresh, thresholds)[0] == []
    assert checks.evaluate(unknown, thresholds)[0] == []


def test_thresholds_are_configurable() -> None:
    thresholds = {**checks.default_thresholds(), "max_h_error": 4.0, "min_side": 5000.0}
    assert checks.evaluate(row(), thresholds)[0] == ["gps_error_too_large", "too_small"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"img_direction": None}, "heading_missing"),
        ({"img_direction_ref": "M"}, "heading_magnetic"),
        ({"gps_source": "xmp"}, "gps_from_xmp"),
        ({"orientation": 0}, "orientation_invalid"),
        ({"gps_flags": ["zero_denominator:altitude"]}, "gps_tag_malformed"),
        ({"datetime_original": None}, "no_capture_time"),
    ],
)
def test_warnings_do_not_reject(overrides: dict[str, Any], code: str) -> None:
    reasons, warnings = checks.evaluate(row(**overrides), checks.default_thresholds())
    assert reasons == []
    assert warnings == [code]


def test_the_fingerprint_follows_the_rules_source(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest keeps earlier verdicts only while this fingerprint is unchanged: any edit to
    the rules' source must change it (and nothing else may)."""
    assert checks.fingerprint() == checks.fingerprint()
    edited = tmp_path / "checks.py"
    edited.write_bytes(Path(checks.__file__).read_bytes() + b"\n# a rule changed\n")
    before = checks.fingerprint()
    monkeypatch.setattr(checks, "__file__", str(edited))
    assert checks.fingerprint() != before
