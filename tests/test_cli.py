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

    return sorted(typer.main.get_command(app).list_commands(None))  # type: ignore[attr-defined,arg-type]


def test_commands_load_lazily() -> None:
    """`gpskit ingest` imports no pandas and no torch: the other steps load when they run."""
    code = (
        "import sys; from gpskit.cli import app; import typer.main; "
        "typer.main.get_command(app).get_command(None, 'ingest'); "
        "print(sorted(m for m in ('pandas', 'torch', 'gpskit.coverage') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


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


BAD_OPTIONS = [
    (["coverage", "--cell", "nan"], "--cell"),
    (["coverage", "--cell", "inf"], "--cell"),
    (["coverage", "--cell", "-5"], "--cell"),
    (["coverage", "--spot-radius", "nan"], "--spot-radius"),
    (["coverage", "--fail-under", "150"], "--fail-under"),
    (["coverage", "--declination", "nan"], "--declination"),
    (["ingest", "photos", "--timeout", "0"], "--timeout"),
    (["ingest", "photos", "--max-pixels", "0"], "--max-pixels"),
    (["ingest", "photos", "--max-h-error", "-1"], "--max-h-error"),
    (["ingest", "photos", "--max-fix-age", "nan"], "--max-fix-age"),
    (["ingest", "photos", "--workers", "-1"], "--workers"),
    (["ingest", "photos", "--max-memory", "lots"], "--max-memory"),
    (["ingest", "photos", "--sort-rows", "0"], "--sort-rows"),
    (["dedup", "--burst-seconds", "nan"], "--burst-seconds"),
    (["dedup", "--conflict", "-1"], "--conflict"),
    (["split", "--ratios", "0.5,0.1,0.1"], "sum to 1"),
    (["split", "--ratios", "nan,0.5,0.5"], "--ratios"),
    (["split", "--seed", "-1"], "--seed"),
    (["split", "--block", "inf", "--strategy", "block"], "--block"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--weight-decay", "-1"], "--weight-decay"),
    (["train", "--seed", "-1"], "--seed"),
    (["train", "--dropout", "1"], "--dropout"),
    (["train", "--workers", "-1"], "--workers"),
    (["synth", "out", "--gps-noise", "nan"], "--gps-noise"),
    (["synth", "out", "--seed", "-3"], "--seed"),
]


@pytest.mark.parametrize(("args", "named"), BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_option_values_get_one_clear_line(
    args: list[str], named: str, tmp_path: Path, reason_set: Path
) -> None:
    """Checked before any work: exit 2, one line naming the option, no traceback."""
    pytest.importorskip("torch") if args[0] == "train" else None
    args = [str(reason_set) if a == "photos" else a for a in args]
    args = [str(tmp_path / "out") if a == "out" else a for a in args]
    if args[0] in ("coverage", "dedup", "split"):
        args.insert(1, str(tmp_path / "ds"))
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "ds").exists()


def test_ratios_as_percentages_are_read_not_rescaled_silently() -> None:
    from gpskit.split import parse_ratios

    assert parse_ratios("80,10,10") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_ratios("0.7,0.2,0.1") == pytest.approx((0.7, 0.2, 0.1))
    with pytest.raises(Exception, match="sum to 1"):
        parse_ratios("8,1,1")


def test_synth_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    out = tmp_path / "campus"
    (out / "photos").mkdir(parents=True)
    (out / "photos" / "holiday.jpg").write_text("the user's own photo")
    (out / "truth.csv").write_text("the user's own truth")
    result = invoke("synth", str(out), "--spots", "1", "--headings", "1", "--pitches", "0")
    assert result.exit_code == 2 and "not made by `gpskit synth`" in result.output
    forced = invoke(
        "synth", str(out), "--spots", "1", "--headings", "1", "--pitches", "0", "--force"
    )
    assert forced.exit_code == 0, forced.output
    assert (out / "photos" / "holiday.jpg").read_text() == "the user's own photo"
    assert (out / ".gpskit-synth.json").exists()  # its own folder now: a re-run may clear it


def test_region_errors_are_one_line(tmp_path: Path, reason_set: Path) -> None:
    ingest_ok = invoke("ingest", str(reason_set), "--out", str(tmp_path / "ds"))
    assert ingest_ok.exit_code == 0
    cases = {
        "props.geojson": '{"type": "Feature", "properties": "oops", "geometry": '
        '{"type": "Polygon", "coordinates": [[[0,0],[1,0],[1,1],[0,0]]]}}',
        "deep.geojson": '{"type": "GeometryCollection", "geometries": ' * 100_000,
        "features.geojson": '{"type": "FeatureCollection", "features": 7}',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        result = invoke("coverage", str(tmp_path / "ds"), "--region", str(tmp_path / name))
        assert result.exit_code == 2, (name, result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output
        assert name in result.output


def test_swapped_coordinates_are_pointed_out(tmp_path: Path) -> None:
    from gpskit.coverage import coverage

    from .helpers import write_manifest

    write_manifest(tmp_path, [{"latitude": -75.1915, "longitude": 39.9515}])
    report = coverage(tmp_path, draw=False)
    assert report.warnings and "swapped" in report.warnings[0]


def test_a_file_where_a_dataset_folder_should_be(tmp_path: Path, reason_set: Path) -> None:
    not_a_folder = tmp_path / "data.txt"
    not_a_folder.write_text("mine")
    for args in (
        ["ingest", str(reason_set), "--out", str(not_a_folder)],
        ["dedup", str(not_a_folder)],
    ):
        result = invoke(*args)
        assert result.exit_code == 2 and "is a file, not a dataset folder" in result.output
    assert not_a_folder.read_text() == "mine"


def test_output_cut_short_by_a_pipe_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gpskit ... | head``: the reader leaves early; gpskit stops quietly with the exit
    code a shell gives such a command (it said "internal error: BrokenPipeError")."""
    import gpskit.cli.info as info_cli

    def reader_gone(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(info_cli, "manifest_summary", reader_gone)
    result = CliRunner().invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 141 and "error" not in result.output


def test_a_folder_this_user_may_not_write_is_the_environment_not_a_bug() -> None:
    from gpskit.errors import environment_problem

    named = environment_problem(PermissionError(13, "Permission denied", "/data/ds/.gpskit/lock"))
    assert named is not None and named.exit_code == 74
    assert "/data/ds/.gpskit/lock: permission denied" in str(named)
