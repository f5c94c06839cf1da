"""Dedup searches blocked by position (gpskit.dedup.nearby, .scope) and hash lists held
as numbers (gpskit.dedup.lists): the blocked search finds exactly the pairs the full
search finds among photos near each other, on any positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpskit.dataset import DatasetBusyError
from gpskit.dedup import nearby
from gpskit.dedup.lists import ListedLong, ManifestSource, code_lists, flat_codes, hex_codes
from gpskit.dedup.options import DEFAULT_WITHIN_M, DedupOptions
from gpskit.dedup.scope import MAX_SEARCH_SECONDS, decide
from gpskit.errors import UsageError
from gpskit.geo import haversine_m
from gpskit.hashindex import cross_join, hex_to_u64, self_join

# --- the blocked search against the full one ------------------------------------------------

#: Places photos are taken: a campus, both sides of the antimeridian, near a pole's
#: cut-off, the equator, and tile edges (multiples of the tile side).
ANCHORS = [(39.95, -75.19), (-16.5, 179.999), (-16.5, -179.999), (79.99, 10.0), (0.0, 0.0)]


@st.composite
def located(draw: st.DrawFn, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hashes with planted near copies, at positions scattered around a few anchors
    (metres to kilometres apart), some unknown."""
    n = draw(st.integers(2, size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    copies = rng.random(n) < 0.5
    source = rng.integers(0, n, n)
    flips = np.bitwise_or.reduce(
        np.uint64(1) << rng.integers(0, 64, (n, 3)).astype(np.uint64), axis=1
    )
    codes[copies] = codes[source[copies]] ^ (flips[copies] * (rng.random(copies.sum()) < 0.7))
    anchor = np.array(ANCHORS)[rng.integers(0, len(ANCHORS), n)]
    spread = draw(st.sampled_from([1e-5, 1e-3, 1e-2, 5e-2]))  # ~1 m to ~5 km
    lat = anchor[:, 0] + rng.normal(0, spread, n)
    lon = anchor[:, 1] + rng.normal(0, spread, n)
    same_place = copies & (rng.random(n) < 0.6)  # a copy keeps its photo's EXIF
    lat[same_place], lon[same_place] = lat[source[same_place]], lon[source[same_place]]
    unknown = rng.random(n) < draw(st.sampled_from([0.0, 0.1, 0.5]))
    lat[unknown] = np.nan
    lon = ((lon + 180) % 360) - 180
    return codes, lat, lon


def _where(lat: np.ndarray, lon: np.ndarray) -> nearby.Where:
    return nearby.Where.of(pd.DataFrame({"latitude": lat, "longitude": lon}))


def _expected(
    pairs: tuple[np.ndarray, np.ndarray],
    q_where: nearby.Where,
    q_rows: np.ndarray,
    i_where: nearby.Where,
    i_rows: np.ndarray,
    within: float,
) -> set[tuple[int, int]]:
    """The full search's pairs, less those between known positions farther than within."""
    q, i = pairs
    lat_q, lon_q = q_where.lat[q_rows[q]], q_where.lon[q_rows[q]]
    lat_i, lon_i = i_where.lat[i_rows[i]], i_where.lon[i_rows[i]]
    known = ~np.isnan(lat_q) & ~np.isnan(lat_i)
    far = np.zeros(len(q), bool)
    far[known] = haversine_m(lat_q[known], lon_q[known], lat_i[known], lon_i[known]) > within
    return set(zip(q[~far].tolist(), i[~far].tolist(), strict=True))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=located(400),
    within=st.sampled_from([0.0, 5.0, 150.0, 2_000.0]),
    radius=st.integers(0, 10),
)
def test_blocked_self_join_is_the_full_one_among_nearby_photos(
    data: tuple[np.ndarray, np.ndarray, np.ndarray], within: float, radius: int
) -> None:
    codes, lat, lon = data
    where = _where(lat, lon)
    rows = np.arange(len(codes), dtype=np.int64)
    a, b, _ = self_join(codes, radius)
    expected = _expected((a, b), where, rows, where, rows, within)
    q, i, d = nearby.join(nearby.Located(codes, rows, where), None, radius, within)
    found = {(min(x, y), max(x, y)) for x, y in zip(q.tolist(), i.tolist(), strict=True)}
    assert len(found) == len(q), "a pair was found twice"
    assert found == expected
    assert (d == np.bitwise_count(codes[q] ^ codes[i])).all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    queries=located(300),
    index=located(300),
    within=st.sampled_from([0.0, 30.0, 1_000.0]),
    radius=st.integers(0, 10),
    entries=st.integers(1, 4),
)
def test_blocked_cross_join_is_the_full_one_among_nearby_photos(
    queries: tuple[np.ndarray, np.ndarray, np.ndarray],
    index: tuple[np.ndarray, np.ndarray, np.ndarray],
    within: float,
    radius: int,
    entries: int,
) -> None:
    """Either side may be the larger (and so the one filed once); a row may own several
    entries (crop and turned hashes)."""
    q_codes, q_lat, q_lon = queries
    i_codes, i_lat, i_lon = index
    i_codes = np.concatenate([i_codes, q_codes[: len(q_codes) // 2] ^ np.uint64(3)])
    i_lat = np.concatenate([i_lat, q_lat[: len(q_codes) // 2]])
    i_lon = np.concatenate([i_lon, q_lon[: len(q_codes) // 2]])
    q_where, i_where = _where(q_lat, q_lon), _where(i_lat, i_lon)
    q_rows = np.repeat(np.arange(len(q_codes), dtype=np.int64), entries)
    q_codes = np.repeat(q_codes, entries) ^ np.tile(
        np.arange(entries, dtype=np.uint64), len(q_codes)
    )
    i_rows = np.arange(len(i_codes), dtype=np.int64)
    a, b, _ = cross_join(q_codes, i_codes, radius)
    expected = _expected((a, b), q_where, q_rows, i_where, i_rows, within)
    q, i, _ = nearby.join(
        nearby.Located(q_codes, q_rows, q_where),
        nearby.Located(i_codes, i_rows, i_where),
        radius,
        within,
    )
    found = set(zip(q.tolist(), i.tolist(), strict=True))
    assert len(found) == len(q)
    assert found == expected


def test_unscoped_join_is_the_full_search() -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 2**63, 500, dtype=np.int64).astype(np.uint64)
    codes[250:] = codes[:250] ^ np.uint64(1)
    where = _where(np.zeros(500), np.zeros(500))
    rows = np.arange(500, dtype=np.int64)
    q, i, _ = nearby.join(nearby.Located(codes, rows, where), None, 4, None)
    a, b, _ = self_join(codes, 4)
    assert set(zip(q.tolist(), i.tolist(), strict=True)) == set(
        zip(a.tolist(), b.tolist(), strict=True)
    )


def test_unusable_positions_are_compared_with_everything() -> None:
    """Out-of-range, infinite and polar positions are treated as unknown (compared with
    all), never as a tile."""
    where = _where(
        np.array([91.0, np.inf, 85.0, 10.0, -95.0]), np.array([0.0, 0.0, 0.0, 190.0, 0.0])
    )
    assert np.isnan(where.lat).all()


# --- what the search costs, and the decision ------------------------------------------------


def _city(n: int, share_without_gps: float = 0.0) -> nearby.Where:
    rng = np.random.default_rng(n)
    lat, lon = rng.uniform(39.86, 40.04, n), rng.uniform(-75.31, -75.07, n)
    unknown = rng.random(n) < share_without_gps
    lat[unknown] = np.nan
    lon[unknown] = np.nan
    return nearby.Where(lat, lon)


def _all_searches(
    n: int, crops: int = 18, near: int = 8
) -> list[tuple[str, np.ndarray, np.ndarray | None, int]]:
    """The searches of a default run, as entry counts per photo."""
    whole = np.ones(n, np.int64)
    return [
        ("--near", whole, None, near),
        ("--near", whole * 7, whole, near),
        ("--crop", whole, whole * crops, 6),
    ]


def test_a_million_photos_compare_every_pair() -> None:
    scope = decide(_city(1_000_000), _all_searches(1_000_000), DedupOptions())
    assert scope.options.within_m is None and scope.options.everywhere
    assert scope.seconds <= MAX_SEARCH_SECONDS


def test_ten_million_photos_compare_nearby_photos_within_the_hour() -> None:
    """The searches refused at 10M before (crops 5.9 h predicted) now run, nearby."""
    n = 10_000_000
    scope = decide(_city(n), _all_searches(n), DedupOptions())
    assert scope.options.within_m == DEFAULT_WITHIN_M and not scope.options.everywhere
    assert scope.seconds <= MAX_SEARCH_SECONDS
    assert scope.to_dict()["compared"] == "nearby"


def test_refusals_say_what_to_change() -> None:
    n = 10_000_000
    with pytest.raises(UsageError) as everywhere:
        decide(_city(n), _all_searches(n), DedupOptions(everywhere=True))
    assert everywhere.value.hint is not None and "--within" in everywhere.value.hint
    with pytest.raises(UsageError) as no_gps:  # nothing to block by: every pair again
        decide(_city(n, share_without_gps=1.0), _all_searches(n), DedupOptions())
    assert no_gps.value.hint is not None and "--no-crops" in no_gps.value.hint
    wide_radius = DedupOptions(near_threshold=20, everywhere=True)
    with pytest.raises(UsageError, match="would take about") as wide:
        decide(_city(1_000_000), _all_searches(1_000_000, near=20), wide_radius)
    assert wide.value.hint is not None and "smaller --near" in wide.value.hint
    # left to decide, the same radius compares nearby photos instead
    scoped = decide(
        _city(1_000_000), _all_searches(1_000_000, near=20), DedupOptions(near_threshold=20)
    )
    assert scoped.options.within_m == DEFAULT_WITHIN_M


# --- hash lists as numbers --------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 2**64 - 1).map(lambda v: f"{v:016x}"),
            st.integers(0, 2**64 - 1).map(lambda v: f"{v:016X}"),
            st.text(max_size=20),
            st.none(),
        ),
        max_size=40,
    )
)
def test_hex_codes_parse_exactly_the_16_digit_hex_strings(values: list[str | None]) -> None:
    codes, ok = hex_codes(pa.array(values, pa.string()))
    for value, code, good in zip(values, codes.tolist(), ok.tolist(), strict=True):
        valid = (
            isinstance(value, str)
            and len(value) == 16
            and all(c in "0123456789abcdefABCDEF" for c in value)
        )
        assert good == valid
        if valid:
            assert code == int(value, 16)


def test_code_lists_keep_positions_and_drop_only_bad_entries() -> None:
    lists = [["00000000000000ff", "zz", "0000000000000001"], None, [], ["ffffffffffffffff"]]
    array = code_lists(pa.array(lists, pa.list_(pa.string())))
    frame = pd.DataFrame({"h": pd.Series(array.to_pylist())})
    frame["h"] = pd.Series(pd.arrays.ArrowExtensionArray(array))
    rows, positions, codes = flat_codes(frame.h)
    assert rows.tolist() == [0, 0, 3]
    assert positions.tolist() == [0, 2, 0]
    assert codes.tolist() == [255, 1, 2**64 - 1]
    # the same from Python lists of hex strings, as a hand-built frame has them
    rows2, positions2, codes2 = flat_codes(pd.Series(lists, dtype=object))
    assert (rows2.tolist(), positions2.tolist(), codes2.tolist()) == (
        rows.tolist(),
        positions.tolist(),
        codes.tolist(),
    )
    assert hex_to_u64(["00000000000000ff"]).tolist() == [255]


def _manifest_with_lists(path: Path, rows: int, per: int) -> list[list[bytes]]:
    rng = np.random.default_rng(rows)
    longs = [[rng.bytes(32) for _ in range(per)] for _ in range(rows)]
    longs[3] = [b"short"] * per  # a bad entry reads as unknown
    table = pa.table({"crop_phash256": pa.array(longs, pa.list_(pa.binary()))})
    pq.write_table(table, path, row_group_size=7)
    return longs


def test_listed_long_reads_exactly_the_entries_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    longs = _manifest_with_lists(path, 50, 4)
    rows = np.repeat(np.arange(50), 4)
    positions = np.tile(np.arange(4), 50)
    listed = ListedLong(ManifestSource.of(path), "crop_phash256", rows, positions)
    pick = np.array([0, 13, 12, 199, 14, 150, 151])
    got = listed[pick]
    for slot, entry in enumerate(pick):
        value = longs[rows[entry]][positions[entry]]
        if len(value) == 32:
            assert got[slot, 4] == 0
            assert got[slot, :4].tolist() == np.frombuffer(value, ">u8").tolist()
        else:
            assert got[slot, 4] == 1
    assert listed[np.array([], np.int64)].shape == (0, 5)


def test_listed_long_refuses_a_replaced_manifest(tmp_path: Path) -> None:
    path = tmp_path / "manifest.parquet"
    _manifest_with_lists(path, 10, 2)
    source = ManifestSource.of(path)
    _manifest_with_lists(tmp_path / "other.parquet", 11, 2)
    (tmp_path / "other.parquet").replace(path)
    listed = ListedLong(source, "crop_phash256", np.arange(10), np.zeros(10, np.int64))
    with pytest.raises(DatasetBusyError, match="replaced"):
        listed[np.array([1])]
