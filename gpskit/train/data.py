"""Split Parquet files as torch datasets: embedded images or the original photos."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gpskit.errors import InputError, MissingStepError
from gpskit.imaging import ImageColumn
from gpskit.train import require_torch
from gpskit.train.loss import TargetScaler

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Target(str, Enum):
    """What a photo's label is: its own GPS fix, or its spot's median (less noisy)."""

    PHOTO = "photo"
    SPOT = "spot"


TARGETS = tuple(t.value for t in Target)


def read_split(splits_dir: Path, name: str) -> pd.DataFrame:
    """One split file as a DataFrame (schema-checked)."""
    from gpskit.schema import load_schema, read_table

    path = splits_dir / f"{name}.parquet"
    if not path.exists():
        raise MissingStepError(
            f"{path} does not exist", hint=f"run `gpskit split {splits_dir.parent}` first"
        )
    frame: pd.DataFrame = read_table(path, load_schema("split")).to_pandas()
    return frame


def target_columns(target: str) -> tuple[str, str]:
    """Which columns hold the label: the photo's own fix or its spot's median."""
    if target not in TARGETS:
        raise InputError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == Target.PHOTO.value:
        return ("latitude", "longitude")
    return ("spot_latitude", "spot_longitude")


def transforms(image_size: int, train: bool, hflip: bool = False) -> Any:
    """Training: mild random resized crop, rotation ±10°, colour jitter (flip only if asked:
    a mirrored street is no real place). Evaluation: resize + centre crop."""
    _, torchvision = require_torch()
    t = torchvision.transforms
    if train:
        steps = [
            t.RandomResizedCrop(image_size, scale=(0.6, 1.0), ratio=(0.75, 1.333)),
            t.RandomRotation(10),
            t.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        ]
        if hflip:
            steps.append(t.RandomHorizontalFlip())
    else:
        steps = [t.Resize(round(image_size * 256 / 224)), t.CenterCrop(image_size)]
    return t.Compose([*steps, t.ToTensor(), t.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class SplitDataset:
    """(image tensor, standardised target) pairs from one split."""

    def __init__(
        self,
        frame: pd.DataFrame,
        scaler: TargetScaler,
        target: str,
        transform: Any,
        image_size: int,
    ) -> None:
        torch, _ = require_torch()
        lat_col, lon_col = target_columns(target)
        u, v = scaler.encode(frame[lat_col].to_numpy(float), frame[lon_col].to_numpy(float))
        self.targets = torch.tensor(np.column_stack([u, v]), dtype=torch.float32)
        self.images = list(frame["image"])
        self.transform = transform
        self.min_side = image_size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        image = ImageColumn.decode(self.images[index], self.min_side)
        return self.transform(image), self.targets[index], index
