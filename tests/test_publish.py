"""Publishing to the Hugging Face Hub: the dataset folder loads with ``datasets``, its card
parses and describes it, nothing local leaks, and an upload failure is one line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.publish import HUB_SPLITS, publish_dataset, yaml_text
from gpskit.split import SplitOptions, split

from .toy_positions import toy_dataset

yaml = pytest.importorskip("yaml")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("publish")
    dataset = toy_dataset(root, side=4, headings=4)
    out = root / "hub"
    result = CliRunner().invoke(
        app,
        ["publish", "dataset", str(dataset), "--out", str(out), "--name", "Toy campus", "--json"],
    )
    assert result.exit_code == 0, result.output
    return {"dataset": dataset, "out": out, "report": json.loads(result.stdout)}


def _card(folder: Path) -> tuple[dict[str, Any], str]:
    text = (folder / "README.md").read_text()
    _, header, body = text.split("---\n", 2)
    return yaml.safe_load(header), body


def test_the_folder_loads_with_datasets(published: dict[str, Any]) -> None:
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(str(published["out"]))
    assert set(loaded) == {"train", "validation", "test"}
    assert {k: len(v) for k, v in loaded.items()} == published["report"]["splits"]
    first = loaded["train"][0]
    assert first["image"].size[0] <= 64 and first["root"] == ""  # no local paths
    assert isinstance(first["latitude"], float)


def test_the_card_says_what_the_hub_reads(published: dict[str, Any]) -> None:
    header, body = _card(published["out"])
    assert header["license"] == "cc-by-4.0" and header["pretty_name"] == "Toy campus"
    assert header["size_categories"] == ["n<1K"]
    (config,) = header["configs"]
    files = {entry["split"]: entry["path"] for entry in config["data_files"]}
    assert set(files) == set(HUB_SPLITS.values())
    for pattern in files.values():
        assert list(published["out"].glob(pattern)), pattern
    sizes = {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]}
    assert sizes == published["report"]["splits"]
    features = {f["name"]: f["dtype"] for f in header["dataset_info"]["features"]}
    assert features["image"] == "image" and features["latitude"] == "float64"
    hub = pytest.importorskip("huggingface_hub")
    data = hub.DatasetCard.load(published["out"] / "README.md").data.to_dict()
    assert data["license"] == "cc-by-4.0" and "Toy campus" in body


def test_splits_without_embedded_images_are_refused(tmp_path: Path) -> None:
    dataset = toy_dataset(tmp_path, side=3, headings=2)
    split(dataset, SplitOptions(embed=False, force=True, ratios=(0.7, 0.15, 0.15)))
    result = CliRunner().invoke(
        app, ["publish", "dataset", str(dataset), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and "not embedded" in result.output and "--embed" in result.output


def test_push_failure_is_one_line_and_keeps_the_folder(
    published: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = pytest.importorskip("huggingface_hub")
    calls: list[tuple[str, str]] = []

    def offline(self: Any, repo_id: str, **kwargs: Any) -> None:
        calls.append((repo_id, kwargs["repo_type"]))
        raise OSError("no network")

    monkeypatch.setattr(hub.HfApi, "create_repo", offline)
    out = tmp_path / "hub"
    result = CliRunner().invoke(
        app,
        [
            "publish",
            "dataset",
            str(published["dataset"]),
            "--out",
            str(out),
            "--push",
            "team/campus",
        ],
    )
    assert result.exit_code != 0 and "upload failed" in result.output
    assert "Traceback" not in result.output and calls == [("team/campus", "dataset")]
    assert (out / "README.md").exists()  # the folder is complete; push later


def test_push_without_huggingface_hub_says_what_to_install(
    published: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # an import raises ImportError
    out = tmp_path / "hub"
    result = CliRunner().invoke(
        app,
        ["publish", "dataset", str(published["dataset"]), "--out", str(out), "--push", "team/x"],
    )
    assert result.exit_code != 0 and "pip install 'gpskit[hub]'" in result.output
    assert "Traceback" not in result.output and (out / "README.md").exists()


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.text(min_size=1, alphabet="abcdefgh_"), inner, min_size=1, max_size=3
            )
        ),
        max_leaves=10,
    )
)
def test_card_yaml_reads_back_as_written(value: Any) -> None:
    document = {"key": value}
    assert yaml.safe_load(yaml_text(document)) == document


def test_publish_dataset_needs_splits(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="split --embed"):
        publish_dataset(tmp_path, tmp_path / "out")
