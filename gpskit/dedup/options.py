"""Dedup's options: the thresholds of the links, and the manifest columns they read."""

from __future__ import annotations

from dataclasses import dataclass

from gpskit import arguments
from gpskit.errors import UsageError
from gpskit.schema import load_schema

#: The manifest columns dedup reads (the rest are never loaded: at 10M photos every
#: column read costs memory): keys, the hashes, what the burst rule and the keeper rule
#: look at.
READ_COLUMNS = (
    "root", "path", "file_size", "mtime_ns", "read_status", "status",
    "sha256", "pixel_hash", "stored_pixel_hash", "phash", "phash256",
    "trimmed_phash", "trimmed_phash256",
    "width", "height", "orientation", "make", "gps_h_error",
    "latitude", "longitude", "img_direction", "datetime_original", "datetime_original_utc",
)  # fmt: skip
#: Lists of hashes: the 64-bit ones are read (as numbers); their 256-bit twins are read
#: from the file only for the pairs a search matched (:mod:`gpskit.dedup.lists`).
CROP_COLUMNS = ("crop_hashes",)
DIHEDRAL_COLUMNS = ("dihedral_hashes",)
#: Where a search is blocked by position when the whole one would take too long (m).
DEFAULT_WITHIN_M = 200.0


@dataclass(frozen=True)
class DedupOptions:
    """Thresholds of the links (see :mod:`gpskit.dedup`).

    ``confirm_bits``: a 64-bit match must be confirmed by the 256-bit hashes within this
    many bits (copies: 12 or fewer, crops: 34 or fewer, confusable scenes: 54 or more);
    None skips the confirmation.
    ``max_heading_diff``: perceptual (near/crop) links between photos whose headings are
    both known and differ by more than this are dropped; None turns the veto off.
    ``within_m``: the perceptual searches compare photos whose positions are both known
    only when they are within this many metres (copies are of one place; photos without
    a position are compared with all). None with ``everywhere`` False: decided by the
    collection's size (:func:`gpskit.dedup.links.scoped`); ``everywhere``: every pair.
    """

    near_threshold: int = 8
    crop_threshold: int = 6
    crop_variants: bool = True
    dihedral: bool = True  # also match photos turned a quarter, upside down or mirrored
    confirm_bits: int | None = 40
    max_heading_diff: float | None = 30.0
    burst_radius_m: float = 5.0
    burst_heading_deg: float = 10.0
    burst_seconds: float = 10.0
    #: A burst is near-identical frames: their 256-bit pHashes within this many bits.
    #: Measured: injected bursts (1°, 15 cm, 1 s apart) 18-58 bits, a real iPhone HDR pair
    #: 18; distinct views of one spot at least 88, unrelated photos 86 or more (1st
    #: percentile 98). 64 sits between; the 64-bit pHash cannot (bursts up to 14 bits,
    #: distinct views from 16).
    burst_max_bits: int = 64
    conflict_m: float = 25.0
    within_m: float | None = None
    everywhere: bool = False

    def validate(self) -> None:
        arguments.number("--near", self.near_threshold, minimum=0, maximum=20, integer=True)
        arguments.number("--crop", self.crop_threshold, minimum=0, maximum=20, integer=True)
        arguments.optional_number("confirm_bits", self.confirm_bits, minimum=0, maximum=256)
        arguments.optional_number("max_heading_diff", self.max_heading_diff, minimum=0, maximum=180)
        arguments.number("--burst-radius", self.burst_radius_m, minimum=0)
        arguments.number("--burst-heading", self.burst_heading_deg, minimum=0, maximum=180)
        arguments.number("--burst-seconds", self.burst_seconds, minimum=0)
        arguments.number("--burst-bits", self.burst_max_bits, minimum=0, maximum=256, integer=True)
        arguments.number("--conflict", self.conflict_m, minimum=0)
        arguments.optional_number("--within", self.within_m, minimum=0, maximum=1_000_000)
        if self.everywhere and self.within_m is not None:
            raise UsageError(
                "--within and --everywhere contradict each other", hint="give one of them"
            )

    def manifest_columns(self) -> list[str]:
        """The manifest columns dedup reads with these options (Parquet projection)."""
        wanted = set(READ_COLUMNS)
        if self.crop_variants:
            wanted |= set(CROP_COLUMNS)
        if self.dihedral:
            wanted |= set(DIHEDRAL_COLUMNS)
        return [name for name in load_schema("manifest").names if name in wanted]
