"""From a trained network to positions: the head, retrieval, their blend, test-time
augmentation, and which of them a run uses.

Three ways to place a photo, reported side by side by ``gpskit eval``:

- ``head``: what the last layer says (:mod:`gpskit.train.heads`);
- ``retrieval``: the weighted positions of the ``knn`` most similar training photos
  (:mod:`gpskit.train.retrieval`);
- ``blend``: the mean of the two.

At the end of training each is measured on the validation split and the best becomes the
run's default (``prediction.json``), so ``eval`` and ``predict`` use what works on this
data unless told otherwise; so is whether retrieval keeps to photos facing the same way
(the heading window). ``tta`` averages five views of each photo (the whole and four
90 % corner crops; no mirror image: a mirrored street is no real place).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gpskit import paths
from gpskit.atomic import write_text
from gpskit.errors import InputError
from gpskit.runfolder import PREDICTION_FILE
from gpskit.train import require_torch
from gpskit.train.heads import PositionHead
from gpskit.train.options import Method
from gpskit.train.retrieval import RetrievalIndex, embed


def tta_views(images: Any) -> list[Any]:
    """The batch itself and its four 90 % corner crops, resized back: five views."""
    torch, _ = require_torch()
    size = images.shape[-1]
    cut = round(size * 0.9)
    views = [images]
    for top, left in ((0, 0), (0, size - cut), (size - cut, 0), (size - cut, size - cut)):
        crop = images[..., top : top + cut, left : left + cut]
        views.append(torch.nn.functional.interpolate(crop, size=(size, size), mode="bilinear"))
    return views


def head_positions(
    model: Any,
    loader: Any,
    device: Any,
    head: PositionHead,
    *,
    amp_dtype: Any = None,
    tta: bool = False,
) -> npt.NDArray[np.float64]:
    """Standardised positions from the head for every item of ``loader``, in order."""
    torch, _ = require_torch()
    model.eval()
    outputs: list[Any] = []
    indices: list[Any] = []
    with torch.no_grad():
        for images, _, index in loader:
            positions = []
            for batch in tta_views(images) if tta else [images]:
                batch = batch.to(device, non_blocking=True)
                if device.type == "cuda":
                    batch = batch.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    out = model(batch)
                positions.append(head.positions(out.float()).cpu())
            outputs.append(torch.stack(positions).mean(dim=0))
            indices.append(index)
    if not outputs:
        return np.zeros((0, 2))
    order = torch.cat(indices).argsort()
    result: npt.NDArray[np.float64] = torch.cat(outputs)[order].double().numpy()
    return result


def variants(
    model: Any,
    loader: Any,
    device: Any,
    head: PositionHead,
    index: RetrievalIndex | None,
    knn: int,
    tta: bool = False,
    headings: npt.ArrayLike | None = None,
    window: float | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """Standardised positions by every method available (retrieval needs an index;
    ``headings`` of the loader's photos and ``window``: see :mod:`~gpskit.train.retrieval`)."""
    found = {Method.HEAD.value: head_positions(model, loader, device, head, tta=tta)}
    if index is not None and knn > 0 and len(index.embeddings):
        queries = embed(model, loader, device, tta_views if tta else None, index.descriptor)
        found[Method.RETRIEVAL.value] = index.query(queries, knn, headings, window)
        found[Method.BLEND.value] = blend(found[Method.HEAD.value], found[Method.RETRIEVAL.value])
    return found


def blend(head: npt.NDArray[np.float64], retrieval: npt.NDArray[np.float64]) -> Any:
    """The blend method: the mean of the head's and retrieval's positions."""
    return (head + retrieval) / 2


def build_index(
    model: Any, loader: Any, device: Any, positions: Any, paths: Any, headings: Any = None
) -> RetrievalIndex:
    """Embed the training photos once (``loader``: the training split, evaluation transforms)."""
    return RetrievalIndex(
        embed(model, loader, device),
        np.asarray(positions, dtype=np.float64),
        np.asarray(paths),
        None if headings is None else np.asarray(headings, dtype=np.float64),
    )


def save_choice(
    run_dir: Path,
    method: str,
    knn: int,
    val_mean_m: dict[str, float],
    heading_window: float | None = None,
) -> None:
    """Record the run's default method (the best on the validation split)."""
    record = {
        "method": method,
        "knn": knn,
        "heading_window": heading_window,
        "val_mean_m": val_mean_m,
    }
    write_text(run_dir / PREDICTION_FILE, json.dumps(record, indent=2, sort_keys=True) + "\n")


def load_choice(run_dir: Path) -> dict[str, Any]:
    """The run's default method and knn (the head alone for runs without a choice)."""
    path = run_dir / PREDICTION_FILE
    if not path.exists():
        return {"method": Method.HEAD.value, "knn": 0, "heading_window": None, "val_mean_m": {}}
    try:
        choice = json.loads(paths.read_text(path))
    except ValueError as exc:
        raise _bad_choice(path, f"not JSON ({exc})") from None
    if not isinstance(choice, dict):
        raise _bad_choice(path, "not a JSON object")
    choice.setdefault("heading_window", None)  # runs from before heading windows
    method, knn, window = choice.get("method"), choice.get("knn"), choice["heading_window"]
    if method not in {m.value for m in Method}:
        raise _bad_choice(path, f"no method {str(method)[:40]!r}")
    if isinstance(knn, bool) or not isinstance(knn, int) or not 0 <= knn <= 1000:
        raise _bad_choice(path, f"knn {str(knn)[:40]!r} is not a count")
    if window is not None and (
        isinstance(window, bool) or not isinstance(window, int | float) or not 0 <= window <= 180
    ):
        raise _bad_choice(path, f"heading_window {str(window)[:40]!r} is not degrees")
    return choice


def _bad_choice(path: Path, why: str) -> InputError:
    return InputError(
        f"{path}: not the run's choice of method ({why})",
        hint="give --method, or delete it to predict with the head (training writes it again)",
    )
