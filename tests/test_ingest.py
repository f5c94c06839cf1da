"""Ingest: every file recorded, the right reasons, incremental re-runs, atomic writes."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpskit import checks, extsort
from gpskit.coverage import coverage
from gpskit.dataset import Dataset
from gpskit.dedup import dedup
from gpskit.errors import InputError, SchemaError
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.ingest import assemble as ingest_assemble
from gpskit.ingest import find as ingest_find
from gpskit.ingest import plan as ingest_plan
from gpskit.ingest import read as ingest_read
from gpskit.pool import CRASHED, TIMED_OUT, Outcome

from .helpers import (
    REASON_FILES,
    good_exif,
    kill_ingest_half_way,
    photo,
    write_photos,
    write_reason_set,
)

FAST = IngestOptions(workers=2)


def _manifest(dataset: Path) -> pd.DataFrame:
    return pd.read_parquet(dataset / "manifest.parquet").set_index("path")


def test_one_reason_per_defect(reason_set: Path, tmp_path: Path) -> None:
    report = ingest([reason_set], tmp_path / "ds", FAST)
    frame = _manifest(tmp_path / "ds")
    assert report.files == len(REASON_FILES) == len(frame)
    for name, code in REASON_FILES.items():
        reasons = list(frame.loc[name, "reasons"])
        if code is None:
            assert frame.loc[name, "status"] == "accepted", (name, reasons)
        else:
            assert reasons == [code], name
            assert frame.loc[name, "status"] == "rejected"
    assert report.accepted == 1
    assert report.reasons["no_gps"] == 1


def test_good_photo_row(reason_set: Path, tmp_path: Path) -> None:
    ingest([reason_set / "good.jpg"], tmp_path / "ds", FAST)
    table = Dataset(tmp_path / "ds").load_manifest()
    row = table.to_pylist()[0]
    assert row["root"] == str(reason_set.resolve())
    assert row["path"] == "good.jpg"
    assert row["format"] == "JPEG"
    assert (row["width"], row["height"]) == (320, 240)
    assert row["latitude"] == pytest.approx(39.9515) and row["longitude"] == pytest.approx(-75.191)
    assert len(row["sha256"]) == 64 and len(row["phash"]) == 16 and row["decoded"]
    assert table.schema.field("latitude").type == "double"


def test_formats_detected_from_content(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    img = photo()
    save_photo(img, photos / "a.heic", good_exif(latitude=-33.9, longitude=18.4))
    save_photo(img, photos / "b.png", good_exif())
    save_photo(img, photos / "c.webp", good_exif())
    save_photo(img, photos / "d.tif", good_exif())
    save_photo(img, photos / "UPPER.JPG", good_exif())
    save_photo(img, photos / "png_named.jpg", good_exif(), fmt="PNG")
    ingest([photos], tmp_path / "ds", FAST)
    frame = _manifest(tmp_path / "ds")
    assert frame["format"].to_dict() == {
        "UPPER.JPG": "JPEG",
        "a.heic": "HEIF",
        "b.png": "PNG",
        "c.webp": "WEBP",
        "d.tif": "TIFF",
        "png_named.jpg": "PNG",
    }
    assert (frame["status"] == "accepted").all(), frame["reasons"].to_dict()
    assert frame.loc["a.heic", "latitude"] == pytest.approx(-33.9)


def test_rerun_is_incremental_and_identical(tmp_path: Path) -> None:
    photos = write_reason_set(tmp_path / "photos")
    dataset = tmp_path / "ds"
    first = ingest([photos], dataset, FAST)
    before = (dataset / "manifest.parquet").read_bytes()
    second = ingest([photos], dataset, FAST)
    assert (second.read, second.reused) == (0, first.files)
    assert (dataset / "manifest.parquet").read_bytes() == before

    save_photo(photo(seed=9), photos / "good.jpg", good_exif(latitude=40.0))
    os.utime(photos / "good.jpg", ns=(1, 1))
    (photos / "tiny.jpg").unlink()
    third = ingest([photos], dataset, FAST)
    assert (third.read, third.removed, third.files) == (1, 1, first.files - 1)
    assert _manifest(dataset).loc["good.jpg", "latitude"] == pytest.approx(40.0)


def test_no_decode_then_full_run(reason_set: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    ingest([reason_set], dataset, IngestOptions(workers=2, decode=False))
    frame = _manifest(dataset)
    assert frame["phash"].isna().all() and not frame["decoded"].any()
    assert frame.loc["good.jpg", "status"] == "accepted"
    report = ingest([reason_set], dataset, FAST)
    assert report.read > 0
    assert _manifest(dataset).loc["truncated.jpg", "reasons"].tolist() == ["decode_error"]


def test_decompression_bomb_refused(reason_set: Path, tmp_path: Path) -> None:
    ingest([reason_set / "good.jpg"], tmp_path / "ds", IngestOptions(workers=1, max_pixels=10_000))
    assert _manifest(tmp_path / "ds").loc["good.jpg", "reasons"].tolist() == ["decompression_bomb"]


def test_crashed_and_hung_workers_are_recorded(
    reason_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_pool(func, tasks, **kwargs):  # type: ignore[no-untyped-def]
        for i, _ in enumerate(tasks):
            failure = (CRASHED, TIMED_OUT, None)[i % 3]
            value = None if failure else func(*tasks[i])
            yield Outcome(i, value, failure, "worker killed by SIGSEGV" if failure else None)

    monkeypatch.setattr(ingest_read, "map_isolated", fake_pool)
    ingest([reason_set], tmp_path / "ds", FAST)
    frame = _manifest(tmp_path / "ds").sort_index()
    codes = [r[0] if len(r) else None for r in frame["reasons"]]
    assert codes.count("worker_crashed") == math.ceil(len(frame) / 3)
    assert "timeout" in codes


def test_interrupted_write_keeps_previous_manifest(
    reason_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = tmp_path / "ds"
    ingest([reason_set], dataset, FAST)
    before = (dataset / "manifest.parquet").read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pq.ParquetWriter, "write_table", boom)  # mid-way through the write
    with pytest.raises(KeyboardInterrupt):
        ingest([reason_set], dataset, IngestOptions(workers=2, force=True))
    assert (dataset / "manifest.parquet").read_bytes() == before
    assert sorted(p.name for p in dataset.iterdir()) == [".gpskit", "manifest.parquet"]
    assert not [p for p in dataset.rglob("*") if p.name.endswith(".tmp")]  # no half files


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        ingest([tmp_path / "nope"], tmp_path / "ds", FAST)


def test_unknown_schema_version_refused(reason_set: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    ingest([reason_set / "good.jpg"], dataset, FAST)
    table = pq.read_table(dataset / "manifest.parquet")
    meta = dict(table.schema.metadata)
    meta[b"gpskit.schema"] = json.dumps({"name": "manifest", "version": 99}).encode()
    pq.write_table(table.replace_schema_metadata(meta), dataset / "manifest.parquet")
    with pytest.raises(SchemaError, match="version 99"):
        Dataset(dataset).load_manifest()


def test_dataset_folder_inside_photos_is_not_ingested(reason_set: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(reason_set, photos)
    ingest([photos], photos / "gpskit-data", FAST)
    report = ingest([photos], photos / "gpskit-data", FAST)
    assert report.files == len(REASON_FILES)


def test_manifest_loads_without_gpskit(reason_set: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    ingest([reason_set], tmp_path / "ds", FAST)
    path = str(tmp_path / "ds" / "manifest.parquet")
    count = duckdb.sql(f"select count(*) from '{path}' where status = 'accepted'").fetchall()[0]
    assert count == (1,)
    assert len(pd.read_parquet(path)) == len(REASON_FILES)


# --- the shared corpus of real files, against ExifTool ------------------------------------


@pytest.fixture(scope="module")
def corpus_manifest(shared_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    dataset = tmp_path_factory.mktemp("corpus")
    ingest([shared_samples], dataset, IngestOptions(workers=2, timeout=120))
    return pd.read_parquet(dataset / "manifest.parquet").set_index("path")


def _truth(shared_samples: Path) -> list[dict[str, str]]:
    with open(shared_samples / "truth.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_corpus_every_file_recorded(shared_samples: Path, corpus_manifest: pd.DataFrame) -> None:
    truth = _truth(shared_samples)
    missing = [r["path"] for r in truth if r["path"] not in corpus_manifest.index]
    assert missing == []
    assert set(corpus_manifest["status"]) <= {"accepted", "rejected"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("column", "truth_column", "tolerance"),
    [
        ("latitude", "lat", 1e-7),
        ("longitude", "lon", 1e-7),
        ("altitude", "alt_m", 1e-3),
        ("img_direction", "img_direction", 1e-4),
        ("gps_h_error", "h_pos_error", 1e-4),
    ],
)
def test_corpus_gps_agrees_with_exiftool(
    shared_samples: Path,
    corpus_manifest: pd.DataFrame,
    column: str,
    truth_column: str,
    tolerance: float,
) -> None:
    compared = 0
    for record in _truth(shared_samples):
        if record["has_gps"] != "true" or not record[truth_column]:
            continue
        got = corpus_manifest.loc[record["path"], column]
        assert got is not None and not pd.isna(got), record["path"]
        assert abs(float(got) - float(record[truth_column])) <= tolerance, record["path"]
        compared += 1
    assert compared > 0


@pytest.mark.slow
def test_corpus_orientation_agrees_with_exiftool(
    shared_samples: Path, corpus_manifest: pd.DataFrame
) -> None:
    compared = 0
    for record in _truth(shared_samples):
        if record["orientation"]:
            assert corpus_manifest.loc[record["path"], "orientation"] == int(
                record["orientation"]
            ), record["path"]
            compared += 1
    assert compared > 100


@pytest.mark.slow
def test_corpus_no_position_where_exiftool_has_none(
    shared_samples: Path, corpus_manifest: pd.DataFrame
) -> None:
    compared = 0
    for record in _truth(shared_samples):
        row = corpus_manifest.loc[record["path"]]
        if record["has_gps"] != "true" and not record["xmp_lat"]:
            assert pd.isna(row["latitude"]), record["path"]
            compared += 1
    assert compared > 100


def test_manifest_of_another_version_is_read_again_with_a_note(
    reason_set: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "ds"
    ingest([reason_set / "good.jpg"], dataset, FAST)
    table = pq.read_table(dataset / "manifest.parquet")
    meta = dict(table.schema.metadata)
    meta[b"gpskit.schema"] = json.dumps({"name": "manifest", "version": 0}).encode()
    pq.write_table(table.replace_schema_metadata(meta), dataset / "manifest.parquet")
    report = ingest([reason_set / "good.jpg"], dataset, FAST)
    assert report.read == 1 and report.reused == 0
    assert any("cannot be reused" in note for note in report.notes)
    assert Dataset(dataset).load_manifest().num_rows == 1


@pytest.mark.slow
def test_killed_ingest_resumes_where_it_stopped(tmp_path: Path) -> None:
    """SIGKILL half way, then a re-run: only unfinished files are read, and the manifest is
    byte for byte the one an uninterrupted run writes."""
    files = 80
    photos = write_photos(tmp_path / "photos", files, (1600, 1200))
    journaled = kill_ingest_half_way(photos, tmp_path / "killed", files)
    assert files // 2 <= journaled < files
    assert not (tmp_path / "killed" / "manifest.parquet").exists()
    resumed = ingest([photos], tmp_path / "killed", FAST)
    assert resumed.read == files - journaled and resumed.reused == journaled
    assert any("resumed an interrupted run" in note for note in resumed.notes)
    assert not Dataset(tmp_path / "killed").journal_dir.exists()
    ingest([photos], tmp_path / "whole", FAST)
    assert (tmp_path / "killed" / "manifest.parquet").read_bytes() == (
        tmp_path / "whole" / "manifest.parquet"
    ).read_bytes()


def _paths(dataset: Path) -> list[str]:
    table = Dataset(dataset).load_manifest()
    return sorted(
        f"{Path(r).name}/{p}"
        for r, p in zip(table["root"].to_pylist(), table["path"].to_pylist(), strict=True)
    )


def test_a_team_adds_photos_day_by_day(tmp_path: Path) -> None:
    """Rows of folders not named in a run are kept; files gone from a scanned folder are
    dropped (and said so); --prune drops everything not found."""
    for day, names in (("day1", ["a", "b"]), ("day2", ["c"])):
        for name in names:
            save_photo(photo(seed=ord(name)), tmp_path / day / f"{name}.jpg", good_exif())
    (tmp_path / "empty").mkdir()
    dataset = tmp_path / "ds"
    ingest([tmp_path / "day1"], dataset, FAST)
    day2 = ingest([tmp_path / "day2"], dataset, FAST)
    assert day2.kept == 2 and day2.removed == 0 and day2.read == 1
    assert _paths(dataset) == ["day1/a.jpg", "day1/b.jpg", "day2/c.jpg"]
    empty = ingest([tmp_path / "empty"], dataset, FAST)
    assert empty.kept == 3 and _paths(dataset) == ["day1/a.jpg", "day1/b.jpg", "day2/c.jpg"]
    (tmp_path / "day1" / "b.jpg").unlink()
    again = ingest([tmp_path / "day1"], dataset, FAST)
    assert again.removed == 1 and any("dropped 1 rows" in n for n in again.notes)
    assert _paths(dataset) == ["day1/a.jpg", "day2/c.jpg"]
    pruned = ingest([tmp_path / "day2"], dataset, IngestOptions(workers=2, prune=True))
    assert pruned.removed == 1 and _paths(dataset) == ["day2/c.jpg"]


def test_a_folder_and_its_parent_give_one_row_per_file(tmp_path: Path) -> None:
    save_photo(photo(seed=1), tmp_path / "photos" / "day1" / "a.jpg", good_exif())
    save_photo(photo(seed=2), tmp_path / "photos" / "day2" / "b.jpg", good_exif())
    dataset = tmp_path / "ds"
    ingest([tmp_path / "photos" / "day1"], dataset, FAST)
    whole = ingest([tmp_path / "photos"], dataset, FAST)  # the parent: day1 is re-rooted
    assert whole.read == 1 and whole.reused == 1 and whole.files == 2
    inner = ingest([tmp_path / "photos" / "day2" / "b.jpg"], dataset, FAST)  # inside a root
    assert inner.files == 2 and inner.read == 0
    table = Dataset(dataset).load_manifest()
    assert set(table["root"].to_pylist()) == {str((tmp_path / "photos").resolve())}


def test_a_folder_named_in_other_than_utf8_is_one_clear_error(tmp_path: Path) -> None:
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(folder)
    with pytest.raises(InputError, match="not valid UTF-8"):
        ingest([Path(os.fsdecode(folder))], tmp_path / "ds", FAST)
    assert not (tmp_path / "ds" / "manifest.parquet").exists()


def test_overlapping_inputs_give_one_row_per_file(tmp_path: Path) -> None:
    """A folder and a folder inside it named in one run (found by the generated scan
    test: such a run wrote a file twice, and the next run stopped on a repeated key)."""
    save_photo(photo(seed=1), tmp_path / "photos" / "day1" / "a.jpg", good_exif())
    save_photo(photo(seed=2), tmp_path / "photos" / "b.jpg", good_exif())
    dataset = tmp_path / "ds"
    photos = tmp_path / "photos"
    first = ingest([photos, photos / "day1", photos / "day1" / "a.jpg"], dataset, FAST)
    assert first.files == 2 and _paths(dataset) == ["photos/b.jpg", "photos/day1/a.jpg"]
    again = ingest([photos / "day1", photos], dataset, FAST)
    assert (again.files, again.read) == (2, 0)


def _counting(method: Any, calls: list[Any]) -> Any:
    def counted(self: Any) -> None:
        calls.append(self)
        method(self)

    return counted


def test_manifest_is_assembled_a_row_group_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs that reuse, re-root, add and drop rows, assembled in row groups of 3 from
    journal shards of 2, with every key spilled to disk in sorted runs of 2 and merged in
    batches of 2, give exactly the rows one in-memory run gives, in bounded row groups."""
    photos = tmp_path / "photos"
    for day, count in (("day1", 7), ("day2", 5)):
        for i in range(count):
            save_photo(photo(seed=i + 10 * count), photos / day / f"p{i}.jpg", good_exif())
    ingest([photos], tmp_path / "whole", FAST)
    monkeypatch.setattr(ingest_assemble, "MANIFEST_ROW_GROUP", 3)
    monkeypatch.setattr(extsort, "SPILL_BATCH", 2)
    small = tmp_path / "small"
    spilled = IngestOptions(workers=2, journal_rows=2, sort_rows=2)
    runs: list[Any] = []
    monkeypatch.setattr(extsort.RunSorter, "_spill", _counting(extsort.RunSorter._spill, runs))
    ingest([photos / "day1"], small, spilled)
    stale = small / ".gpskit" / "ingest-sort"
    stale.mkdir()
    (stale / "run-999999.arrow").write_bytes(b"left by a killed run")
    report = ingest([photos], small, spilled)
    assert len(runs) >= 12  # every key went through runs of 2 on disk
    assert (report.reused, report.read, report.files) == (7, 5, 12)
    assert pq.ParquetFile(small / "manifest.parquet").metadata.num_row_groups == 4
    assert Dataset(small).load_manifest().equals(Dataset(tmp_path / "whole").load_manifest())

    (photos / "day1" / "p3.jpg").unlink()
    save_photo(photo(seed=99), photos / "day2" / "p0.jpg", good_exif())  # changed
    save_photo(photo(seed=98), photos / "day0.jpg", good_exif())  # sorts between roots' rows
    ingest([photos], tmp_path / "whole", FAST)
    report = ingest([photos], small, spilled)
    assert (report.reused, report.read, report.removed) == (10, 2, 1)
    assert Dataset(small).load_manifest().equals(Dataset(tmp_path / "whole").load_manifest())
    assert not (small / ".gpskit" / "ingest-sort").exists()


def test_a_second_writer_is_told_the_dataset_is_busy(reason_set: Path, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from typer.testing import CliRunner

    from gpskit.cli import app

    dataset = tmp_path / "ds"
    code = (
        "import sys, time; from pathlib import Path; from gpskit.dataset import Dataset\n"
        "with Dataset(Path(sys.argv[1])).writing('ingest'):\n"
        "    print('held', flush=True); time.sleep(30)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(dataset)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        started = time.monotonic()
        result = CliRunner().invoke(app, ["ingest", str(reason_set), "--out", str(dataset)])
        assert time.monotonic() - started < 10  # told at once, not left waiting
        assert result.exit_code == 75, result.output
        assert "is being written by `gpskit ingest` (pid" in result.output
        assert "Traceback" not in result.output
    finally:
        holder.kill()
        holder.wait()
    assert not (dataset / "manifest.parquet").exists()
    assert (
        CliRunner().invoke(app, ["ingest", str(reason_set), "--out", str(dataset)]).exit_code == 0
    )


def test_dataset_inside_the_photo_folder_is_skipped_and_said(tmp_path: Path) -> None:
    save_photo(photo(seed=1), tmp_path / "photos" / "a.jpg", good_exif())
    report = ingest([tmp_path / "photos"], tmp_path / "photos" / "gpskit-data", FAST)
    assert report.files == 1
    assert any("is inside the photo folder" in note for note in report.notes)
    again = ingest([tmp_path / "photos"], tmp_path / "photos" / "gpskit-data", FAST)
    assert again.files == 1  # its own manifest and journal are never ingested


def test_a_damaged_earlier_manifest_is_one_error_and_the_run_is_kept(tmp_path: Path) -> None:
    """Rows whose keys read but whose other columns break the schema stop the write with
    a hint; the rows this run read stay journaled, so the advised re-run reads only the
    files the damaged manifest held."""
    import pyarrow as pa

    photos = tmp_path / "photos"
    for i in range(3):
        save_photo(photo(seed=i), photos / f"p{i}.jpg", good_exif())
    dataset = tmp_path / "ds"
    ingest([photos], dataset, FAST)
    manifest = dataset / "manifest.parquet"
    table = pq.read_table(manifest)
    status = pa.array(["maybe"] * table.num_rows)  # outside the schema's enum
    table = table.set_column(table.schema.get_field_index("status"), "status", status)
    pq.write_table(table, manifest)  # keeps the gpskit schema tag
    save_photo(photo(seed=9), photos / "new.jpg", good_exif())
    with pytest.raises(SchemaError, match="outside") as caught:
        ingest([photos], dataset, FAST)
    assert "move manifest.parquet away" in str(caught.value)
    manifest.unlink()
    again = ingest([photos], dataset, FAST)
    assert (again.read, again.reused, again.files) == (3, 1, 4)


@pytest.fixture(scope="module")
def small_ingest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three photos and the manifest ingest writes for them."""
    root = tmp_path_factory.mktemp("mutated")
    for i in range(3):
        save_photo(photo(seed=i), root / "photos" / f"p{i}.jpg", good_exif())
    ingest([root / "photos"], root / "ds", FAST)
    return root / "photos", root / "ds" / "manifest.parquet"


@pytest.mark.slow
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_byte_damaged_manifest_never_crashes_a_re_run_or_loses_a_file(
    small_ingest: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Any bytes of the earlier manifest overwritten: the re-run either reads the files
    again (with a note) or stops with one gpskit error; after the advised move of the
    manifest, every file is back."""
    from gpskit.errors import GpskitError

    photos, manifest = small_ingest
    good = manifest.read_bytes()
    damaged = bytearray(good)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(good) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    dataset = tmp_path_factory.mktemp("ds")
    (dataset / "manifest.parquet").write_bytes(bytes(damaged))
    try:
        report = ingest([photos], dataset, FAST)
    except GpskitError:
        (dataset / "manifest.parquet").unlink()
        report = ingest([photos], dataset, FAST)
    # rows whose damaged root names another folder are kept, as rows of folders not named
    # in a run are: nothing is lost, and every photo is back under its own root
    assert report.files >= 3
    table = Dataset(dataset).load_manifest().to_pandas()
    mine = table[table.root == str(photos.resolve())]
    assert sorted(mine.path) == [f"p{i}.jpg" for i in range(3)]


def _set_verdict(manifest: Path, path: str, warning: str) -> None:
    """Write a verdict no check gives into one row, keeping the file's metadata."""
    table = pq.read_table(manifest)
    warnings = [
        [warning] if row_path == path else found
        for row_path, found in zip(
            table["path"].to_pylist(), table["warnings"].to_pylist(), strict=True
        )
    ]
    index = table.schema.get_field_index("warnings")
    column = pa.array(warnings, table.schema.field(index).type)
    pq.write_table(table.set_column(index, table.schema.field(index), column), manifest)


def test_verdicts_are_kept_only_while_the_rules_and_thresholds_are_the_same(
    reason_set: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run keeps the earlier verdicts (judging a million reused rows again is most of
    a re-run's time) unless a threshold, --strict-quality or the rules themselves changed."""
    dataset = tmp_path / "ds"
    ingest([reason_set], dataset, FAST)
    manifest = dataset / "manifest.parquet"
    _set_verdict(manifest, "good.jpg", "marker")
    ingest([reason_set], dataset, FAST)
    assert _manifest(dataset).loc["good.jpg", "warnings"].tolist() == ["marker"]

    stricter = IngestOptions(workers=2, strict_quality=True)
    ingest([reason_set], dataset, stricter)
    assert "marker" not in _manifest(dataset).loc["good.jpg", "warnings"].tolist()

    _set_verdict(manifest, "good.jpg", "marker")
    monkeypatch.setattr(checks, "fingerprint", lambda: "rules-changed")
    ingest([reason_set], dataset, stricter)
    assert "marker" not in _manifest(dataset).loc["good.jpg", "warnings"].tolist()

    monkeypatch.undo()
    thresholds = {**IngestOptions().thresholds, "max_h_error": 1.0}
    report = ingest([reason_set], dataset, IngestOptions(workers=2, thresholds=thresholds))
    assert report.read == 0
    assert "gps_error_too_large" in _manifest(dataset).loc["good.jpg", "reasons"].tolist()


_NAMES = st.sampled_from(["a.jpg", "b.jpg", "a/b.jpg", "a/c.jpg", "a0.jpg", "é.jpg", "b/a/x"])
_ROOTS = st.sampled_from(["/p", "/p/a", "/q"])


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    previous=st.dictionaries(
        st.tuples(_ROOTS, _NAMES),
        st.tuples(st.integers(1, 2), st.integers(1, 2), st.booleans(), st.booleans()),
        max_size=12,
    ),
    scanned=st.dictionaries(
        st.tuples(_ROOTS, _NAMES), st.tuples(st.integers(1, 2), st.integers(1, 2)), max_size=12
    ),
    scopes=st.lists(
        st.builds(
            ingest_find.Scope, _ROOTS, st.sampled_from(["", "a/", "a.jpg", "b/"]), st.booleans()
        ),
        max_size=3,
    ),
    decode=st.booleans(),
    force=st.booleans(),
    prune=st.booleans(),
    run_rows=st.sampled_from([1, 2, 5, 1_000]),
    spill_batch=st.sampled_from([1, 3, 4096]),
)
def test_plan_matches_files_to_earlier_rows_like_a_dictionary_would(
    previous: dict[tuple[str, str], tuple[int, int, bool, bool]],
    scanned: dict[tuple[str, str], tuple[int, int]],
    scopes: list[ingest_find.Scope],
    decode: bool,
    force: bool,
    prune: bool,
    run_rows: int,
    spill_batch: int,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any earlier rows against any scanned files and scopes: which files are read again,
    which rows are reused, kept or dropped, as a plain dictionary lookup decides it; with
    keys spilled in sorted runs of any size and merged in batches of any size."""
    roots = ingest_find.Roots()
    keys = list(previous)
    spill = tmp_path_factory.mktemp("spill")
    monkeypatch.setattr(extsort, "SPILL_BATCH", spill_batch)
    earlier = extsort.RunSorter(spill, ingest_plan.PREVIOUS, run_rows=run_rows, newest="source")
    for at, key in enumerate(keys):
        earlier.add(
            ingest_plan.key_table(
                ingest_plan.PREVIOUS,
                key=extsort.sort_key(pa.array([key[0]]), pa.array([key[1]])),
                root_id=pa.array([roots.id(key[0])], pa.int32()),
                path=pa.array([key[1]], pa.string()),
                file_size=pa.array([previous[key][0]], pa.int64()),
                mtime_ns=pa.array([previous[key][1]], pa.int64()),
                stale=pa.array([previous[key][2]], pa.bool_()),
                retry=pa.array([previous[key][3]], pa.bool_()),
                source=pa.array([0], pa.int32()),
                row=pa.array([at], pa.int64()),
            )
        )
    found = ingest_find.ScanBuffer(
        roots, extsort.RunSorter(spill, ingest_find.SCANNED, run_rows=run_rows)
    )
    for (root, path), (size, mtime) in scanned.items():
        found.add(roots.id(root), path, size, mtime)
    files = found.files()
    options = IngestOptions(decode=decode, force=force, prune=prune)
    plan = ingest_plan.make_plan(files.batches(), earlier.merged(), scopes, roots, options, spill)

    def listed(run: extsort.RunFile) -> list[tuple[str, str]]:
        table = pa.concat_tables([ingest_plan.TO_READ.empty_table(), *run.batches()])
        return [
            (roots.names[r], p)
            for r, p in zip(table["root_id"].to_pylist(), table["path"].to_pylist(), strict=True)
        ]

    to_read = listed(plan.to_read)
    assert to_read == sorted(to_read)
    kept = pa.concat_tables([ingest_plan.KEPT.empty_table(), *plan.kept.batches()])
    assert kept["key"].to_pylist() == sorted(kept["key"].to_pylist())
    kept_keys = [keys[row] for row in kept["row"].to_pylist()]
    fresh = {
        key
        for key, (size, mtime) in scanned.items()
        if key in previous
        and previous[key][:2] == (size, mtime)
        and not (decode and previous[key][2])
        and not previous[key][3]  # a failure that may pass is read again
        and not force
    }
    gone = [key for key in keys if key not in scanned]
    inside = [key for key in gone if prune or any(s.covers(*key) for s in scopes)]
    assert set(to_read) == set(scanned) - fresh
    assert len(to_read) == len(set(scanned) - fresh) and not len(plan.unnamed)
    assert plan.files == len(scanned)
    assert plan.reused == len(fresh)
    assert sorted(kept_keys) == sorted(fresh | (set(gone) - set(inside)))
    assert plan.kept_rows == len(set(gone) - set(inside))
    assert plan.removed == len(inside)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tree=st.lists(
        st.lists(st.sampled_from(["a", "b", "a.b", "a-b", "é", "z"]), min_size=1, max_size=3),
        max_size=10,
    ).map(lambda paths: sorted({"/".join(p) for p in paths})),
    picks=st.lists(st.integers(0, 30), min_size=1, max_size=4),
    batch=st.sampled_from([1, 3, 65_536]),
    run_rows=st.sampled_from([1, 4, 1_000_000]),
)
def test_scan_finds_every_file_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    tree: list[str],
    picks: list[int],
    batch: int,
    run_rows: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Any tree, any overlapping folders and files named as inputs: every file under them
    once, sorted by (root, path), however the found files are batched and spilled."""
    base = tmp_path_factory.mktemp("tree")
    made = []
    for rel in tree:
        target = base / rel
        if any(p.is_file() for p in target.parents) or target.is_dir():
            continue  # a name already used as a file (or folder) on the way
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
        made.append(target)
    candidates = [base, *sorted({p.parent for p in made}), *made]
    inputs = [candidates[i % len(candidates)] for i in picks]
    monkeypatch.setattr(ingest_find, "SCAN_BATCH", batch)
    monkeypatch.setattr(ingest_find, "SORT_ROWS", run_rows)
    found = ingest_find.scan(inputs)
    want = {
        str(p.resolve())
        for given in inputs
        for p in ([given] if given.is_file() else given.rglob("*"))
        if p.is_file()
    }
    assert {f.absolute for f in found} == want
    assert len(found) == len(want)
    assert [(f.root, f.path) for f in found] == sorted((f.root, f.path) for f in found)


@pytest.mark.slow
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    names=st.sets(
        st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\0" not in b),
        min_size=1,
        max_size=6,
    ).filter(lambda names: not names & {b".", b".."})
)
def test_any_file_name_gets_one_row_and_never_stops_the_run(
    tmp_path_factory: pytest.TempPathFactory, names: set[bytes]
) -> None:
    """File names are bytes on Linux: any of them, UTF-8 or not, is one row. One the
    manifest cannot hold as text is recorded unreadable, with escapes and a reason
    (such a name stopped the run with an internal error before), and is reused after."""
    base = tmp_path_factory.mktemp("names")
    folder = base / "photos"
    folder.mkdir()
    for name in names:
        with open(os.path.join(os.fsencode(folder), name), "wb") as out:
            out.write(b"not a photo")
    dataset = base / "ds"
    report = ingest([folder], dataset, IngestOptions(workers=1))
    assert report.files == len(names)
    frame = _manifest(dataset)
    for name in names:
        try:
            shown, utf8 = name.decode("utf-8"), True
        except UnicodeDecodeError:
            shown, utf8 = name.decode("utf-8", "backslashreplace"), False
        row = frame.loc[shown]
        if utf8:
            assert row["error"] != ingest_find.NOT_UTF8
        else:
            assert row["read_status"] == "unreadable" and row["error"] == ingest_find.NOT_UTF8
    again = ingest([folder], dataset, IngestOptions(workers=1))
    assert (again.read, again.files) == (0, len(names))


@pytest.mark.parametrize("layout", ["same", "inside", "beside-then-parent"])
def test_a_datasets_own_files_are_never_ingested_as_photos(tmp_path: Path, layout: str) -> None:
    """`ingest X --out X`, a dataset inside its photo folder, a parent folder holding both:
    on every run the manifest lists the photos and nothing of gpskit's own."""
    photos = write_photos(tmp_path / "photos", 3)
    dataset = {"same": photos, "inside": photos / "ds", "beside-then-parent": tmp_path / "ds"}[
        layout
    ]
    for _ in range(2):
        ingest([photos], dataset, IngestOptions(workers=1))
        dedup(dataset)
        coverage(dataset)
    if layout == "beside-then-parent":
        ingest([tmp_path], dataset, IngestOptions(workers=1))
    rows = pq.read_table(dataset / "manifest.parquet", columns=["path"]).column("path").to_pylist()
    assert sorted(Path(p).name for p in rows) == ["p000.jpg", "p001.jpg", "p002.jpg"], rows


@pytest.mark.parametrize(
    ("status", "error", "again"),
    [
        ("timeout", "no answer in 60 s", True),
        ("unreadable", "PermissionError: [Errno 13] Permission denied: '/p/a.jpg'", True),
        ("unreadable", "ConnectionResetError: peer reset", True),
        ("unreadable", "EndpointConnectionError: Could not connect", True),
        ("unreadable", "FileNotFoundError: gone", False),
        ("decode_error", "PermissionError: in the decoder's words", False),
        ("not_image", None, False),
        ("ok", None, False),
        ("worker_crashed", "killed by signal 11", False),
    ],
)
def test_only_failures_that_may_pass_are_read_again(
    status: str, error: str | None, again: bool
) -> None:
    table = pa.table({"read_status": [status], "error": pa.array([error], pa.string())})
    assert ingest_plan.may_pass(table).to_pylist() == [again]


def test_a_folder_that_cannot_be_listed_keeps_its_rows_and_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    write_photos(photos / "day1", 2)
    write_photos(photos / "locked", 2)
    dataset = tmp_path / "ds"
    ingest([photos], dataset, IngestOptions(workers=1))
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if isinstance(path, (str, os.PathLike)) and Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    for prune in (False, True):
        monkeypatch.setattr(os, "scandir", scandir)
        report = ingest([photos], dataset, IngestOptions(workers=1, prune=prune))
        monkeypatch.setattr(os, "scandir", real)
        paths = sorted(_paths(dataset))
        locked = [p for p in paths if p.startswith("photos/locked/")]
        assert locked == ["photos/locked/p000.jpg", "photos/locked/p001.jpg"], paths
        assert report.removed == 0
        assert any("could not list" in n and "locked" in n for n in report.notes), report.notes


def test_a_store_that_stops_answering_stops_the_run_in_one_line() -> None:
    from gpskit.errors import EnvironmentProblem
    from gpskit.ingest.read import StoreWatch

    watch = StoreWatch()
    gone = {"read_status": "unreadable", "error": "EndpointConnectionError: Could not connect"}
    for _ in range(StoreWatch.LIMIT - 1):
        watch.saw("s3://b/x.jpg", gone)
    watch.saw("s3://b/y.jpg", {"read_status": "ok", "error": None})  # it answered: start again
    for _ in range(StoreWatch.LIMIT - 1):
        watch.saw("s3://b/x.jpg", gone)
        watch.saw("/local/x.jpg", gone)  # local files say nothing of the store
    with pytest.raises(EnvironmentProblem, match="stopped answering"):
        watch.saw("s3://b/z.jpg", gone)


def test_what_is_not_a_regular_file_is_a_row_never_opened(tmp_path: Path) -> None:
    """A link loop crashed the scan (exit 70); FIFOs, devices and dangling links had no row."""
    photos = write_photos(tmp_path / "photos", 1)
    (photos / "loop.jpg").symlink_to(photos / "loop.jpg")
    (photos / "gone.jpg").symlink_to(photos / "nowhere.jpg")
    (photos / "zero.jpg").symlink_to("/dev/zero")  # reading it would never end
    os.mkfifo(photos / "pipe.jpg")  # opening it would wait for a writer forever
    report = ingest([photos], tmp_path / "ds", FAST)
    assert report.files == 5 and report.accepted == 1
    rows = _manifest(tmp_path / "ds")
    assert rows.loc["loop.jpg", "error"] == "a symbolic link loop, not a file"
    assert "target is gone" in rows.loc["gone.jpg", "error"]
    for name in ("zero.jpg", "pipe.jpg"):
        assert rows.loc[name, "read_status"] == "unreadable"
        assert "not a regular file" in rows.loc[name, "error"]
    again = ingest([photos], tmp_path / "ds", IngestOptions(workers=2, force=True))
    assert again.files == 5


def test_scan_returns_only_what_a_caller_may_open(tmp_path: Path) -> None:
    """predict reads what scan returns: a FIFO there would block it forever."""
    photos = write_photos(tmp_path / "photos", 1)
    os.mkfifo(photos / "pipe.jpg")
    (photos / "gone.jpg").symlink_to(photos / "nowhere.jpg")
    assert [ref.path for ref in ingest_find.scan([photos])] == ["p000.jpg"]
