"""Hostile input, generated as a class: EXIF of every TIFF type, count and extreme value in
IFD0, the Exif and the GPS IFDs, and byte mutations of real photos. Whatever the file,
ingest records one row for it and the manifest passes its schema.

``make test`` runs a short, fixed budget; ``make fuzz`` (``GPSKIT_FUZZ=long``) a long random
one.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.dataset import Dataset
from gpskit.exifwrite import RawTag, raw_exif
from gpskit.ingest.find import FileRef
from gpskit.ingest.options import DEFAULT_MAX_PIXELS
from gpskit.ingest.rows import judge, manifest_row, manifest_table
from gpskit.reader import read_file
from gpskit.schema import load_schema, validate_table

from .fuzzing import exif_blocks, mutations, photo_bytes
from .helpers import SHARED

#: Pillow warns about every broken tag it skips: expected here, by the thousand.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
LONG = os.environ.get("GPSKIT_FUZZ") == "long"
BUDGET = settings(
    max_examples=3000 if LONG else 80,
    derandomize=not LONG,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _ingest_one(path: Path) -> dict[str, object]:
    """What ingest does with one file, in this process: read, fit to the schema, judge."""
    stat = path.stat()
    ref = FileRef(str(path.parent), path.name, stat.st_size, stat.st_mtime_ns)
    row = manifest_row(ref, read_file(str(path), True, DEFAULT_MAX_PIXELS))
    judge(row, {})
    validate_table(manifest_table([row]), load_schema("manifest"), where=str(path))
    return row


@BUDGET
@given(exif=exif_blocks(), fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]))
def test_any_exif_gives_a_valid_row(
    tmp_path_factory: pytest.TempPathFactory, exif: bytes, fmt: str
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"photo.{fmt.lower()}"
    path.write_bytes(photo_bytes(exif, fmt))
    row = _ingest_one(path)
    assert row["status"] in ("accepted", "rejected")


def _real_photos() -> list[Path]:
    if not SHARED.is_dir():
        return []
    suffixes = {".jpg", ".jpeg", ".heic", ".png", ".webp", ".tif", ".tiff"}
    return sorted(
        p
        for p in SHARED.rglob("*")
        if p.suffix.lower() in suffixes and p.stat().st_size < 4_000_000
    )


REAL = _real_photos()


@pytest.mark.skipif(not REAL, reason=f"shared EXIF corpus not found at {SHARED}")
@BUDGET
@given(data=st.data())
def test_mutated_real_photos_give_a_valid_row(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    source = data.draw(st.sampled_from(REAL))
    mutated = data.draw(mutations(source.read_bytes()))
    path = tmp_path_factory.mktemp("mutant") / source.name
    path.write_bytes(mutated)
    _ingest_one(path)


@settings(max_examples=2 if not LONG else 20, derandomize=not LONG, deadline=None)
@given(blocks=st.lists(exif_blocks(), min_size=6, max_size=12))
def test_cli_ingest_of_a_fuzzed_folder(
    tmp_path_factory: pytest.TempPathFactory, blocks: list[bytes]
) -> None:
    folder = tmp_path_factory.mktemp("fuzzed")
    for i, exif in enumerate(blocks):
        (folder / f"f{i:02d}.jpg").write_bytes(photo_bytes(exif, "JPEG"))
    dataset = folder.parent / f"{folder.name}-ds"
    result = CliRunner().invoke(
        app, ["ingest", str(folder), "--out", str(dataset), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    manifest = Dataset(dataset).load_manifest()
    assert manifest.num_rows == len(blocks)


def test_orientation_too_large_for_its_column(tmp_path: Path) -> None:
    """The fuzzed photo that once cost a whole run: Orientation 36865 in an int16 column."""
    exif = raw_exif([RawTag(0x0112, 3, 1, struct.pack("<H", 36865))])
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "odd.jpg").write_bytes(photo_bytes(exif, "JPEG"))
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "photos"), "--out", str(tmp_path / "ds")]
    )
    assert result.exit_code == 0, result.output
    row = Dataset(tmp_path / "ds").load_manifest().to_pylist()[0]
    assert row["orientation"] is None
    assert row["unfit_tags"] == ["orientation"]
    assert "tag_unfit:orientation" in row["warnings"]


@pytest.mark.parametrize(
    ("tiff_type", "fmt"),
    [(11, "<f"), (12, "<d")],  # FLOAT, DOUBLE
)
@pytest.mark.parametrize("value", [40.0, 5.5e-44, 0.0])
def test_gps_degrees_of_a_float_type_are_malformed_not_read(
    tmp_path: Path, tiff_type: int, fmt: str, value: float
) -> None:
    """A writer that stores the degree rationals as FLOAT or DOUBLE gets no position (as
    with ExifTool): read as numbers, they gave 5.5e-44° and the photo was accepted."""
    triple = struct.pack(f"<3{fmt[1]}", value, 0.0, 0.0)
    gps = [
        RawTag(1, 2, 2, b"N\x00"), RawTag(2, tiff_type, 3, triple),
        RawTag(3, 2, 2, b"W\x00"), RawTag(4, tiff_type, 3, triple),
    ]  # fmt: skip
    exif = raw_exif([], gps=gps)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "float.jpg").write_bytes(photo_bytes(exif, "JPEG"))
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "photos"), "--out", str(tmp_path / "ds")]
    )
    assert result.exit_code == 0, result.output
    row = Dataset(tmp_path / "ds").load_manifest().to_pylist()[0]
    assert row["latitude"] is None and row["longitude"] is None
    assert "gps_malformed" in row["reasons"], row["reasons"]


@pytest.mark.parametrize("max_pixels", [1_000, 6_000, 9_999])
def test_the_too_many_pixels_message_names_the_limit_given(tmp_path: Path, max_pixels: int) -> None:
    """Pillow refuses above twice its limit and names that; the row names --max-pixels."""
    from PIL import Image

    from gpskit import reader

    data = photo_bytes(b"", "JPEG", (100, 100))  # 10,000 pixels
    path = tmp_path / "big.jpg"
    path.write_bytes(data)
    before = Image.MAX_IMAGE_PIXELS
    try:
        reader._init_worker(max_pixels)
        row = reader.read_file(str(path), True, max_pixels)
    finally:
        Image.MAX_IMAGE_PIXELS = before
    assert row["read_status"] == "too_many_pixels"
    assert f"--max-pixels {max_pixels:,}".replace(",", "") in row["error"].replace(",", "")
    assert str(2 * max_pixels) not in row["error"].replace(",", "")
