"""The demo end to end (quick size): defects caught, no leakage, a model that learned."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("torch", reason="gpskit[train] not installed")
pytestmark = pytest.mark.slow  # the demo trains a model: minutes on 2 cores


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    from gpskit.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, quick=True, log=lambda line: None)


def test_every_injected_defect_is_caught(demo: tuple[Path, object]) -> None:
    _, report = demo
    recall = {row["defect"]: row["recall"] for row in report.defects}  # type: ignore[attr-defined]
    for defect in ("exact_copy", "truncated", "no_gps", "null_island", "outside_region"):
        assert recall[defect] == 1.0, (defect, report.defects)  # type: ignore[attr-defined]
    assert all(r == 1.0 for r in recall.values() if r is not None), report.defects  # type: ignore[attr-defined]


def test_splits_do_not_leak(demo: tuple[Path, object]) -> None:
    out, report = demo
    rows = pd.concat(
        pd.read_parquet(out / "dataset" / "splits" / f"{n}.parquet")
        for n in ("train", "val", "test")
    )
    assert (rows.groupby("spot_id").split.nunique() == 1).all()
    assert (rows.dropna(subset=["group_id"]).groupby("group_id").split.nunique() == 1).all()
    leakage = report.results["split"]["leakage"]  # type: ignore[attr-defined]
    assert sum(leakage["duplicate_pairs_across"].values()) == 0


def test_model_beats_the_mean_predictor(demo: tuple[Path, object]) -> None:
    _, report = demo
    evaluation = report.results["eval"]  # type: ignore[attr-defined]
    assert evaluation["metrics"]["mean_m"] < evaluation["baseline_train_mean"]["mean_m"]


def test_report_is_one_self_contained_page(demo: tuple[Path, object]) -> None:
    out, _ = demo
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3
    # nothing is fetched to show it (the inlined map names OpenStreetMap's tiles, which it
    # adds only when they can be reached, and XML namespaces, which are not requests)
    for attribute in ('src="http', "src='http", 'href="http', "url(http"):
        assert attribute not in page, attribute
    assert "resnet18" in page and "CPU" in page
    assert json.loads((out / "demo.json").read_text())["defects"]
