"""Geolocation error metrics (numpy only, so reports work without torch)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gpskit.geo import SECTORS, haversine_m

THRESHOLDS_M = (5, 10, 25, 50, 100)


def errors_m(true_lat: Any, true_lon: Any, pred_lat: Any, pred_lon: Any) -> npt.NDArray[np.float64]:
    """Geodesic error of each prediction in metres."""
    return np.asarray(haversine_m(true_lat, true_lon, pred_lat, pred_lon), dtype=float)


def summary(errors: npt.NDArray[np.float64]) -> dict[str, Any]:
    """Mean, median, p90, max, RMSE and accuracy within 5/10/25/50/100 m."""
    errors = np.asarray(errors, dtype=float)
    if not len(errors):
        return {"photos": 0}
    return {
        "photos": len(errors),
        "mean_m": float(errors.mean()),
        "median_m": float(np.median(errors)),
        "p90_m": float(np.percentile(errors, 90)),
        "max_m": float(errors.max()),
        "rmse_m": float(np.sqrt(np.mean(errors**2))),
        "within_m": {str(t): float((errors <= t).mean()) for t in THRESHOLDS_M},
    }


def by_sector(errors: npt.NDArray[np.float64], sectors: Any) -> dict[str, dict[str, Any]]:
    """Mean and median error per heading sector (photos without a heading under 'none')."""
    sectors = np.array([s if isinstance(s, str) else "none" for s in sectors], dtype=object)
    out: dict[str, dict[str, Any]] = {}
    for name in (*SECTORS, "none"):
        mask = sectors == name
        if mask.any():
            out[name] = {
                "photos": int(mask.sum()),
                "mean_m": float(errors[mask].mean()),
                "median_m": float(np.median(errors[mask])),
            }
    return out
