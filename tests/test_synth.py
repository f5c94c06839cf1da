"""The synthetic campus: views depend on place and heading; EXIF and truth agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gpskit.exif import read_metadata
from gpskit.imaging import open_image
from gpskit.regions import load_region
from gpskit.synth import SynthOptions, build_world, light_at, render, synth

SMALL = SynthOptions(
    spots=8,
    headings=4,
    pitches=(0.0,),
    size=(200, 150),
    workers=2,
    rates={"no_gps": 0.1, "exact_copy": 0.1, "truncated": 0.05, "burst": 0.05, "non_image": 1},
)


@pytest.fixture(scope="module")
def small_campus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    synth(out, SMALL)
    return out


def test_files_and_truth(small_campus: Path) -> None:
    truth = pd.read_csv(small_campus / "truth.csv")
    photos = truth[truth.kind == "photo"]
    assert len(photos) == 8 * 4
    assert all((small_campus / f).exists() for f in truth.file)
    assert {"exact_copy", "truncated", "burst", "non_image"} <= set(truth.kind)
    assert truth.defects.fillna("").str.contains("no_gps").sum() >= 1


def test_exif_matches_truth(small_campus: Path) -> None:
    truth = pd.read_csv(small_campus / "truth.csv")
    clean = truth[(truth.kind == "photo") & truth.defects.isna()].iloc[0]
    with open_image(small_campus / clean.file) as img:
        meta = read_metadata(img)
        assert img.size == (200, 150)
    assert meta.latitude == pytest.approx(clean.reported_latitude, abs=1e-6)
    assert meta.longitude == pytest.approx(clean.reported_longitude, abs=1e-6)
    assert meta.img_direction == pytest.approx(clean.true_heading, abs=0.01)
    assert meta.img_direction_ref == "T" and meta.gps_h_error and meta.make
    assert meta.datetime_original_utc is not None and meta.gps_timestamp is not None


def test_gps_noise_is_of_the_configured_size(small_campus: Path) -> None:
    from gpskit.geo import haversine_m

    truth = pd.read_csv(small_campus / "truth.csv")
    photos = truth[truth.kind == "photo"]
    error = haversine_m(
        photos.true_latitude,
        photos.true_longitude,
        photos.reported_latitude,
        photos.reported_longitude,
    )
    assert 2 < np.median(error) < 20


def test_nearby_views_look_alike_far_ones_do_not() -> None:
    region = load_region("penn_campus")
    world = build_world(region, 60, seed=3)
    rng = np.random.default_rng(0)
    light = light_at(12, rng)

    def view(x: float, y: float, heading: float) -> np.ndarray:
        return np.asarray(render(world, x, y, heading, 0.0, light, (160, 120), rng), float)

    x0, y0 = world.spots[10]
    here = view(x0, y0, 90)
    near = view(x0 + 2.0, y0 + 1.0, 92)
    far = view(*world.spots[45], 90)
    turned = view(x0, y0, 180)
    assert np.abs(here - near).mean() < 0.6 * np.abs(here - far).mean()
    assert np.abs(here - near).mean() < 0.6 * np.abs(here - turned).mean()


def test_same_seed_same_photos(small_campus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    synth(again, SMALL)
    assert (again / "truth.csv").read_bytes() == (small_campus / "truth.csv").read_bytes()
    name = pd.read_csv(again / "truth.csv").file.iloc[5]
    assert (again / name).read_bytes() == (small_campus / name).read_bytes()


def _blueness(img: Image.Image) -> np.ndarray:
    """Per row, mean blue minus mean red: sky is blue (> 0), grass and stone are not (< 0)."""
    pixels = np.asarray(img, dtype=float)
    return pixels[:, :, 2].mean(axis=1) - pixels[:, :, 0].mean(axis=1)


def test_render_size_and_sky_above_ground() -> None:
    world = build_world(load_region("penn_campus"), 20, seed=0)
    rng = np.random.default_rng(1)
    img = render(world, *world.spots[0], 0.0, 20.0, light_at(10, rng), (320, 240), rng)
    assert isinstance(img, Image.Image) and img.size == (320, 240)
    # this view down a walkway has open sky at the top and ground at the bottom
    rows = _blueness(img)
    assert rows[:60].mean() > rows[-60:].mean() + 50, rows.round()
    top = np.asarray(img, dtype=float)[:60]  # mostly blue pixels up there
    assert (top[:, :, 2] > top[:, :, 0]).mean() > 0.9 and (top[:, :, 2] > top[:, :, 1]).mean() > 0.9
    # with nothing standing, the horizon is the middle row at pitch 0: sky above, ground below
    empty = {
        "boxes": (0, 4), "box_height": (0,), "box_colour": (0, 3), "box_window": (0, 3),
        "box_pattern": (0, 3), "circles": (0, 3), "circle_z": (0, 2), "circle_colour": (0, 3),
    }  # fmt: skip
    open_ground = dataclasses.replace(world, **{k: np.zeros(v) for k, v in empty.items()})
    level, tilted = (
        _blueness(
            render(open_ground, *world.spots[0], 0.0, pitch, light_at(10, rng), (320, 240), rng)
        )
        for pitch in (0.0, 20.0)
    )
    assert (level[:108] > 15).all() and (level[132:] < 0).all(), level.round()
    assert level[0] > level[100]  # the sky is deepest overhead, palest at the horizon
    # looking up 20°, the horizon moves down (by f·tan 20° ≈ 90 rows): more sky
    assert (tilted > 0).sum() > (level > 0).sum() + 60, (level.round(), tilted.round())


def test_synth_cli(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from gpskit.cli import app

    result = CliRunner().invoke(
        app,
        [
            "synth",
            str(tmp_path / "c"),
            "--spots",
            "3",
            "--headings",
            "2",
            "--pitches",
            "0",
            "--size",
            "128x96",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["photos"] == 6 and (tmp_path / "c" / "truth.csv").exists()
    bad = CliRunner().invoke(app, ["synth", str(tmp_path / "d"), "--size", "big"])
    assert bad.exit_code == 2 and "--size" in bad.stderr


def test_every_defect_says_what_must_catch_it() -> None:
    from gpskit import checks
    from gpskit.dedup.groups import KINDS
    from gpskit.synth.defects import DEFECTS

    assert DEFECTS, "no defects registered"
    for defect in DEFECTS.values():
        assert defect.description, defect.name
        assert defect.rate > 0, defect.name
        if defect.expect.how in ("reason", "warning"):
            registered = checks.REGISTRY[defect.expect.code]
            expected = ("reject",) if defect.expect.how == "reason" else ("warn", "quality")
            assert registered.severity in expected  # quality checks warn by default
        elif defect.expect.how == "group":
            assert defect.expect.code in KINDS, defect.name
        else:
            assert defect.expect == defect.expect.__class__("outside", "outside_region")


def test_unknown_defect_rate_is_refused(tmp_path: Path) -> None:
    from gpskit.errors import UsageError

    with pytest.raises(UsageError, match="unknown defects"):
        synth(tmp_path, SynthOptions(spots=1, rates={"gremlins": 0.5}))


_coord = st.floats(0, 60, allow_nan=False).map(lambda v: round(v, 3))
_box = st.tuples(_coord, _coord, st.floats(0.5, 20), st.floats(0.5, 20)).map(
    lambda b: (b[0], b[1], b[0] + b[2], b[1] + b[3])
)


@settings(max_examples=300, deadline=None)
@given(
    placed=st.lists(_box, max_size=8),
    box=_box,
    gap=st.sampled_from([0.0, 3.0]),
    near=st.floats(-0.02, 0.02),
)
def test_building_spacing_decides_as_shapely_buffers_do(
    placed: list[tuple[float, float, float, float]],
    box: tuple[float, float, float, float],
    gap: float,
    near: float,
) -> None:
    """The fast spacing check gives the same answer as buffering every placed box with
    shapely, for any boxes, including ones a hair either side of the gap at a corner
    (where the buffer's chords and the true circle differ): the same campus as before."""
    import shapely

    from gpskit.synth.world import _Buildings

    if placed:  # one box diagonally off a corner of the last, about ``gap`` away
        x1, y1 = placed[-1][2], placed[-1][3]
        step = (gap + near) / np.sqrt(2)
        placed.append((x1 + step, y1 + step, x1 + step + 5, y1 + step + 5))
    buildings = _Buildings(boxes=placed)
    candidate = shapely.box(*box)
    if gap:
        slow = not any(shapely.box(*b).buffer(gap).intersects(candidate) for b in placed)
    else:
        slow = not any(shapely.box(*b).intersects(candidate) for b in placed)
    assert buildings.free(candidate, gap) == slow
    corner = shapely.box(*placed[-1]) if placed else None
    if corner is not None:  # and the corner box itself, checked against the others
        rest = _Buildings(boxes=placed[:-1])
        want = not any(
            (shapely.box(*b).buffer(gap) if gap else shapely.box(*b)).intersects(corner)
            for b in placed[:-1]
        )
        assert rest.free(corner, gap) == want
