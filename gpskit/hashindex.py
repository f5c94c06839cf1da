"""Exact Hamming-radius search over 64-bit hashes, with bounded time and memory.

Multi-index hashing (Norouzi et al.): split the 64 bits into ``m`` blocks so that two codes
within radius ``r`` agree, by pigeonhole, to within 2 bits on at least one block
(``m = max(3, ceil((r + 1) / 3))``). Per block:

- codes are grouped by their block value (real collections hold thousands of
  near-identical views of one place, so many codes share a value);
- codes with equal values are paired within their group (block distance 0);
- distinct values within 1 or 2 bits are found by filing each value under itself and
  its 1-bit flips and sorting: two values 1 or 2 bits apart share a key, and of the two
  keys they share only one (a fixed rule on the flipped bits) counts, so each value pair
  is met once;
- every pair of codes behind a value pair is a candidate, checked by popcount, and kept
  only in the first block where it agrees to within 2 bits (and, in a self-join, from its
  lower row): no pair is produced twice, so nothing needs de-duplicating afterwards.

Candidates are expanded and checked in chunks of at most ``CHUNK`` pairs, so memory is the
filed keys (22 per distinct block value), one chunk, and the pairs found. The work is the
sort of the filed keys plus the candidate pairs: for uniform codes ``n² · m · 232 / 2^21``,
for clustered ones about the true pairs times the blocks they agree on.

Larger radii need more, narrower blocks and so more candidates; where that costs more than
comparing every pair, a blocked brute force runs instead (``n²`` popcounts, bounded
memory). :func:`estimate_seconds` predicts either, so a caller can refuse a radius that
would take too long on its collection before starting.

Why not faiss: ``faiss.IndexBinaryMultiHash`` took over 70 s for a 1M self-join here and
adds a 30 MB binary dependency (``benchmarks/bench_dedup.py`` has the figures).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import ceil, comb

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

#: Most candidate pairs held at once (about 40 bytes each in flight).
CHUNK = 4_000_000
#: Seconds per filed key (sorting), per candidate pair and per brute-force comparison,
#: measured on the 2-core reference machine (``benchmarks/bench_dedup.py``).
_KEY_S, _CANDIDATE_S, _BRUTE_S, _PROBE_S = 70e-9, 40e-9, 4e-9, 8e-9


def hex_to_u64(hashes: Sequence[str]) -> U64:
    """16-digit hex strings to uint64 (one parse of all of them)."""
    if not len(hashes):
        return np.empty(0, np.uint64)
    return np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8").astype(np.uint64)


def hamming_u64(a: U64, b: U64) -> npt.NDArray[np.uint8]:
    """Bitwise Hamming distance of uint64 arrays."""
    result: npt.NDArray[np.uint8] = np.bitwise_count(a ^ b)
    return result


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """How a join runs: over ``blocks`` (start, width), or by brute force (no blocks)."""

    blocks: tuple[tuple[int, int], ...]
    seconds: float  # predicted, for uniform codes

    @property
    def brute_force(self) -> bool:
        return not self.blocks


def _split(m: int) -> tuple[tuple[int, int], ...]:
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    return tuple((int(s), w) for s, w in zip(starts, widths, strict=True))


def plan(n_queries: int, n_index: int, radius: int) -> Plan:
    """The cheaper exact way to find every pair within ``radius``: blocks or brute force."""
    if not 0 <= radius <= 64:
        raise ValueError("radius must be between 0 and 64")
    brute = Plan((), _BRUTE_S * n_queries * n_index)
    m = max(3, ceil((radius + 1) / 3))
    if m > 21:
        return brute
    blocks = _split(m)
    keys = sum(22 * (n_queries + n_index) for _ in blocks)
    near = sum((1 + w + comb(w, 2)) / 2**w for _, w in blocks)
    seconds = _KEY_S * keys + _CANDIDATE_S * n_queries * n_index * min(1.0, near)
    return Plan(blocks, seconds) if seconds < brute.seconds else brute


def estimate_seconds(n_queries: int, n_index: int, radius: int) -> float:
    """Predicted time of a join on this machine class (uniform codes; clustered codes add
    their true pairs)."""
    return plan(n_queries, n_index, radius).seconds


# --- one block ------------------------------------------------------------------------------


def _block(codes: U64, start: int, width: int) -> I64:
    shifted = (codes >> np.uint64(start)) & np.uint64((1 << width) - 1)
    return shifted.astype(np.int64)


@dataclass
class _Groups:
    """Codes grouped by block value: value k's rows are ``rows[starts[k]:starts[k+1]]``."""

    values: I64  # distinct values, sorted
    rows: I64
    starts: I64
    sizes: I64
    single: bool  # every value held by one code (no expansion needed)

    @classmethod
    def of(cls, blocks: I64) -> _Groups:
        # 32-bit keys sort about twice as fast; order within a group does not matter
        order = np.argsort(blocks.astype(np.int32)).astype(np.int64)
        ordered = blocks[order]
        first = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        starts = np.concatenate([first, [len(order)]]).astype(np.int64)
        sizes = np.diff(starts)
        values = ordered[first] if len(ordered) else ordered
        return cls(values, order, starts, sizes, bool((sizes == 1).all()))


def _runs(keys: I64) -> tuple[I64, I64]:
    """Sorted order of ``keys`` and, per position in it, how many equal keys follow."""
    order = np.argsort(keys.astype(np.int32))
    ordered = keys[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    lengths = np.diff(np.concatenate([starts, [len(keys)]]))
    position = np.arange(len(keys)) - np.repeat(starts, lengths)
    return order.astype(np.int64), np.repeat(lengths, lengths) - position - 1


def _file(values: I64, width: int) -> tuple[I64, npt.NDArray[np.int8], I64]:
    """Each value under itself and its 1-bit flips, in key order: owner (value index) and
    flipped bit (-1 for none) of each filed entry, and how many equal keys follow it."""
    flips = np.concatenate([[-1], np.arange(width)]).astype(np.int8)
    masks = np.concatenate([[0], 1 << np.arange(width)]).astype(np.int64)
    keys = (values[:, None] ^ masks[None, :]).ravel()
    order, after = _runs(keys)
    owners: I64 = (order // len(masks)).astype(np.int32)  # half the bytes to gather
    return owners, flips[order % len(masks)], after


def _value_pairs(left: I64, right: I64 | None, width: int) -> Iterator[tuple[I64, I64]]:
    """Pairs (index into left, index into right) of distinct values 1 or 2 bits apart, each
    once. ``right`` None: pairs within ``left`` (lower index first)."""
    n_left = len(left)
    values = left if right is None else np.concatenate([left, right])
    owners, flips, after = _file(values, width)
    active = np.flatnonzero(after > 0)
    step = 1
    while active.size:
        a, b = owners[active], owners[active + step]
        fa, fb = flips[active], flips[active + step]
        # entries sharing a key belong to distinct values within 2 bits of each other; two
        # values 1 bit apart meet at either value: count the meeting at the lower one (its
        # entry unflipped); 2 bits apart they meet twice, both flipped: count the one where
        # the lower value's flipped bit is the lower bit
        low_first = a < b
        f_low, f_high = np.where(low_first, fa, fb), np.where(low_first, fb, fa)
        keep = (f_high >= 0) & (f_low < f_high)
        if right is not None:
            keep &= (a < n_left) != (b < n_left)  # one from each side
        if keep.any():
            a, b, low_first = a[keep], b[keep], low_first[keep]
            lo, hi = np.where(low_first, a, b), np.where(low_first, b, a)
            yield lo.astype(np.int64), hi.astype(np.int64) - (0 if right is None else n_left)
        active = active[after[active] > step]
        step += 1


def _expand(left: _Groups, right: _Groups, a: I64, b: I64) -> Iterator[tuple[I64, I64]]:
    """Every (left row, right row) behind value pairs (a, b), in chunks."""
    if left.single and right.single:  # distinct values, one code each: nothing to expand
        yield left.rows[left.starts[a]], right.rows[right.starts[b]]
        return
    sa, sb = left.sizes[a], right.sizes[b]
    counts = sa * sb
    total = np.cumsum(counts)
    lo = 0
    while lo < len(a):
        base = total[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(total, base + CHUNK, side="right")))
        c = counts[lo:hi]
        pair = np.repeat(np.arange(lo, hi), c)
        offset = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        width = sb[pair]
        yield (
            left.rows[left.starts[a[pair]] + offset // width],
            right.rows[right.starts[b[pair]] + offset % width],
        )
        lo = hi


def _same_value_pairs(groups: _Groups) -> Iterator[tuple[I64, I64]]:
    """Every pair of rows within each group of equal values (self-join, block distance 0)."""
    sizes = groups.sizes
    position = np.arange(len(groups.rows)) - np.repeat(groups.starts[:-1], sizes)
    after = np.repeat(sizes, sizes) - position - 1
    active = np.flatnonzero(after > 0)
    step = 1
    while active.size:
        for lo in range(0, active.size, CHUNK):
            part = active[lo : lo + CHUNK]
            yield groups.rows[part], groups.rows[part + step]
        active = active[after[active] > step]
        step += 1


def _candidates(
    queries: U64, index: U64, start: int, width: int, self_join: bool
) -> Iterator[tuple[I64, I64]]:
    """(query row, index row) pairs whose block differs in at most 2 bits, each once."""
    q_groups = _Groups.of(_block(queries, start, width))
    if self_join:
        yield from _same_value_pairs(q_groups)
        for a, b in _value_pairs(q_groups.values, None, width):
            yield from _expand(q_groups, q_groups, a, b)
        return
    i_groups = _Groups.of(_block(index, start, width))
    n_q, n_i = len(q_groups.values), len(i_groups.values)
    if _probing_pays(min(n_q, n_i), max(n_q, n_i)):
        if n_q <= n_i:
            for a, b in _probed_value_pairs(q_groups.values, i_groups.values, width):
                yield from _expand(q_groups, i_groups, a, b)
        else:  # probe from the index side, the smaller one
            for b, a in _probed_value_pairs(i_groups.values, q_groups.values, width):
                yield from _expand(q_groups, i_groups, a, b)
        return
    a = np.flatnonzero(np.isin(q_groups.values, i_groups.values))
    b = np.searchsorted(i_groups.values, q_groups.values[a])
    yield from _expand(q_groups, i_groups, a, b)
    for a, b in _value_pairs(q_groups.values, i_groups.values, width):
        yield from _expand(q_groups, i_groups, a, b)


def _probing_pays(n_queries: int, n_index: int) -> bool:
    """Probing every 2-bit neighbour of the fewer values beats filing both sides' 1-bit
    flips when one side is much smaller (a photo's hash against its 18 crop hashes)."""
    return 232 * _PROBE_S * n_queries < 22 * _KEY_S * (n_queries + n_index)


@functools.cache
def _probe_masks(width: int) -> I64:
    """Every mask of 0, 1 or 2 bits of ``width``."""
    masks = [
        sum(1 << b for b in bits)
        for k in range(3)
        for bits in itertools.combinations(range(width), k)
    ]
    return np.array(masks, np.int64)


def _probed_value_pairs(left: I64, right: I64, width: int) -> Iterator[tuple[I64, I64]]:
    """(index into left, index into right) of values within 2 bits, by probing each left
    value's neighbours in a direct-address table of the right values (sorted, distinct),
    all of a slice of left values' neighbours at once (up to ``CHUNK`` probes)."""
    slot = np.full(1 << width, -1, np.int32)
    slot[right] = np.arange(len(right), dtype=np.int32)
    masks = _probe_masks(width)
    step = max(1, CHUNK // len(masks))
    for lo in range(0, len(left), step):
        found = slot[left[lo : lo + step, None] ^ masks[None, :]]
        rows, probes = np.nonzero(found >= 0)
        if rows.size:
            yield rows.astype(np.int64) + lo, found[rows, probes].astype(np.int64)


# --- joins ----------------------------------------------------------------------------------


def _agree_earlier(
    xor: U64, blocks: tuple[tuple[int, int], ...], current: int
) -> npt.NDArray[np.bool_]:
    """True where a block before ``current`` agrees within 2 bits (found there already)."""
    found = np.zeros(len(xor), bool)
    for start, width in blocks[:current]:
        found |= np.bitwise_count(_block(xor, start, width)) <= 2
    return found


def _join(queries: U64, index: U64, radius: int, self_join: bool) -> Iterator[tuple[I64, I64]]:
    """Every (query, index) pair within ``radius``, once, in chunks."""
    choice = plan(len(queries), len(index), radius)
    if choice.brute_force:
        yield from _brute_force(queries, index, radius, self_join)
        return
    for number, (start, width) in enumerate(choice.blocks):
        for q, i in _candidates(queries, index, start, width, self_join):
            if self_join:
                q, i = np.minimum(q, i), np.maximum(q, i)
            xor = queries[q] ^ index[i]
            keep = np.bitwise_count(xor) <= radius
            if number:
                keep &= ~_agree_earlier(xor, choice.blocks, number)
            if keep.any():
                yield q[keep], i[keep]


def _brute_force(
    queries: U64, index: U64, radius: int, self_join: bool
) -> Iterator[tuple[I64, I64]]:
    """Every pair compared, a block of queries at a time (bounded memory)."""
    step = max(1, CHUNK // max(1, len(index)))
    for lo in range(0, len(queries), step):
        block = queries[lo : lo + step]
        near = np.bitwise_count(block[:, None] ^ index[None, :]) <= radius
        if self_join:
            rows = np.arange(lo, lo + len(block))[:, None]
            near &= rows < np.arange(len(index))[None, :]
        q, i = np.nonzero(near)
        if len(q):
            yield (q + lo).astype(np.int64), i.astype(np.int64)


def _collect(
    parts: Iterator[tuple[I64, I64]], left: U64, right: U64
) -> tuple[I64, I64, npt.NDArray[np.uint8]]:
    found = list(parts)
    if not found:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.uint8)
    a = np.concatenate([f[0] for f in found])
    b = np.concatenate([f[1] for f in found])
    found.clear()
    return a, b, hamming_u64(left[a], right[b])


def self_join(codes: U64, radius: int) -> tuple[I64, I64, npt.NDArray[np.uint8]]:
    """All pairs (i < j) with Hamming distance <= radius, and their distances (in a fixed
    order for the same input)."""
    return _collect(_join(codes, codes, radius, self_join=True), codes, codes)


def cross_join(queries: U64, index: U64, radius: int) -> tuple[I64, I64, npt.NDArray[np.uint8]]:
    """All (query i, index j) pairs with Hamming distance <= radius, and their distances."""
    if not len(queries) or not len(index):
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.uint8)
    return _collect(_join(queries, index, radius, self_join=False), queries, index)
