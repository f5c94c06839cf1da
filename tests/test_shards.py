"""Journal shards and gathering rows from Parquet files a row group at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpskit.schema import load_schema, read_table, write_table
from gpskit.shards import RowGather, ShardWriter, read_shards

SCHEMA = load_schema("manifest")


def _rows(names: list[str]) -> list[dict[str, object]]:
    return [
        {
            "root": "/r", "path": name, "file_size": i, "mtime_ns": 1,
            "read_status": "ok", "has_exif": False, "decoded": False, "status": "accepted",
            "reasons": [], "warnings": [], "gps_flags": [], "unfit_tags": [],
            "crop_hashes": [], "dihedral_hashes": [], "dihedral_phash256": [],
            "crop_phash256": [],
        }
        for i, name in enumerate(names)
    ]  # fmt: skip


def _files(folder: Path, sizes: list[int], group: int) -> tuple[list[Path], list[pa.Table]]:
    """Manifest files of the given row counts, in row groups of ``group`` rows."""
    paths, tables = [], []
    for n, size in enumerate(sizes):
        rows = _rows([f"f{n}-{i:04d}.jpg" for i in range(size)])
        arrow = pa.Table.from_pylist(rows, schema=SCHEMA.arrow_schema())
        path = folder / f"file{n}.parquet"
        write_table(arrow, path, SCHEMA, row_group_rows=group)
        paths.append(path)
        tables.append(read_table(path, SCHEMA).replace_schema_metadata(None))
    return paths, tables


@pytest.fixture(scope="module")
def three_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[pa.Table]]:
    return _files(tmp_path_factory.mktemp("gather"), [40, 7, 25], group=6)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    cache_rows=st.sampled_from([1, 6, 10_000]),
    open_readers=st.sampled_from([1, 2, 64]),
)
def test_gather_returns_the_asked_rows_in_the_asked_order(
    three_files: tuple[list[Path], list[pa.Table]],
    data: st.DataObject,
    cache_rows: int,
    open_readers: int,
) -> None:
    """Any (file, row) requests, repeated or not, in any order, with a cache so small that
    row groups are evicted and read again, and room for as few as one open reader: the
    same rows a whole-table take gives."""
    paths, tables = three_files
    picks = data.draw(
        st.lists(
            st.integers(0, 2).flatmap(
                lambda f: st.tuples(st.just(f), st.integers(0, [40, 7, 25][f] - 1))
            ),
            max_size=80,
        )
    )
    gather = RowGather(paths, SCHEMA, cache_bytes=cache_rows * 200)
    gather.MAX_READERS = open_readers
    got = gather.take([f for f, _ in picks], [r for _, r in picks])
    want = [tables[f].slice(r, 1).to_pylist()[0] for f, r in picks]
    assert got.to_pylist() == want
    assert len(gather.readers) <= open_readers
    assert got.schema.equals(SCHEMA.arrow_schema())


def test_gather_reads_each_row_group_once_in_file_order(
    three_files: tuple[list[Path], list[pa.Table]],
) -> None:
    """Rows asked for in file order, a step at a time (as the manifest is assembled),
    read every row group once, with room for only a few."""
    paths, _ = three_files
    gather = RowGather(paths, SCHEMA, cache_bytes=1)
    source = np.repeat([0, 1, 2], [40, 7, 25])
    row = np.concatenate([np.arange(40), np.arange(7), np.arange(25)])
    for start in range(0, len(row), 9):
        gather.take(source[start : start + 9], row[start : start + 9])
    assert gather.reads == 7 + 2 + 5  # ceil(40/6) + ceil(7/6) + ceil(25/6)


def test_shard_writer_rows_read_back(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path / "j", SCHEMA, rows=3)
    for row in _rows([f"{i}.jpg" for i in range(7)]):
        writer.add(row)
    writer.flush()
    assert len(writer.written) == 3
    assert [r["path"] for r in read_shards(tmp_path / "j", SCHEMA)] == [
        f"{i}.jpg" for i in range(7)
    ]
