"""Hypothesis strategies for hostile photos: EXIF blocks with any tag of any TIFF type, any
count and extreme values, and byte mutations of real files.

Used by ``tests/test_fuzz.py`` (a short budget in ``make test``, a long one in
``make fuzz``).
"""

from __future__ import annotations

import io
import struct
from typing import Any

from hypothesis import strategies as st
from PIL import Image

from gpskit.exifwrite import TIFF_TYPES, RawTag, raw_exif

#: Tags gpskit reads, so that most generated entries hit a parser, not a skip.
IFD0_TAGS = [0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x02BC]
EXIF_TAGS = [0x9003, 0x9011, 0x9291, 0x9010, 0xA002, 0xA003]
GPS_TAGS = list(range(0, 32))

_PACK = {3: "H", 4: "I", 8: "h", 9: "i", 11: "f", 12: "d"}
_INT_RANGES = {3: (0, 0xFFFF), 4: (0, 0xFFFFFFFF), 8: (-0x8000, 0x7FFF), 9: (-(2**31), 2**31 - 1)}


def _extreme_ints(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [low, high, 0, 1, -1, 6, 8, 9, 36865, 60, 90, 180, 360]
    return st.one_of(
        st.sampled_from([e for e in edges if low <= e <= high]), st.integers(low, high)
    )


def _values(kind: int, order: str) -> st.SearchStrategy[bytes]:
    """The value bytes of ``n`` values of a TIFF type."""
    e = ">" if order == "MM" else "<"
    if kind in (1, 6, 7):
        return st.binary(max_size=24)
    if kind == 2:
        text = st.one_of(
            st.sampled_from(
                [b"N", b"S", b"E", b"W", b"T", b"M", b"2024:05:01 10:00:00", b"+09:00",
                 b"40 26 46.3", b"75,11.5W", b"inf", b"1e+999", b"", b"\xff\xfe", b"9999:12:31 23:59:59"]
            ),
            st.binary(max_size=40),
        )  # fmt: skip
        return text.map(lambda t: t + b"\0")
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        numbers = st.lists(_extreme_ints(low, high), max_size=6)
        return numbers.map(lambda v: struct.pack(f"{e}{len(v)}{_PACK[kind]}", *v))
    if kind in (5, 10):
        low, high = _INT_RANGES[4] if kind == 5 else _INT_RANGES[9]
        pairs = st.lists(st.tuples(_extreme_ints(low, high), _extreme_ints(low, high)), max_size=4)
        code = "I" if kind == 5 else "i"
        return pairs.map(
            lambda p: struct.pack(f"{e}{2 * len(p)}{code}", *[x for q in p for x in q])
        )
    floats = st.floats(allow_nan=True, allow_infinity=True, width=32 if kind == 11 else 64)
    return st.lists(floats, max_size=4).map(lambda v: struct.pack(f"{e}{len(v)}{_PACK[kind]}", *v))


@st.composite
def raw_tags(draw: Any, tags: list[int], order: str) -> list[RawTag]:
    """Entries of one IFD: known and random tags, any type, counts true or false."""
    entries: dict[int, RawTag] = {}
    for _ in range(draw(st.integers(0, 8))):
        tag = draw(st.one_of(st.sampled_from(tags), st.integers(0, 0xFFFF)))
        kind = draw(st.sampled_from(sorted(TIFF_TYPES)))
        data = draw(_values(kind, order))
        true_count = max(1, len(data) // TIFF_TYPES[kind][1])
        count = draw(st.one_of(st.just(true_count), st.integers(0, 2**32 - 1)))
        entries[tag] = RawTag(tag, kind, count, data)
    return list(entries.values())


@st.composite
def exif_blocks(draw: Any) -> bytes:
    """A whole ``Exif\\0\\0`` block: IFD0, and maybe the Exif and GPS IFDs."""
    order = draw(st.sampled_from(["II", "MM"]))
    ifd0 = draw(raw_tags(IFD0_TAGS, order))
    exif = draw(st.one_of(st.none(), raw_tags(EXIF_TAGS, order)))
    gps = draw(st.one_of(st.none(), raw_tags(GPS_TAGS, order)))
    return raw_exif(ifd0, exif, gps, order=order)


def photo_bytes(exif: bytes, fmt: str, size: tuple[int, int] = (256, 240)) -> bytes:
    """A small image in ``fmt`` (JPEG, PNG, WEBP) carrying ``exif``."""
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 140, 60)).save(buf, fmt, exif=exif)
    return buf.getvalue()


@st.composite
def mutations(draw: Any, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, a run overwritten, a cut or a repeat, mostly where
    the metadata lives (the first 64 KB)."""
    out = bytearray(data)
    head = max(1, min(len(out), 65536))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "overwrite", "truncate", "repeat"]))
        at = draw(st.integers(0, max(0, min(len(out), head) - 1))) if out else 0
        if action == "flip" and out:
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "overwrite" and out:
            run = draw(st.binary(min_size=1, max_size=8))
            out[at : at + len(run)] = run
        elif action == "truncate":
            out = out[: max(at, 1)]
        else:
            out[at:at] = out[at : at + draw(st.integers(1, 64))]
    return bytes(out)
