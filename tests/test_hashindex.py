"""Hamming-radius search: exact against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpskit.hashindex import cross_join, hex_to_u64, self_join


def brute_pairs(a: np.ndarray, b: np.ndarray, radius: int, same: bool) -> set[tuple[int, int]]:
    d = np.bitwise_count(a[:, None] ^ b[None, :])
    i, j = np.nonzero(d <= radius)
    return {(x, y) for x, y in zip(i.tolist(), j.tolist(), strict=False) if not same or x < y}


def planted(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)
    copies = base[: n // 4].copy()
    for i in range(len(copies)):
        for bit in rng.choice(64, int(rng.integers(0, 12)), replace=False):
            copies[i] ^= np.uint64(1) << np.uint64(bit)
    return np.concatenate([base, copies])


@pytest.mark.parametrize("radius", [0, 2, 5, 8, 11])
def test_self_join_matches_brute_force(radius: int) -> None:
    codes = planted(400, seed=radius)
    a, b, d = self_join(codes, radius)
    assert set(zip(a.tolist(), b.tolist(), strict=False)) == brute_pairs(
        codes, codes, radius, same=True
    )
    assert (d <= radius).all()


@pytest.mark.parametrize("radius", [0, 6, 8])
def test_cross_join_matches_brute_force(radius: int) -> None:
    codes = planted(400, seed=10 + radius)
    queries, index = codes[::2], codes[1::2]
    a, b, _ = cross_join(queries, index, radius)
    assert set(zip(a.tolist(), b.tolist(), strict=False)) == brute_pairs(
        queries, index, radius, same=False
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=0, max_size=60), st.integers(0, 9))
def test_self_join_property(values: list[int], radius: int) -> None:
    codes = np.array(values, dtype=np.uint64)
    a, b, _ = self_join(codes, radius)
    assert set(zip(a.tolist(), b.tolist(), strict=False)) == brute_pairs(
        codes, codes, radius, same=True
    )


def test_duplicates_of_one_value_all_paired() -> None:
    codes = np.full(50, 12345, dtype=np.uint64)
    a, _, _ = self_join(codes, 0)
    assert len(a) == 50 * 49 // 2


def test_hex_to_u64() -> None:
    assert hex_to_u64(["ffffffffffffffff", "0000000000000001"]).tolist() == [2**64 - 1, 1]


@pytest.mark.parametrize("shape", ["few queries", "many queries"])
@pytest.mark.parametrize("radius", [2, 8, 13, 20])
def test_cross_join_exact_whatever_the_sizes(shape: str, radius: int) -> None:
    """Both strategies (probing the smaller side, filing both sides) and brute force."""
    codes = planted(600, seed=radius)
    small, large = codes[:60], codes[60:]
    queries, index = (small, large) if shape == "few queries" else (large, small)
    a, b, d = cross_join(queries, index, radius)
    assert set(zip(a.tolist(), b.tolist(), strict=False)) == brute_pairs(
        queries, index, radius, same=False
    )
    assert (d <= radius).all()


def test_clustered_codes_give_each_pair_once() -> None:
    """Thousands of near-identical views: tight clusters, every pair in a cluster near."""
    rng = np.random.default_rng(3)
    centres = rng.integers(0, 2**64 - 1, size=20, dtype=np.uint64)
    codes = np.repeat(centres, 30)
    for _ in range(3):
        codes ^= np.left_shift(np.uint64(1), rng.integers(0, 64, len(codes)).astype(np.uint64))
    a, b, _ = self_join(codes, 8)
    pairs = list(zip(a.tolist(), b.tolist(), strict=False))
    assert len(pairs) == len(set(pairs))
    assert set(pairs) == brute_pairs(codes, codes, 8, same=True)


def test_plan_is_bounded_and_picks_brute_force_where_it_pays() -> None:
    from gpskit.hashindex import estimate_seconds, plan

    assert plan(1_000_000, 1_000_000, 8).blocks and not plan(100, 100, 8).blocks
    assert plan(100_000, 100_000, 30).brute_force  # no block split pays off
    assert estimate_seconds(1_000_000, 1_000_000, 20) > estimate_seconds(1_000_000, 1_000_000, 8)
