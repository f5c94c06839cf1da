"""coverage/map.html: one self-contained page, checked in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpskit.coverage import CoverageOptions, coverage
from gpskit.exifwrite import save_photo
from gpskit.geo import LocalProjection

from .helpers import good_exif, photo, write_manifest

PROJ = LocalProjection(40.0, -75.0)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
HOSTILE = 'café "quoted" </script><b>'


@pytest.fixture
def map_page(tmp_path: Path) -> Path:
    """A coverage run over a 60 m square: 8 headings at one spot, photos elsewhere with
    hostile names, empty cells; one photo file exists (it gets a thumbnail)."""
    xs, ys = np.array([-30, 30, 30, -30, -30]), np.array([-30, -30, 30, 30, -30])
    lat, lon = PROJ.inverse(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    region = tmp_path / "square.geojson"
    region.write_text(
        json.dumps({"type": "Feature", "properties": {"name": HOSTILE},
                    "geometry": {"type": "Polygon", "coordinates": [ring]}})
    )  # fmt: skip
    photos = tmp_path / "photos"
    save_photo(photo(), photos / "real.jpg", good_exif())
    rows = []
    for i, (x, y) in enumerate([(-20, -20)] * 8 + [(15, 10), (18, -12)]):
        la, lo = PROJ.inverse(x, y)
        name = "real.jpg" if i == 0 else f"{HOSTILE} {i}.jpg"
        rows.append(
            {"root": str(photos), "path": name, "latitude": float(la), "longitude": float(lo),
             "img_direction": (45.0 * i) % 360}
        )  # fmt: skip
    write_manifest(tmp_path / "ds", rows)
    coverage(tmp_path / "ds", CoverageOptions(region=str(region), cell_m=20.0))
    return tmp_path / "ds" / "coverage" / "map.html"


def _data(page: Path) -> dict:  # type: ignore[type-arg]
    text = page.read_text()
    found = re.search(
        r'<script id="gpskit-data" type="application/json">(.*?)</script>', text, re.S
    )
    assert found is not None
    return json.loads(found.group(1))  # type: ignore[no-any-return]


def test_the_page_holds_everything_it_shows(map_page: Path) -> None:
    text = map_page.read_text()
    assert "<script src" not in text and "<link" not in text  # nothing fetched to draw it
    assert "L.map(" in text and "leaflet" in text.lower()
    data = _data(map_page)
    assert len(data["photos"]) == 10
    real = next(p for p in data["photos"] if p["name"] == "real.jpg")
    assert real["thumb"].startswith("data:image/jpeg;base64,")
    assert all(p["thumb"] is None for p in data["photos"] if p["name"] != "real.jpg")
    sectors = {p["sector"] for p in data["photos"][:8]}
    assert sectors == {"N", "NE", "E", "SE", "S", "SW", "W", "NW"}
    gaps = {f["properties"]["gap"] for f in data["gaps"]["features"]}
    assert "empty_cell" in gaps
    assert any(f["geometry"]["type"] == "LineString" for f in data["plan"]["features"])


def _browser() -> str:
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    pytest.skip("no Chromium/Chrome installed (apt-get install chromium) to check map.html")


@pytest.mark.slow
def test_the_map_draws_in_a_headless_browser(map_page: Path, tmp_path: Path) -> None:
    browser = _browser()
    flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=5000", "--window-size=900,700"]  # fmt: skip
    url = map_page.as_uri()
    dom = subprocess.run(
        [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body is not None, dom[:500]
    assert 'data-ready="1"' in body.group(1), body.group(1)
    assert 'data-errors="0"' in body.group(1), re.findall(r'id="gpskit-errors"[^<]*<', dom)
    assert 'data-photos="10"' in body.group(1)
    assert dom.count("leaflet-interactive") >= 10  # the points and gaps were drawn
    shot = tmp_path / "map.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True
    )
    with Image.open(shot) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 20  # not a blank page
