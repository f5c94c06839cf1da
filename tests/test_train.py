"""Training, evaluation and prediction on CPU: units, a tiny end-to-end run, DDP."""

from __future__ import annotations

import builtins
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.errors import MissingDependencyError
from gpskit.geo import label_noise
from gpskit.train.metrics import by_sector, summary

from .helpers import free_port, kill_in_epoch_two
from .toy_positions import toy_dataset

torch = pytest.importorskip("torch", reason="gpskit[train] not installed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    dataset = toy_dataset(root)
    run = root / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(dataset / "splits"),
            "--out",
            str(run),
            "--arch",
            "resnet18",
            "--weights",
            "none",
            "--epochs",
            "8",
            "--batch-size",
            "32",
            "--image-size",
            "48",
            "--lr",
            "0.003",
            "--workers",
            "0",
            "--dropout",
            "0.1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return {
        "dataset": dataset,
        "run": run,
        "photos": root / "photos",
        "result": json.loads(result.stdout),
    }


@pytest.mark.slow
def test_tiny_run_beats_the_mean_predictor(trained: dict) -> None:
    result = trained["result"]
    assert result["best_epoch"] >= 1
    history = pd.read_csv(trained["run"] / "metrics.csv")
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "val_mean_m",
        "val_median_m",
        "lr",
        "images_per_s",
        "seconds",
    ]
    assert len(history) == 8
    evaluation = CliRunner().invoke(app, ["eval", str(trained["run"]), "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    report = json.loads(evaluation.stdout)
    model, baseline = report["metrics"]["mean_m"], report["baseline_train_mean"]["mean_m"]
    assert model < 0.6 * baseline, (model, baseline)
    for name in (
        "predictions-test.parquet",
        "error_cdf-test.png",
        "map-test.png",
        "eval-test.json",
    ):
        assert (trained["run"] / name).exists(), name
    assert report["label_noise_floor"]["photos"] > 0
    assert set(report["metrics"]["within_m"]) == {"5", "10", "25", "50", "100"}


@pytest.mark.slow
def test_checkpoint_is_data_and_round_trips(trained: dict) -> None:
    from gpskit.train.inference import load_run

    state = torch.load(trained["run"] / "best.pt", map_location="cpu", weights_only=True)
    assert state["arch"] == "resnet18" and state["options"]["image_size"] == 48
    assert set(state["normalisation"]) == {"lat0", "lon0", "mean", "std"}
    run = load_run(trained["run"])
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        a = run.model(x)
        b = load_run(trained["run"]).model(x)
    assert torch.allclose(a, b)


@pytest.mark.slow
def test_predict_photos_and_folders(trained: dict, tmp_path: Path) -> None:
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(trained["photos"] / "s00_0.jpg", new / "a.jpg")
    Image.open(new / "a.jpg").save(new / "b.png")
    (new / "notes.txt").write_text("not a photo")
    result = CliRunner().invoke(
        app, ["predict", str(new), "--run", str(trained["run"]), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert rows["a.jpg"]["latitude"] == pytest.approx(39.9515, abs=0.002)
    assert rows["b.png"]["longitude"] == pytest.approx(-75.1915, abs=0.002)
    assert rows["notes.txt"]["latitude"] is None and rows["notes.txt"]["error"]
    out = tmp_path / "p.csv"
    assert (
        CliRunner()
        .invoke(
            app, ["predict", str(new / "a.jpg"), "--run", str(trained["run"]), "--out", str(out)]
        )
        .exit_code
        == 0
    )
    assert list(pd.read_csv(out).columns) == ["path", "latitude", "longitude", "error"]
    photo_bytes = (new / "a.jpg").read_bytes()
    onto_input = CliRunner().invoke(
        app, ["predict", str(new), "--run", str(trained["run"]), "--out", str(new / "a.jpg")]
    )
    assert onto_input.exit_code == 2 and "input photos" in onto_input.output
    assert (new / "a.jpg").read_bytes() == photo_bytes


@pytest.mark.slow
def test_resume_continues_from_last(trained: dict, tmp_path: Path) -> None:
    from gpskit.train.engine import TrainOptions, train

    run = tmp_path / "resumed"
    options = TrainOptions(
        arch="resnet18", weights="none", epochs=4, batch_size=32, image_size=32, workers=0
    )

    def interrupt(stats: object) -> None:
        if stats.epoch == 2:  # type: ignore[attr-defined]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(trained["dataset"] / "splits", run, options, on_epoch=interrupt)
    assert len(pd.read_csv(run / "metrics.csv")) == 2
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(trained["dataset"] / "splits"),
            "--out",
            str(run),
            "--resume",
            "--workers",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(run / "metrics.csv").epoch.tolist() == [1, 2, 3, 4]
    assert torch.load(run / "last.pt", weights_only=True)["options"]["arch"] == "resnet18"
    done = CliRunner().invoke(
        app, ["train", str(trained["dataset"] / "splits"), "--out", str(run), "--resume"]
    )
    assert done.exit_code == 0 and "nothing left to resume" in done.output


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_a_kill_mid_epoch_gives_the_same_numbers(
    trained: dict, tmp_path: Path, workers: int
) -> None:
    """Killed in the middle of epoch 2, resumed: epoch 2 is what an uninterrupted run
    computes (same batches, same augmentations, same dropout), with loader workers too."""
    from gpskit.train.engine import TrainOptions, train

    splits = trained["dataset"] / "splits"
    options = TrainOptions(
        arch="resnet18", weights="none", epochs=2, batch_size=32, image_size=32,
        workers=workers, dropout=0.3,
    )  # fmt: skip
    whole = train(splits, tmp_path / "whole", options)
    with pytest.raises(KeyboardInterrupt):
        train(splits, tmp_path / "killed", options, on_batch=kill_in_epoch_two())
    resumed = train(splits, tmp_path / "killed", options, resume=True)
    for a, b in zip(whole.history, resumed.history, strict=True):
        assert a["epoch"] == b["epoch"]
        assert a["val_mean_m"] == b["val_mean_m"], (a, b)
        assert a["train_loss"] == b["train_loss"], (a, b)


@pytest.mark.slow
def test_loader_workers_do_not_change_the_numbers(trained: dict, tmp_path: Path) -> None:
    """The same seed gives the same run whether items are made in the training process or
    in loader processes (augmentation draws never touch the training process's dropout)."""
    from gpskit.train.engine import TrainOptions, train

    splits = trained["dataset"] / "splits"
    runs = [
        train(
            splits,
            tmp_path / f"w{workers}",
            TrainOptions(
                arch="resnet18",
                weights="none",
                epochs=1,
                batch_size=32,
                image_size=32,
                workers=workers,
                dropout=0.3,
                knn=0,
            ),
        )
        for workers in (0, 1)
    ]
    assert runs[0].history[0]["train_loss"] == runs[1].history[0]["train_loss"]
    assert runs[0].history[0]["val_mean_m"] == runs[1].history[0]["val_mean_m"]


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(trained: dict, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(free_port()),
            "-m",
            "gpskit",
            "train",
            str(trained["dataset"] / "splits"),
            "--out",
            str(run),
            "--arch",
            "resnet18",
            "--weights",
            "none",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--image-size",
            "32",
            "--workers",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = json.loads(done.stdout)
    assert output["world_size"] == 2
    assert (run / "best.pt").exists() and len(pd.read_csv(run / "metrics.csv")) == 1


# --- units ------------------------------------------------------------------------------


@pytest.mark.slow
def test_weak_data_is_said_before_training(trained: dict, tmp_path: Path) -> None:
    from gpskit.train.engine import TrainOptions, train

    splits = tmp_path / "splits"
    shutil.copytree(trained["dataset"] / "splits", splits)
    val = pd.read_parquet(splits / "val.parquet").iloc[:0]
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(trained["dataset"] / "splits" / "val.parquet")
    pq.write_table(
        pa.Table.from_pandas(val, schema=table.schema, preserve_index=False), splits / "val.parquet"
    )
    said: list[str] = []
    options = TrainOptions(arch="resnet18", weights="none", epochs=1, image_size=32, workers=0)
    result = train(splits, tmp_path / "run", options, on_warning=said.append)
    assert any("val split is empty" in w for w in said)
    assert result.warnings == said and result.best_epoch == 1


def test_target_scaler_round_trip_under_a_millimetre() -> None:
    from gpskit.geo import haversine_m
    from gpskit.train.loss import TargetScaler

    rng = np.random.default_rng(0)
    lat, lon = 39.95 + rng.uniform(-0.003, 0.003, 500), -75.19 + rng.uniform(-0.003, 0.003, 500)
    scaler = TargetScaler.fit(lat, lon)
    u, v = scaler.encode(lat, lon)
    assert abs(np.mean(u)) < 1e-9 and abs(np.std(v) - 1) < 1e-9
    back_lat, back_lon = scaler.decode(u, v)
    assert np.max(haversine_m(lat, lon, back_lat, back_lon)) < 1e-3


def test_loss_haversine_term_in_metres() -> None:
    from gpskit.train.loss import GeoLoss, TargetScaler

    scaler = TargetScaler(39.95, -75.19, (0.0, 0.0), (100.0, 100.0))
    target = torch.zeros(4, 2)
    pred = torch.tensor([[0.3, 0.4]] * 4, requires_grad=True)  # 30 m east, 40 m north: 50 m
    loss = GeoLoss(scaler, "haversine")
    assert float(loss(pred, target).detach()) == pytest.approx(50.0, rel=1e-4)
    combined = GeoLoss(scaler, "mse+haversine", alpha=0.1)(pred, target)
    assert float(combined.detach()) == pytest.approx((0.09 + 0.16) / 2 + 5.0, rel=1e-4)
    combined.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_metrics_against_hand_computed_values() -> None:
    errors = np.array([1.0, 4.0, 9.0, 30.0, 120.0])
    s = summary(errors)
    assert s["mean_m"] == pytest.approx(32.8) and s["median_m"] == 9.0 and s["max_m"] == 120.0
    assert s["rmse_m"] == pytest.approx(np.sqrt((1 + 16 + 81 + 900 + 14400) / 5))
    assert s["within_m"] == {"5": 0.4, "10": 0.6, "25": 0.6, "50": 0.8, "100": 0.8}
    sectors = by_sector(errors, ["N", "N", "S", None, "S"])
    assert sectors["N"]["mean_m"] == 2.5 and sectors["none"]["photos"] == 1
    noise = label_noise(
        [0.0, 0.0, 1.0], [0.0, 0.0002, 1.0], [0.0, 0.0, 1.0], [0.0001, 0.0001, 1.0], [1, 1, 2]
    )
    assert noise["photos"] == 2 and noise["median_m"] == pytest.approx(11.12, abs=0.05)


def test_freeze_and_head() -> None:
    from gpskit.train.model import build_model, freeze

    model = build_model("resnet18", "none", dropout=0.3)
    assert isinstance(model.fc[0], torch.nn.Dropout) and model.fc[1].out_features == 2
    freeze(model, ["stem", "layer1"])
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer4.parameters())


def test_offline_imagenet_weights_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision

    from gpskit.train.model import WeightsUnavailableError, build_model

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.models, "resnet18", offline)
    with pytest.raises(WeightsUnavailableError, match="--weights none"):
        build_model("resnet18", "imagenet")


def test_missing_torch_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpskit.train import require_torch

    real_import = builtins.__import__

    def no_torch(name: str, *args: object, **kwargs: object) -> object:
        if name in ("torch", "torchvision"):
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(MissingDependencyError, match=r"gpskit\[train\]"):
        require_torch()


@pytest.mark.slow
def test_eval_shows_each_method_side_by_side(trained: dict) -> None:
    result = CliRunner().invoke(app, ["eval", str(trained["run"]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["methods"]) == {"head", "retrieval", "blend"}
    choice = json.loads((trained["run"] / "prediction.json").read_text())
    assert report["method"] == choice["method"] and set(choice["val_mean_m"]) == {
        "head",
        "retrieval",
        "blend",
        "retrieval ±90°",
        "blend ±90°",
    }
    assert report["heading_window"] == choice["heading_window"] in (None, 90)
    assert report["metrics"] == report["methods"][report["method"]]
    text = CliRunner().invoke(app, ["eval", str(trained["run"])], env={"COLUMNS": "80"})
    assert text.exit_code == 0, text.output
    for name in ("head", "retrieval", "blend", "training centre", "mean", "median", "RMSE"):
        assert name in text.output
    assert "…" not in text.output  # no column collapsed to "mod…"
    assert max(len(line) for line in text.output.splitlines()) <= 80


@pytest.mark.slow
def test_retrieval_returns_a_training_photos_own_position(trained: dict) -> None:
    from gpskit.train.evaluate import evaluate

    report = evaluate(trained["run"], "train", draw=False, method="retrieval", knn=1)
    assert report["methods"]["retrieval"]["max_m"] < 0.01  # its own label, to the millimetre
    head = evaluate(trained["run"], "test", draw=False, method="head")
    tta = evaluate(trained["run"], "test", draw=False, method="head", tta=True)
    assert tta["tta"] and tta["metrics"]["mean_m"] != head["metrics"]["mean_m"]
    assert tta["metrics"]["mean_m"] < 0.8 * tta["baseline_train_mean"]["mean_m"]


@pytest.mark.slow
def test_predict_by_each_method(trained: dict, tmp_path: Path) -> None:
    photo = trained["photos"] / "s00_0.jpg"
    found = {}
    for args in (["--method", "head"], ["--method", "retrieval", "--knn", "3"], ["--tta"]):
        result = CliRunner().invoke(
            app, ["predict", str(photo), "--run", str(trained["run"]), "--format", "json", *args]
        )
        assert result.exit_code == 0, result.output
        found[args[-1]] = json.loads(result.stdout)[0]
    assert found["head"] != found["3"]
    assert all(abs(r["latitude"] - 39.9515) < 0.002 for r in found.values())
    bad = CliRunner().invoke(
        app, ["predict", str(photo), "--run", str(trained["run"]), "--knn", "0"]
    )
    assert bad.exit_code == 2 and "--knn" in bad.output


@pytest.mark.slow
def test_run_folder_loads_without_gpskit_code(trained: dict) -> None:
    for name in ("best.pt", "last.pt"):
        state = torch.load(trained["run"] / name, map_location="cpu", weights_only=True)
        assert state["head"]["head"] in ("regression", "cells", "hybrid")
    with np.load(trained["run"] / "retrieval.npz", allow_pickle=False) as index:
        assert index["embeddings"].shape[0] == len(index["paths"]) == len(index["positions"])


@pytest.mark.slow
def test_tensorboard_curves_when_installed(trained: dict) -> None:
    pytest.importorskip("tensorboard", reason="gpskit[tensorboard] not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained["run"] / "tensorboard"))
    events.Reload()
    val = events.Scalars("error_m/val_mean")
    assert [e.step for e in val] == list(range(1, 9))
    history = pd.read_csv(trained["run"] / "metrics.csv")
    assert [e.value for e in val] == pytest.approx(history.val_mean_m.tolist(), rel=1e-5)


@pytest.mark.slow
def test_runs_saved_before_heads_still_resume_and_evaluate(trained: dict, tmp_path: Path) -> None:
    """A run from before heads and retrieval (no "head" in its checkpoints or options) is a
    regression run without an index: it resumes, evaluates, and says retrieval is not there."""
    from gpskit.train.engine import TrainOptions, train

    splits, run = trained["dataset"] / "splits", tmp_path / "old"
    options = TrainOptions(
        arch="resnet18", weights="none", epochs=2, batch_size=32, image_size=32, workers=0,
        head="regression", knn=0,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        train(splits, run, options, on_batch=kill_in_epoch_two(batch=1))
    for name in ("last.pt", "best.pt"):
        state = torch.load(run / name, weights_only=True)
        del state["head"], state["options"]["head"], state["options"]["knn"]
        torch.save(state, run / name)
    resumed = train(splits, run, TrainOptions(workers=0), resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert json.loads((run / "prediction.json").read_text())["method"] == "head"
    result = CliRunner().invoke(app, ["eval", str(run), "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["methods"]) == {"head"}
    asked = CliRunner().invoke(app, ["eval", str(run), "--method", "retrieval"])
    assert asked.exit_code != 0 and "no retrieval index" in asked.output
    assert "Traceback" not in asked.output


@pytest.mark.slow
def test_published_model_predicts_as_its_run_does(trained: dict, tmp_path: Path) -> None:
    """`gpskit publish model`: safetensors + config.json + card; `predict --run` on the
    folder gives the run's own answers, and nothing in it is a pickle or a local path."""
    safetensors = pytest.importorskip("safetensors.torch", reason="needs gpskit[train]")
    out = tmp_path / "model"
    eval_run = CliRunner().invoke(app, ["eval", str(trained["run"]), "--json"])
    assert eval_run.exit_code == 0, eval_run.output
    result = CliRunner().invoke(app, ["publish", "model", str(trained["run"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors", "config.json", "prediction.json", "retrieval.npz", "README.md"
    }  # fmt: skip
    weights = safetensors.load_file(str(out / "model.safetensors"))
    state = torch.load(trained["run"] / "best.pt", map_location="cpu", weights_only=True)
    assert weights.keys() == state["model"].keys()
    assert all(torch.equal(weights[k], state["model"][k]) for k in weights)
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "resnet18" and config["image_size"] == 48
    assert config["head"] == state["head"] and config["normalisation"] == state["normalisation"]
    with np.load(out / "retrieval.npz", allow_pickle=False) as index:
        assert not any("/" in str(p) for p in index["paths"])
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "| training centre |" in card
    photos = [str(trained["photos"] / name) for name in ("s00_0.jpg", "s31_2.jpg")]
    answers = []
    for folder in (trained["run"], out):
        found = CliRunner().invoke(
            app, ["predict", *photos, "--run", str(folder), "--format", "json"]
        )
        assert found.exit_code == 0, found.output
        answers.append([(r["latitude"], r["longitude"]) for r in json.loads(found.stdout)])
    assert answers[0] == answers[1]
    (out / "config.json").write_text('{"format": "something else"}')
    broken = CliRunner().invoke(app, ["predict", *photos, "--run", str(out)])
    assert broken.exit_code != 0 and "not a valid gpskit model config" in broken.output


def test_augment_levels() -> None:
    """``light`` changes crops and colours but keeps a photo upright (rows of a photo of
    horizontal stripes stay uniform); ``standard`` rotates; ``none`` is the evaluation
    view; an unknown level is one clear error."""
    from gpskit.errors import UsageError
    from gpskit.train.data import transforms
    from gpskit.train.engine import TrainOptions

    rows = np.repeat(np.linspace(0, 255, 72, dtype=np.uint8)[:, None], 96, axis=1)
    stripes = Image.fromarray(np.stack([rows, 255 - rows, rows // 2], axis=-1), "RGB")

    def tilt(augment: str) -> float:
        torch.manual_seed(0)
        views = [transforms(48, True, augment=augment)(stripes) for _ in range(20)]
        return max(float(v[:, 4:-4, 4:-4].std(dim=2).max()) for v in views)

    assert tilt("light") < 1e-4
    assert tilt("standard") > 0.05
    plain = transforms(48, False)(stripes)
    assert torch.equal(transforms(48, True, augment="none")(stripes), plain)
    with pytest.raises(UsageError, match="--augment must be one of standard, light, none"):
        TrainOptions(augment="heavy").validate()
    result = CliRunner().invoke(app, ["train", "--augment", "heavy"])
    assert result.exit_code == 2 and "heavy" in result.output


@pytest.mark.slow
def test_predict_keeps_decoder_warnings_off_the_terminal(trained: dict, tmp_path: Path) -> None:
    """Photos with hundreds of odd tags: one line on stderr saying where the warnings went,
    the warnings themselves in the log; a CR in a file name is quoted in the CSV."""
    import struct

    from gpskit.exifwrite import RawTag, raw_exif

    from .fuzzing import photo_bytes

    odd = [
        RawTag(t, 5, 2, struct.pack("<4I", 1, 1, 1, 1)) for t in (0x011A, 0x011B, 0x0128, 0x0213)
    ]
    folder = tmp_path / "odd"
    folder.mkdir()
    for i in range(40):
        (folder / f"odd{i:02d}.jpg").write_bytes(photo_bytes(raw_exif(odd), "JPEG"))
    shutil.copy(trained["photos"] / "s00_0.jpg", folder / "line\rbreak.jpg")
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    result = CliRunner().invoke(app, ["predict", str(folder), "--run", str(run)])
    assert result.exit_code == 0, result.output
    assert "Metadata Warning" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "decoder warnings" in result.stderr
    log = run / "logs" / "predict.log"
    assert log.read_text().count("Metadata Warning") >= 40
    frame = pd.read_csv(io.StringIO(result.stdout, newline=""))
    assert len(frame) == 41 and (folder / "line\rbreak.jpg").as_posix() in set(frame.path)


def _img2gps_like(splits: Path, out: Path) -> Path:
    """A Hub dataset laid out as the Img2GPS study released it: data/<split>-*.parquet with
    an image column and Latitude/Longitude, nothing else of gpskit's (no EXIF, no spots)."""
    import pyarrow.parquet as pq

    (out / "data").mkdir(parents=True)
    for ours, hub in (("train", "train"), ("val", "validation"), ("test", "test")):
        table = pq.read_table(
            splits / f"{ours}.parquet", columns=["image", "latitude", "longitude"]
        )
        renamed = table.rename_columns(["image", "Latitude", "Longitude"])
        pq.write_table(renamed, out / "data" / f"{hub}-00000-of-00001.parquet")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("source", ["dataset folder", "published", "hub like Img2GPS"])
def test_train_and_eval_from_any_split_folder(trained: dict, tmp_path: Path, source: str) -> None:
    """`gpskit train` takes the dataset folder, `publish dataset`'s output (validation is
    val) and a Hub table with Latitude/Longitude columns; eval reads the same."""
    dataset = trained["dataset"]
    if source == "dataset folder":
        folder = dataset
    elif source == "published":
        folder = tmp_path / "hub"
        published = CliRunner().invoke(
            app, ["publish", "dataset", str(dataset), "--out", str(folder)]
        )
        assert published.exit_code == 0, published.output
    else:
        folder = _img2gps_like(dataset / "splits", tmp_path / "img2gps")
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["train", str(folder), "--out", str(run), "--arch", "resnet18", "--weights", "none",
         "--epochs", "1", "--batch-size", "32", "--image-size", "32", "--workers", "0", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["epochs"] == 1
    evaluated = CliRunner().invoke(app, ["eval", str(run), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.stdout)
    assert figures["metrics"]["photos"] == len(pd.read_parquet(dataset / "splits" / "test.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_progress_without_a_terminal_comes_within_the_first_epoch(
    trained: dict, tmp_path: Path, log_format: str
) -> None:
    """stderr to a pipe (a log, a notebook, CI): progress lines arrive before the first
    epoch ends, as text or as JSON objects a tool can read."""
    env = {**os.environ, "GPSKIT_PROGRESS_SECONDS": "0", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "gpskit", "--log-format", log_format, "train",
         str(trained["dataset"]), "--out", str(tmp_path / "run"), "--arch", "resnet18",
         "--weights", "none", "--epochs", "2", "--batch-size", "16", "--image-size", "32",
         "--workers", "0", "--knn", "0"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    if log_format == "text":
        first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch   1/2"))
        progress = [line for line in lines[:first_epoch] if line.startswith("train: ")]
        assert progress and "epoch 1/2" in progress[0] and "ETA" in progress[0], lines[:5]
        validating = [line for line in lines[:first_epoch] if line.startswith("validate: ")]
        assert validating and "epoch 1/2" in validating[-1], lines[:first_epoch]
        assert "\r" not in done.stderr  # no redrawn bar in a log
    else:
        records = [json.loads(line) for line in lines if line.startswith("{")]
        first_epoch = next(i for i, r in enumerate(records) if r["step"] == "epoch")
        assert first_epoch > 0 and records[0]["step"] == "train" and records[0]["epoch"] == "1/2"
        assert {"done", "total", "rate_per_s", "eta_s"} <= set(records[0])
        assert records[first_epoch]["epoch"] == 1 and "train_loss" in records[first_epoch]


@pytest.mark.slow
def test_quiet_shows_no_progress(tmp_path: Path) -> None:
    from .helpers import write_photos

    photos = write_photos(tmp_path / "photos", 3)
    env = {**os.environ, "GPSKIT_PROGRESS_SECONDS": "0"}
    loud = subprocess.run(
        [sys.executable, "-m", "gpskit", "ingest", str(photos), "--out", str(tmp_path / "a")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    quiet = subprocess.run(
        [sys.executable, "-m", "gpskit", "--quiet", "ingest", str(photos), "--out", str(tmp_path / "b")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert loud.returncode == quiet.returncode == 0
    assert "ingest" in loud.stderr and "3/3" in loud.stderr
    assert "3/3" not in quiet.stderr
