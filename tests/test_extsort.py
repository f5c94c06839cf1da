"""Sorted runs spilled to disk and merged: the order and the rows any input gives back."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpskit import extsort

_SCHEMA = pa.schema([(extsort.KEY, pa.string()), ("newest", pa.int64()), ("value", pa.int64())])
_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=6)


def _table(rows: list[tuple[str, int, int]]) -> pa.Table:
    columns: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [(), (), ()]
    return pa.table(dict(zip(_SCHEMA.names, columns, strict=True)), schema=_SCHEMA)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(_TEXT, st.integers(0, 5), st.integers(-(2**63), 2**63 - 1)), max_size=60
    ),
    pieces=st.integers(1, 7),
    run_rows=st.sampled_from([1, 2, 7, 10_000]),
    spill_batch=st.sampled_from([1, 3, 4096]),
    newest=st.booleans(),
)
def test_sorter_gives_every_key_once_in_order_whatever_the_runs(
    rows: list[tuple[str, int, int]],
    pieces: int,
    run_rows: int,
    spill_batch: int,
    newest: bool,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any keys (any Unicode, repeated), added in any pieces, spilled in runs of any size
    and read back in batches of any size: each key once, in the order Python sorts them,
    the row kept being the newest one."""
    monkeypatch.setattr(extsort, "SPILL_BATCH", spill_batch)
    folder = tmp_path_factory.mktemp("runs")
    sorter = extsort.RunSorter(
        folder, _SCHEMA, run_rows=run_rows, newest="newest" if newest else None
    )
    step = max(1, len(rows) // pieces)
    for start in range(0, len(rows), step):
        sorter.add(_table(rows[start : start + step]))
        assert sorter.pending_rows < run_rows  # memory holds less than a run; the rest is on disk
    merged = pa.concat_tables([_SCHEMA.empty_table(), *sorter.merged()])
    keys = merged[extsort.KEY].to_pylist()
    assert keys == sorted({key for key, _, _ in rows})
    if newest:
        best = {key: max(n for k, n, _ in rows if k == key) for key in keys}
        assert merged["newest"].to_pylist() == [best[key] for key in keys]
    given_rows = set(rows)
    assert all(row in given_rows for row in zip(*merged.to_pydict().values(), strict=True))
    assert len(sorter.runs) <= -(-len(rows) // run_rows)


@given(
    pairs=st.lists(
        st.tuples(_TEXT.filter(lambda root: "\x00" not in root), _TEXT), min_size=1, max_size=30
    )
)
def test_sort_key_orders_as_the_root_and_path_pair(pairs: list[tuple[str, str]]) -> None:
    """Joined with a NUL, (root, path) sorts as the pair: a root that is a prefix of
    another (``/p`` and ``/p/a``, ``/p`` and ``/p-2``) sorts first whatever the paths."""
    keys = extsort.sort_key(pa.array([r for r, _ in pairs]), pa.array([p for _, p in pairs]))
    by_key = sorted(range(len(pairs)), key=lambda i: keys[i].as_py())
    assert [pairs[i] for i in by_key] == sorted(pairs)


@settings(max_examples=60, deadline=None)
@given(
    streams=st.lists(
        st.lists(st.text("abc", max_size=3), max_size=15).map(lambda k: sorted(set(k))),
        min_size=1,
        max_size=4,
    ),
    batch=st.integers(1, 4),
)
def test_aligned_streams_meet_at_the_same_keys(streams: list[list[str]], batch: int) -> None:
    """Sorted streams cut in any batches: each step's parts cover the same stretch of
    keys, so a key in several streams is in one step; every row once, in order."""

    def batches(keys: list[str]) -> list[pa.Table]:
        return [
            _table([(k, 0, 0) for k in keys[i : i + batch]]) for i in range(0, len(keys), batch)
        ]

    seen: list[list[str]] = [[] for _ in streams]
    last_step_max = None
    for parts in extsort.aligned([batches(s) for s in streams]):
        step_keys = set()
        for i, part in enumerate(parts):
            if part is not None:
                seen[i] += part[extsort.KEY].to_pylist()
                step_keys |= set(part[extsort.KEY].to_pylist())
        assert step_keys
        if last_step_max is not None:
            assert min(step_keys) > last_step_max
        last_step_max = max(step_keys)
    assert seen == streams


def test_run_file_finds_a_row_by_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written in pieces of any size come back in batches of exactly SPILL_BATCH, so
    row i is found without reading the rows before it."""
    monkeypatch.setattr(extsort, "SPILL_BATCH", 4)
    with extsort.RunWriter(tmp_path, _SCHEMA) as out:
        for size in (3, 1, 6, 0, 5):
            start = out.rows + sum(t.num_rows for t in out._buffer)
            out.write(_table([(f"k{i:03d}", 0, i) for i in range(start, start + size)]))
    run = extsort.RunFile(out.path)
    assert len(run) == 15
    for row in range(15):
        number, offset = run.locate(row)
        assert run.batch(number)["value"][offset].as_py() == row
    assert [t.num_rows for t in run.batches()] == [4, 4, 4, 3]
