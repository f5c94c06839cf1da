"""Training choices: every option of a run and the names each may take (torch-free, so
``--help``, the sweep planner and the checks run without the ``train`` extra)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from gpskit import arguments
from gpskit.errors import UsageError


class Arch(str, Enum):
    """The torchvision ResNets gpskit trains."""

    RESNET18 = "resnet18"
    RESNET34 = "resnet34"
    RESNET50 = "resnet50"
    RESNET101 = "resnet101"
    RESNET152 = "resnet152"


class Part(str, Enum):
    """Parts of a ResNet that ``--freeze`` can stop training (stem = conv1 + bn1)."""

    STEM = "stem"
    LAYER1 = "layer1"
    LAYER2 = "layer2"
    LAYER3 = "layer3"
    LAYER4 = "layer4"


ARCHS = tuple(a.value for a in Arch)


FREEZABLE = tuple(p.value for p in Part)


class Loss(str, Enum):
    """The training losses: the study's (MSE + alpha x haversine), or either term alone."""

    MSE_HAVERSINE = "mse+haversine"
    MSE = "mse"
    HAVERSINE = "haversine"


LOSSES = tuple(loss.value for loss in Loss)


class Head(str, Enum):
    """The network's output: coordinates, cell scores, or cell scores and offsets."""

    REGRESSION = "regression"
    CELLS = "cells"
    HYBRID = "hybrid"


HEADS = tuple(h.value for h in Head)


class Target(str, Enum):
    """What a photo's label is: its own GPS fix, or its spot's median (less noisy)."""

    PHOTO = "photo"
    SPOT = "spot"


TARGETS = tuple(t.value for t in Target)


class Augment(str, Enum):
    """How much a training photo is changed each time it is seen.

    ``standard`` is the study's: random resized crops (60-100 % of the photo), rotation up
    to ±10° and colour jitter including hue. ``light`` keeps crops of 80-100 % and colour
    jitter without hue or rotation: a phone is held upright and a small model trained for
    few epochs learns more from photos closer to the real ones (the demo's CPU model: val
    retrieval error 47.9 m against 51.1 m with ``standard``). ``none``: the evaluation
    transform (resize and centre crop).
    """

    STANDARD = "standard"
    LIGHT = "light"
    NONE = "none"


AUGMENTS = tuple(a.value for a in Augment)


class Method(str, Enum):
    """How a run places a photo (see the module docstring)."""

    HEAD = "head"
    RETRIEVAL = "retrieval"
    BLEND = "blend"


CHECKPOINT_VERSION = 1


METRICS_FIELDS = (
    "epoch",
    "train_loss",
    "val_mean_m",
    "val_median_m",
    "lr",
    "images_per_s",
    "seconds",
)


@dataclass(frozen=True)
class TrainOptions:
    """Every training choice; stored in the checkpoints so eval and predict need nothing else."""

    arch: str = Arch.RESNET101.value
    weights: str = "imagenet"
    dropout: float = 0.5
    loss: str = Loss.MSE_HAVERSINE.value
    alpha: float = 0.1
    freeze: tuple[str, ...] = ()
    target: str = Target.PHOTO.value
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    image_size: int = 224
    clip_grad: float = 1.0
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    hflip: bool = False
    augment: str = Augment.STANDARD.value
    amp: bool = True
    head: str = Head.CELLS.value  # measured best on the demo campus (see bench_train.py)
    knn: int = 8  # neighbours for retrieval (0: no retrieval index)

    def validate(self) -> None:
        for flag, value, names in (
            ("--head", self.head, HEADS),
            ("--arch", self.arch, ARCHS),
            ("--augment", self.augment, AUGMENTS),
            ("--loss", self.loss, LOSSES),
            ("--target", self.target, TARGETS),
        ):
            if value not in names:
                raise UsageError(f"{flag} must be one of {', '.join(names)}, got {value!r}")
        arguments.number("--knn", self.knn, minimum=0, maximum=1000, integer=True)
        unknown = sorted(set(self.freeze) - set(FREEZABLE))
        if unknown:
            raise UsageError(
                f"--freeze: unknown parts {unknown}; choose from {', '.join(FREEZABLE)}"
            )
        arguments.number("--epochs", self.epochs, minimum=1, integer=True)
        arguments.number("--batch-size", self.batch_size, minimum=1, integer=True)
        arguments.number("--image-size", self.image_size, minimum=32, maximum=4096, integer=True)
        arguments.number("--lr", self.lr, above=0, maximum=10)
        arguments.number("--weight-decay", self.weight_decay, minimum=0)
        arguments.number("--dropout", self.dropout, minimum=0, below=1)
        arguments.number("--alpha", self.alpha, minimum=0)
        arguments.number("--clip-grad", self.clip_grad, minimum=0)
        arguments.workers("--workers", self.workers, allow_zero=True)
        arguments.seed("--seed", self.seed)
        if self.device not in ("auto", "cpu", "cuda", "mps") and not self.device.startswith(
            "cuda:"
        ):
            raise UsageError(f"--device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    val_mean_m: float
    val_median_m: float
    lr: float
    images_per_s: float
    seconds: float


@dataclass
class TrainResult:
    run_dir: str
    epochs: int
    best_epoch: int
    best_val_mean_m: float
    history: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    world_size: int = 1
    warnings: list[str] = field(default_factory=list)
