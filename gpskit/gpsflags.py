"""What can be wrong with a photo's GPS tags: the flags the EXIF reader records and the
checks judge (apart from the reader, so the checks load without Pillow)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


class Problem(str, Enum):
    """What is wrong with a GPS tag (the first half of a ``gps_flags`` entry)."""

    REF_MISSING = "ref_missing"  # latitude/longitude without its N/S or E/W reference
    MISSING = "missing"  # one coordinate of the pair is absent
    ZERO_DENOMINATOR = "zero_denominator"
    NON_NUMERIC = "non_numeric"
    MALFORMED = "malformed"  # wrong count, not finite, unparsable
    OUT_OF_RANGE = "out_of_range"
    COUNT_1 = "count_1"  # degrees given as 1 value (read as ExifTool does)
    COUNT_2 = "count_2"  # degrees and minutes only
    TEXT = "text"  # numbers written as an ASCII string (read as ExifTool does)
    UNFIT = "unfit"  # a value that does not fit its manifest column (left empty)


#: Problems of a value that is there but cannot be read as a number.
BAD_VALUE = frozenset({Problem.ZERO_DENOMINATOR, Problem.NON_NUMERIC, Problem.MALFORMED})
POSITION_TAGS = frozenset({"latitude", "longitude"})


@dataclass(frozen=True)
class GpsFlag:
    """One problem found in one tag; written to the manifest as ``"problem:tag"``."""

    problem: Problem
    tag: str

    def __str__(self) -> str:
        return f"{self.problem.value}:{self.tag}"

    @classmethod
    def parse(cls, text: str) -> GpsFlag:
        problem, _, tag = text.partition(":")
        return cls(Problem(problem), tag)

    @property
    def bad_coordinate(self) -> bool:
        """A latitude or longitude that is there but is not a readable number."""
        return self.tag in POSITION_TAGS and self.problem in BAD_VALUE

    @property
    def breaks_position(self) -> bool:
        """The position cannot be read because of this flag."""
        return self.bad_coordinate or self.problem in (Problem.REF_MISSING, Problem.MISSING)

    @property
    def drops_value(self) -> bool:
        """The tag's value was left empty (unreadable or out of range)."""
        return self.problem in BAD_VALUE or self.problem is Problem.OUT_OF_RANGE


def position_unreadable(flags: Iterable[GpsFlag]) -> bool:
    """Some flag says the position tags are there but cannot be read."""
    return any(flag.breaks_position for flag in flags)
