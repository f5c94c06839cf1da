"""Datasets users already have, ingested: a Hub-layout dataset built like the Img2GPS
study's released set (Parquet with image bytes, ``Latitude``/``Longitude``, no EXIF, a
random train/test split), tables naming photos by path, imagefolders, ``datasets`` caches
and ``hf://`` ids; then dedup, coverage and split on them as on photos."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.dataset import Dataset
from gpskit.ingest import IngestOptions, ingest
from gpskit.ingest.sources import hub_tables, split_of
from gpskit.split import SplitOptions, split
from gpskit.synth import synth
from gpskit.synth.defects import DEFECTS
from gpskit.synth.options import SynthOptions

from .helpers import photo

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)  # no EXIF: as the Hub holds them
    return buffer.getvalue()


def write_study_like(folder: Path, spots: int = 16, test_share: float = 0.12) -> dict[str, Any]:
    """A Hub dataset like Img2GPS's: campus photos (8 headings a spot) as JPEG bytes without
    EXIF, their phone fixes in Latitude/Longitude, split into train/test at random (so most
    test photos stand at a spot training also has)."""
    rates = {name: 0.0 for name in DEFECTS}
    options = SynthOptions(spots=spots, pitches=(0.0,), size=(320, 240), rates=rates, seed=3)
    synth(folder / "walk", options, force=True)
    with open(folder / "walk" / "truth.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["kind"] == "photo"]
    test = np.random.default_rng(7).random(len(rows)) < test_share
    (folder / "hub" / "data").mkdir(parents=True)
    for name, mask in (("train", ~test), ("test", test)):
        chosen = [r for r, m in zip(rows, mask, strict=True) if m]
        table = pa.table(
            {
                "image": pa.array(
                    [{"bytes": _jpeg(Image.open(folder / "walk" / r["file"])), "path": None} for r in chosen],
                    IMAGE,
                ),
                "Latitude": [float(r["reported_latitude"]) for r in chosen],
                "Longitude": [float(r["reported_longitude"]) for r in chosen],
            }
        )
        pq.write_table(table, folder / "hub" / "data" / f"{name}-00000-of-00001.parquet")
    return {"photos": len(rows), "test": int(test.sum()), "spots": spots}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("study")
    facts = write_study_like(folder)
    dataset = folder / "dataset"
    result = CliRunner().invoke(app, ["ingest", str(folder / "hub"), "--out", str(dataset), "--json"])
    assert result.exit_code == 0, result.output
    facts.update(hub=folder / "hub", dataset=dataset, report=json.loads(result.stdout))
    return facts


def _manifest(dataset: Path) -> Any:
    return Dataset(dataset).load_manifest().to_pandas()


def test_a_hub_dataset_without_exif_becomes_one_row_per_photo_with_the_tables_position(
    study: dict[str, Any],
) -> None:
    report = study["report"]
    assert report["files"] == study["photos"] and report["accepted"] == study["photos"]
    assert report["position_sources"] == {"table": study["photos"]}
    assert report["imported"] == study["photos"]
    rows = _manifest(study["dataset"])
    assert set(rows.gps_source) == {"table"} and not rows.has_exif.any()
    assert rows.file_latitude.isna().all()  # the photos hold no position of their own
    assert set(rows.position_table) == {"train-00000-of-00001.parquet", "test-00000-of-00001.parquet"}
    assert (rows.source_split == "test").sum() == study["test"]
    # every position is the table's, row for row
    train = pq.read_table(study["hub"] / "data" / "train-00000-of-00001.parquet").to_pandas()
    first = rows[rows.path == "train/000000.jpg"].iloc[0]
    assert (first.latitude, first.longitude) == (train.Latitude[0], train.Longitude[0])


def test_a_rerun_reads_and_writes_nothing_and_a_changed_position_is_taken(
    study: dict[str, Any], tmp_path: Path
) -> None:
    runner = CliRunner()
    again = runner.invoke(app, ["ingest", str(study["hub"]), "--out", str(study["dataset"]), "--json"])
    report = json.loads(again.stdout)
    assert (report["read"], report["imported"], report["files"]) == (0, 0, study["photos"])
    # the table is corrected in place: one position moves 200 m north, one row leaves
    hub = tmp_path / "hub"
    shutil.copytree(study["hub"], hub)
    dataset = tmp_path / "dataset"
    assert runner.invoke(app, ["ingest", str(hub), "--out", str(dataset)]).exit_code == 0
    before = _manifest(dataset)
    train = hub / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(train)
    lat = table["Latitude"].to_pylist()
    lat[0] += 0.0018
    pq.write_table(table.set_column(1, "Latitude", pa.array(lat)).slice(0, table.num_rows - 1), train)
    moved = runner.invoke(app, ["ingest", str(hub), "--out", str(dataset), "--json"])
    after = json.loads(moved.stdout)
    rows = _manifest(dataset)
    assert after["files"] == study["photos"] - 1 and after["removed"] == 1
    first = rows[rows.path == "train/000000.jpg"].iloc[0]
    old = before[before.path == "train/000000.jpg"].iloc[0]
    assert first.latitude == pytest.approx(old.latitude + 0.0018)
    assert after["read"] == 0  # a position changed, the photo did not: nothing re-read


def test_dedup_coverage_and_split_measure_the_released_splits_leak_and_remove_it(
    study: dict[str, Any], tmp_path: Path
) -> None:
    """The study's split leaks (test photos at training spots); a spot split does not."""
    runner = CliRunner()
    dataset = str(study["dataset"])
    for step in (["dedup", dataset], ["coverage", dataset]):
        result = runner.invoke(app, step)
        assert result.exit_code == 0, result.output
    given = split(Dataset(study["dataset"]), SplitOptions(strategy="given", force=True))
    assert given.counts["test"] == study["test"] and given.counts["val"] == 0
    spots = given.leakage["spots_across"]
    assert spots["spots"] > 0 and spots["test_photos_at_train_spots"] > study["test"] // 2
    assert any("given split" in w for w in given.warnings)
    leak_free = split(Dataset(study["dataset"]), SplitOptions(force=True))
    fair = leak_free.leakage["spots_across"]
    assert fair["spots"] == 0 and fair["test_photos_at_train_spots"] == 0
    near_given = given.leakage["nearest_train_m"]["test"]["median_m"]
    near_fair = leak_free.leakage["nearest_train_m"]["test"]["median_m"]
    assert near_given < 5 < near_fair  # the leak, in metres
    shown = runner.invoke(app, ["split", dataset, "--strategy", "given", "--force"])
    assert shown.exit_code == 0 and "spots on both sides" in shown.output


@pytest.mark.slow
def test_a_hub_dataset_trains_and_evaluates(study: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("torch")
    runner = CliRunner()
    dataset = tmp_path / "copy"
    assert runner.invoke(app, ["ingest", str(study["hub"]), "--out", str(dataset)]).exit_code == 0
    assert runner.invoke(app, ["split", str(dataset)]).exit_code == 0
    run = tmp_path / "run"
    trained = runner.invoke(
        app,
        ["train", str(dataset), "--out", str(run), "--arch", "resnet18", "--weights", "none",
         "--epochs", "1", "--image-size", "64", "--batch-size", "16", "--workers", "0"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    evaluated = runner.invoke(app, ["eval", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.stdout)["metrics"]
    assert metrics["photos"] > 0 and metrics["mean_m"] > 0


def test_a_table_naming_photos_by_path_ingests_those_photos_only(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "day1").mkdir(parents=True)
    for k in range(3):
        photo(seed=k).save(photos / "day1" / f"p{k}.jpg", quality=90)
    photo(seed=9).save(photos / "unlisted.jpg", quality=90)
    table = photos / "positions.csv"
    table.write_text(
        "file_name,lat,lon,heading,split\n"
        "day1/p0.jpg,39.9515,-75.1910,90,train\n"
        "./day1/p1.jpg,39.9516,-75.1911,,test\n"
        "day1/p2.jpg,,,,train\n"  # no position: the photo keeps its own (none)
        "../outside.jpg,39.9,-75.1,,train\n"  # climbs out of the folder: skipped
        "day1/missing.jpg,39.9,-75.1,,train\n",
        encoding="utf-8",
    )
    report = ingest([table], tmp_path / "ds")
    rows = _manifest(tmp_path / "ds").set_index("path")
    assert sorted(rows.index) == ["day1/p0.jpg", "day1/p1.jpg", "day1/p2.jpg"]
    assert rows.loc["day1/p0.jpg", "img_direction"] == 90.0
    assert rows.loc["day1/p1.jpg", "source_split"] == "test"
    assert rows.loc["day1/p2.jpg", "status"] == "rejected"  # no position at all
    assert report.labelled == 2
    said = " ".join(report.notes)
    assert "1 of 5 rows have no usable position" in said and "day1/missing.jpg" in said
    assert "name no photo" in said


def test_an_imagefolder_takes_its_metadata_and_splits_and_skips_the_tables(tmp_path: Path) -> None:
    folder = tmp_path / "imagefolder"
    for split_name, lat in (("train", 39.9515), ("test", 39.9520)):
        (folder / split_name).mkdir(parents=True)
        photo(seed=len(split_name)).save(folder / split_name / "a.jpg", quality=90)
        (folder / split_name / "metadata.jsonl").write_text(
            json.dumps({"file_name": "a.jpg", "latitude": lat, "longitude": -75.19}) + "\n"
        )
    assert hub_tables(folder) == []
    ingest([folder], tmp_path / "ds")
    rows = _manifest(tmp_path / "ds").set_index("path")
    assert sorted(rows.index) == ["test/a.jpg", "train/a.jpg"]  # metadata files are no rows
    assert rows.loc["test/a.jpg", "latitude"] == 39.9520
    assert dict(rows.source_split) == {"test/a.jpg": "test", "train/a.jpg": "train"}


def test_a_datasets_cache_of_arrow_files_is_read(tmp_path: Path) -> None:
    """What ``datasets.load_dataset`` leaves in ~/.cache/huggingface/datasets: Arrow
    streams named <builder>-<split>.arrow beside dataset_info.json."""
    cache = tmp_path / "owner___img2gps" / "default" / "0.0.0" / "abc123"
    cache.mkdir(parents=True)
    (cache / "dataset_info.json").write_text("{}")
    for split_name in ("train", "validation"):
        table = pa.table(
            {
                "image": pa.array([{"bytes": _jpeg(photo(seed=3)), "path": "IMG_1.jpg"}], IMAGE),
                "lat": [39.95], "lng": [-75.19],
            }
        )  # fmt: skip
        sink = pa.OSFile(str(cache / f"img2gps-{split_name}.arrow"), "wb")
        with sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    report = ingest([tmp_path / "owner___img2gps"], tmp_path / "ds")
    rows = _manifest(tmp_path / "ds")
    assert report.labelled == 2 and sorted(rows.source_split) == ["train", "validation"]
    assert sorted(rows.path) == ["train/000000-IMG_1.jpg", "validation/000000-IMG_1.jpg"]


def test_two_sources_of_one_name_keep_their_images_apart(tmp_path: Path) -> None:
    for owner, lat in (("a", 39.95), ("b", 39.96)):
        (tmp_path / owner / "hub" / "data").mkdir(parents=True)
        table = pa.table(
            {"image": pa.array([{"bytes": _jpeg(photo(seed=ord(owner))), "path": None}], IMAGE),
             "Latitude": [lat], "Longitude": [-75.19]}
        )  # fmt: skip
        pq.write_table(table, tmp_path / owner / "hub" / "data" / "train-0.parquet")
    ingest([tmp_path / "a" / "hub"], tmp_path / "ds")
    ingest([tmp_path / "b" / "hub"], tmp_path / "ds")
    rows = _manifest(tmp_path / "ds")
    assert sorted(rows.latitude) == [39.95, 39.96] and rows.root.nunique() == 2


def test_named_columns_and_missing_ones_are_one_line(tmp_path: Path) -> None:
    photo(seed=1).save(tmp_path / "x.jpg", quality=90)
    table = tmp_path / "survey.csv"
    table.write_text("pic,northing,easting\nx.jpg,39.9515,-75.191\n")
    runner = CliRunner()
    missing = runner.invoke(app, ["ingest", str(table), "--out", str(tmp_path / "ds")])
    assert missing.exit_code != 0 and "no latitude/longitude columns" in missing.output
    assert "Traceback" not in missing.output
    named = runner.invoke(
        app,
        ["ingest", str(table), "--out", str(tmp_path / "ds"), "--lat-column", "northing",
         "--lon-column", "easting", "--name-column", "pic", "--json"],
    )  # fmt: skip
    assert named.exit_code == 0, named.output
    assert json.loads(named.stdout)["labelled"] == 1
    wrong = runner.invoke(
        app, ["ingest", str(table), "--out", str(tmp_path / "ds"), "--lat-column", "nope"]
    )
    assert wrong.exit_code == 2 or wrong.exit_code == 65, wrong.output
    assert "no column 'nope'" in wrong.output


@pytest.mark.parametrize(
    "content",
    [b"\x00\x01\x02garbage" * 50, b"", b"PAR1" + os.urandom(300) + b"PAR1", b"a,b\n\"unterminated\n"],
)
def test_a_broken_table_is_one_line(tmp_path: Path, content: bytes) -> None:
    for suffix in (".csv", ".parquet", ".jsonl", ".arrow"):
        table = tmp_path / f"t{suffix}"
        table.write_bytes(content)
        result = CliRunner().invoke(app, ["ingest", str(table), "--out", str(tmp_path / "ds")])
        assert result.exit_code != 0 and result.exit_code != 70, (suffix, result.output)
        assert "internal error" not in result.output and len(result.output.strip().splitlines()) <= 3


def test_a_fifo_named_like_a_table_is_refused_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    (tmp_path / "photos").mkdir()
    for args in (["ingest", str(fifo)], ["ingest", str(tmp_path / "photos"), "--labels", str(fifo)]):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ds")])
        assert result.exit_code != 0 and "FIFO" in result.output


def test_hf_ids_need_the_hub_extra_and_read_its_snapshot(
    study: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    runner = CliRunner()
    missing = runner.invoke(app, ["ingest", "hf://datasets/penn/img2gps", "--out", str(tmp_path / "ds")])
    assert missing.exit_code != 0 and "gpskit[hub]" in missing.output
    asked: dict[str, Any] = {}

    def snapshot_download(**kwargs: Any) -> str:
        asked.update(kwargs)
        return str(study["hub"])

    monkeypatch.setitem(
        sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download)
    )
    found = runner.invoke(app, ["ingest", "hf://datasets/penn/img2gps@v1", "--out", str(tmp_path / "ds"), "--json"])
    assert found.exit_code == 0, found.output
    assert asked["repo_id"] == "penn/img2gps" and asked["revision"] == "v1"
    assert json.loads(found.stdout)["labelled"] == study["photos"]

    def offline(**kwargs: Any) -> str:
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=offline))
    down = runner.invoke(app, ["ingest", "hf://datasets/penn/img2gps", "--out", str(tmp_path / "ds")])
    assert down.exit_code == 74 and "could not fetch" in down.output


def test_split_names_in_file_and_folder_names() -> None:
    assert split_of("train-00000-of-00002.parquet") == "train"
    assert split_of("img2gps-validation.arrow") == "validation"
    assert split_of("test") == "test"
    assert split_of("data-00000-of-00001.arrow") is None
    assert split_of("contest.parquet") is None  # a word that holds "test" is not a split


def test_split_given_refuses_photos_that_came_without_splits(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(4):
        photo(seed=k).save(photos / f"p{k}.jpg", quality=90)
    table = photos / "positions.csv"
    rows = "".join(f"p{k}.jpg,{39.9515 + k * 0.0003},-75.191\n" for k in range(4))
    table.write_text("file,lat,lon\n" + rows)
    ingest([photos], tmp_path / "ds", IngestOptions(labels=(str(table),)))
    result = CliRunner().invoke(app, ["split", str(tmp_path / "ds"), "--strategy", "given"])
    assert result.exit_code != 0 and "no photo came with a split" in result.output
