"""What ``gpskit synth`` can be asked."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpskit import arguments
from gpskit.errors import UsageError
from gpskit.regions import DEFAULT_REGION
from gpskit.synth.defects import DEFECTS, default_rates


@dataclass(frozen=True)
class SynthOptions:
    """The campus, the photos and the defects (``rates``: defect name -> rate, see
    :mod:`gpskit.synth.defects`; names left out keep their default)."""

    region: str = DEFAULT_REGION
    spots: int = 280
    headings: int = 8
    pitches: tuple[float, ...] = (0.0, 20.0)
    size: tuple[int, int] = (640, 480)
    gps_noise_m: float = 8.0
    seed: int = 0
    quality: int = 90
    workers: int | None = None
    rates: dict[str, float] = field(default_factory=default_rates)

    def validate(self) -> None:
        arguments.number("--spots", self.spots, minimum=1, maximum=100_000, integer=True)
        arguments.number("--headings", self.headings, minimum=1, maximum=360, integer=True)
        if not self.pitches:
            raise UsageError("--pitches needs at least one pitch")
        for pitch in self.pitches:
            arguments.number("--pitches", pitch, minimum=-80, maximum=80)
        arguments.number("--size (width)", self.size[0], minimum=64, maximum=8192, integer=True)
        arguments.number("--size (height)", self.size[1], minimum=48, maximum=8192, integer=True)
        arguments.number("--gps-noise", self.gps_noise_m, minimum=0, maximum=10_000)
        arguments.seed("--seed", self.seed)
        arguments.workers("--workers", self.workers)
        unknown = set(self.rates) - set(DEFECTS)
        if unknown:
            raise UsageError(f"unknown defects {sorted(unknown)}; known: {', '.join(DEFECTS)}")
        for name, rate in self.rates.items():
            arguments.number(f"rate of {name}", rate, minimum=0)

    def rate(self, name: str) -> float:
        return self.rates.get(name, DEFECTS[name].rate)
