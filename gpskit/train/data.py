"""Split Parquet files as torch datasets: embedded images or the original photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gpskit.errors import InputError
from gpskit.imaging import ImageColumn
from gpskit.train import require_torch
from gpskit.train.loss import TargetScaler
from gpskit.train.options import AUGMENTS, TARGETS, Augment, Target

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_split(splits_dir: Path, name: str) -> pd.DataFrame:
    """One split as a DataFrame (schema-checked), from any folder that holds splits: a
    dataset, its splits/, a published or Hub-layout folder (see :mod:`gpskit.splitfolder`)."""
    from gpskit.splitfolder import SplitFolder

    return SplitFolder.at(splits_dir).read(name)


def target_columns(target: str) -> tuple[str, str]:
    """Which columns hold the label: the photo's own fix or its spot's median."""
    if target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == Target.PHOTO.value:
        return ("latitude", "longitude")
    return ("spot_latitude", "spot_longitude")


def transforms(
    image_size: int, train: bool, hflip: bool = False, augment: str = Augment.STANDARD.value
) -> Any:
    """Training transforms as ``augment`` says (flip only if asked: a mirrored street is no
    real place). Evaluation: resize + centre crop."""
    _, torchvision = require_torch()
    t = torchvision.transforms
    if augment not in AUGMENTS:
        raise InputError(f"--augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    if train and augment == Augment.STANDARD.value:
        steps = [
            t.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(0.75, 1.333)),
            t.RandomRotation(10),
            t.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        ]
    elif train and augment == Augment.LIGHT.value:
        steps = [
            t.RandomResizedCrop(image_size, scale=(0.8, 1.0), ratio=(0.75, 1.333)),
            t.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
        ]
    else:
        steps = [t.Resize(round(image_size * 256 / 224)), t.CenterCrop(image_size)]
    if train and hflip:
        steps.append(t.RandomHorizontalFlip())
    return t.Compose([*steps, t.ToTensor(), t.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class SplitDataset:
    """(image tensor, standardised target, row) triples from one split.

    Items are asked for by key ``epoch * len + row`` (see :class:`EpochSampler`); with
    ``augment_seed``, each item's random augmentation is seeded from ``(augment_seed, key)``,
    so an epoch's augmentations are the same in any loader process, with any number of
    workers, and after a resume.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        scaler: TargetScaler,
        target: str,
        transform: Any,
        image_size: int,
        augment_seed: int | None = None,
    ) -> None:
        torch, _ = require_torch()
        lat_col, lon_col = target_columns(target)
        u, v = scaler.encode(frame[lat_col].to_numpy(float), frame[lon_col].to_numpy(float))
        self.targets = torch.tensor(np.column_stack([u, v]), dtype=torch.float32)
        self.images = list(frame["image"])
        self.transform = transform
        self.min_side = image_size
        self.augment_seed = augment_seed

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int) -> tuple[Any, Any, int]:
        index = key % len(self.images)
        image = ImageColumn.decode(self.images[index], self.min_side)
        if self.augment_seed is None:
            return self.transform(image), self.targets[index], index
        import torch

        state = np.random.SeedSequence([self.augment_seed, key]).generate_state(2, np.uint64)
        # torchvision's transforms draw from torch's global generator: seed it for this item
        # only, so the training process's own draws (dropout) are the same whether items are
        # made here (--workers 0) or in loader processes. The CPU generator alone:
        # torch.manual_seed also queues seeds for every accelerator kind, ~1.5 ms a call
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(int(state[0] >> np.uint64(1)))
            return self.transform(image), self.targets[index], index


class EpochSampler:
    """One epoch's order: a permutation drawn from ``(seed, epoch)``, this process's share
    under DDP (padded to equal shares, as torch's DistributedSampler does).

    It yields keys ``epoch * n + row`` (see :class:`SplitDataset`), so the batches and their
    augmentations depend on the seed and the epoch only: a run resumed at epoch k sees
    exactly what an uninterrupted run saw.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world)

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist()
        padded = order + order[: len(self) * self.world - self.n]
        for row in padded[self.rank :: self.world]:
            yield self.epoch * self.n + row
