"""Ingest: every file recorded, the right reasons, incremental re-runs, atomic writes."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gpskit import ingest as ingest_module
from gpskit.dataset import Dataset
from gpskit.errors import InputError, SchemaError
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.pool import CRASHED, TIMED_OUT, Outcome

from .conftest import REASON_FILES, good_exif, photo, write_reason_set

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

    monkeypatch.setattr(ingest_module, "run_isolated", fake_pool)
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

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(KeyboardInterrupt):
        ingest([reason_set], dataset, IngestOptions(workers=2, force=True))
    assert (dataset / "manifest.parquet").read_bytes() == before
    assert sorted(p.name for p in dataset.iterdir()) == ["manifest.parquet"]


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


def test_corpus_every_file_recorded(shared_samples: Path, corpus_manifest: pd.DataFrame) -> None:
    truth = _truth(shared_samples)
    missing = [r["path"] for r in truth if r["path"] not in corpus_manifest.index]
    assert missing == []
    assert set(corpus_manifest["status"]) <= {"accepted", "rejected"}


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
