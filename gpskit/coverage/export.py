"""Coverage outputs: coverage.parquet, gaps and plan as GeoJSON, CSV, GPX and KML, map pictures."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from gpskit.atomic import publish, write_text
from gpskit.coverage.cells import Grid
from gpskit.coverage.options import CoverageOptions
from gpskit.coverage.report import CoverageReport
from gpskit.csvtext import csv_text
from gpskit.dataset import Dataset
from gpskit.regions import Region
from gpskit.schema import load_schema, write_table


def _ring(region: Region, grid: Grid, c: int, r: int) -> list[list[float]]:
    """A cell's outline as GeoJSON (lon, lat) pairs."""
    xs = grid.x0 + np.array([c, c + 1, c + 1, c, c]) * grid.cell_m
    ys = grid.y0 + np.array([r, r, r + 1, r + 1, r]) * grid.cell_m
    lat, lon = region.projection.inverse(xs, ys)
    return [[round(float(a), 7), round(float(b), 7)] for a, b in zip(lon, lat, strict=True)]


def gaps_geojson(
    region: Region,
    grid: Grid,
    counts: npt.NDArray[np.int64],
    stops: pd.DataFrame,
    options: CoverageOptions,
) -> dict[str, Any]:
    """Empty cells as squares and incomplete spots as points."""
    features: list[dict[str, Any]] = []
    cols, rows = np.nonzero(grid.in_region & (counts < options.min_per_cell))
    for c, r in zip(cols, rows, strict=True):
        properties = {
            "gap": "empty_cell",
            "cell": f"{c},{r}",
            "photos": int(counts[c, r]),
            "needed": options.min_per_cell,
        }
        geometry: dict[str, Any] = {
            "type": "Polygon",
            "coordinates": [_ring(region, grid, int(c), int(r))],
        }
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    stop: Any
    for stop in stops[stops.kind == "spot"].itertuples():
        properties = {"gap": "missing_headings", "spot_id": int(stop.ref), "todo": stop.todo}
        point = [round(float(stop.longitude), 7), round(float(stop.latitude), 7)]
        geometry = {"type": "Point", "coordinates": point}
        features.append({"type": "Feature", "properties": properties, "geometry": geometry})
    return {"type": "FeatureCollection", "features": features}


def plan_table(stops: pd.DataFrame) -> pd.DataFrame:
    """plan.csv's rows: the stops in walking order."""
    plan = stops[["order", "kind", "ref", "latitude", "longitude", "leg_m", "todo"]].copy()
    plan["latitude"] = plan.latitude.round(7)
    plan["longitude"] = plan.longitude.round(7)
    return plan


def plan_geojson(plan: pd.DataFrame, route_m: float) -> dict[str, Any]:
    """The stops as points, and the route through them as a line."""
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {
                "order": int(s["order"]),
                "kind": s["kind"],
                "ref": s["ref"],
                "todo": s["todo"],
            },
            "geometry": {
                "type": "Point",
                "coordinates": [float(s["longitude"]), float(s["latitude"])],
            },
        }
        for s in plan.to_dict("records")
    ]
    if len(plan) > 1:
        line = [[float(a), float(b)] for a, b in zip(plan.longitude, plan.latitude, strict=True)]
        features.append(
            {
                "type": "Feature",
                "properties": {"route_m": route_m},
                "geometry": {"type": "LineString", "coordinates": line},
            }
        )
    return {"type": "FeatureCollection", "features": features}


#: Characters XML 1.0 cannot hold at all, even escaped (controls other than tab, LF, CR;
#: lone surrogates; U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape(text: Any) -> str:
    """Text fit for an XML element: escaped, and without what XML cannot hold (a region's
    name comes from a user's GeoJSON)."""
    from xml.sax.saxutils import escape

    return escape(_NOT_XML.sub("\ufffd", str(text)), {"\r": "&#13;"})  # parsers drop a bare CR


def plan_gpx(plan: pd.DataFrame, name: str) -> str:
    """The plan as GPX 1.1, what phone map apps import (OsmAnd, Organic Maps): a waypoint per
    stop in walking order, named by its order and what to do there, and the walk as a route."""
    points = [
        (
            f'  <wpt lat="{s["latitude"]:.7f}" lon="{s["longitude"]:.7f}">'
            f"<name>{int(s['order'])}: {_escape(s['todo'])}</name>"
            f"<desc>{_escape(s['kind'])} {_escape(s['ref'])}</desc><type>{_escape(s['kind'])}</type></wpt>"
        )
        for s in plan.to_dict("records")
    ]
    route = [
        f'    <rtept lat="{s["latitude"]:.7f}" lon="{s["longitude"]:.7f}"><name>{int(s["order"])}</name></rtept>'
        for s in plan.to_dict("records")
    ]
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<gpx version="1.1" creator="gpskit" xmlns="http://www.topografix.com/GPX/1/1">',
            f"  <metadata><name>{_escape(name)}: where to photograph next</name></metadata>",
            *points,
            f"  <rte><name>{_escape(name)}: walking plan</name>",
            *route,
            "  </rte>",
            "</gpx>",
            "",
        ]
    )


def plan_kml(plan: pd.DataFrame, name: str) -> str:
    """The plan as KML 2.2 (Google My Maps, Organic Maps): a placemark per stop and the walk."""
    marks = [
        f"    <Placemark><name>{int(s['order'])}: {_escape(s['todo'])}</name>"
        f"<description>{_escape(s['kind'])} {_escape(s['ref'])}</description>"
        f"<Point><coordinates>{s['longitude']:.7f},{s['latitude']:.7f}</coordinates></Point></Placemark>"
        for s in plan.to_dict("records")
    ]
    line = " ".join(f"{a:.7f},{b:.7f}" for a, b in zip(plan.longitude, plan.latitude, strict=True))
    walk = (
        [
            f"    <Placemark><name>walking plan</name><LineString><coordinates>{line}</coordinates></LineString></Placemark>"
        ]
        if len(plan) > 1
        else []
    )
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<kml xmlns="http://www.opengis.net/kml/2.2">',
            f"  <Document><name>{_escape(name)}: where to photograph next</name>",
            *marks,
            *walk,
            "  </Document>",
            "</kml>",
            "",
        ]
    )


def write_outputs(
    dataset: Dataset,
    region: Region,
    grid: Grid,
    counts: npt.NDArray[np.int64],
    table: pd.DataFrame,
    stops: pd.DataFrame,
    report: CoverageReport,
    stamp: dict[str, str],
    options: CoverageOptions,
    draw: bool,
) -> None:
    """Write every output into a staging folder, then switch them in together: the
    coverage/ folder as one step (:func:`gpskit.atomic.publish`), coverage.parquet last. A
    run cut short (a full disk) leaves the old set whole, or, between the two steps, a set
    whose generations differ, which :meth:`Dataset.is_current` does not take as current."""
    out = dataset.coverage_dir
    staging = Path(tempfile.mkdtemp(prefix=".coverage-", dir=dataset.root))
    try:
        names = _write_folder(staging, region, grid, counts, table, stops, report, options, draw)
        write_table(
            pa.Table.from_pandas(table, preserve_index=False),
            staging / dataset.coverage_path.name,
            load_schema("coverage"),
            extra_metadata=stamp,
        )
        report.written = [str(dataset.coverage_path), *(str(out / name) for name in names)]
        write_text(
            staging / "coverage.json",
            json.dumps(report.to_dict(), indent=2, sort_keys=True, default=str),
        )
        publish(out, staging, [*names, "coverage.json"], replaces=FOLDER_FILES)
        os.replace(staging / dataset.coverage_path.name, dataset.coverage_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


#: Every file coverage writes into coverage/ (a re-run replaces these, nothing else).
FOLDER_FILES = (
    "gaps.geojson", "plan.csv", "plan.geojson", "plan.gpx", "plan.kml", "coverage.png",
    "map.html", "coverage.json",
)  # fmt: skip


def _write_folder(
    out: Path,
    region: Region,
    grid: Grid,
    counts: npt.NDArray[np.int64],
    table: pd.DataFrame,
    stops: pd.DataFrame,
    report: CoverageReport,
    options: CoverageOptions,
    draw: bool,
) -> list[str]:
    """The coverage/ files (but coverage.json) written into ``out``; their names."""
    gaps = gaps_geojson(region, grid, counts, stops, options)
    write_text(out / "gaps.geojson", json.dumps(gaps, indent=1))
    plan = plan_table(stops)
    write_text(out / "plan.csv", csv_text(plan))
    route = plan_geojson(plan, report.plan["route_m"])
    write_text(out / "plan.geojson", json.dumps(route, indent=1))
    write_text(out / "plan.gpx", plan_gpx(plan, region.name))
    write_text(out / "plan.kml", plan_kml(plan, region.name))
    names = ["gaps.geojson", "plan.csv", "plan.geojson", "plan.gpx", "plan.kml"]
    if draw:
        from gpskit.plots.maps import coverage_map

        coverage_map(
            region, grid, counts, table, stops, report, out / "coverage.png", options.min_per_cell
        )
        from gpskit.webmap import map_html, photo_points

        page = map_html(region, photo_points(table), gaps, route, int(table.keep.sum()))
        write_text(out / "map.html", page)
        names += ["coverage.png", "map.html"]
    return names
