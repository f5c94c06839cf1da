"""What ``gpskit app --collect`` needs to know: the region walked, its grid and its
magnetic declination, and how large a shot may be."""

from __future__ import annotations

from dataclasses import dataclass

from gpskit import arguments
from gpskit.regions import DEFAULT_REGION

#: The dataset's folder the shots are saved in (ingested as one more photo folder).
INBOX = "inbox"
#: A shot's id: what the page makes (a random UUID), checked before it names a file.
SHOT_ID = r"[A-Za-z0-9_-]{8,64}"
MAX_SHOT_BYTES = 40 * 1024**2
MAX_SHOT_PIXELS = 120_000_000
#: Stops of the walking plan the page shows ahead (the nearest first).
SHOWN_STOPS = 12


@dataclass(frozen=True)
class CollectOptions:
    """The region and grid coverage is measured on (as ``gpskit coverage``), and the
    declination that turns the phone's magnetic compass into true headings (None: the
    region's ``declination`` property, else headings are recorded as magnetic)."""

    region: str = DEFAULT_REGION
    cell_m: float = 20.0
    min_per_cell: int = 1
    declination: float | None = None
    max_shot_bytes: int = MAX_SHOT_BYTES
    max_shot_pixels: int = MAX_SHOT_PIXELS

    def validate(self) -> None:
        arguments.number("--cell", self.cell_m, above=0)
        arguments.number("--min-per-cell", self.min_per_cell, minimum=1, integer=True)
        arguments.optional_number("--declination", self.declination, minimum=-90, maximum=90)
        arguments.number("max_shot_bytes", self.max_shot_bytes, minimum=1, integer=True)
        arguments.number("max_shot_pixels", self.max_shot_pixels, minimum=1, integer=True)
