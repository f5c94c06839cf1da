"""Coverage: inside/outside, grid cells, spots and headings, plans, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.coverage import CoverageOptions, coverage
from gpskit.coverage.route import walking_order
from gpskit.dataset import Dataset
from gpskit.geo import LocalProjection
from gpskit.graph import pairs_within
from gpskit.layout import COVERAGE_FILE

from .helpers import write_manifest

CENTRE = (40.0, -75.0)
PROJ = LocalProjection(*CENTRE)


def at(x: float, y: float, heading: float | None = 0.0, **extra: object) -> dict[str, object]:
    """A photo x metres east and y metres north of CENTRE."""
    lat, lon = PROJ.inverse(x, y)
    return {"latitude": float(lat), "longitude": float(lon), "img_direction": heading, **extra}


@pytest.fixture
def square(tmp_path: Path) -> Path:
    """A 40 m x 40 m square region around CENTRE (four 20 m cells)."""
    xs, ys = np.array([-20, 20, 20, -20, -20]), np.array([-20, -20, 20, 20, -20])
    lat, lon = PROJ.inverse(xs, ys)
    ring = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
    path = tmp_path / "square.geojson"
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
    return path


def run(dataset: Path, region: Path, **options: object):  # type: ignore[no-untyped-def]
    return coverage(dataset, CoverageOptions(region=str(region), **options))  # type: ignore[arg-type]


def test_spot_missing_two_headings(tmp_path: Path, square: Path) -> None:
    rows = [at(-10 + 0.3 * i, -10, heading=h) for i, h in enumerate(range(0, 360, 45))]  # complete
    rows += [
        at(10 + 0.3 * i, 10, heading=h) for i, h in enumerate([0, 45, 90, 135, 270, 315])
    ]  # no S, SW
    write_manifest(tmp_path / "ds", rows)
    report = run(tmp_path / "ds", square)
    assert report.spots["spots"] == 2 and report.spots["complete"] == 1
    assert report.spots["missing_by_sector"] == {
        "N": 0,
        "NE": 0,
        "E": 0,
        "SE": 0,
        "S": 1,
        "SW": 1,
        "W": 0,
        "NW": 0,
    }
    plan = pd.read_csv(tmp_path / "ds" / "coverage" / "plan.csv")
    assert (plan.todo == "missing headings: S SW").sum() == 1
    table = Dataset(tmp_path / "ds").load_coverage().to_pandas()
    assert table.spot_id.nunique() == 2 and set(table.spot_size) == {8, 6}


def test_grid_cells_and_fail_under(tmp_path: Path, square: Path) -> None:
    write_manifest(tmp_path / "ds", [at(-10, -10), at(10, -10), at(-10, 10), at(-12, 12)])
    report = run(tmp_path / "ds", square)
    assert report.grid["cells"] == 4 and report.grid["covered_cells"] == 3
    assert report.grid["covered_pct"] == 75.0
    assert report.grid["photos_per_cell"] == {"min": 0, "median": 1.0, "max": 2}
    assert report.plan["empty_cells"] == 1
    result = CliRunner().invoke(
        app, ["coverage", str(tmp_path / "ds"), "--region", str(square), "--fail-under", "80"]
    )
    assert result.exit_code == 1 and "75.0 % of cells" in result.stderr
    result = CliRunner().invoke(
        app, ["coverage", str(tmp_path / "ds"), "--region", str(square), "--fail-under", "70"]
    )
    assert result.exit_code == 0, result.output
    two = run(tmp_path / "ds", square, min_per_cell=2)
    assert two.grid["covered_cells"] == 1


def test_outside_photos_listed_and_flagged(tmp_path: Path, square: Path) -> None:
    (lat_a, lat_b), (lon_a, lon_b) = PROJ.inverse(np.array([-20, 20]), np.array([20, 20]))
    edge = {"latitude": (lat_a + lat_b) / 2, "longitude": (lon_a + lon_b) / 2, "img_direction": 0.0}
    write_manifest(tmp_path / "ds", [at(0, 0), at(500, 0), edge])  # the last on the boundary
    report = run(tmp_path / "ds", square)
    assert report.photos["inside"] == 2 and report.photos["outside"] == 1
    assert report.outside == ["/photos/p00001.jpg"]
    table = Dataset(tmp_path / "ds").load_coverage().to_pandas().set_index("path")
    assert (
        table.loc["p00001.jpg", "outside_region"] and not table.loc["p00002.jpg", "outside_region"]
    )


def test_rejected_photos_are_not_counted(tmp_path: Path, square: Path) -> None:
    write_manifest(
        tmp_path / "ds", [at(0, 0), at(10, 10, status="rejected", reasons=["gps_error_too_large"])]
    )
    report = run(tmp_path / "ds", square)
    assert report.photos["accepted_with_position"] == 1


def test_magnetic_headings_corrected(tmp_path: Path, square: Path) -> None:
    write_manifest(
        tmp_path / "ds", [at(0, 0, heading=10.0, img_direction_ref="M"), at(5, 5, heading=100.0)]
    )
    plain = run(tmp_path / "ds", square)
    assert plain.headings["magnetic"] == 1 and not plain.headings["magnetic_corrected"]
    run(tmp_path / "ds", square, declination=-15.0)
    table = Dataset(tmp_path / "ds").load_coverage().to_pandas().set_index("path")
    assert table.loc["p00000.jpg", "heading_true"] == pytest.approx(355.0)
    assert (
        table.loc["p00000.jpg", "heading_sector"] == "N"
        and table.loc["p00000.jpg", "heading_magnetic"]
    )
    assert table.loc["p00001.jpg", "heading_true"] == pytest.approx(100.0)


def test_outputs_for_people_and_gis(tmp_path: Path, square: Path) -> None:
    write_manifest(tmp_path / "ds", [at(-10, -10, heading=h) for h in (0, 90)])
    report = run(tmp_path / "ds", square)
    out = tmp_path / "ds" / "coverage"
    gaps = json.loads((out / "gaps.geojson").read_text())
    kinds = {f["properties"]["gap"] for f in gaps["features"]}
    assert kinds == {"empty_cell", "missing_headings"}
    assert all(f["geometry"]["type"] in ("Polygon", "Point") for f in gaps["features"])
    plan = json.loads((out / "plan.geojson").read_text())
    assert plan["features"][-1]["geometry"]["type"] == "LineString"
    assert json.loads((out / "coverage.json").read_text())["grid"]["cells"] == 4
    with Image.open(out / "coverage.png") as img:
        assert img.width > 800
    assert (tmp_path / "ds" / COVERAGE_FILE).exists()
    assert report.plan["stops"] == 3 + 1


def test_plans_a_phone_can_follow(tmp_path: Path, square: Path) -> None:
    gpxpy = pytest.importorskip("gpxpy", reason="gpxpy (dev extra) not installed")
    import xml.etree.ElementTree as ET

    write_manifest(tmp_path / "ds", [at(-10, -10, heading=h) for h in (0, 90)])
    run(tmp_path / "ds", square)
    out = tmp_path / "ds" / "coverage"
    plan = pd.read_csv(out / "plan.csv")
    gpx = gpxpy.parse((out / "plan.gpx").read_text())
    assert gpx.version == "1.1" and len(gpx.waypoints) == len(plan) == 4
    for point, stop in zip(gpx.waypoints, plan.itertuples(), strict=True):
        assert point.latitude == pytest.approx(stop.latitude, abs=1e-7)
        assert point.longitude == pytest.approx(stop.longitude, abs=1e-7)
        assert point.name == f"{stop.order}: {stop.todo}"  # walking order, what to do
    assert [p.name for p in gpx.routes[0].points] == [str(o) for o in plan.order]
    kml = ET.parse(out / "plan.kml").getroot()
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    marks = kml.findall(".//k:Placemark", ns)
    assert len(marks) == len(plan) + 1  # stops and the walk
    first = marks[0].find("k:Point/k:coordinates", ns)
    assert first is not None and first.text is not None
    lon, lat = map(float, first.text.split(","))
    assert (lat, lon) == pytest.approx((plan.latitude[0], plan.longitude[0]), abs=1e-7)


@settings(max_examples=60, deadline=None)
@given(name=st.text(max_size=30), todo=st.text(max_size=30))
def test_plan_files_hold_any_text(name: str, todo: str) -> None:
    """Region names come from a user's GeoJSON: any text gives well-formed GPX and KML whose
    names read back as written (characters XML cannot hold become U+FFFD)."""
    import re
    import xml.etree.ElementTree as ET

    from gpskit.coverage.export import plan_gpx, plan_kml

    plan = pd.DataFrame(
        {"order": [1, 2], "kind": ["spot", "cell"], "ref": ["s<1>", "c&2"],
         "latitude": [39.95, 39.951], "longitude": [-75.19, -75.191], "todo": [todo, "x"]}
    )  # fmt: skip

    def fit(text: str) -> str:
        return re.sub("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "\ufffd", text)

    gpx = ET.fromstring(plan_gpx(plan, name).encode("utf-8", "surrogatepass"))
    ns = {"g": "http://www.topografix.com/GPX/1/1"}
    assert gpx.findtext("g:wpt/g:name", namespaces=ns) == f"1: {fit(todo)}"
    title = gpx.findtext("g:metadata/g:name", namespaces=ns)
    assert title == f"{fit(name)}: where to photograph next"
    assert gpx.findtext("g:wpt/g:desc", namespaces=ns) == "spot s<1>"
    kml = ET.fromstring(plan_kml(plan, name).encode("utf-8", "surrogatepass"))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert kml.findtext("k:Document/k:Placemark/k:name", namespaces=ns) == f"1: {fit(todo)}"


def test_default_region_and_dataset_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_manifest(
        tmp_path / "gpskit-data",
        [{"latitude": 39.9515, "longitude": -75.1915, "img_direction": 0.0}],
    )
    result = CliRunner().invoke(app, ["coverage", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["region"]["name"] == "penn_campus" and data["photos"]["inside"] == 1


def test_bad_region_file_one_line(tmp_path: Path) -> None:
    write_manifest(tmp_path / "ds", [at(0, 0)])
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "LineString", "coordinates": [[0, 0], [1, 1]]}')
    result = CliRunner().invoke(app, ["coverage", str(tmp_path / "ds"), "--region", str(bad)])
    assert result.exit_code == 2
    assert "bad.geojson: no Polygon" in result.stderr and "Traceback" not in result.output


def test_walking_order_visits_all_and_beats_random() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 100, 60), rng.uniform(0, 100, 60)
    order = walking_order(x, y, (0.0, 100.0))
    assert sorted(order.tolist()) == list(range(60))

    def length(o: np.ndarray) -> float:
        path = np.column_stack([x[o], y[o]])
        return float(np.hypot(*np.diff(path, axis=0).T).sum())

    assert length(order) < 0.5 * np.mean([length(rng.permutation(60)) for _ in range(20)])


def test_pairs_within_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 50, 300), rng.uniform(0, 50, 300)
    a, b = pairs_within(x, y, 3.0)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    i, j = np.nonzero(np.triu(d <= 3.0, k=1))
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == set(
        zip(i.tolist(), j.tolist(), strict=True)
    )


def test_a_plan_of_many_stops_is_a_complete_short_walk_quickly() -> None:
    """Above the greedy limit the walk follows a Hilbert curve: every stop once, and far
    shorter than visiting them in a random order."""
    from gpskit.coverage.route import GREEDY_LIMIT

    rng = np.random.default_rng(1)
    n = GREEDY_LIMIT * 4
    x, y = rng.uniform(0, 5000, n), rng.uniform(0, 5000, n)
    route = walking_order(x, y, (0.0, 0.0))
    assert sorted(route.tolist()) == list(range(n))
    points = np.column_stack([x, y])
    length = np.hypot(*np.diff(points[route], axis=0).T).sum()
    shuffled = np.hypot(*np.diff(points[rng.permutation(n)], axis=0).T).sum()
    assert length < shuffled / 15
    assert np.hypot(*points[route[0]]) == np.hypot(x, y).min()  # starts nearest the start


def test_a_run_cut_short_at_any_write_leaves_one_generation(
    tmp_path: Path, square: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk at the k-th file operation of `coverage --cell 5`, for every k: what is
    taken as current is one run's set (coverage.json and coverage.parquet agree), a mixed
    set is stale, and the next run makes a whole new set."""
    import errno
    import os

    from gpskit.dataset import COVERAGE
    from gpskit.errors import DiskFullError

    rows = [at(-15 + 3 * i, -15 + 2 * i, heading=45 * i) for i in range(10)]
    dataset = tmp_path / "ds"
    write_manifest(dataset, rows)
    real_fsync, real_replace = os.fsync, os.replace
    calls = {"n": 0, "fail_at": -1}

    def counted(real):  # type: ignore[no-untyped-def]
        def call(*args):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == calls["fail_at"]:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(*args)

        return call

    monkeypatch.setattr(os, "fsync", counted(real_fsync))
    monkeypatch.setattr(os, "replace", counted(real_replace))
    run(dataset, square, cell_m=5.0)
    steps = calls["n"]
    assert steps > 10
    for fail_at in range(1, steps + 1):
        run(dataset, square, cell_m=20.0)  # a whole earlier set
        calls.update(n=0, fail_at=fail_at)
        with pytest.raises((OSError, DiskFullError)):
            run(dataset, square, cell_m=5.0)
        calls.update(fail_at=-1)
        ds = Dataset(dataset)
        if ds.is_current(COVERAGE):
            record = json.loads((dataset / "coverage" / "coverage.json").read_text())
            assert record["grid"]["cell_m"] == ds.stamped_options(COVERAGE)["cell_m"], fail_at
    run(dataset, square, cell_m=5.0)
    assert Dataset(dataset).is_current(COVERAGE)
    assert Dataset(dataset).stamped_options(COVERAGE)["cell_m"] == 5.0


def test_a_full_disk_is_one_line_naming_the_folder(
    tmp_path: Path, square: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    write_manifest(tmp_path / "ds", [at(0, 0)])

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    result = CliRunner().invoke(app, ["coverage", str(tmp_path / "ds"), "--region", str(square)])
    assert result.exit_code == 74, result.output
    assert "no space left on the disk holding" in result.output
    assert str(tmp_path / "ds") in result.output and "internal error" not in result.output


def test_many_photos_at_one_position_are_one_spot_without_quadratic_work() -> None:
    """Thousands of photos given one position (a table with one place for a batch) are
    one spot, found without a pair per two of them (50,000 would be 1.25 billion)."""
    import numpy as np

    from gpskit.coverage.spots import cluster_spots

    x = np.concatenate([np.zeros(50_000), [10.0, 10.5, 30.0]])
    y = np.concatenate([np.zeros(50_000), [0.0, 0.0, 0.0]])
    labels = cluster_spots(x, y, 3.0)
    assert len(set(labels[:50_000].tolist())) == 1
    assert labels[50_000] == labels[50_001] != labels[0]
    assert labels[50_002] not in (labels[0], labels[50_000])
