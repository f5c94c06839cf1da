"""What ``gpskit synth`` can be asked."""

from __future__ import annotations

from dataclasses import dataclass, field

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
        if self.spots < 1 or self.headings < 1 or not self.pitches:
            raise UsageError("--spots and --headings must be at least 1")
        if self.size[0] < 64 or self.size[1] < 48:
            raise UsageError("--size must be at least 64x48")
        if self.gps_noise_m < 0:
            raise UsageError("--gps-noise must not be negative")
        unknown = set(self.rates) - set(DEFECTS)
        if unknown:
            raise UsageError(f"unknown defects {sorted(unknown)}; known: {', '.join(DEFECTS)}")
        if any(rate < 0 for rate in self.rates.values()):
            raise UsageError("defect rates must not be negative")

    def rate(self, name: str) -> float:
        return self.rates.get(name, DEFECTS[name].rate)
