"""``--labels``: positions from a table attached to photos by file name, over the photos'
own; the photo's own kept beside, disagreements warned, names matched or said why not."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gpskit.cli import app
from gpskit.dataset import Dataset
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.ingest.find import Roots
from gpskit.ingest.labels import (
    Label,
    LabelMatcher,
    PositionTable,
    apply_label,
    normal_name,
    read_labels,
    restore_own,
)

from .helpers import good_exif, photo

#: 39.9515, -75.1910 is where good_exif puts every photo; 0.0009 degrees of latitude ~ 100 m.
HERE = (39.9515, -75.1910)


def _photos(folder: Path, names: list[str], **exif: Any) -> Path:
    for k, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        save_photo(photo(seed=k), folder / name, good_exif(**exif))
    return folder


def _rows(dataset: Path) -> Any:
    return Dataset(dataset).load_manifest().to_pandas().set_index("path")


def test_a_table_position_outranks_the_photos_own_which_stays_beside(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", ["near.jpg", "far.jpg", "unlisted.jpg"])
    table = tmp_path / "labels.csv"
    table.write_text(
        "filename,latitude,longitude,heading\n"
        f"near.jpg,{HERE[0] + 0.0001},{HERE[1]},180\n"  # ~11 m: phone noise
        f"far.jpg,{HERE[0] + 0.0009},{HERE[1]},\n"  # ~100 m: one of the two is wrong
    )
    result = CliRunner().invoke(
        app,
        ["ingest", str(photos), "--labels", str(table), "--out", str(tmp_path / "ds"), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["labelled"] == 2 and report["position_sources"] == {"table": 2, "exif": 1}
    rows = _rows(tmp_path / "ds")
    near, far, own = rows.loc["near.jpg"], rows.loc["far.jpg"], rows.loc["unlisted.jpg"]
    assert near.gps_source == "table" and near.latitude == pytest.approx(HERE[0] + 0.0001)
    assert (near.file_latitude, near.file_gps_source) == (HERE[0], "exif")
    assert (near.img_direction, near.img_direction_ref, near.file_img_direction) == (180, "T", 90)
    assert far.img_direction == 90  # the table gave no heading: the photo's own stays
    assert "position_disagrees" in list(far.warnings) and "position_disagrees" not in list(
        near.warnings
    )
    assert own.gps_source == "exif" and math.isnan(own.file_latitude)
    assert near.position_table == "labels.csv"
    # the threshold moves the warning
    again = CliRunner().invoke(
        app,
        ["ingest", str(photos), "--labels", str(table), "--out", str(tmp_path / "ds"),
         "--max-position-disagreement", "150"],
    )  # fmt: skip
    assert again.exit_code == 0
    assert "position_disagrees" not in list(_rows(tmp_path / "ds").loc["far.jpg"].warnings)


def test_the_photos_own_fix_quality_does_not_reject_a_table_position(tmp_path: Path) -> None:
    """A 100 m phone error or a stale fix says the phone's position is poor, not the
    table's: with a table position the photo is accepted (and the own fix is kept)."""
    photos = _photos(tmp_path / "photos", ["poor.jpg"], h_error=100.0)
    ingest([photos], tmp_path / "plain")
    assert _rows(tmp_path / "plain").loc["poor.jpg"].status == "rejected"
    table = tmp_path / "labels.csv"
    table.write_text(f"file,lat,lon\npoor.jpg,{HERE[0]},{HERE[1]}\n")
    ingest([photos], tmp_path / "ds", IngestOptions(labels=(str(table),)))
    row = _rows(tmp_path / "ds").loc["poor.jpg"]
    assert row.status == "accepted" and row.gps_h_error == 100.0


def test_a_photo_without_gps_is_accepted_with_a_table_position(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", ["nogps.jpg"], latitude=None, longitude=None)
    table = tmp_path / "labels.csv"
    table.write_text(f"file,lat,lon\nnogps.jpg,{HERE[0]},{HERE[1]}\n")
    ingest([photos], tmp_path / "ds", IngestOptions(labels=(str(table),)))
    row = _rows(tmp_path / "ds").loc["nogps.jpg"]
    assert row.status == "accepted" and row.gps_source == "table"
    assert row.file_gps_source is None or row.file_gps_source != row.file_gps_source  # null


def test_table_positions_stay_until_another_table_replaces_them(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", ["a.jpg", "b.jpg"])
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(f"file,lat,lon\na.jpg,{HERE[0] + 0.0002},{HERE[1]}\n")
    second.write_text(f"file,lat,lon\na.jpg,{HERE[0] + 0.0003},{HERE[1]}\n")
    dataset = tmp_path / "ds"
    ingest([photos], dataset, IngestOptions(labels=(str(first),)))
    report = ingest([photos], dataset)  # no table this time: nothing read, nothing lost
    assert report.read == 0 and _rows(dataset).loc["a.jpg"].position_table == "first.csv"
    report = ingest([photos], dataset, IngestOptions(labels=(str(second),)))
    row = _rows(dataset).loc["a.jpg"]
    assert report.read == 0 and row.latitude == pytest.approx(HERE[0] + 0.0003)
    assert row.file_latitude == HERE[0]  # the photo's own, not the first table's
    assert _rows(dataset).loc["b.jpg"].gps_source == "exif"


def test_names_that_match_two_photos_label_neither_and_say_so(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", ["phone1/IMG_0001.jpg", "phone2/IMG_0001.jpg", "x/o.jpg"])
    table = tmp_path / "labels.csv"
    table.write_text(
        "file,lat,lon\n"
        f"IMG_0001.jpg,{HERE[0]},{HERE[1]}\n"
        f"x/o.jpg,{HERE[0]},{HERE[1]}\n"
        f"gone.jpg,{HERE[0]},{HERE[1]}\n"
    )
    report = ingest([photos], tmp_path / "ds", IngestOptions(labels=(str(table),)))
    rows = _rows(tmp_path / "ds")
    assert set(rows[rows.gps_source == "table"].index) == {"x/o.jpg"}
    said = " ".join(report.notes)
    assert "IMG_0001.jpg (2 files)" in said and "gone.jpg" in said


def test_the_labels_table_in_the_photo_folder_is_no_photo(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", ["a.jpg"])
    table = photos / "labels.csv"
    table.write_text(f"file,lat,lon\na.jpg,{HERE[0]},{HERE[1]}\n")
    ingest([photos], tmp_path / "ds", IngestOptions(labels=(str(table),)))
    assert list(_rows(tmp_path / "ds").index) == ["a.jpg"]


def test_a_labels_table_without_a_name_column_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    table = tmp_path / "labels.csv"
    table.write_text("lat,lon\n1,2\n")
    result = CliRunner().invoke(
        app,
        ["ingest", str(tmp_path / "photos"), "--labels", str(table), "--out", str(tmp_path / "ds")],
    )
    assert result.exit_code != 0 and "no column of file names" in result.output
    assert "--name-column" in result.output


def test_names_normalise_and_never_climb_out() -> None:
    assert normal_name("./day1\\IMG_1.jpg") == "day1/IMG_1.jpg"
    assert normal_name(" a.jpg ") == "a.jpg"
    assert normal_name("../a.jpg") == "" and normal_name("a/../../b.jpg") == ""
    assert normal_name("/abs/a.jpg") == "abs/a.jpg"


def test_restore_undoes_apply_whatever_the_row() -> None:
    rows = [
        {
            "latitude": 1.0,
            "longitude": 2.0,
            "gps_source": "exif",
            "img_direction": 5.0,
            "img_direction_ref": "M",
        },
        {
            "latitude": None,
            "longitude": None,
            "gps_source": None,
            "img_direction": None,
            "img_direction_ref": None,
        },
    ]
    for row in rows:
        before = dict(row)
        for label in (Label(3.0, 4.0, 90.0, "t.csv", "train"), Label(5.0, 6.0, None, "u.csv")):
            apply_label(row, label)
            apply_label(row, label)  # twice: the same
            assert (row["latitude"], row["gps_source"]) == (label.latitude, "table")
            assert row["file_latitude"] == before["latitude"]
            restore_own(row)
            assert {k: row[k] for k in before} == before


def test_the_matcher_prefers_the_longest_name_and_an_exact_root() -> None:
    matcher = LabelMatcher()
    loose = PositionTable("t.csv")
    loose.add("day1/a.jpg", Label(1.0, 1.0, None, "t.csv"))
    loose.add("b.jpg", Label(2.0, 2.0, None, "t.csv"))
    matcher.add(loose)
    scoped = PositionTable("h.parquet")
    scoped.add("train/000000.jpg", Label(3.0, 3.0, None, "h.parquet", "train"))
    matcher.add(scoped, root="/data/imported/hub")

    roots = Roots()
    roots.id("/photos"), roots.id("/data/imported/hub")

    batch = pa.table(
        {
            "root_id": [0, 0, 0, 1, 0],
            "path": ["x/day1/a.jpg", "day2/a.jpg", "b.jpg", "train/000000.jpg", "train/000000.jpg"],
        }
    )
    assert list(matcher.watch([batch], roots)) == [batch]
    assert matcher.label_for("/photos", "x/day1/a.jpg") == Label(1.0, 1.0, None, "t.csv")
    assert matcher.label_for("/photos", "day2/a.jpg") is None
    assert matcher.label_for("/photos", "b.jpg") is not None
    assert matcher.label_for("/data/imported/hub", "train/000000.jpg") is not None
    assert matcher.label_for("/photos", "train/000000.jpg") is None  # scoped to its root


cells = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**20), 10**20),
    st.text(max_size=12),
    st.sampled_from(["39.95", "-75.19", "1e400", "NaN", "", " ", "39°57'N", "0x10"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(st.text(max_size=16), cells, cells, cells), max_size=12),
    suffix=st.sampled_from([".csv", ".jsonl", ".parquet"]),
)
def test_any_table_gives_labels_or_counts_why_not(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[Any, ...]], suffix: str
) -> None:
    """Whatever a table holds, every row is a label, a row without a position, or a row
    without a name; never an exception other than one clear line."""
    folder = tmp_path_factory.mktemp("labels")
    path = folder / f"t{suffix}"
    as_text = [[str(v) if v is not None else None for v in row] for row in rows]
    table = pa.table(
        {
            name: pa.array([r[i] for r in as_text], pa.string())
            for i, name in enumerate(["file", "lat", "lon", "heading"])
        }
    )
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif suffix == ".jsonl":
        path.write_text(
            "".join(
                json.dumps(dict(zip(table.column_names, r, strict=True))) + "\n" for r in as_text
            )
        )
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    from gpskit.errors import GpskitError

    try:
        found = read_labels(path)
    except GpskitError as exc:
        assert "\n" not in exc.message
        return
    assert (
        found.without_position + found.without_name + len(found.labels) + 0 >= min(1, len(rows))
        or not rows
    )
    for label in found.labels.values():
        assert math.isfinite(label.latitude) and math.isfinite(label.longitude)
        assert label.heading is None or 0 <= label.heading < 360


def test_exiftools_csv_names_photos_by_their_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``exiftool -csv`` writes SourceFile as given on its command line: paths from where
    it ran, or absolute ones."""
    photos = _photos(tmp_path / "walk" / "photos", ["a.jpg", "b.jpg"])
    monkeypatch.chdir(tmp_path)
    table = tmp_path / "exiftool.csv"
    table.write_text(
        "SourceFile,GPSLatitude,GPSLongitude\n"
        f"walk/photos/a.jpg,{HERE[0] + 0.0002},{HERE[1]}\n"
        f"{photos / 'b.jpg'},{HERE[0] + 0.0003},{HERE[1]}\n"
    )
    report = ingest([photos], tmp_path / "ds", IngestOptions(labels=(str(table),)))
    rows = _rows(tmp_path / "ds")
    assert report.labelled == 2 and set(rows.gps_source) == {"table"}
    assert not [n for n in report.notes if "not found" in n]
