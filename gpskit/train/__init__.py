"""Training, evaluation and prediction (needs the ``train`` extra: torch and torchvision).

Modules: ``data`` (split Parquet to tensors), ``model`` (torchvision ResNets with a
dropout + linear head), ``loss`` (MSE + alpha x haversine), ``engine`` (the training loop,
DDP-aware), ``metrics`` (numpy only), ``evaluate`` (eval and predict).
"""

from __future__ import annotations

from typing import Any

from gpskit.errors import MissingDependencyError

INSTALL_HINT = "install it with: pip install 'gpskit[train]'  (or `make setup` in a checkout)"


def require_torch() -> tuple[Any, Any]:
    """Import torch and torchvision, or fail with one line saying how to install them."""
    try:
        import torch
        import torchvision
    except ImportError as exc:
        raise MissingDependencyError(
            f"training needs torch and torchvision, which are not installed ({exc.name})",
            hint=INSTALL_HINT,
        ) from None
    return torch, torchvision
