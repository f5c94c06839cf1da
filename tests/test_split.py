"""Split: no leakage, ratios, determinism, buffers, embedded self-contained files."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.errors import UsageError
from gpskit.exifwrite import save_photo
from gpskit.geo import LocalProjection, haversine_m
from gpskit.ingest import IngestOptions, ingest
from gpskit.split import SPLIT_NAMES, SplitOptions, parse_ratios, split
from gpskit.synth.samples import panorama, view

from .helpers import good_exif, write_manifest

CAMPUS = LocalProjection(39.9515, -75.1915)


def survey_rows(
    spots: int, seed: int, per_spot: int = 8, spacing: float = 12.0
) -> list[dict[str, object]]:
    """Spots on a jittered lattice inside the campus, each with ``per_spot`` headings."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(spots)))
    rows = []
    for s in range(spots):
        cx = (s % side - side / 2) * spacing + rng.uniform(-2, 2)
        cy = (s // side - side / 2) * spacing + rng.uniform(-2, 2)
        for k in range(per_spot):
            lat, lon = CAMPUS.inverse(cx + rng.normal(0, 0.4), cy + rng.normal(0, 0.4))
            rows.append(
                {
                    "latitude": float(lat),
                    "longitude": float(lon),
                    "img_direction": 45.0 * k,
                    "phash": f"{rng.integers(0, 2**63):016x}",
                    "gps_h_error": 5.0,
                }
            )
    return rows


def make_dataset(tmp_path: Path, spots: int = 40, seed: int = 0) -> Path:
    dataset = tmp_path / "ds"
    write_manifest(dataset, survey_rows(spots, seed))
    return dataset


def read_splits(dataset: Path) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(dataset / "splits" / f"{n}.parquet") for n in ("train", "val", "test")]
    )


def test_spot_split_runs_missing_steps_and_never_straddles(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    report = split(dataset)
    assert any("gpskit dedup" in w for w in report.notes)
    assert any("gpskit coverage" in w for w in report.notes)
    rows = read_splits(dataset)
    assert len(rows) == 40 * 8
    assert (rows.groupby("spot_id").split.nunique() == 1).all()
    assert sum(report.leakage["duplicate_pairs_across"].values()) == 0
    meta = json.loads((dataset / "splits" / "split.json").read_text())
    assert meta["counts"] == report.counts and meta["manifest_sha256"] and meta["gpskit_version"]


@pytest.mark.slow
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    spots=st.integers(12, 60),
    seed=st.integers(0, 10_000),
    ratios=st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.9, 0.1, 0.0)]),
)
def test_ratios_within_one_spot_and_spots_whole(
    tmp_path_factory: pytest.TempPathFactory,
    spots: int,
    seed: int,
    ratios: tuple[float, float, float],
) -> None:
    dataset = make_dataset(tmp_path_factory.mktemp("prop"), spots, seed)
    report = split(dataset, SplitOptions(ratios=ratios, seed=seed))
    total = sum(report.counts.values())
    for name, ratio in zip(("train", "val", "test"), ratios, strict=True):
        assert abs(report.counts[name] - ratio * total) <= 8, (name, report.counts)
    rows = read_splits(dataset)
    assert (rows.groupby("spot_id").split.nunique() == 1).all()


def test_deterministic_bytes(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    split(dataset, SplitOptions(seed=3))
    first = {p.name: p.read_bytes() for p in (dataset / "splits").iterdir()}
    split(dataset, SplitOptions(seed=3, force=True))
    second = {p.name: p.read_bytes() for p in (dataset / "splits").iterdir()}
    assert first == second
    split(dataset, SplitOptions(seed=4, force=True))
    assert (dataset / "splits" / "test.parquet").read_bytes() != first["test.parquet"]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    split(dataset)
    with pytest.raises(UsageError, match="--force"):
        split(dataset)
    result = CliRunner().invoke(app, ["split", str(dataset)])
    assert result.exit_code == 2 and "--force" in result.stderr


def test_splits_cover_the_region(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path, spots=100)
    split(dataset)
    rows = read_splits(dataset)
    # every quadrant of the area feeds the test split
    lat0, lon0 = rows.latitude.median(), rows.longitude.median()
    test = rows[rows.split == "test"]
    quadrants = {(a, b) for a, b in zip(test.latitude > lat0, test.longitude > lon0, strict=True)}
    assert len(quadrants) == 4


@pytest.mark.parametrize("buffer", [5.0, 10.0])
def test_block_buffer_keeps_test_away_from_train(tmp_path: Path, buffer: float) -> None:
    dataset = make_dataset(tmp_path, spots=144)
    report = split(dataset, SplitOptions(strategy="block", block_m=30, buffer_m=buffer))
    rows = read_splits(dataset)
    train, evaluation = rows[rows.split == "train"], rows[rows.split != "train"]
    d = haversine_m(
        evaluation.latitude.to_numpy()[:, None],
        evaluation.longitude.to_numpy()[:, None],
        train.latitude.to_numpy()[None, :],
        train.longitude.to_numpy()[None, :],
    )
    assert d.min() >= buffer - 0.01
    assert report.excluded["buffer"] > 0
    assert (rows.groupby("unit").split.nunique() == 1).all()


def test_random_strategy_warns(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    report = split(dataset, SplitOptions(strategy="random"))
    assert any("leakage" in w for w in report.warnings)
    rows = read_splits(dataset)
    assert (rows.groupby("spot_id").split.nunique() > 1).any()  # what makes it leak


def test_bad_options() -> None:
    with pytest.raises(UsageError):
        parse_ratios("0.8,0.2")
    assert parse_ratios("80,10,10") == pytest.approx((0.8, 0.1, 0.1))
    with pytest.raises(UsageError, match="--buffer"):
        SplitOptions(buffer_m=5).validate()
    with pytest.raises(UsageError, match="--strategy"):
        SplitOptions(strategy="magic").validate()


# --- with real photos -------------------------------------------------------------------


@pytest.fixture(scope="module")
def photo_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("split-photos")
    for s in range(6):
        pano = panorama(seed=200 + s)
        lat, lon = CAMPUS.inverse(-60 + 25 * s, 10.0)
        for k, heading in enumerate(range(0, 360, 90)):
            img = view(pano, heading, size=(1024, 768))
            exif = good_exif(
                latitude=float(lat),
                longitude=float(lon),
                heading=float(heading),
                orientation=6 if k == 1 else 1,
            )
            save_photo(img, root / "photos" / f"s{s}_{heading}.jpg", exif)
    # an exact copy: a duplicate group that must not straddle
    (root / "photos" / "copy.jpg").write_bytes((root / "photos" / "s0_0.jpg").read_bytes())
    ingest([root / "photos"], root / "ds", IngestOptions(workers=2))
    return root / "ds"


def test_embedded_split_reads_without_gpskit(photo_dataset: Path) -> None:
    report = split(
        photo_dataset, SplitOptions(embed=True, max_side=256, export_csv=True, force=True)
    )
    assert not report.embed_failures
    path = photo_dataset / "splits" / "train.parquet"
    frame = pd.read_parquet(path)
    image = frame.image.iloc[0]
    with Image.open(io.BytesIO(image["bytes"])) as img:
        assert max(img.size) == 256 and img.format == "JPEG"
    every = pd.concat(
        [pd.read_parquet(photo_dataset / "splits" / f"{n}.parquet") for n in SPLIT_NAMES]
    )
    rotated = every[every.path.str.endswith("_90.jpg")]
    assert len(rotated) == 6  # one per spot, tagged orientation 6
    for cell in rotated.image:
        with Image.open(io.BytesIO(cell["bytes"])) as img:
            assert img.size == (192, 256)  # orientation 6 applied: portrait
    table = pq.read_table(path)
    assert table.column("image").type.names == ["bytes", "path"]
    assert b"huggingface" in table.schema.metadata
    csv = pd.read_csv(photo_dataset / "splits" / "train.csv")
    assert list(csv.columns) == ["image_path", "latitude", "longitude"]
    assert "copy.jpg" not in set(frame.path)  # not a keeper


def test_embedded_split_loads_in_datasets(
    photo_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets not installed")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    split(photo_dataset, SplitOptions(embed=True, max_side=128, force=True))
    data = datasets.load_dataset(
        "parquet",
        data_files={"train": str(photo_dataset / "splits" / "train.parquet")},
        cache_dir=str(photo_dataset.parent / "hf-cache"),
    )["train"]
    first = data[0]
    assert isinstance(first["image"], Image.Image) and max(first["image"].size) == 128
    assert isinstance(first["latitude"], float)


def test_unembedded_split_points_to_originals(photo_dataset: Path) -> None:
    split(photo_dataset, SplitOptions(force=True))
    frame = pd.read_parquet(photo_dataset / "splits" / "test.parquet")
    assert frame.image.iloc[0]["bytes"] is None and os.path.exists(frame.image.iloc[0]["path"])


def test_include_duplicates_keeps_groups_together(photo_dataset: Path) -> None:
    split(photo_dataset, SplitOptions(include_duplicates=True, force=True))
    rows = read_splits(photo_dataset)
    twins = rows[rows.path.isin(["s0_0.jpg", "copy.jpg"])]
    assert len(twins) == 2 and twins.split.nunique() == 1


def test_cli_split_json(photo_dataset: Path) -> None:
    result = CliRunner().invoke(
        app, ["split", str(photo_dataset), "--force", "--json", "--ratios", "0.5,0.25,0.25"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["strategy"] == "spot" and sum(data["counts"].values()) == 24


def test_include_rejected_takes_photos_with_a_position(tmp_path: Path) -> None:
    rows = survey_rows(20, seed=2)
    rows[0].update(status="rejected", reasons=["gps_error_too_large"], gps_h_error=60.0)
    rows[1].update(status="rejected", reasons=["gps_null_island"], latitude=0.0, longitude=0.0)
    dataset = tmp_path / "ds"
    write_manifest(dataset, rows)
    report = split(dataset)
    assert sum(report.counts.values()) == 158 and report.excluded["rejected"] == 2
    report = split(dataset, SplitOptions(include_rejected=True, force=True))
    assert sum(report.counts.values()) == 159 and report.excluded["rejected"] == 1
    assert any("rejected" in w for w in report.warnings)
    frame = read_splits(dataset).set_index("path")
    spot_of_first = frame.loc["p00000.jpg", "spot_id"]
    assert spot_of_first == frame.loc["p00002.jpg", "spot_id"]  # joined its accepted spot


def test_force_replaces_only_the_split_files(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    split(dataset, SplitOptions(export_csv=True))
    (dataset / "splits" / "README.md").write_text("our notes on these splits")
    (dataset / "splits" / "extra").mkdir()
    report = split(dataset, SplitOptions(force=True, seed=5))  # no CSVs this time
    names = sorted(p.name for p in (dataset / "splits").iterdir())
    assert names == [
        "README.md",
        "extra",
        "split.json",
        "test.parquet",
        "train.parquet",
        "val.parquet",
    ]
    assert (dataset / "splits" / "README.md").read_text() == "our notes on these splits"
    assert json.loads((dataset / "splits" / "split.json").read_text())["seed"] == report.seed == 5


def test_corrupt_intermediates_are_rebuilt_with_a_note(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path)
    split(dataset)
    (dataset / "duplicates.parquet").write_bytes(b"PAR1 garbage, not parquet")
    data = bytearray((dataset / "coverage.parquet").read_bytes())
    data[100 : len(data) // 2] = bytes(len(data) // 2 - 100)  # pages broken, footer intact
    (dataset / "coverage.parquet").write_bytes(bytes(data))
    report = split(dataset, SplitOptions(force=True))
    notes = " ".join(report.notes)
    assert "duplicates.parquet" in notes and "coverage.parquet" in notes
    assert len(read_splits(dataset)) == 40 * 8


def test_splits_are_stamped_with_the_manifest_they_read(tmp_path: Path) -> None:
    import hashlib

    dataset = make_dataset(tmp_path)
    report = split(dataset)
    digest = hashlib.sha256((dataset / "manifest.parquet").read_bytes()).hexdigest()
    assert report.manifest_sha256 == digest
    stamp = json.loads(
        pq.read_schema(dataset / "splits" / "train.parquet").metadata[b"gpskit.split"]
    )
    assert stamp["manifest_sha256"] == digest


@pytest.mark.parametrize("name", ["train.csv", "val.csv", "test.csv"])
def test_force_never_deletes_a_users_file_with_a_split_name(tmp_path: Path, name: str) -> None:
    """Only the files the last split recorded writing are replaced: a CSV made by hand,
    when gpskit wrote none, stays (and one gpskit wrote goes when it writes none)."""
    dataset = make_dataset(tmp_path)
    split(dataset, SplitOptions())
    (dataset / "splits" / name).write_text("made by hand")
    split(dataset, SplitOptions(force=True, seed=5))
    assert (dataset / "splits" / name).read_text() == "made by hand"
    split(dataset, SplitOptions(force=True, export_csv=True))
    assert (dataset / "splits" / name).read_text() != "made by hand"  # --export-csv asked
    split(dataset, SplitOptions(force=True))
    assert not (dataset / "splits" / name).exists()  # gpskit's own, no longer written


def test_the_report_names_every_photo_a_duplicate_rule_left_out(photo_dataset: Path) -> None:
    report = split(photo_dataset, SplitOptions(force=True))
    left = report.duplicates_left_out
    assert report.excluded["duplicates"] > 0 and len(left) == report.excluded["duplicates"]
    dups = pd.read_parquet(photo_dataset / "duplicates.parquet")
    copies = dups[~dups.keep]
    assert sorted(r["photo"] for r in left) == sorted(copies.root + "/" + copies.path)
    assert all(r["kept_instead"] and r["kind"] for r in left)
    record = json.loads((photo_dataset / "splits" / "split.json").read_text())
    assert record["duplicates_left_out"] == left
