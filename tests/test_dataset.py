"""The dataset folder: paths, tables, and whether outputs are current with the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpskit.coverage import CoverageOptions, coverage
from gpskit.dataset import COVERAGE, DUPLICATES, Dataset
from gpskit.dedup import DedupOptions, dedup
from gpskit.errors import MissingStepError

from .helpers import write_manifest


def _rows(n: int, lat: float = 39.9515) -> list[dict[str, object]]:
    return [
        {"latitude": lat + 1e-4 * i, "longitude": -75.1915, "img_direction": 45.0 * (i % 8)}
        for i in range(n)
    ]


def test_default_folder_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GPSKIT_DATASET", raising=False)
    assert Dataset.at(None).root == Path("gpskit-data")
    monkeypatch.setenv("GPSKIT_DATASET", str(tmp_path))
    assert Dataset.at(None).root == tmp_path
    assert Dataset.at(tmp_path / "x").root == tmp_path / "x"
    same = Dataset(tmp_path)
    assert Dataset.at(same) is same


def test_every_output_lives_in_the_folder(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    paths = [
        dataset.manifest_path,
        dataset.duplicates_path,
        dataset.overlap_path,
        dataset.contact_sheet_path,
        dataset.coverage_path,
        dataset.coverage_dir,
        dataset.splits_dir,
        dataset.runs_dir,
    ]
    assert all(p.parent == tmp_path for p in paths)
    assert len(set(paths)) == len(paths)


def test_missing_manifest_says_run_ingest(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path / "empty")
    with pytest.raises(MissingStepError, match="gpskit ingest") as err:
        dataset.load_manifest()
    assert str(tmp_path / "empty") in str(err.value)
    with pytest.raises(MissingStepError, match="gpskit dedup"):
        dataset.load_duplicates()
    assert not dataset.is_current(DUPLICATES)


def test_outputs_are_current_until_the_manifest_changes(tmp_path: Path) -> None:
    dataset = Dataset(tmp_path)
    write_manifest(tmp_path, _rows(5))
    assert not dataset.is_current(DUPLICATES) and not dataset.is_current(COVERAGE)
    dedup(dataset, DedupOptions(near_threshold=5), contact_sheet=False)
    coverage(dataset, CoverageOptions(cell_m=25.0), draw=False)
    assert dataset.is_current(DUPLICATES) and dataset.is_current(COVERAGE)
    assert dataset.stamped_options(DUPLICATES)["near_threshold"] == 5
    assert dataset.stamped_options(COVERAGE)["cell_m"] == 25.0
    assert dataset.load_coverage().num_rows == 5
    write_manifest(tmp_path, _rows(6))
    assert not dataset.is_current(DUPLICATES) and not dataset.is_current(COVERAGE)
