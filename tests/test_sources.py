"""Datasets users already have, ingested: a Hub-layout dataset built like the Img2GPS
study's released set (Parquet with image bytes, ``Latitude``/``Longitude``, no EXIF, a
random train/test split), tables naming photos by path, imagefolders, ``datasets`` caches
and ``hf://`` ids; then dedup, coverage and split on them as on photos."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.dataset import Dataset
from gpskit.ingest import IngestOptions, ingest
from gpskit.ingest.options import Columns
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


def _named(data: bytes, split: str = "train") -> str:
    """Where ingest writes a table's image: named by its bytes."""
    return f"{split}/{hashlib.sha256(data).hexdigest()[:16]}.jpg"


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
                    [
                        {"bytes": _jpeg(Image.open(folder / "walk" / r["file"])), "path": None}
                        for r in chosen
                    ],
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
    result = CliRunner().invoke(
        app, ["ingest", str(folder / "hub"), "--out", str(dataset), "--json"]
    )
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
    assert set(rows.position_table) == {
        "train-00000-of-00001.parquet",
        "test-00000-of-00001.parquet",
    }
    assert (rows.source_split == "test").sum() == study["test"]
    # every position is the table's, row for row (each image named by its bytes)
    train = pq.read_table(study["hub"] / "data" / "train-00000-of-00001.parquet").to_pandas()
    by_path = rows.set_index("path")
    for k in range(len(train)):
        row = by_path.loc[_named(train.image[k]["bytes"])]
        assert (row.latitude, row.longitude) == (train.Latitude[k], train.Longitude[k])


def test_a_rerun_reads_and_writes_nothing_and_a_changed_position_is_taken(
    study: dict[str, Any], tmp_path: Path
) -> None:
    runner = CliRunner()
    again = runner.invoke(
        app, ["ingest", str(study["hub"]), "--out", str(study["dataset"]), "--json"]
    )
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
    pq.write_table(
        table.set_column(1, "Latitude", pa.array(lat)).slice(0, table.num_rows - 1), train
    )
    moved = runner.invoke(app, ["ingest", str(hub), "--out", str(dataset), "--json"])
    after = json.loads(moved.stdout)
    rows = _manifest(dataset)
    assert after["files"] == study["photos"] - 1 and after["removed"] == 1
    name = _named(table["image"][0].as_py()["bytes"])
    first = rows[rows.path == name].iloc[0]
    old = before[before.path == name].iloc[0]
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
    assert hub_tables(folder, Columns())[1] == []
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
    digest = hashlib.sha256(_jpeg(photo(seed=3))).hexdigest()[:16]
    assert sorted(rows.path) == [f"train/{digest}-IMG_1.jpg", f"validation/{digest}-IMG_1.jpg"]


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
    [
        b"\x00\x01\x02garbage" * 50,
        b"",
        b"PAR1" + os.urandom(300) + b"PAR1",
        b'a,b\n"unterminated\n',
    ],
)
def test_a_broken_table_is_one_line(tmp_path: Path, content: bytes) -> None:
    for suffix in (".csv", ".parquet", ".jsonl", ".arrow"):
        table = tmp_path / f"t{suffix}"
        table.write_bytes(content)
        result = CliRunner().invoke(app, ["ingest", str(table), "--out", str(tmp_path / "ds")])
        assert result.exit_code != 0 and result.exit_code != 70, (suffix, result.output)
        assert (
            "internal error" not in result.output and len(result.output.strip().splitlines()) <= 3
        )


def test_a_fifo_named_like_a_table_is_refused_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "labels.csv"
    os.mkfifo(fifo)
    (tmp_path / "photos").mkdir()
    for args in (
        ["ingest", str(fifo)],
        ["ingest", str(tmp_path / "photos"), "--labels", str(fifo)],
    ):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ds")])
        assert result.exit_code != 0 and "FIFO" in result.output


def test_hf_ids_need_the_hub_extra_and_read_its_snapshot(
    study: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    runner = CliRunner()
    missing = runner.invoke(
        app, ["ingest", "hf://datasets/penn/img2gps", "--out", str(tmp_path / "ds")]
    )
    assert missing.exit_code != 0 and "gpskit[hub]" in missing.output
    asked: dict[str, Any] = {}

    def snapshot_download(**kwargs: Any) -> str:
        asked.update(kwargs)
        return str(study["hub"])

    monkeypatch.setitem(
        sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=snapshot_download)
    )
    found = runner.invoke(
        app, ["ingest", "hf://datasets/penn/img2gps@v1", "--out", str(tmp_path / "ds"), "--json"]
    )
    assert found.exit_code == 0, found.output
    assert asked["repo_id"] == "penn/img2gps" and asked["revision"] == "v1"
    assert json.loads(found.stdout)["labelled"] == study["photos"]

    def offline(**kwargs: Any) -> str:
        raise ConnectionError("no network")

    monkeypatch.setitem(
        sys.modules, "huggingface_hub", types.SimpleNamespace(snapshot_download=offline)
    )
    down = runner.invoke(
        app, ["ingest", "hf://datasets/penn/img2gps", "--out", str(tmp_path / "ds")]
    )
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


# --- what an outside review broke, each as a class of input ---------------------------------


def _hub(folder: Path, shards: dict[str, list[dict[str, Any]]]) -> Path:
    """A Hub folder: data/<shard>.parquet, each row {image bytes, lat, lon, extra...}."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for shard, rows in shards.items():
        columns: dict[str, Any] = {
            "image": pa.array([{"bytes": r["bytes"], "path": r.get("path")} for r in rows], IMAGE),
            "Latitude": [r.get("lat", 39.9515) for r in rows],
            "Longitude": [r.get("lon", -75.1910) for r in rows],
        }
        if any("split" in r for r in rows):
            columns["split"] = [r.get("split") for r in rows]
        pq.write_table(pa.table(columns), folder / "data" / f"{shard}.parquet")
    return folder


def _ingest_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["ingest", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_split_values_are_names_never_paths(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    hostile = [str(victim), "../../escaped", "train", ".", "train/", "a b", None]
    rows = [{"bytes": _jpeg(photo(seed=k)), "split": s} for k, s in enumerate(hostile)]
    hub = _hub(tmp_path / "hub", {"train-0": rows})
    before = sorted(p for p in tmp_path.rglob("*") if "ds" not in p.parts)
    report = _ingest_json(str(hub), "--out", str(tmp_path / "ds"))
    assert report["files"] == len(hostile)  # every row one row, none overwritten
    after = sorted(p for p in tmp_path.rglob("*") if "ds" not in p.parts)
    assert before == after and not list(victim.iterdir())
    folders = {p.name for p in (tmp_path / "ds" / "imported" / "hub").iterdir() if p.is_dir()}
    assert folders == {"train"}  # odd names fall back to the file's own split


def test_shards_of_one_split_keep_every_image_and_a_rerun_writes_nothing(tmp_path: Path) -> None:
    shards = {
        f"train-0000{n}-of-00002": [
            {"bytes": _jpeg(photo(seed=10 * n + k)), "lat": 39.95 + n / 1e3} for k in range(4)
        ]
        for n in range(2)
    }
    hub = _hub(tmp_path / "hub", shards)
    first = _ingest_json(str(hub), "--out", str(tmp_path / "ds"))
    again = _ingest_json(str(hub), "--out", str(tmp_path / "ds"))
    assert first["files"] == 8 and first["imported"] == 8
    assert (again["read"], again["imported"], again["files"]) == (0, 0, 8)
    # a row removed from the first shard renames nothing: one row leaves, none re-read
    table = pq.read_table(hub / "data" / "train-00000-of-00002.parquet")
    pq.write_table(table.slice(1), hub / "data" / "train-00000-of-00002.parquet")
    edited = _ingest_json(str(hub), "--out", str(tmp_path / "ds"))
    assert (edited["files"], edited["read"], edited["removed"]) == (7, 0, 1)


def test_empty_and_odd_image_cells_are_rows_not_silence(tmp_path: Path) -> None:
    (tmp_path / "hub" / "data").mkdir(parents=True)
    table = pa.table(
        {
            "image": pa.array(
                [{"bytes": _jpeg(photo(seed=1)), "path": None}, {"bytes": b"", "path": None},
                 {"bytes": None, "path": None}, {"bytes": b"\x00garbage", "path": "x.jpg"}],
                IMAGE,
            ),
            "lat": [39.9515] * 4, "lon": [-75.191] * 4,
        }
    )  # fmt: skip
    pq.write_table(table, tmp_path / "hub" / "data" / "train-0.parquet")
    _ingest_json(str(tmp_path / "hub"), "--out", str(tmp_path / "ds"))
    rows = _manifest(tmp_path / "ds")
    reasons = sorted(r for rs in rows.reasons for r in rs)
    assert len(rows) == 4 and reasons.count("empty_file") == 2 and "not_image" in reasons


def test_publish_never_writes_over_the_source_or_a_datasets_own_folders(tmp_path: Path) -> None:
    rows = [{"bytes": _jpeg(photo(seed=k)), "lat": 39.9512 + k * 2e-4} for k in range(6)]
    hub = _hub(tmp_path / "hub", {"train-0": rows[:4], "test-0": rows[4:]})
    dataset = tmp_path / "ds"
    _ingest_json(str(hub), "--out", str(dataset))
    runner = CliRunner()
    made = runner.invoke(app, ["split", str(dataset), "--strategy", "given", "--embed"])
    assert made.exit_code == 0, made.output
    source = (hub / "data" / "train-0.parquet").read_bytes()
    for out in (hub, hub / "data", dataset / "imported" / "hub", tmp_path):
        result = runner.invoke(app, ["publish", "dataset", str(dataset), "--out", str(out)])
        assert result.exit_code == 2, (out, result.output)
    assert (hub / "data" / "train-0.parquet").read_bytes() == source
    fine = runner.invoke(app, ["publish", "dataset", str(dataset), "--out", str(tmp_path / "pub")])
    assert fine.exit_code == 0, fine.output


def test_a_given_split_counts_the_copies_it_came_with(tmp_path: Path) -> None:
    train = [{"bytes": _jpeg(photo(seed=k)), "lat": 39.9512 + k * 1e-4} for k in range(6)]
    hub = _hub(tmp_path / "hub", {"train-0": train, "test-0": train[:3]})  # test = copies
    dataset = tmp_path / "ds"
    _ingest_json(str(hub), "--out", str(dataset))
    report = split(Dataset(dataset), SplitOptions(strategy="given"))
    assert report.counts == {"train": 6, "val": 0, "test": 3}
    assert report.leakage["duplicate_pairs_across"]["train-test"] == 3


def test_a_photo_folder_with_a_stray_table_stays_a_photo_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "data").mkdir(parents=True)
    (photos / "exports").mkdir()
    for k in range(3):
        photo(seed=k).save(photos / f"p{k}.jpg", quality=90)
    pq.write_table(
        pa.table({"file_name": ["p0.jpg"], "value": [1]}), photos / "data" / "log.parquet"
    )
    (photos / "exports" / "metadata.csv").write_text("camera,iso\nx,100\n")
    report = _ingest_json(str(photos), "--out", str(tmp_path / "ds"))
    names = set(_manifest(tmp_path / "ds").path)
    assert {"p0.jpg", "p1.jpg", "p2.jpg"} <= names and report["files"] == 5


def test_a_dataset_inside_the_hub_folder_it_reads_is_refused(tmp_path: Path) -> None:
    hub = _hub(tmp_path / "hub", {"train-0": [{"bytes": _jpeg(photo(seed=1))}]})
    for out in (hub, hub / "data" / "ds", hub / "ds"):
        result = CliRunner().invoke(app, ["ingest", str(hub), "--out", str(out)])
        assert result.exit_code == 2 and "inside" in result.output, (out, result.output)


def test_a_table_given_again_takes_back_what_it_no_longer_says(tmp_path: Path) -> None:
    # a Hub cell blanked: the photo (no EXIF) has no position any more
    rows = [{"bytes": _jpeg(photo(seed=k)), "lat": 39.9512 + k * 1e-4} for k in range(3)]
    hub = _hub(tmp_path / "hub", {"train-0": rows})
    _ingest_json(str(hub), "--out", str(tmp_path / "ds"))
    table = pq.read_table(hub / "data" / "train-0.parquet")
    table = table.set_column(
        1, "Latitude", pa.array([None, rows[1]["lat"], rows[2]["lat"]], pa.float64())
    )
    pq.write_table(table, hub / "data" / "train-0.parquet")
    _ingest_json(str(hub), "--out", str(tmp_path / "ds"))
    blanked = _manifest(tmp_path / "ds").set_index("path").loc[_named(rows[0]["bytes"])]
    assert pd.isna(blanked.gps_source) and blanked.status == "rejected"
    # a path-listing table that loses a row: that photo leaves the manifest
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        photo(seed=k).save(photos / f"p{k}.jpg", quality=90)
    listing = photos / "t.csv"
    listing.write_text("file,lat,lon\n" + "".join(f"p{k}.jpg,39.9515,-75.191\n" for k in range(3)))
    _ingest_json(str(listing), "--out", str(tmp_path / "ds2"))
    listing.write_text("file,lat,lon\np0.jpg,39.9516,-75.191\n")
    report = _ingest_json(str(listing), "--out", str(tmp_path / "ds2"))
    assert sorted(_manifest(tmp_path / "ds2").path) == ["p0.jpg"] and report["removed"] == 2


def test_a_table_naming_the_datasets_own_files_makes_no_rows_of_them(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    photo(seed=1).save(folder / "a.jpg", quality=90)
    table = folder / "self.csv"
    table.write_text(
        "file,lat,lon\na.jpg,39.95,-75.19\nself.csv,39.95,-75.19\n"
        "ds/manifest.parquet,39.95,-75.19\nds/.gpskit/lock,39.95,-75.19\n"
    )
    hashes = []
    for _ in range(3):
        _ingest_json(str(table), "--out", str(folder / "ds"))
        hashes.append(hashlib.sha256((folder / "ds" / "manifest.parquet").read_bytes()).hexdigest())
    assert list(_manifest(folder / "ds").path) == ["a.jpg"] and len(set(hashes)) == 1


HOSTILE_TABLES = {
    "bytes as text": lambda d: pq.write_table(
        pa.table({"image": [{"bytes": "text", "path": None}], "lat": [1.0], "lon": [2.0]}),
        d / "t.parquet",
    ),
    "list names": lambda d: pq.write_table(
        pa.table({"file": [["a.jpg"]], "lat": [1.0], "lon": [2.0]}), d / "t.parquet"
    ),
    "struct names": lambda d: (d / "t.jsonl").write_text(
        '{"file": {"a": 1}, "lat": 1, "lon": 2}\n'
    ),
    "binary names": lambda d: pq.write_table(
        pa.table({"file": pa.array([b"\xe9t\xe9.jpg"], pa.binary()), "lat": [1.0], "lon": [2.0]}),
        d / "t.parquet",
    ),
    "struct split": lambda d: pq.write_table(
        pa.table({"file": ["a.jpg"], "lat": [1.0], "lon": [2.0], "split": [{"x": 1}]}),
        d / "t.parquet",
    ),
    "twice a column": lambda d: (d / "t.csv").write_text("file,lat,lat,lon\na.jpg,1,2,3\n"),
    "latin-1": lambda d: (d / "t.csv").write_bytes("file,lat,lon\nété.jpg,1,2\n".encode("latin-1")),
    "one text cell": lambda d: (d / "t.jsonl").write_text(
        '{"file": "a.jpg", "lat": "n/a", "lon": 2}\n{"file": "b.jpg", "lat": 1, "lon": 2}\n'
    ),
    "int image": lambda d: pq.write_table(
        pa.table({"image": [5], "file_name": ["a.jpg"], "lat": [1.0], "lon": [2.0]}),
        d / "t.parquet",
    ),
    "corrupt parquet": lambda d: (d / "t.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TABLES))
def test_a_hostile_table_is_rows_or_one_line_never_an_internal_error(
    tmp_path: Path, case: str
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    photo(seed=1).save(folder / "a.jpg", quality=90)
    HOSTILE_TABLES[case](folder)
    table = next(folder.glob("t.*"))
    for args in (["ingest", str(table)], ["ingest", str(folder / "a.jpg"), "--labels", str(table)]):
        result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "ds")])
        assert result.exit_code in (0, 2), (case, args, result.output)
        if result.exit_code:
            assert len(result.output.strip().splitlines()) == 1, result.output


def test_labels_that_are_not_tables_are_one_line(tmp_path: Path) -> None:
    photo(seed=1).save(tmp_path / "a.jpg", quality=90)
    for labels, said in (
        (tmp_path / "none.csv", "no such file"),
        (tmp_path / "a.jpg", "not a table"),
    ):
        result = CliRunner().invoke(
            app,
            [
                "ingest",
                str(tmp_path / "a.jpg"),
                "--labels",
                str(labels),
                "--out",
                str(tmp_path / "ds"),
            ],
        )
        assert result.exit_code == 2 and said in result.output, result.output


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cuts=st.lists(
        st.tuples(st.integers(0, 4000), st.binary(min_size=0, max_size=8)), min_size=1, max_size=4
    )
)
def test_mutated_image_bytes_in_a_hub_table_are_rows_with_reasons(
    tmp_path_factory: pytest.TempPathFactory, cuts: list[tuple[int, bytes]]
) -> None:
    """Byte mutations of the JPEGs a Hub table holds: every cell one row, never an error."""
    folder = tmp_path_factory.mktemp("mutated")
    rows = []
    for k in range(3):
        data = bytearray(_jpeg(photo(seed=k)))
        for at, insert in cuts:
            at = min(at, len(data))
            data[at : at + len(insert)] = insert
        rows.append({"bytes": bytes(data), "lat": 39.9512 + k * 1e-4})
    hub = _hub(folder / "hub", {"train-0": rows})
    result = CliRunner().invoke(
        app, ["ingest", str(hub), "--out", str(folder / "ds"), "--json", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    distinct = len({r["bytes"] for r in rows})
    assert json.loads(result.stdout)["files"] == distinct  # identical bytes are one photo
