"""``gpskit sweep``: grids, presets, resume, and the same table for the same grid."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.errors import GpskitError, UsageError
from gpskit.train.options import TrainOptions
from gpskit.train.sweep import PRESETS, parse_grid, parse_settings, plan, run_name

from .helpers import kill_in_epoch_two
from .toy_positions import toy_dataset

SMALL = [
    "--set", "arch=resnet18", "--set", "weights=none", "--set", "epochs=2",
    "--set", "image_size=32", "--set", "batch_size=16", "--set", "knn=4",
]  # fmt: skip


def test_grid_is_the_product_of_its_axes_after_the_presets() -> None:
    sets = parse_grid(["batch_size=32,64", "freeze=none,stem+layer1"], ["head"])
    assert len(sets) == 3 * 2 * 2
    assert sets[0] == {"head": "regression", "batch_size": 32, "freeze": ()}
    assert sets[-1] == {"head": "hybrid", "batch_size": 64, "freeze": ("stem", "layer1")}
    assert run_name(sets[-1]) == "head-hybrid_batch_size-64_freeze-stem+layer1"
    assert parse_grid(["lr=0.1,0.1"], []) == [{"lr": 0.1}]  # repeats run once
    assert parse_settings(["epochs=3", "hflip=yes"]) == {"epochs": 3, "hflip": True}
    assert {"batch", "loss", "arch", "freeze"} <= set(PRESETS)


@pytest.mark.parametrize(
    ("grid", "presets", "message"),
    [
        (["batch_size=abc"], [], "not a int"),
        (["colour=red"], [], "unknown or fixed option"),
        (["workers=1,2"], [], "unknown or fixed option"),
        (["batch_size"], [], "KEY=VALUE"),
        ([], ["nope"], "unknown 'nope'"),
        ([], [], "nothing to sweep"),
    ],
)
def test_bad_grids_are_one_clear_error(grid: list[str], presets: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_grid(grid, presets)


def test_every_run_is_checked_before_any_trains() -> None:
    with pytest.raises(UsageError, match="--batch-size"):
        plan(TrainOptions(), [{"batch_size": 32}, {"batch_size": 0}])


torch = pytest.importorskip("torch", reason="gpskit[train] not installed")


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_dataset(tmp_path_factory.mktemp("sweep"), side=5, headings=4) / "splits"


def _sweep(splits: Path, out: Path, *extra: str) -> dict:
    result = CliRunner().invoke(
        app, ["sweep", str(splits), "--out", str(out), *SMALL, *extra, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_sweep_writes_one_row_per_run_and_resumes(splits: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    first = _sweep(splits, out, "--grid", "head=regression,cells")
    names = [r["run"] for r in first["runs"]]
    assert names == ["head-regression", "head-cells"]
    table = pq.read_table(out / "sweep.parquet").to_pandas()
    assert list(table.run) == names and (table.test_mean_m > 0).all()
    assert (out / "sweep.png").stat().st_size > 0
    assert "<section id='sweep'>" in (out / "sweep.html").read_text()
    for name in names:
        state = torch.load(out / name / "best.pt", map_location="cpu", weights_only=True)
        assert state["head"]["head"] == name.split("-")[1]
    # a re-run skips what finished: nothing trains again, the table is the same
    stamps = {n: (out / n / "best.pt").stat().st_mtime_ns for n in names}
    again = _sweep(splits, out, "--grid", "head=regression,cells")
    assert again["runs"] == first["runs"]
    assert {n: (out / n / "best.pt").stat().st_mtime_ns for n in names} == stamps
    # the same grid elsewhere, from scratch: the same errors (seeds fixed)
    fresh = _sweep(splits, tmp_path / "fresh", "--grid", "head=regression,cells")
    columns = ["run", "val_mean_m", "test_mean_m", "test_median_m", "best_epoch"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(fresh["runs"])[columns], pd.DataFrame(first["runs"])[columns]
    )


@pytest.mark.slow
def test_changed_options_train_again(splits: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    _sweep(splits, out, "--grid", "batch_size=16")
    stamp = (out / "batch_size-16" / "sweep-run.json").read_text()
    _sweep(splits, out, "--grid", "batch_size=16", "--set", "lr=0.002")
    assert (out / "batch_size-16" / "sweep-run.json").read_text() != stamp


@pytest.mark.slow
def test_dry_run_lists_and_trains_nothing(splits: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["sweep", str(splits), "--out", str(tmp_path / "s"), "--preset", "batch", "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["batch_size-32", "batch_size-64", "batch_size-128"]
    assert not (tmp_path / "s").exists()
    bad = CliRunner().invoke(app, ["sweep", str(splits), "--grid", "batch_size=0", "--dry-run"])
    assert bad.exit_code == 2 and "--batch-size" in bad.output


@settings(max_examples=150, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            st.text(max_size=20),
            st.builds(
                lambda k, v: f"{k}={v}",
                st.sampled_from(["batch_size", "lr", "freeze", "arch", "head", "hflip", "epochs"]),
                st.text(max_size=12),
            ),
        ),
        max_size=3,
    )
)
def test_any_grid_text_is_planned_or_refused_in_one_line(texts: list[str]) -> None:
    """Whatever is typed after --grid, every run is checked before any trains: a plan of
    valid options, or one UsageError; never another exception."""
    try:
        runs = plan(TrainOptions(), parse_grid(texts, []))
    except GpskitError as exc:
        assert "\n" not in str(exc)
        return
    from gpskit.train.options import ARCHS, FREEZABLE, HEADS

    for run in runs:  # what would otherwise fail only once that run starts training
        assert run.options.arch in ARCHS and run.options.head in HEADS
        assert set(run.options.freeze) <= set(FREEZABLE)
        assert run.options.batch_size >= 1 and run.options.epochs >= 1


@pytest.mark.slow
def test_interrupted_runs_resume_and_runs_of_other_options_start_over(
    splits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gpskit.train.engine as engine
    from gpskit.train.sweep import sweep

    base = TrainOptions(
        arch="resnet18", weights="none", epochs=2, image_size=32, batch_size=16, knn=4, workers=0
    )
    runs = plan(base, parse_grid(["lr=0.003"], []))
    out, fresh = tmp_path / "sweep", tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        engine.train(
            splits, out / runs[0].name, runs[0].options, on_batch=kill_in_epoch_two(batch=1)
        )
    resumed: list[bool] = []
    real_train = engine.train

    def spy(*args: object, resume: bool = False, **kwargs: object) -> object:
        resumed.append(resume)
        return real_train(*args, resume=resume, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "train", spy)
    row = sweep(splits, out, runs).iloc[0]
    assert resumed == [True]
    whole = sweep(splits, fresh, runs).iloc[0]
    assert (row.val_mean_m, row.test_mean_m) == (whole.val_mean_m, whole.test_mean_m)
    # a folder holding an interrupted run of other options is trained again from scratch
    (out / runs[0].name / "sweep-run.json").unlink()
    other = plan(base, parse_grid(["lr=0.001"], []))[0]
    state = torch.load(out / runs[0].name / "last.pt", weights_only=True)
    state["options"]["lr"] = other.options.lr
    torch.save(state, out / runs[0].name / "last.pt")
    resumed.clear()
    sweep(splits, out, runs)
    assert resumed == [False]
    saved = torch.load(out / runs[0].name / "best.pt", weights_only=True)["options"]
    assert saved["lr"] == 0.003
