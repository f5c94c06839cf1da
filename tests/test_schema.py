"""Schemas: JSON files as the single source of truth, checked on write and read."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpskit.config import schemas_dir
from gpskit.errors import SchemaError
from gpskit.schema import (
    RowGroupReader,
    load_schema,
    read_table,
    table_writer,
    validate_table,
    write_table,
)


def test_manifest_schema_documents_every_field() -> None:
    schema = load_schema("manifest")
    assert schema.version >= 1
    for spec in schema.fields:
        assert spec.description, spec.name
    assert schema.arrow_schema().field("latitude").type == pa.float64()


def test_schema_files_are_valid_json() -> None:
    for path in schemas_dir().glob("*.json"):
        data = json.loads(path.read_text())
        assert {"name", "version", "description", "fields"} <= set(data), path


def _table(**overrides: list[object]) -> pa.Table:
    schema = load_schema("manifest")
    columns: dict[str, list[object]] = {f.name: [None] for f in schema.fields}
    columns.update(
        root=["/r"],
        path=["a.jpg"],
        file_size=[1],
        mtime_ns=[1],
        read_status=["ok"],
        has_exif=[False],
        gps_flags=[[]],
        unfit_tags=[[]],
        crop_hashes=[[]],
        dihedral_hashes=[[]],
        dihedral_phash256=[[]],
        crop_phash256=[[]],
        decoded=[False],
        status=["accepted"],
        reasons=[[]],
        warnings=[[]],
    )
    columns.update(overrides)
    return pa.Table.from_pydict(columns, schema=schema.arrow_schema())


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    schema = load_schema("manifest")
    write_table(_table(), tmp_path / "m.parquet", schema)
    assert read_table(tmp_path / "m.parquet", schema).num_rows == 1


def _rows(paths: list[str]) -> pa.Table:
    return pa.concat_tables([_table(path=[p]) for p in paths])


def test_pieces_written_one_at_a_time_read_back_as_one_table(tmp_path: Path) -> None:
    """A file written piece by piece holds exactly the pieces' rows, in row groups of
    the asked size, and a row group reader reads them back group by group."""
    schema = load_schema("manifest")
    names = [f"{i:03d}.jpg" for i in range(23)]
    with table_writer(tmp_path / "m.parquet", schema, row_group_rows=5, ordered=True) as write:
        for start in range(0, 23, 8):
            write(_rows(names[start : start + 8]))
    whole = read_table(tmp_path / "m.parquet", schema)
    assert whole.column("path").to_pylist() == names
    reader = RowGroupReader(tmp_path / "m.parquet", schema)
    assert reader.row_counts == [5, 3, 5, 3, 5, 2]  # pieces of 8 in groups of at most 5
    groups = [reader.read(i) for i in range(len(reader.row_counts))]
    assert pa.concat_tables(groups).equals(whole.replace_schema_metadata(None))
    only = reader.read(1, columns=["path"])
    assert only.column_names == ["path"] and only.num_rows == 3
    write_table(_rows(names), tmp_path / "one.parquet", schema)
    assert read_table(tmp_path / "one.parquet", schema).equals(whole)


def test_ordered_pieces_must_rise_across_pieces(tmp_path: Path) -> None:
    """Keys repeated or out of order across pieces are refused (each piece is checked
    alone, so only the boundary can hide them), and the earlier file stays."""
    schema = load_schema("manifest")
    target = tmp_path / "m.parquet"
    write_table(_rows(["keep.jpg"]), target, schema)
    for second in (["b.jpg", "c.jpg"], ["a.jpg"]):
        with (
            pytest.raises(SchemaError, match="out of order or repeated"),
            table_writer(target, schema, ordered=True) as write,
        ):
            write(_rows(["a.jpg", "b.jpg"]))
            write(_rows(second))
        assert read_table(target, schema).column("path").to_pylist() == ["keep.jpg"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*tmp"))


def test_enum_and_nulls_checked_on_write(tmp_path: Path) -> None:
    schema = load_schema("manifest")
    target = tmp_path / "m.parquet"
    with pytest.raises(SchemaError, match="status"):
        write_table(_table(status=["maybe"]), target, schema)
    assert not target.exists()
    bad = _table().set_column(1, pa.field("path", pa.string()), pa.array([None], pa.string()))
    with pytest.raises(SchemaError, match="nulls"):
        write_table(bad, target, schema)
    assert not target.exists()
    with pytest.raises(SchemaError, match="status"):
        validate_table(_table(status=["maybe"]), schema, where="t")


def test_primary_key_checked_on_write(tmp_path: Path) -> None:
    schema = load_schema("manifest")
    assert schema.primary_key == ("root", "path")
    twice = pa.concat_tables([_table(), _table()])
    target = tmp_path / "m.parquet"
    with pytest.raises(SchemaError, match="primary key"):
        write_table(twice, target, schema)
    assert not target.exists()
    other = pa.concat_tables([_table(), _table(path=["b.jpg"])])
    write_table(other, target, schema)
    assert read_table(target, schema).num_rows == 2


def test_every_schema_declares_a_primary_key_of_its_own_columns() -> None:
    for path in schemas_dir().glob("*.json"):
        schema = load_schema(path.stem)
        assert schema.primary_key, path
        assert set(schema.primary_key) <= set(schema.names), path


def test_python_enums_match_the_schemas() -> None:
    """Values listed in Python and declared in schemas/*.json are the same values."""
    from gpskit import checks
    from gpskit.dedup.groups import KINDS
    from gpskit.dedup.links import LINKS, MATCHES
    from gpskit.geo import SECTORS
    from gpskit.split import SPLIT_NAMES, SplitName

    duplicates, overlap = load_schema("duplicates"), load_schema("overlap")
    assert set(MATCHES) == set(duplicates.enum("match"))
    assert set(overlap.enum("match")) <= set(MATCHES)
    assert duplicates.enum("kind") == KINDS
    assert {link.kind for link in LINKS} == set(KINDS)
    assert set(overlap.enum("kind")) <= set(KINDS)
    assert load_schema("coverage").enum("heading_sector") == SECTORS
    assert tuple(s.value for s in SplitName) == SPLIT_NAMES == load_schema("split").enum("split")
    read_statuses = {v for k, v in vars(checks).items() if k.startswith("READ_")}
    assert read_statuses == set(load_schema("manifest").enum("read_status"))


def test_foreign_parquet_refused(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(SchemaError, match="not a gpskit manifest"):
        read_table(tmp_path / "other.parquet", load_schema("manifest"))


@pytest.mark.slow
def test_wheel_ships_schemas_and_regions(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(root),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("gpskit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gpskit/_bundled/schemas/manifest.json" in names
    assert any(n.startswith("gpskit/_bundled/regions/") for n in names) or not any(
        (root / "regions").glob("*.geojson")
    )


def test_older_version_reads_as_current_with_new_columns_empty(tmp_path: Path) -> None:
    """A v1 manifest (before unfit_tags) reads as the current version."""
    import pyarrow.parquet as pq

    schema = load_schema("manifest")
    added = [f.name for f in schema.fields if f.since > 1]
    assert "unfit_tags" in added
    table = _table().drop_columns(added)
    meta = {b"gpskit.schema": json.dumps({"name": "manifest", "version": 1}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "v1.parquet")
    upgraded = read_table(tmp_path / "v1.parquet", schema)
    assert upgraded.column_names == schema.names
    assert upgraded.column("unfit_tags").to_pylist() == [[]]
    only = read_table(tmp_path / "v1.parquet", schema, columns=["path", "unfit_tags"])
    assert only.column_names == ["path", "unfit_tags"]
    group = RowGroupReader(tmp_path / "v1.parquet", schema).read(0)
    assert group.column_names == schema.names and group.column("unfit_tags").to_pylist() == [[]]
    meta = {b"gpskit.schema": json.dumps({"name": "manifest", "version": 99}).encode()}
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "v99.parquet")
    with pytest.raises(SchemaError, match="version 99"):
        read_table(tmp_path / "v99.parquet", schema)


def test_coercion_makes_any_value_fit_or_empty() -> None:
    from datetime import datetime, timedelta, timezone

    from gpskit.schema import coerce_row

    schema = load_schema("manifest")
    row: dict[str, object] = {
        "orientation": 36865,  # > int16
        "altitude_ref": -3,  # fits int16
        "width": True,  # a bool is no width
        "latitude": float("nan"),
        "longitude": float("inf"),
        "make": "Ca\udcffnon",  # a lone surrogate: not UTF-8
        "model": b"Pixel \xff",
        "software": 17,  # not a string
        "gps_timestamp": datetime(2024, 1, 1),  # naive: no zone to place it
        "datetime_original_utc": datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=9))),
        "gps_flags": "not a list",
        "status": "maybe",  # outside the enum
    }
    unfit = coerce_row(row, schema)
    assert set(unfit) == {
        "orientation", "width", "latitude", "longitude", "software", "gps_timestamp",
        "datetime_original_utc", "gps_flags", "status",
    }  # fmt: skip
    assert row["altitude_ref"] == -3
    assert row["make"] == "Ca?non" and row["model"] == "Pixel \ufffd"
    assert row["gps_flags"] == [] and row["orientation"] is None


@settings(max_examples=40, deadline=None)
@given(
    pieces=st.lists(
        st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=4, unique=True).map(sorted),
        min_size=1,
        max_size=4,
    )
)
def test_ordered_writer_accepts_exactly_rising_keys(
    tmp_path_factory: Any, pieces: list[list[str]]
) -> None:
    """Pieces each sorted, in any order: written when the keys rise strictly through the
    whole file, refused (and nothing written) otherwise."""
    schema = load_schema("manifest")
    target = tmp_path_factory.mktemp("ordered") / "m.parquet"
    names = [name for piece in pieces for name in piece]
    rising = all(a < b for a, b in itertools.pairwise(names))
    try:
        with table_writer(target, schema, ordered=True) as write:
            for piece in pieces:
                write(_rows([f"{n}.jpg" for n in piece]))
    except SchemaError:
        assert not rising and not target.exists()
    else:
        assert rising
        assert read_table(target, schema).column("path").to_pylist() == [f"{n}.jpg" for n in names]
