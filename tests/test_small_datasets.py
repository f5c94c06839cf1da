"""Small and lopsided datasets are datasets: 0, 1 and 2 spots, and folders where every photo
is rejected, through every command. A result or one clear line; never an internal error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.exifwrite import save_photo

from .helpers import TAKEN, good_exif, photo

#: spot index -> (latitude, longitude), 40 m apart on the campus
SPOTS = [(39.9515, -75.1910), (39.9519, -75.1910)]


def _folder(root: Path, spots: int, per_spot: int = 4, size: tuple[int, int] = (320, 240)) -> Path:
    folder = root / "photos"
    folder.mkdir(parents=True)
    for s in range(spots):
        lat, lon = SPOTS[s]
        for k in range(per_spot):
            exif = good_exif(
                latitude=lat, longitude=lon, heading=45.0 * k,
                taken=TAKEN + timedelta(minutes=10 * s + k),
            )  # fmt: skip
            save_photo(photo(size, seed=10 * s + k), folder / f"s{s}_{k}.jpg", exif)
    return folder


CASES = {
    "no photos": {"spots": 0},
    "one spot": {"spots": 1},
    "two spots": {"spots": 2},
    "all too small": {"spots": 2, "size": (40, 30)},
}


def _steps(root: Path, photos: Path) -> list[list[str]]:
    ds, run = str(root / "ds"), str(root / "run")
    return [
        ["ingest", str(photos), "--out", ds],
        ["info", ds],
        ["dedup", ds],
        ["coverage", ds],
        ["split", ds, "--embed", "--ratios", "0.5,0.25,0.25"],
        ["publish", "dataset", ds, "--out", str(root / "hub")],
        ["train", ds + "/splits", "--out", run, "--arch", "resnet18", "--weights", "none",
         "--epochs", "1", "--image-size", "32", "--batch-size", "4", "--workers", "0",
         "--knn", "2"],
        ["eval", run, "--splits", ds + "/splits"],
        ["predict", str(photos), "--run", run],
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_command_on_a_small_dataset(tmp_path: Path, case: str) -> None:
    photos = _folder(tmp_path, **CASES[case])  # type: ignore[arg-type]
    for argv in _steps(tmp_path, photos):
        result = CliRunner().invoke(app, argv)
        said = result.output
        assert "internal error" not in said and "Traceback" not in said, (argv, said)
        assert result.exit_code in (0, 1, 2), (argv, result.exit_code, said)
        if result.exit_code:
            errors = [line for line in said.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, (argv, said)


def test_a_folder_where_every_photo_is_rejected_for_one_reason_names_the_option(
    tmp_path: Path,
) -> None:
    photos = _folder(tmp_path, spots=1, size=(40, 30))
    result = CliRunner().invoke(app, ["ingest", str(photos), "--out", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert "--min-side" in result.output, result.output
