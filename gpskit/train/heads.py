"""What the network's last layer predicts, and how that becomes a position.

- ``regression`` (the study's): two numbers, the standardised east/north position, trained
  with MSE + alpha x haversine (:class:`gpskit.train.loss.GeoLoss`).
- ``cells``: a score per geographic cell; the position is the probability-weighted mean of
  the cells' centres. Classification over cells beats coordinate regression for visual
  geolocation (OpenStreetView-5M, Astruc et al. 2024): the network can say "one of these
  two places" instead of averaging them into the middle. Trained with cross-entropy
  against soft targets (cells near the true position share the credit, so neighbouring
  cells are not punished as much as far ones) plus the squared error of the position.
- ``hybrid``: cells plus an offset from each cell's centre (a second regression per cell);
  the position is the probability-weighted mean of centre + offset.

Cells are k-means clusters of the training positions in the standardised local plane,
their number set by the data (about one per three training spots, 4 to 512), and stored
in the run with the weights, so eval and predict need nothing else.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from gpskit.train import require_torch
from gpskit.train.loss import GeoLoss, TargetScaler
from gpskit.train.options import Head


def output_size(head: str, cells: int) -> int:
    """Units of the last layer for a head with ``cells`` cells."""
    return {"regression": 2, "cells": cells, "hybrid": 3 * cells}[head]


def make_cells(
    positions: npt.NDArray[np.float64], groups: npt.NDArray[Any] | None, seed: int = 0
) -> npt.NDArray[np.float64]:
    """Cell centres: k-means (k-means++ start, Lloyd steps) of the standardised training
    positions, one cell per about three spots (``groups``: the spot of each position)."""
    points = np.unique(positions.round(6), axis=0)
    places = len(np.unique(groups)) if groups is not None else len(points)
    k = int(np.clip(round(places / 3), 4, 512))
    k = min(k, len(points))
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        total = d2.sum()
        pick = rng.choice(len(points), p=d2 / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
    c = np.asarray(centres, dtype=np.float64)
    for _ in range(50):
        label = np.argmin(((points[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        moved = np.array(
            [points[label == j].mean(axis=0) if (label == j).any() else c[j] for j in range(k)]
        )
        if np.allclose(moved, c):
            break
        c = moved
    return c


class PositionHead:
    """Turns the network's outputs into standardised positions, and scores them in training."""

    def __init__(
        self,
        head: str,
        scaler: TargetScaler,
        cells: npt.NDArray[np.float64] | None,
        loss: str = "mse+haversine",
        alpha: float = 0.1,
    ) -> None:
        torch, _ = require_torch()
        if head != Head.REGRESSION.value and (cells is None or not len(cells)):
            raise ValueError(f"the {head} head needs cells")
        self.head = head
        self.geo = GeoLoss(scaler, loss, alpha)
        self.centres = torch.tensor(
            cells if cells is not None else np.zeros((0, 2)), dtype=torch.float32
        )
        # soft targets: a Gaussian of the distance to each centre, as wide as the typical
        # distance between neighbouring centres
        if len(self.centres) > 1:
            gaps = torch.cdist(self.centres, self.centres)
            gaps.fill_diagonal_(float("inf"))
            self.width = float(gaps.min(dim=1).values.median())
        else:
            self.width = 1.0

    @property
    def cells(self) -> int:
        return len(self.centres)

    def _split(self, out: Any) -> tuple[Any, Any]:
        """(cell logits, per-cell offsets (B, K, 2) or None)."""
        k = self.cells
        logits = out[:, :k]
        offsets = out[:, k:].reshape(len(out), k, 2) if self.head == Head.HYBRID.value else None
        return logits, offsets

    def positions(self, out: Any) -> Any:
        """Standardised (east, north) predicted by outputs ``out`` (B, units)."""
        torch, _ = require_torch()
        out = out.float()
        if self.head == Head.REGRESSION.value:
            return out[:, :2]
        logits, offsets = self._split(out)
        centres = self.centres.to(out.device)
        probs = torch.softmax(logits, dim=1)
        points = centres[None] if offsets is None else centres[None] + offsets
        return (probs[..., None] * points).sum(dim=1)

    def loss(self, out: Any, target: Any) -> Any:
        """The training loss of outputs ``out`` against standardised targets."""
        torch, _ = require_torch()
        out = out.float()
        if self.head == Head.REGRESSION.value:
            return self.geo(out, target)
        logits, offsets = self._split(out)
        centres = self.centres.to(out.device)
        d2 = torch.cdist(target, centres) ** 2
        soft = torch.softmax(-d2 / (2 * self.width**2), dim=1)
        cross_entropy = -(soft * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        position = torch.mean((self.positions(out) - target) ** 2)
        if offsets is None:
            return cross_entropy + position
        nearest = d2.argmin(dim=1)
        own = offsets[torch.arange(len(out), device=out.device), nearest]
        offset = torch.mean((own - (target - centres[nearest])) ** 2)
        return cross_entropy + position + offset

    def state(self) -> dict[str, Any]:
        """What a checkpoint stores to rebuild this head."""
        return {"head": self.head, "cells": self.centres.tolist()}
