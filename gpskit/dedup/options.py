"""Dedup's options: the thresholds of the links, and the manifest columns they read."""

from __future__ import annotations

from dataclasses import dataclass

from gpskit import arguments
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
CROP_COLUMNS = ("crop_hashes", "crop_phash256")
DIHEDRAL_COLUMNS = ("dihedral_hashes", "dihedral_phash256")


@dataclass(frozen=True)
class DedupOptions:
    """Thresholds of the links (see :mod:`gpskit.dedup`).

    ``confirm_bits``: a 64-bit match must be confirmed by the 256-bit hashes within this
    many bits (copies: 12 or fewer, crops: 34 or fewer, confusable scenes: 54 or more);
    None skips the confirmation.
    ``max_heading_diff``: perceptual (near/crop) links between photos whose headings are
    both known and differ by more than this are dropped; None turns the veto off.
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

    def manifest_columns(self) -> list[str]:
        """The manifest columns dedup reads with these options (Parquet projection)."""
        wanted = set(READ_COLUMNS)
        if self.crop_variants:
            wanted |= set(CROP_COLUMNS)
        if self.dihedral:
            wanted |= set(DIHEDRAL_COLUMNS)
        return [name for name in load_schema("manifest").names if name in wanted]
