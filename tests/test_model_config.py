"""A published model's config.json is checked against its schema: a hostile or broken one
is one line and exit 2, never an internal error or a wrong answer."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.jsoncheck import load_json_schema, problems

from .helpers import photo

VALID: dict[str, Any] = {
    "format": "gpskit-model", "format_version": 1, "gpskit_version": "0", "arch": "resnet18",
    "head": {"head": "cells", "cells": [[0.0, 0.0], [1.0, 1.0]]}, "image_size": 64,
    "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
    "normalisation": {"lat0": 39.95, "lon0": -75.19, "mean": [0.0, 0.0], "std": [50.0, 50.0]},
    "target": "photo", "prediction": {"method": "head"}, "epoch": 3,
    "options": {"dropout": 0.5, "image_size": 64, "batch_size": 8, "knn": 0},
}  # fmt: skip


def _predict(tmp_path: Path, config_text: str) -> Any:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(config_text)
    (folder / "model.safetensors").write_bytes(b"not weights")
    photo().save(tmp_path / "x.jpg")
    return CliRunner().invoke(app, ["predict", str(tmp_path / "x.jpg"), "--run", str(folder)])


def test_the_valid_example_conforms() -> None:
    assert problems(VALID, load_json_schema("model-config")) == []


HOSTILE = {
    "cells empty": ("head", {"head": "cells", "cells": []}),
    "head bogus": ("head", {"head": "bogus", "cells": []}),
    "std NaN": ("normalisation", {**VALID["normalisation"], "std": [math.nan, 1.0]}),
    "std 0": ("normalisation", {**VALID["normalisation"], "std": [0.0, 1.0]}),
    "lat0 999": ("normalisation", {**VALID["normalisation"], "lat0": 999}),
    "arch unknown": ("arch", "resnet9000"),
    "image size text": ("image_size", "224"),
    "options missing": ("options", None),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_config_is_one_line(tmp_path: Path, case: str) -> None:
    key, value = HOSTILE[case]
    config = copy.deepcopy(VALID)
    if value is None:
        del config[key]
    else:
        config[key] = value
    result = _predict(tmp_path, json.dumps(config))
    assert result.exit_code == 2, result.output
    assert "config" in result.output and "internal error" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "text",
    ["[1, 2, 3]", "null", '"a string"', "{", "[" * 100_000 + "]" * 100_000, "\xff\xfe"],
)
def test_a_config_that_is_not_an_object_or_not_json_is_one_line(tmp_path: Path, text: str) -> None:
    result = _predict(tmp_path, text)
    assert result.exit_code == 2, result.output
    assert "not a valid gpskit model config" in result.output


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(value, dict):
        for k, v in value.items():
            found += _paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _paths(v, (*at, i))
    return found


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_value_anywhere_is_a_result_or_one_line(tmp_path: Path, data: st.DataObject) -> None:
    """Replace any part of a valid config with any JSON value: predict answers (the weights
    here are junk, so with a config that still conforms it says so) in one line, exit 2."""
    config = copy.deepcopy(VALID)
    where = data.draw(st.sampled_from(_paths(config)))
    parent = config
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = data.draw(JSON)
    result = _predict(tmp_path, json.dumps(config))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
