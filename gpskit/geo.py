"""All distance and projection maths of gpskit, in one place.

- Geodesic distance: haversine on a sphere of radius R = 6,371,008.8 m (the IUGG mean
  Earth radius). On a campus its error against the WGS 84 ellipsoid is under 0.5 %.
- Compass sectors: 8 sectors of 45° centred on N, NE, ... NW (N = 337.5-22.5).
- Local metric coordinates: an azimuthal equidistant projection on the same sphere,
  centred on the area of interest (a region's centre, a training set's centre). x is
  metres east, y metres north; distances from the centre are exact geodesic distances and
  the inverse is closed-form, so a round trip is exact to floating point (< 1 µm).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8

FloatArray = npt.NDArray[np.float64]
ArrayLike = Any


DEG = np.pi / 180.0


def haversine_m(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike, xp: Any = np
) -> Any:
    """Great-circle distance in metres (vectorised; degrees in).

    ``xp`` is the array module: numpy (default) or torch, for a differentiable loss.
    """
    if xp is np:
        lat1, lon1, lat2, lon2 = (np.asarray(v, dtype=float) for v in (lat1, lon1, lat2, lon2))
    p1, p2 = lat1 * DEG, lat2 * DEG
    dphi = p2 - p1
    dlam = (lon2 - lon1) * DEG
    a = xp.sin(dphi / 2) ** 2 + xp.cos(p1) * xp.cos(p2) * xp.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * xp.arcsin(xp.sqrt(xp.clip(a, 0.0, 1.0)))


#: The 8 compass sectors, clockwise from north (the ``heading_sector`` enum of the schemas).
SECTORS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def heading_sector(heading: ArrayLike) -> npt.NDArray[np.int64]:
    """Sector index 0..7 into :data:`SECTORS` of each heading (degrees), -1 where unknown."""
    heading = np.asarray(heading, dtype=float)
    sector = np.full(heading.shape, -1, np.int64)
    known = np.isfinite(heading)
    sector[known] = (((heading[known] + 22.5) % 360.0) // 45.0).astype(np.int64)
    return sector


def sector_names(heading: ArrayLike) -> list[str | None]:
    """The sector name of each heading, None where unknown."""
    return [SECTORS[s] if s >= 0 else None for s in heading_sector(heading)]


def label_noise_distances(
    lat: Any, lon: Any, spot_lat: Any, spot_lon: Any, spot_id: Any
) -> npt.NDArray[np.float64]:
    """Each fix's distance to its spot's median (m), for spots of two or more photos only
    (a lone fix is its own median: counting it would pull the floor towards 0 m)."""
    spot_id = np.asarray(spot_id)
    _, inverse, counts = np.unique(spot_id, return_inverse=True, return_counts=True)
    multi = counts[inverse] > 1
    d = np.asarray(
        haversine_m(
            np.asarray(lat)[multi],
            np.asarray(lon)[multi],
            np.asarray(spot_lat)[multi],
            np.asarray(spot_lon)[multi],
        ),
        dtype=float,
    )
    return d


def label_noise(lat: Any, lon: Any, spot_lat: Any, spot_lon: Any, spot_id: Any) -> dict[str, Any]:
    """Scatter of GPS fixes around their spot's median position (m): the floor no model
    beats, over the photos given (a split's, or all of them): see
    :func:`label_noise_distances`."""
    d = label_noise_distances(lat, lon, spot_lat, spot_lon, spot_id)
    if not len(d):
        return {"photos": 0}
    return {
        "photos": len(d),
        "median_m": float(np.median(d)),
        "mean_m": float(d.mean()),
        "p90_m": float(np.percentile(d, 90)),
        "rms_m": float(np.sqrt(np.mean(d**2))),
    }


def angle_difference(a: ArrayLike, b: ArrayLike) -> Any:
    """Smallest absolute difference between compass angles, in [0, 180] degrees."""
    d = np.abs((np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) % 360.0)
    return np.minimum(d, 360.0 - d)


@dataclass(frozen=True)
class LocalProjection:
    """Azimuthal equidistant projection centred on (lat0, lon0): metres east and north."""

    lat0: float
    lon0: float

    def forward(self, lat: ArrayLike, lon: ArrayLike) -> tuple[Any, Any]:
        """Degrees to (x east, y north) metres."""
        phi0, lam0 = np.radians(self.lat0), np.radians(self.lon0)
        phi, lam = np.radians(lat), np.radians(lon)
        dlam = lam - lam0
        c = haversine_m(self.lat0, self.lon0, lat, lon) / EARTH_RADIUS_M
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(c > 1e-12, c / np.sin(c), 1.0)
        x = EARTH_RADIUS_M * k * np.cos(phi) * np.sin(dlam)
        y = (
            EARTH_RADIUS_M
            * k
            * (np.cos(phi0) * np.sin(phi) - np.sin(phi0) * np.cos(phi) * np.cos(dlam))
        )
        return x, y

    def inverse(self, x: ArrayLike, y: ArrayLike, xp: Any = np) -> tuple[Any, Any]:
        """(x east, y north) metres back to degrees (``xp``: numpy or torch)."""
        phi0, lam0 = float(np.radians(self.lat0)), float(np.radians(self.lon0))
        if xp is np:
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        rho = xp.sqrt(x * x + y * y + 1e-30)  # smooth at the centre (torch gradients)
        c = rho / EARTH_RADIUS_M
        sin_c, cos_c = xp.sin(c), xp.cos(c)
        phi = xp.arcsin(xp.clip(cos_c * np.sin(phi0) + y * sin_c / rho * np.cos(phi0), -1.0, 1.0))
        lam = lam0 + xp.arctan2(x * sin_c, rho * np.cos(phi0) * cos_c - y * np.sin(phi0) * sin_c)
        lon = (lam / DEG + 180.0) % 360.0 - 180.0
        return phi / DEG, lon


def centre_of(lat: ArrayLike, lon: ArrayLike) -> tuple[float, float]:
    """Mean position of points (through 3-D unit vectors, so it works across ±180°)."""
    phi, lam = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    mx, my, mz = xyz.mean(axis=1)
    return float(np.degrees(np.arctan2(mz, np.hypot(mx, my)))), float(
        np.degrees(np.arctan2(my, mx))
    )
