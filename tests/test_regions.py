"""Regions: bundled and user GeoJSON, containment, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gpskit.errors import InputError
from gpskit.regions import bundled_regions, load_region

SQUARE = [[[-75.0, 40.0], [-74.99, 40.0], [-74.99, 40.01], [-75.0, 40.01], [-75.0, 40.0]]]
HOLE = [
    [-74.997, 40.003],
    [-74.993, 40.003],
    [-74.993, 40.007],
    [-74.997, 40.007],
    [-74.997, 40.003],
]


def write(tmp_path: Path, data: object, name: str = "r.geojson") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_penn_campus_is_bundled_and_documented() -> None:
    regions = {r.name: r for r in bundled_regions()}
    campus = regions["penn_campus"]
    assert "33rd" in campus.properties["title"] and campus.properties["method"]
    assert 50_000 < campus.area_m2 < 120_000  # about 8 ha
    assert campus.contains([39.9515], [-75.1915])[0]
    assert not campus.contains([39.9560], [-75.1915])[0]


@pytest.mark.parametrize("wrap", ["bare", "feature", "collection"])
def test_geojson_forms(tmp_path: Path, wrap: str) -> None:
    geometry = {"type": "Polygon", "coordinates": SQUARE}
    data = {
        "bare": geometry,
        "feature": {"type": "Feature", "properties": {"name": "sq"}, "geometry": geometry},
        "collection": {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": geometry}],
        },
    }[wrap]
    region = load_region(write(tmp_path, data))
    assert region.contains([40.005], [-74.995])[0]


def test_boundary_counts_as_inside(tmp_path: Path) -> None:
    region = load_region(write(tmp_path, {"type": "Polygon", "coordinates": SQUARE}))
    lat = np.array([40.0, 40.005, 40.0100001])
    lon = np.array([-74.995, -75.0, -74.995])
    assert region.contains(lat, lon).tolist() == [True, True, False]


def test_multipolygon_with_hole(tmp_path: Path) -> None:
    other = [[[-74.98, 40.0], [-74.97, 40.0], [-74.97, 40.01], [-74.98, 40.01], [-74.98, 40.0]]]
    data = {"type": "MultiPolygon", "coordinates": [[SQUARE[0], HOLE], other]}
    region = load_region(write(tmp_path, data))
    inside = region.contains([40.001, 40.005, 40.005, 40.005], [-74.999, -74.995, -74.975, -74.985])
    assert inside.tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "Point", "coordinates": [0, 0]}), "no Polygon"),
        (
            json.dumps(
                {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
            ),
            "invalid polygon",
        ),
        (
            json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [200, 1], [0, 0]]]}),
            "out of range",
        ),
        (json.dumps([1, 2]), "not a GeoJSON object"),
    ],
)
def test_bad_geojson_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.geojson"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        load_region(path)
    assert str(path) in str(err.value)


def test_unknown_bundled_name() -> None:
    with pytest.raises(InputError, match="penn_campus"):
        load_region("atlantis")


def test_regions_cli_lists_the_bundled_ones() -> None:
    from typer.testing import CliRunner

    from gpskit.cli import app

    result = CliRunner().invoke(app, ["regions", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["penn_campus"] and rows[0]["area_m2"] > 50_000
