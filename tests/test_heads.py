"""Heads: cells from training positions, and each head learning where a feature says it is."""

from __future__ import annotations

import numpy as np
import pytest

from gpskit.train.heads import PositionHead, make_cells, output_size
from gpskit.train.loss import TargetScaler
from gpskit.train.options import HEADS, Head

torch = pytest.importorskip("torch", reason="gpskit[train] not installed")

SCALER = TargetScaler(39.9515, -75.1915, (0.0, 0.0), (100.0, 100.0))


def test_cells_follow_the_spots() -> None:
    rng = np.random.default_rng(0)
    spots = rng.uniform(-1.5, 1.5, size=(60, 2))
    positions = np.repeat(spots, 8, axis=0) + rng.normal(0, 0.01, size=(480, 2))
    groups = np.repeat(np.arange(60), 8)
    cells = make_cells(positions, groups, seed=0)
    assert len(cells) == 20  # about one cell per three spots
    assert np.array_equal(cells, make_cells(positions, groups, seed=0))
    # every cell sits among the data, and every position has a cell near it
    nearest = np.min(np.linalg.norm(positions[:, None] - cells[None], axis=-1), axis=1)
    assert nearest.max() < 1.0
    assert len(make_cells(positions[:5], groups[:5])) <= 5  # never more cells than places


def test_output_units_per_head() -> None:
    assert output_size("regression", 10) == 2
    assert output_size("cells", 10) == 10
    assert output_size("hybrid", 10) == 30
    assert set(HEADS) == {h.value for h in Head}
    with pytest.raises(ValueError, match="needs cells"):
        PositionHead("cells", SCALER, None)


def _features(positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random Fourier features of the position plus noise: a stand-in for what a backbone
    sees, related to the position non-linearly."""
    projection = rng.normal(0, 2.0, size=(2, 64))
    phase = rng.uniform(0, 2 * np.pi, 64)
    return np.cos(positions @ projection + phase) + rng.normal(0, 0.05, (len(positions), 64))


@pytest.mark.slow
@pytest.mark.parametrize("head_name", HEADS)
def test_each_head_learns_positions_far_better_than_the_centre(head_name: str) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    positions = rng.uniform(-1.7, 1.7, size=(1200, 2))
    features = _features(positions, np.random.default_rng(2))
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor(positions, dtype=torch.float32)
    train, test = slice(0, 1000), slice(1000, None)
    cells = make_cells(positions[train], None, seed=0)[:48] if head_name != "regression" else None
    head = PositionHead(head_name, SCALER, cells)
    layer = torch.nn.Sequential(
        torch.nn.Linear(64, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, output_size(head_name, head.cells)),
    )
    optimiser = torch.optim.Adam(layer.parameters(), lr=3e-3)
    for step in range(600):
        batch = torch.randint(0, 1000, (64,), generator=torch.Generator().manual_seed(step))
        loss = head.loss(layer(x[train][batch]), y[train][batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        predicted = head.positions(layer(x[test])).numpy()
    error = np.linalg.norm(predicted - positions[test], axis=1).mean()
    centre = np.linalg.norm(positions[train].mean(axis=0) - positions[test], axis=1).mean()
    assert error < 0.35 * centre, (head_name, error, centre)
    assert head.state()["head"] == head_name


def test_cells_head_places_a_sure_photo_at_its_cell() -> None:
    cells = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    head = PositionHead("cells", SCALER, cells)
    logits = torch.tensor([[-50.0, 50.0, -50.0], [0.0, 0.0, 0.0]])
    positions = head.positions(logits).numpy()
    assert positions[0] == pytest.approx([1.0, 0.0], abs=1e-6)
    assert positions[1] == pytest.approx([1 / 3, 1 / 3], abs=1e-6)  # unsure: the mean
    hybrid = PositionHead("hybrid", SCALER, cells)
    out = torch.cat([logits[:1], torch.zeros(1, 6)], dim=1)
    out[0, 3 + 2 : 3 + 4] = torch.tensor([0.25, -0.5])  # offset of cell 1
    assert hybrid.positions(out).numpy()[0] == pytest.approx([1.25, -0.5], abs=1e-6)
