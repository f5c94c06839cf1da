"""A trained run as a model folder in the Hugging Face Hub's layout, and back.

``publish_model(run, out)`` writes ``model.safetensors`` (the weights: safetensors, no
pickle), ``config.json`` (architecture, head and its cells, input size, target
normalisation, how the run places a photo), the retrieval index with file names only (no
local paths), and a model card ``README.md`` with the evaluation figures. ``gpskit
predict --run OUT`` reads such a folder as it reads a run folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from gpskit import __version__
from gpskit.atomic import atomic_path, write_text
from gpskit.errors import InputError, MissingStepError, require_module
from gpskit.jsoncheck import load_json_schema, problems, read_checked
from gpskit.outputs import output_folder
from gpskit.runfolder import (
    BEST_CHECKPOINT,
    CONFIG_FILE,
    INDEX_FILE,
    LAST_CHECKPOINT,
    PREDICTION_FILE,
    WEIGHTS_FILE,
    RunFolder,
)
from gpskit.train import require_torch

FORMAT = "gpskit-model"
FORMAT_VERSION = 1


def _safetensors() -> Any:
    return require_module("safetensors.torch", "model folders need safetensors", "gpskit[train]")


def model_config(checkpoint: dict[str, Any], choice: dict[str, Any]) -> dict[str, Any]:
    """config.json: everything besides the weights that predicting needs."""
    from gpskit.train.data import IMAGENET_MEAN, IMAGENET_STD

    options = dict(checkpoint["options"])
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gpskit_version": __version__,
        "arch": checkpoint["arch"],
        "head": checkpoint.get("head", {"head": "regression", "cells": []}),
        "image_size": int(options["image_size"]),
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "normalisation": checkpoint["normalisation"],
        "target": options.get("target", "photo"),
        "prediction": choice,
        "epoch": int(checkpoint.get("epoch", 0)),
        "options": options,
    }


def publish_model(run_dir: Path, out: Path, license_id: str = "cc-by-4.0") -> list[str]:
    """Write the model folder for ``run_dir`` into ``out``; returns the files written."""
    output_folder(out, "--out", published=True)
    from gpskit.train.predictor import load_choice
    from gpskit.train.retrieval import RetrievalIndex
    from gpskit.train.session import load_checkpoint

    run = RunFolder(run_dir)
    path = run.model_file
    if path is None:
        raise MissingStepError(
            f"{run_dir}: no {BEST_CHECKPOINT} or {LAST_CHECKPOINT}", hint="train a run first"
        )
    checkpoint = load_checkpoint(path)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.contiguous() for k, v in checkpoint["model"].items()}
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        _safetensors().save_file(weights, str(tmp), metadata={"format": "pt"})
    config = model_config(checkpoint, load_choice(run_dir))
    wrong = problems(config, load_json_schema("model-config"))
    if wrong:  # a run gpskit wrote itself: a bug, said plainly rather than published
        raise AssertionError(f"config.json would not match its schema: {wrong}")
    write_text(out / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True) + "\n")
    written = [WEIGHTS_FILE, CONFIG_FILE]
    if run.prediction_path.exists():
        shutil.copyfile(run.prediction_path, out / PREDICTION_FILE)
        written.append(PREDICTION_FILE)
    index = RetrievalIndex.load(run_dir)
    if index is not None:  # file names only: local paths say nothing to others
        index.paths = np.array([Path(str(p)).name for p in index.paths])
        index.save(out)
        written.append(INDEX_FILE)
    evaluation = run.evaluation("test")  # None when older than the model
    write_text(out / "README.md", model_card(config, evaluation, license_id))
    written.append("README.md")
    return [str(out / name) for name in written]


def model_card(config: dict[str, Any], evaluation: dict[str, Any] | None, license_id: str) -> str:
    """The model card: the Hub's YAML header, then what it is and how well it does."""
    from gpskit.publish import yaml_text

    header = {
        "license": license_id,
        "library_name": "gpskit",
        "tags": ["image-geolocation", "gps", "gpskit", config["arch"]],
    }
    lines = [
        "---",
        yaml_text(header),
        "---",
        "",
        f"# {config['arch']} ({config['head']['head']} head): where was this photo taken?",
        "",
        f"Trained with gpskit {config['gpskit_version']} at "
        f"{config['image_size']} px; predicts latitude/longitude by "
        f"**{config['prediction'].get('method', 'head')}**.",
        "",
        "```bash",
        "gpskit predict photos/ --run THIS_FOLDER",
        "```",
        "",
    ]
    if evaluation:
        lines += ["## Evaluation on the test split (unseen spots)", ""]
        lines += ["| method | mean (m) | median (m) | p90 (m) |", "|---|---|---|---|"]
        rows = {**evaluation["methods"], "training centre": evaluation["baseline_train_mean"]}
        for name, m in rows.items():
            lines.append(f"| {name} | {m['mean_m']:.1f} | {m['median_m']:.1f} | {m['p90_m']:.1f} |")
        noise = evaluation.get("label_noise_floor", {})
        if noise.get("photos"):
            lines += ["", f"GPS label-noise floor: median {noise['median_m']:.1f} m."]
    return "\n".join(lines) + "\n"


def read_config(path: Path) -> dict[str, Any]:
    """A published model's config.json, checked against
    ``schemas/json/model-config.schema.json`` and for what the schema cannot say (a cells
    head needs its cells): one clear error, never a crash or a wrong answer later."""
    try:
        config = read_checked(path, "model-config")
    except (OSError, ValueError) as exc:
        raise InputError(
            f"{path}: not a valid gpskit model config ({exc})",
            hint="publish the model again with `gpskit publish model RUN`",
        ) from None
    head = config["head"]
    if head["head"] != "regression" and not head["cells"]:
        raise InputError(
            f"{path}: head {head['head']!r} has no cells",
            hint="publish the model again with `gpskit publish model RUN`",
        )
    return config


def load_model_folder(path: Path) -> dict[str, Any]:
    """A published folder as the checkpoint dict a run's best.pt gives."""
    require_torch()
    config = read_config(path / CONFIG_FILE)
    try:
        weights = _safetensors().load_file(str(path / WEIGHTS_FILE))
    except Exception as exc:  # truncated or not safetensors
        raise InputError(f"{path / WEIGHTS_FILE}: not readable ({exc})") from None
    return {
        "model": weights,
        "options": config["options"],
        "normalisation": config["normalisation"],
        "head": config["head"],
        "arch": config["arch"],
        "epoch": config.get("epoch", 0),
        "splits_dir": None,
    }
