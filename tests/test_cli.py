"""The command line, through Typer's CliRunner: help, defaults, errors, JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpskit import __version__
from gpskit.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"gpskit {__version__}"


def _commands() -> list[str]:
    import typer.main

    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_every_command_is_registered() -> None:
    expected = {"ingest", "info", "dedup", "coverage", "regions", "split", "train", "eval"}
    assert expected | {"predict", "synth", "demo"} <= set(_commands())


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_examples(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ("split", "--strategy", ["spot", "block", "random"]),
        ("train", "--arch", ["resnet18", "resnet101"]),
        ("train", "--loss", ["mse+haversine", "mse", "haversine"]),
        ("train", "--target", ["photo", "spot"]),
        ("eval", "--split", ["train", "val", "test"]),
        ("predict", "--format", ["csv", "json"]),
    ],
)
def test_enumerated_options_list_and_check_their_choices(
    command: str, option: str, choices: list[str]
) -> None:
    shown = invoke(command, "--help")
    for choice in choices:
        assert choice in shown.stdout
    wrong = invoke(command, option, "nonsense", *(["x.jpg"] if command == "predict" else []))
    assert wrong.exit_code == 2
    assert "nonsense" in wrong.output


def test_ingest_default_dataset_dir_then_info(reason_set: Path, tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = invoke("ingest", str(reason_set), "--workers", "2")
        assert result.exit_code == 0, result.output
        assert (tmp_path / "gpskit-data" / "manifest.parquet").exists()
        assert "rejected by reason" in result.stdout
        info = invoke("info", "--json")
        assert info.exit_code == 0, info.output
        data = json.loads(info.stdout)
        assert data["accepted"] == 1 and data["settings"]["thresholds"]["max_h_error"] == 30.0
    finally:
        os.chdir(cwd)


def test_dataset_env_var(reason_set: Path, tmp_path: Path) -> None:
    target = tmp_path / "from-env"
    result = invoke("ingest", str(reason_set / "good.jpg"), env={"GPSKIT_DATASET": str(target)})
    assert result.exit_code == 0, result.output
    assert (target / "manifest.parquet").exists()


def test_json_and_strict(reason_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = invoke("ingest", str(reason_set), "--out", str(out), "--json", "--strict")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["files"] == data["accepted"] + data["rejected"]
    assert data["reasons"]["decode_error"] == 1
    assert "--strict" in result.stderr


def test_threshold_option(reason_set: Path, tmp_path: Path) -> None:
    result = invoke(
        "ingest",
        str(reason_set / "good.jpg"),
        "--out",
        str(tmp_path / "ds"),
        "--max-h-error",
        "2",
        "--json",
    )
    assert json.loads(result.stdout)["reasons"] == {"gps_error_too_large": 1}


def test_list_checks() -> None:
    result = invoke("ingest", "--list-checks", "--json")
    codes = {c["code"] for c in json.loads(result.stdout)}
    assert {"no_gps", "gps_null_island", "heading_missing"} <= codes


def test_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    result = invoke("ingest", str(tmp_path / "missing"), "--out", str(tmp_path / "ds"))
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no such file or folder" in result.stderr and "Traceback" not in result.output


def test_info_without_manifest_names_the_step(tmp_path: Path) -> None:
    result = invoke("info", str(tmp_path / "nothing"))
    assert result.exit_code == 2
    assert "gpskit ingest" in result.stderr


def test_no_photos_is_a_usage_error(tmp_path: Path) -> None:
    result = invoke("ingest", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "no PHOTOS" in result.stderr


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gpskit", "info", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_debug_env_shows_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "GPSKIT_DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "gpskit", "info", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode != 0 and "Traceback" in done.stderr
