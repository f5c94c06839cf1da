"""What ``gpskit split`` can be asked: the strategies, the options, and the ratios parser."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from gpskit import arguments
from gpskit.engines import EngineOptions
from gpskit.errors import UsageError
from gpskit.schema import load_schema

#: The splits, in the order of their index (0 train, 1 val, 2 test): the schema's enum.
SPLIT_NAMES = load_schema("split").enum("split")


class SplitName(str, Enum):
    """One of :data:`SPLIT_NAMES` (a test ties the two together)."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class Strategy(str, Enum):
    """What a unit of assignment is (see :mod:`gpskit.split`)."""

    SPOT = "spot"
    BLOCK = "block"
    RANDOM = "random"
    GIVEN = "given"


#: How each split name a source table may use maps to gpskit's (the Hub's "validation").
GIVEN_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val",
    "test": "test", "testing": "test",
}  # fmt: skip


STRATEGIES = tuple(s.value for s in Strategy)


@dataclass(frozen=True)
class SplitOptions:
    """What to split and how (see the package docstring)."""

    strategy: str = Strategy.SPOT.value
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    block_m: float = 50.0
    buffer_m: float = 0.0
    include_rejected: bool = False
    include_duplicates: bool = False
    include_outside: bool = False
    embed: bool = False
    max_side: int = 384
    workers: int | None = None
    export_csv: bool = False
    force: bool = False
    engine: EngineOptions = field(default_factory=EngineOptions)  # where --embed runs

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(
                f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        check_ratios(self.ratios)
        arguments.seed("--seed", self.seed)
        arguments.number("--block", self.block_m, above=0)
        arguments.number("--buffer", self.buffer_m, minimum=0, below=self.block_m)
        if self.buffer_m and self.strategy != Strategy.BLOCK.value:
            raise UsageError("--buffer applies to --strategy block only")
        arguments.number("--max-side", self.max_side, minimum=32, maximum=4096, integer=True)
        arguments.workers("--workers", self.workers)
        self.engine.validate()


def check_ratios(ratios: tuple[float, ...]) -> None:
    """Three finite, non-negative shares that sum to 1, with some training data."""
    if len(ratios) != 3:
        raise UsageError(f"--ratios needs three values (train,val,test), got {len(ratios)}")
    for name, share in zip(SPLIT_NAMES, ratios, strict=True):
        arguments.number(f"--ratios ({name})", share, minimum=0)
    if not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise UsageError(
            f"--ratios must sum to 1, got {format_ratios(ratios)} (sum {sum(ratios):g})",
            hint="e.g. 0.8,0.1,0.1 or 80,10,10",
        )
    if ratios[0] == 0:
        raise UsageError("--ratios: the train share must be above 0")


def format_ratios(ratios: tuple[float, float, float]) -> str:
    """The ``--ratios`` text for a ratios tuple (``0.8,0.1,0.1``)."""
    return ",".join(f"{r:g}" for r in ratios)


def parse_ratios(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' as fractions, or '80,10,10' as percentages; anything else that does not
    sum to 1 (or 100) is refused, not rescaled."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--ratios must be numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) != 3:
        raise UsageError(f"--ratios needs three values (train,val,test), got {text!r}")
    if all(math.isfinite(v) for v in values) and math.isclose(sum(values), 100.0, abs_tol=1e-4):
        values = [v / 100.0 for v in values]
    ratios = (values[0], values[1], values[2])
    check_ratios(ratios)
    return ratios
