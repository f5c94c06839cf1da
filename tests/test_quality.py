"""Image-quality checks: photos made blurry, dark, washed out, uniform, grayscale or too
wide are flagged (warnings, or rejections with --strict-quality); clean photos are not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance, ImageFilter
from typer.testing import CliRunner

from gpskit import checks, quality
from gpskit.cli import app
from gpskit.dataset import Dataset
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.reader import read_file

from .helpers import good_exif, photo

QUALITY = set(checks.quality_codes())


def _scene(size: tuple[int, int] = (960, 720), seed: int = 0) -> Image.Image:
    """A photo-like scene with edges at every scale (a sharp reference)."""
    rng = np.random.default_rng(seed)
    base = np.asarray(photo(size, seed=seed).convert("RGB"), dtype=np.float32)
    for _ in range(40):  # hard-edged blocks: windows, signs, kerbs
        x, y = rng.integers(0, size[0] - 60), rng.integers(0, size[1] - 60)
        w, h = rng.integers(10, 60, size=2)
        base[y : y + h, x : x + w] = rng.integers(0, 256, size=3)
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def _defects() -> dict[str, Image.Image]:
    scene = _scene()
    sky = np.zeros((720, 960, 3), np.uint8)
    sky[:] = (135, 170, 215)
    return {
        "blurry": scene.filter(ImageFilter.GaussianBlur(960 * 0.015)),
        "dark": ImageEnhance.Brightness(scene).enhance(0.12),
        "too_bright": ImageEnhance.Brightness(scene).enhance(4.0),
        "low_information": Image.fromarray(sky),
        "grayscale": scene.convert("L").convert("RGB"),
        "odd_aspect_ratio": _scene((2400, 720), seed=3),
    }


@pytest.fixture(scope="module")
def defect_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("quality")
    for code, image in _defects().items():
        # PNG keeps colour for the grayscale measure; the others as phones write them
        suffix = "png" if code == "grayscale" else "jpg"
        save_photo(image, folder / f"{code}.{suffix}", good_exif())
    save_photo(_scene(), folder / "clean.jpg", good_exif())
    save_photo(_scene(seed=5), folder / "clean.png", good_exif())
    return folder


def _manifest(dataset: Path) -> dict[str, dict[str, list[str]]]:
    table = pq.read_table(dataset / "manifest.parquet").to_pylist()
    return {row["path"]: row for row in table}


def test_each_defect_gets_its_code_and_clean_photos_none(
    defect_folder: Path, tmp_path: Path
) -> None:
    ingest([defect_folder], tmp_path, IngestOptions(workers=2))
    rows = _manifest(tmp_path)
    for name, row in rows.items():
        found = set(row["warnings"]) & QUALITY
        if name.startswith("clean"):
            assert found == set(), (name, found, row["sharpness"])
        else:
            assert Path(name).stem in found, (name, found)
        assert row["status"] == "accepted"  # warnings by default
    assert rows["clean.jpg"]["colour_spread"] is None  # chroma of a colour JPEG not decoded
    assert rows["grayscale.png"]["colour_spread"] == pytest.approx(0.0)


def test_strict_quality_rejects_and_thresholds_move(defect_folder: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["ingest", str(defect_folder), "--out", str(tmp_path), "--strict-quality", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = _manifest(tmp_path)
    assert rows["dark.jpg"]["status"] == "rejected" and "dark" in rows["dark.jpg"]["reasons"]
    assert rows["clean.jpg"]["status"] == "accepted"
    # a threshold above the clean photo's sharpness flags it, without reading it again
    sharp = rows["clean.jpg"]["sharpness"]
    result = CliRunner().invoke(
        app,
        ["ingest", str(defect_folder), "--out", str(tmp_path), "--json",
         "--threshold", f"min_sharpness={sharp + 1}"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["read"] == 0
    assert "blurry" in _manifest(tmp_path)["clean.jpg"]["warnings"]


def test_unknown_threshold_is_one_line(defect_folder: Path, tmp_path: Path) -> None:
    for value, message in (
        ("sharpness=3", "no check threshold named"),
        ("min_sharpness=x", "not a number"),
    ):
        result = CliRunner().invoke(
            app, ["ingest", str(defect_folder), "--out", str(tmp_path), "--threshold", value]
        )
        assert result.exit_code == 2 and message in result.output, result.output


def test_rows_without_quality_measures_are_read_again(defect_folder: Path, tmp_path: Path) -> None:
    """A manifest from a gpskit that did not measure quality: the next run measures it."""
    ingest([defect_folder], tmp_path, IngestOptions(workers=1))
    path = Dataset(tmp_path).manifest_path
    table = pq.read_table(path)
    index = table.schema.get_field_index("sharpness")
    empty = pa.nulls(table.num_rows, pa.float32())
    table = table.set_column(index, table.schema.field(index), empty)
    pq.write_table(table, path)
    again = ingest([defect_folder], tmp_path, IngestOptions(workers=1))
    assert again.read == again.files
    assert all(row["sharpness"] is not None for row in _manifest(tmp_path).values())


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    mode=st.sampled_from(["L", "RGB", "RGBA", "P", "I;16", "1", "CMYK"]),
    seed=st.integers(0, 2**16),
)
def test_measures_are_finite_and_in_range_for_any_image(
    width: int, height: int, mode: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))
    image = image.convert(mode)
    found = quality.measure(image.convert("L"), image)
    assert 0 <= found["brightness_p05"] <= found["brightness_p99"] <= 255
    assert 0 <= found["entropy_bits"] <= 8 and found["sharpness"] >= 0
    assert found["colour_spread"] is not None and 0 <= found["colour_spread"] <= 255


#: Real photos of the shared corpus whose flags are right, and why.
EXPLAINED = {
    "Pillow/Tests/images/truncated_exif_dpi.jpg": "a blank white frame (test image)",
    "exif-samples/jpg/tests/67-0_length_string.jpg": "a uniform grey frame (test image)",
}


@pytest.mark.slow
def test_no_false_alarms_on_real_photos(shared_samples: Path) -> None:
    """The corpus's camera and phone photos (at least 0.3 MP, JPEG or HEIC) are clean,
    except the listed test frames, which are blank."""
    checked = 0
    for path in sorted(shared_samples.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".heic", ".heif"):
            continue
        row = read_file(str(path), True, 256_000_000)
        if not row.get("decoded") or (row.get("width") or 0) * (row.get("height") or 0) < 300_000:
            continue
        checked += 1
        _, warned = checks.evaluate(row, checks.default_thresholds())
        flagged = set(warned) & QUALITY
        relative = path.relative_to(shared_samples).as_posix()
        if relative in EXPLAINED:
            assert flagged, relative
        else:
            assert flagged == set(), (relative, flagged)
    assert checked >= 80


def test_info_shows_the_worst_offenders(defect_folder: Path, tmp_path: Path) -> None:
    ingest([defect_folder], tmp_path, IngestOptions(workers=2))
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(
        app, ["info", str(tmp_path), "--json", "--contact-sheet", str(sheet)]
    )
    assert result.exit_code == 0, result.output
    worst = json.loads(result.stdout)["quality_worst"]
    assert set(worst) == QUALITY
    assert (
        worst["dark"][0]["path"] == "dark.jpg" and worst["dark"][0]["measure"] == "brightness_p99"
    )
    with Image.open(sheet) as img:
        assert img.height > 6 * 100 and img.getbbox() is not None
    text = CliRunner().invoke(app, ["info", str(tmp_path)], env={"COLUMNS": "100"})
    assert text.exit_code == 0 and "blurry.jpg" in text.output


def test_every_quality_check_has_a_ranking_measure() -> None:
    assert set(quality.RANKING) == QUALITY
    assert {column for column, _ in quality.RANKING.values()} - {"aspect_ratio"} <= set(
        quality.COLUMNS
    )
