"""Regions: the polygons photos should fall in, from GeoJSON (bundled or the user's own).

Accepts a GeoJSON Polygon or MultiPolygon as a bare geometry, a Feature or a
FeatureCollection (all polygon features are united). Coordinates are WGS 84 (lon, lat), as
RFC 7946 says. Metric work happens in the region's own local projection
(:class:`gpskit.geo.LocalProjection` at the centre of the region).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from gpskit import paths
from gpskit.config import regions_dir
from gpskit.errors import InputError
from gpskit.geo import LocalProjection

DEFAULT_REGION = "penn_campus"


@dataclass(frozen=True)
class Region:
    """A named polygon (lon/lat) with its local metric projection."""

    name: str
    geometry: BaseGeometry
    source: str
    properties: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def projection(self) -> LocalProjection:
        centre = self.geometry.centroid
        return LocalProjection(lat0=float(centre.y), lon0=float(centre.x))

    @cached_property
    def metric(self) -> BaseGeometry:
        """The region in local metres (x east, y north)."""
        proj = self.projection

        def to_xy(coords: np.ndarray) -> np.ndarray:
            x, y = proj.forward(coords[:, 1], coords[:, 0])
            return np.column_stack([x, y])

        geometry = shapely.transform(self.geometry, to_xy)
        shapely.prepare(geometry)
        return geometry

    @property
    def area_m2(self) -> float:
        return float(self.metric.area)

    def project(self, lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
        """Degrees to local metres."""
        x, y = self.projection.forward(np.asarray(lat, float), np.asarray(lon, float))
        return np.asarray(x, float), np.asarray(y, float)

    def contains(self, lat: Any, lon: Any) -> np.ndarray:
        """True for points inside the region or on its boundary (vectorised).

        Tested in (lon, lat) as GeoJSON defines its edges (straight in degrees).
        """
        lat, lon = np.asarray(lat, float), np.asarray(lon, float)
        inside = np.zeros(lat.shape, bool)
        finite = np.isfinite(lat) & np.isfinite(lon)
        inside[finite] = shapely.intersects_xy(self._prepared, lon[finite], lat[finite])
        return inside

    @cached_property
    def _prepared(self) -> BaseGeometry:
        shapely.prepare(self.geometry)
        return self.geometry


def _members(data: dict[str, Any], key: str, where: str) -> list[Any]:
    members = data.get(key) or []
    if not isinstance(members, list):
        raise InputError(f"{where}: {key!r} must be a list, got {type(members).__name__}")
    return members


def _polygons(data: Any, where: str) -> list[BaseGeometry]:
    if not isinstance(data, dict) or "type" not in data:
        raise InputError(
            f"{where}: not a GeoJSON object (no 'type')",
            hint="give a Polygon, Feature or FeatureCollection",
        )
    kind = data["type"]
    if kind == "FeatureCollection":
        found = []
        for i, feature in enumerate(_members(data, "features", where)):
            found += _polygons(feature, f"{where}: feature {i}")
        return found
    if kind == "Feature":
        geometry = data.get("geometry")
        if geometry is None:
            return []
        return _polygons(geometry, where)
    if kind in ("Polygon", "MultiPolygon"):
        try:
            geometry = shape(data)
        except Exception as exc:
            raise InputError(f"{where}: malformed {kind} coordinates ({exc})") from None
        return [geometry]
    if kind == "GeometryCollection":
        found = []
        for geometry in _members(data, "geometries", where):
            found += _polygons(geometry, where)
        return found
    return []  # points and lines are not areas; a file of only those is reported below


def _properties(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The region's properties (of the feature, or the first feature of a collection)."""
    holder: Any = data
    if data.get("type") == "FeatureCollection":
        features = data.get("features") or [{}]
        holder = features[0] if isinstance(features, list) else {}
    properties = holder.get("properties") if isinstance(holder, dict) else None
    if properties is None:
        return {}
    if not isinstance(properties, dict):
        raise InputError(
            f'{path}: "properties" must be an object, got {type(properties).__name__}',
            hint='e.g. "properties": {"name": "my_campus"}',
        )
    return dict(properties)


def load_region(source: str | Path) -> Region:
    """A region from a bundled name (``penn_campus``) or a GeoJSON file path."""
    path = Path(source)
    if not path.suffix and not path.exists():
        path = regions_dir() / f"{source}.geojson"
        if not path.exists():
            names = ", ".join(r.name for r in bundled_regions())
            raise InputError(
                f"no bundled region {str(source)!r}",
                hint=f"bundled: {names}; or give a GeoJSON file",
            )
    if not path.exists():
        raise InputError(
            f"{path}: no such region file", hint="give a GeoJSON file or a bundled region name"
        )
    try:
        data = json.loads(paths.read_text(path, "the region"))
        polygons = _polygons(data, str(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to be a region") from None
    if not polygons:
        raise InputError(
            f"{path}: no Polygon or MultiPolygon in it", hint="a region must be an area"
        )
    for polygon in polygons:
        if not polygon.is_valid:
            reason = shapely.is_valid_reason(polygon)
            raise InputError(
                f"{path}: invalid polygon ({reason})", hint="fix it, e.g. in QGIS: Fix Geometries"
            )
    geometry = shapely.union_all(polygons)
    if geometry.is_empty or geometry.area == 0:
        raise InputError(f"{path}: the polygon has no area")
    minx, miny, maxx, maxy = geometry.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise InputError(
            f"{path}: coordinates out of range; GeoJSON wants (longitude, latitude) in degrees"
        )
    properties = _properties(data, path)
    name = str(properties.get("name") or data.get("name") or path.stem)
    return Region(name=name, geometry=geometry, source=str(path), properties=properties)


def bundled_regions() -> list[Region]:
    """Every region shipped with gpskit."""
    return [load_region(p) for p in sorted(regions_dir().glob("*.geojson"))]
