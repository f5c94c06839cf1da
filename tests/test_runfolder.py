"""Model folders: which file holds the model, which run is the latest, what is current."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpskit.errors import MissingStepError
from gpskit.runfolder import PublishedModel, RunFolder, latest_run, open_model_folder


def _touch(path: Path, ns: int, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(ns, ns))


def test_best_checkpoint_first_then_last(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    assert run.model_file is None and not run.has_model()
    _touch(run.last_path, 1)
    assert run.model_file == run.last_path
    _touch(run.best_path, 2)
    assert run.model_file == run.best_path


@pytest.mark.parametrize("files", [[], ["model.safetensors"], ["config.json"], ["best.pt/"]])
def test_a_folder_without_a_model_is_one_clear_error(tmp_path: Path, files: list[str]) -> None:
    for name in files:
        (tmp_path / name.rstrip("/")).mkdir() if name.endswith("/") else _touch(tmp_path / name, 1)
    with pytest.raises(MissingStepError, match=r"no best\.pt, last\.pt or model\.safetensors"):
        open_model_folder(tmp_path)


def test_published_folder_behind_the_same_interface(tmp_path: Path) -> None:
    _touch(tmp_path / "model.safetensors", 1)
    _touch(tmp_path / "config.json", 1, "{}")
    folder = open_model_folder(tmp_path)
    assert isinstance(folder, PublishedModel) and folder.model_file == folder.weights_path
    assert folder.index_path == tmp_path / "retrieval.npz"
    _touch(tmp_path / "last.pt", 2)  # a run's checkpoint wins
    assert isinstance(open_model_folder(tmp_path), RunFolder)


def test_an_evaluation_older_than_the_model_is_stale(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    _touch(run.best_path, 10)
    _touch(run.evaluation_path("test"), 20, json.dumps({"metrics": {"mean_m": 5.0}}))
    assert run.evaluation("test") == {"metrics": {"mean_m": 5.0}}
    _touch(run.best_path, 30)  # trained again
    assert run.evaluation("test") is None
    _touch(run.evaluation_path("test"), 40, "not json")
    assert run.evaluation("test") is None


def test_latest_run_is_the_newest_model(tmp_path: Path) -> None:
    _touch(tmp_path / "b" / "best.pt", 1)
    _touch(tmp_path / "a" / "last.pt", 5)
    (tmp_path / "empty").mkdir()
    assert latest_run(tmp_path).root.name == "a"
    with pytest.raises(MissingStepError, match="no trained run"):
        latest_run(tmp_path / "empty")


def test_a_folder_that_does_not_exist_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(MissingStepError, match="no such folder"):
        open_model_folder(tmp_path / "nowhere")
