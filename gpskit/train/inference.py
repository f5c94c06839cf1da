"""Placing photos held in memory: the predictor ``gpskit.load_model`` returns.

A notebook has photos as paths, PIL images or numpy arrays, one or a batch; it wants each
one's position, how it was found (head, retrieval or blend, as the run chose on its
validation split) and, for retrieval, the training photos it was placed between. The
``gpskit predict`` command places files through the same :meth:`Predictor.place`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gpskit import arguments, runfolder
from gpskit.errors import InputError
from gpskit.train import require_torch
from gpskit.train.data import transforms
from gpskit.train.heads import PositionHead, output_size
from gpskit.train.loss import TargetScaler
from gpskit.train.model import build_model
from gpskit.train.options import Head, Method
from gpskit.train.predictor import load_choice, variants
from gpskit.train.retrieval import RetrievalIndex, embed
from gpskit.train.session import load_checkpoint, pick_device

#: What :meth:`Predictor.predict` takes, alone or in a list.
ImageLike = Any  # str | Path | PIL.Image.Image | numpy array (H, W, 3) uint8 or (H, W)


@dataclass
class Neighbour:
    """A training photo a retrieval position was made from."""

    path: str
    latitude: float
    longitude: float
    similarity: float  # cosine similarity of the two photos' embeddings
    weight: float  # its share of the position


@dataclass
class Prediction:
    """Where a photo was taken, by which method, from which training photos."""

    latitude: float
    longitude: float
    method: str
    heading: float | None = None  # the photo's compass heading, when its EXIF had one
    neighbours: list[Neighbour] = field(default_factory=list)


class Predictor:
    """A trained run or a published model, ready to place photos (see :func:`load`)."""

    def __init__(self, run: Any, method: str | None = None, knn: int | None = None) -> None:

        self.run = run
        self.method, self.knn = choose_method(run, method, knn)
        self.window = choose_window(run, None)
        self.tta = False  # test-time augmentation: five crops a photo
        self.image_size = int(run.options["image_size"])
        self._transform = transforms(self.image_size, False)

    def __repr__(self) -> str:
        return f"Predictor({str(self.run.run_dir)!r}, method={self.method!r}, knn={self.knn})"

    def predict(
        self, images: ImageLike | Sequence[ImageLike], headings: Sequence[float] | None = None
    ) -> Prediction | list[Prediction]:
        """Positions of one photo or a list of them (paths, PIL images, numpy arrays);
        ``headings`` (degrees, NaN unknown) default to the EXIF of photos given as paths."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        if headings is None:
            headings = [self._heading(image) for image in batch]
        tensors = [self._tensor(image) for image in batch]
        found = self.place(tensors, list(headings))
        return found[0] if single else found

    def place(
        self, tensors: list[Any], headings: list[float], *, neighbours: bool = True
    ) -> list[Prediction]:
        """Predictions for photos already made tensors (the evaluation transform); without
        ``neighbours``, the training photos are not looked up (one embedding pass less)."""

        if not tensors:
            return []
        run = self.run
        loader = tensor_loader(tensors, int(run.options.get("batch_size", 32)))
        found = variants(
            run.model,
            loader,
            run.device,
            run.head,
            run.index,
            self.knn,
            self.tta,
            headings,
            self.window,
        )
        lat, lon = run.scaler.decode(found[self.method][:, 0], found[self.method][:, 1])
        near = None
        if neighbours and self.method != Method.HEAD.value:
            near = self._neighbours(loader, headings)
        return [
            Prediction(
                float(lat[i]),
                float(lon[i]),
                self.method,
                None if not np.isfinite(headings[i]) else float(headings[i]),
                [] if near is None else near[i],
            )
            for i in range(len(tensors))
        ]

    def _neighbours(self, loader: Any, headings: list[float]) -> list[list[Neighbour]]:
        run = self.run
        queries = embed(run.model, loader, run.device, None, run.index.descriptor)
        rows, weights, sims = run.index.nearest(queries, self.knn, headings, self.window)
        positions = run.index.positions[rows.ravel()]
        lat, lon = run.scaler.decode(positions[:, 0], positions[:, 1])
        lat, lon = np.asarray(lat).reshape(rows.shape), np.asarray(lon).reshape(rows.shape)
        return [
            [
                Neighbour(str(run.index.paths[r]), float(a), float(b), float(s), float(w))
                for r, a, b, s, w in zip(rows[i], lat[i], lon[i], sims[i], weights[i], strict=True)
            ]
            for i in range(len(rows))
        ]

    def _tensor(self, image: ImageLike) -> Any:
        return self._transform(as_image(image, self.image_size))

    @staticmethod
    def _heading(image: ImageLike) -> float:
        return compass_heading(str(image)) if isinstance(image, (str, Path)) else float("nan")


@dataclass
class LoadedRun:
    run_dir: Path
    checkpoint: dict[str, Any]
    model: Any
    scaler: TargetScaler
    head: PositionHead
    index: RetrievalIndex | None
    choice: dict[str, Any]
    device: Any

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.checkpoint["options"])


def load_run(run_dir: Path, device: str = "auto") -> LoadedRun:
    """The best checkpoint of a run (last.pt if there is no best.pt; or a published model
    folder), its head, retrieval index and default method: everything predict needs, from
    the folder alone."""
    from gpskit.train.export import load_model_folder

    folder = runfolder.open_model_folder(run_dir)
    if isinstance(folder, runfolder.RunFolder):
        checkpoint = load_checkpoint(folder.require_model())
    else:  # published: model.safetensors + config.json
        checkpoint = load_model_folder(folder.root)
    options = checkpoint["options"]
    scaler = TargetScaler.from_dict(checkpoint["normalisation"])
    spec = checkpoint.get("head", {"head": Head.REGRESSION.value, "cells": []})
    cells = np.asarray(spec["cells"], dtype=np.float64).reshape(-1, 2)
    head = PositionHead(spec["head"], scaler, cells if len(cells) else None)
    outputs = output_size(spec["head"], head.cells)
    model = build_model(checkpoint["arch"], "none", float(options["dropout"]), outputs)
    model.load_state_dict(checkpoint["model"])
    target = pick_device(device)
    model.to(target).eval()
    index = RetrievalIndex.load(run_dir)
    return LoadedRun(run_dir, checkpoint, model, scaler, head, index, load_choice(run_dir), target)


def choose_method(run: LoadedRun, method: str | None, knn: int | None) -> tuple[str, int]:
    """The method and knn asked for, else the run's own choice."""
    if knn is None:
        knn = int(run.choice.get("knn") or run.options.get("knn") or 0)
    else:
        arguments.number("--knn", knn, minimum=1, maximum=1000, integer=True)
    method = method or str(run.choice.get("method", Method.HEAD.value))
    if method != Method.HEAD.value and (run.index is None or knn < 1):
        raise InputError(
            f"{run.run_dir}: no retrieval index for --method {method}",
            hint="train with --knn 8 (the default), or use --method head",
        )
    return method, knn


def choose_window(run: LoadedRun, heading_window: float | None) -> float | None:
    """The heading window asked for (0: none), else the run's own choice."""
    if heading_window is None:
        chosen = run.choice.get("heading_window")
        return None if chosen is None else float(chosen)
    arguments.number("--heading-window", heading_window, minimum=0, maximum=180)
    return float(heading_window) if 0 < heading_window < 180 else None


def compass_heading(path: str) -> float:
    """The photo's EXIF compass heading in degrees (NaN when it has none or is unreadable)."""
    from PIL import Image

    from gpskit.exif import read_metadata
    from gpskit.storage import open_stream

    try:
        with open_stream(path) as stream, Image.open(stream) as img:
            direction = read_metadata(img).img_direction
    except Exception:  # predict still places the photo, without the heading
        return float("nan")
    return float("nan") if direction is None else float(direction)


def tensor_loader(images: list[Any], batch_size: int) -> list[tuple[Any, Any, Any]]:
    """(images, unused targets, indices) batches, as the split loaders yield them."""
    torch, _ = require_torch()
    batches = []
    for lo in range(0, len(images), batch_size):
        part = torch.stack(images[lo : lo + batch_size])
        batches.append((part, torch.zeros(len(part), 2), torch.arange(lo, lo + len(part))))
    return batches


def as_image(image: ImageLike, min_side: int) -> Any:
    """A PIL image, upright, from a path (decoded with ingest's guards), a PIL image (its
    EXIF orientation applied) or a numpy array (H x W x 3 or H x W, uint8 or 0-1 floats)."""
    from PIL import Image, ImageOps

    from gpskit.imaging import decode_oriented

    if isinstance(image, (str, Path)):
        return decode_oriented(str(image), min_side=min_side)
    if isinstance(image, Image.Image):
        return ImageOps.exif_transpose(image).convert("RGB")
    array: npt.NDArray[Any] = np.asarray(image)
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"an image array is H x W x 3 (or 4, or H x W), not {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(np.asarray(array, float) * (255 if array.max() <= 1 else 1), 0, 255)
    return Image.fromarray(array[..., :3].astype(np.uint8), "RGB")


def load(folder: Path | str, device: str = "auto", method: str | None = None) -> Predictor:
    """A run folder (``gpskit train``) or a published model folder, as a :class:`Predictor`."""
    require_torch()
    return Predictor(load_run(Path(folder), device), method)
