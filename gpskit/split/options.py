"""What ``gpskit split`` can be asked: the strategies, the options, and the ratios parser."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

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

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(
                f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}"
            )
        if (
            len(self.ratios) != 3
            or any(r < 0 for r in self.ratios)
            or not np.isclose(sum(self.ratios), 1.0)
        ):
            raise UsageError(
                f"--ratios must be three non-negative numbers summing to 1, got {self.ratios}"
            )
        if self.ratios[0] == 0:
            raise UsageError("--ratios: the train share must be above 0")
        if self.block_m <= 0:
            raise UsageError(f"--block must be positive, got {self.block_m}")
        if not 0 <= self.buffer_m < self.block_m:
            raise UsageError(f"--buffer must be at least 0 and below --block ({self.block_m:g} m)")
        if self.buffer_m and self.strategy != Strategy.BLOCK.value:
            raise UsageError("--buffer applies to --strategy block only")
        if not 32 <= self.max_side <= 4096:
            raise UsageError(f"--max-side must be between 32 and 4096, got {self.max_side}")


def format_ratios(ratios: tuple[float, float, float]) -> str:
    """The ``--ratios`` text for a ratios tuple (``0.8,0.1,0.1``)."""
    return ",".join(f"{r:g}" for r in ratios)


def parse_ratios(text: str) -> tuple[float, float, float]:
    """'0.8,0.1,0.1' (or '80,10,10') as three fractions."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"--ratios must be numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) != 3:
        raise UsageError(f"--ratios needs three values (train,val,test), got {text!r}")
    total = sum(values)
    if total <= 0 or any(v < 0 for v in values):
        raise UsageError(f"--ratios must be non-negative with a positive sum, got {text!r}")
    return values[0] / total, values[1] / total, values[2] / total
