"""The study's loss: MSE on standardised targets + alpha x mean haversine distance (m)."""

from __future__ import annotations

from typing import Any

from gpskit.geo import LocalProjection, haversine_m
from gpskit.train.options import LOSSES


class TargetScaler:
    """Latitude/longitude <-> standardised east/north metres around the training centre."""

    def __init__(
        self, lat0: float, lon0: float, mean: tuple[float, float], std: tuple[float, float]
    ) -> None:
        self.projection = LocalProjection(lat0, lon0)
        self.mean = mean
        self.std = std

    def to_dict(self) -> dict[str, Any]:
        return {
            "lat0": self.projection.lat0,
            "lon0": self.projection.lon0,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetScaler:
        return cls(
            float(data["lat0"]), float(data["lon0"]), tuple(data["mean"]), tuple(data["std"])
        )  # type: ignore[arg-type]

    @classmethod
    def fit(cls, lat: Any, lon: Any) -> TargetScaler:
        import numpy as np

        from gpskit.geo import centre_of

        lat0, lon0 = centre_of(lat, lon)
        x, y = LocalProjection(lat0, lon0).forward(np.asarray(lat, float), np.asarray(lon, float))
        std = (max(float(np.std(x)), 1.0), max(float(np.std(y)), 1.0))
        return cls(lat0, lon0, (float(np.mean(x)), float(np.mean(y))), std)

    def encode(self, lat: Any, lon: Any) -> tuple[Any, Any]:
        """Degrees to standardised (east, north)."""
        x, y = self.projection.forward(lat, lon)
        return (x - self.mean[0]) / self.std[0], (y - self.mean[1]) / self.std[1]

    def decode(self, u: Any, v: Any, xp: Any = None) -> tuple[Any, Any]:
        """Standardised (east, north) to degrees (numpy, or torch with ``xp=torch``)."""
        x = u * self.std[0] + self.mean[0]
        y = v * self.std[1] + self.mean[1]
        if xp is None:
            return self.projection.inverse(x, y)
        return self.projection.inverse(x, y, xp=xp)


class GeoLoss:
    """``mode``: mse+haversine (the study's), mse only, or haversine only."""

    def __init__(
        self, scaler: TargetScaler, mode: str = "mse+haversine", alpha: float = 0.1
    ) -> None:
        if mode not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}")
        self.scaler, self.mode, self.alpha = scaler, mode, alpha

    def __call__(self, pred: Any, target: Any) -> Any:
        import torch

        pred = pred.float()
        mse = torch.mean((pred - target) ** 2)
        if self.mode == "mse":
            return mse
        distance = self.distance_m(pred, target).mean()
        if self.mode == "haversine":
            return distance
        return mse + self.alpha * distance

    def distance_m(self, pred: Any, target: Any) -> Any:
        """Haversine distance (m) between standardised predictions and targets (torch)."""
        import torch

        plat, plon = self.scaler.decode(pred[:, 0].double(), pred[:, 1].double(), xp=torch)
        tlat, tlon = self.scaler.decode(target[:, 0].double(), target[:, 1].double(), xp=torch)
        return haversine_m(tlat, tlon, plat, plon, xp=torch).float()
