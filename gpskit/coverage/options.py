"""Coverage options: grid, spots and headings (see :mod:`gpskit.coverage`)."""

from __future__ import annotations

from dataclasses import dataclass

from gpskit import arguments
from gpskit.regions import DEFAULT_REGION


@dataclass(frozen=True)
class CoverageOptions:
    """Grid, spot and heading settings (see the module docstring)."""

    region: str = DEFAULT_REGION
    cell_m: float = 20.0
    min_per_cell: int = 1
    spot_radius_m: float = 3.0
    declination: float | None = None

    def validate(self) -> None:
        arguments.number("--cell", self.cell_m, above=0)
        arguments.number("--min-per-cell", self.min_per_cell, minimum=1, integer=True)
        arguments.number("--spot-radius", self.spot_radius_m, above=0)
        arguments.optional_number("--declination", self.declination, minimum=-90, maximum=90)
