"""A re-run with nothing new answers from the last run and writes nothing; any change that
could change a row takes the full run, whose result is what a fresh dataset would hold."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpskit import checks
from gpskit.decisions.store import DecisionStore
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, IngestReport, ingest
from gpskit.ingest import run as ingest_run
from gpskit.ingest.stamp import STAMP_FILE, RunStamp
from gpskit.layout import MANIFEST_FILE, STATE_DIR

from .helpers import good_exif, photo, write_photos

FAST = IngestOptions(workers=2)
UNCHANGED = "nothing changed since the ingest of"


def _replayed(report: IngestReport) -> bool:
    return any(note.startswith(UNCHANGED) for note in report.notes)


def _rows(dataset: Path) -> pd.DataFrame:
    table = pd.read_parquet(dataset / MANIFEST_FILE)
    columns = ["path", "status", "reasons", "warnings", "latitude", "longitude", "sha256"]
    return table[columns].sort_values("path").reset_index(drop=True)


@pytest.fixture
def walk(tmp_path: Path) -> tuple[Path, Path]:
    """Photos (two folders, one nested) and a dataset ingested from them once."""
    photos = write_photos(tmp_path / "photos", 3)
    write_photos(photos / "day2", 2)
    (photos / "notes.txt").write_text("not a photo")
    dataset = tmp_path / "ds"
    first = ingest([photos], dataset, FAST)
    assert not _replayed(first) and (dataset / STATE_DIR / STAMP_FILE).is_file()
    return photos, dataset


def test_a_rerun_with_nothing_new_writes_nothing_and_says_the_same(walk: tuple[Path, Path]) -> None:
    photos, dataset = walk
    manifest = dataset / MANIFEST_FILE
    before, identity = manifest.read_bytes(), os.stat(manifest)
    first = json.loads((dataset / STATE_DIR / STAMP_FILE).read_text())["answer"]["report"]
    again = ingest([photos], dataset, FAST)
    assert _replayed(again)
    assert (again.files, again.accepted, again.rejected, again.reasons) == (
        first["files"], first["accepted"], first["rejected"], first["reasons"],
    )  # fmt: skip
    assert (again.read, again.reused, again.removed) == (0, first["files"], 0)
    after = os.stat(manifest)
    assert manifest.read_bytes() == before
    assert (after.st_ino, after.st_mtime_ns) == (identity.st_ino, identity.st_mtime_ns)
    # the same inputs named another way (relative, with a trailing slash) are the same run
    os.chdir(photos.parent)
    assert _replayed(ingest([Path("photos/")], dataset, FAST))


def _touch(photos: Path, dataset: Path) -> None:
    os.utime(photos / "p001.jpg", ns=(10**18, 10**18))


def _rewrite(photos: Path, dataset: Path) -> None:
    save_photo(photo(seed=50), photos / "p000.jpg", good_exif(latitude=40.0))


def _add(photos: Path, dataset: Path) -> None:
    save_photo(photo(seed=51), photos / "day2" / "new.jpg", good_exif())


def _remove(photos: Path, dataset: Path) -> None:
    (photos / "day2" / "p000.jpg").unlink()


def _rename(photos: Path, dataset: Path) -> None:
    (photos / "p002.jpg").rename(photos / "renamed.jpg")


def _new_folder(photos: Path, dataset: Path) -> None:
    write_photos(photos / "day3" / "deep", 1)


def _dangling_link(photos: Path, dataset: Path) -> None:
    (photos / "gone.jpg").symlink_to(photos / "nowhere.jpg")


def _fifo(photos: Path, dataset: Path) -> None:
    os.mkfifo(photos / "pipe.jpg")


def _manifest_replaced(photos: Path, dataset: Path) -> None:
    other = dataset.parent / "other"
    ingest([photos / "day2"], other, FAST)
    shutil.copy2(other / MANIFEST_FILE, dataset / MANIFEST_FILE)


def _manifest_removed(photos: Path, dataset: Path) -> None:
    (dataset / MANIFEST_FILE).unlink()


def _decision(photos: Path, dataset: Path) -> None:
    DecisionStore(dataset).add("exclude", [(str(photos.resolve()), "p000.jpg")], author="ann")


CHANGES: dict[str, Callable[[Path, Path], None]] = {
    "a photo touched": _touch,
    "a photo rewritten": _rewrite,
    "a photo added in a subfolder": _add,
    "a photo removed": _remove,
    "a photo renamed": _rename,
    "a new nested folder": _new_folder,
    "a dangling link": _dangling_link,
    "a FIFO among the photos": _fifo,
    "the manifest replaced by another": _manifest_replaced,
    "the manifest removed": _manifest_removed,
    "a decision recorded": _decision,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_to_what_a_run_saw_takes_the_full_run(
    walk: tuple[Path, Path], change: str
) -> None:
    photos, dataset = walk
    CHANGES[change](photos, dataset)
    report = ingest([photos], dataset, FAST)
    assert not _replayed(report)
    fresh = dataset.parent / "fresh"
    ingest([photos], fresh, FAST)
    pd.testing.assert_frame_equal(_rows(dataset), _rows(fresh))
    assert _replayed(ingest([photos], dataset, FAST))  # and then it is stamped again


OPTION_CHANGES = {
    "a threshold": IngestOptions(
        workers=2, thresholds={**checks.default_thresholds(), "max_h_error": 1}
    ),
    "--strict-quality": IngestOptions(workers=2, strict_quality=True),
    "--no-decode": IngestOptions(workers=2, decode=False),
    "--prune": IngestOptions(workers=2, prune=True),
    "--force": IngestOptions(workers=2, force=True),
}


@pytest.mark.parametrize("name", sorted(OPTION_CHANGES))
def test_options_that_change_rows_take_the_full_run_and_others_do_not(
    walk: tuple[Path, Path], name: str
) -> None:
    photos, dataset = walk
    options = OPTION_CHANGES[name]
    assert not _replayed(ingest([photos], dataset, options))
    faster = replace(options, workers=1, sort_rows=5)  # how files are read, never the rows
    assert _replayed(ingest([photos], dataset, faster)) == (name != "--force")


def test_new_rules_take_the_full_run(
    walk: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, dataset = walk
    monkeypatch.setattr(checks, "fingerprint", lambda: "rules-of-another-gpskit")
    assert not _replayed(ingest([photos], dataset, FAST))


def test_runs_with_labels_or_rows_to_retry_are_never_answered_from_a_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels may name files anywhere (by the working folder, too); a timeout is read again
    on the next run: only a full run can say what either gives now."""
    photos = write_photos(tmp_path / "photos", 2)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,lat,lon\np000.jpg,39.95,-75.19\n")
    options = IngestOptions(workers=2, labels=(str(labels),))
    for _ in range(2):
        assert not _replayed(ingest([photos], tmp_path / "ds", options))
    from gpskit.ingest import plan

    monkeypatch.setattr(ingest_run, "retried_rows", lambda manifest: 1)
    ingest([photos], tmp_path / "d2", FAST)
    assert not (tmp_path / "d2" / STATE_DIR / STAMP_FILE).exists()
    monkeypatch.undo()
    assert plan.retried_rows(tmp_path / "d2" / MANIFEST_FILE) == 0
    timed_out = IngestOptions(workers=1, timeout=1e-6)
    ingest([photos], tmp_path / "d3", timed_out)
    assert plan.retried_rows(tmp_path / "d3" / MANIFEST_FILE) == 2
    assert not _replayed(ingest([photos], tmp_path / "d3", timed_out))


def test_tables_of_photos_are_never_answered_from_a_stamp(tmp_path: Path) -> None:
    """A table may name photos anywhere: only a full run can say whether they changed."""
    photos = write_photos(tmp_path / "photos", 2)
    table = tmp_path / "survey.csv"
    table.write_text(f"path,lat,lon\n{photos / 'p000.jpg'},39.95,-75.19\n")
    for _ in range(2):
        assert not _replayed(ingest([table], tmp_path / "ds", FAST))
    assert not (tmp_path / "ds" / STATE_DIR / STAMP_FILE).exists()


def test_a_run_that_fails_leaves_no_stamp_behind(
    walk: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    photos, dataset = walk
    _add(photos, dataset)

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ingest_run, "read_files", broken)
    with pytest.raises(OSError):
        ingest([photos], dataset, FAST)
    monkeypatch.undo()
    _remove_added = photos / "day2" / "new.jpg"
    _remove_added.unlink()  # back to what the stamp saw: still no replay, the stamp is gone
    assert not _replayed(ingest([photos], dataset, FAST))


@pytest.mark.parametrize(
    "content", ["", "{", "[]", '{"memo": 99}', '{"memo": 1, "key": 3}', '{"memo": 1, "answer": 3}']
)
def test_a_damaged_stamp_is_ignored(walk: tuple[Path, Path], content: str) -> None:
    photos, dataset = walk
    (dataset / STATE_DIR / STAMP_FILE).write_text(content)
    assert not _replayed(ingest([photos], dataset, FAST))


def test_a_stamp_that_is_not_a_file_never_blocks(walk: tuple[Path, Path]) -> None:
    photos, dataset = walk
    stamp = dataset / STATE_DIR / STAMP_FILE
    stamp.unlink()
    os.mkfifo(stamp)  # opening it for reading would wait for a writer forever
    found = RunStamp.of([photos], dataset, FAST)
    assert found is not None and found.replay() is None


def test_the_quick_answer_loads_no_arrow_numpy_or_pillow(walk: tuple[Path, Path]) -> None:
    photos, dataset = walk
    code = (
        "import sys\n"
        "from gpskit.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "heavy = sorted({'pyarrow', 'numpy', 'PIL', 'pandas'} & set(sys.modules))\n"
        "print('HEAVY', heavy, code, file=sys.stderr)\n"
    )
    argv = ["ingest", str(photos), "--out", str(dataset), "--json"]
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, check=False
    )
    assert "HEAVY [] 0" in done.stderr, done.stderr
    assert json.loads(done.stdout)["read"] == 0


def test_info_answers_again_from_the_manifest_as_it_was_and_sees_every_change(
    walk: tuple[Path, Path], tmp_path: Path
) -> None:
    from gpskit.info import INFO_MEMO, manifest_summary

    photos, dataset = walk
    first = manifest_summary(dataset)
    assert (dataset / STATE_DIR / INFO_MEMO).is_file()
    os.chdir(tmp_path)
    again = manifest_summary(Path("ds"))
    assert again["manifest"] == str(Path("ds") / MANIFEST_FILE)
    assert {k: v for k, v in again.items() if k not in ("manifest", "dataset_dir")} == {
        k: v for k, v in first.items() if k not in ("manifest", "dataset_dir")
    }
    _decision(photos, dataset)  # decisions change what the manifest says, as read
    assert manifest_summary(dataset)["accepted"] == first["accepted"] - 1
    _add(photos, dataset)
    ingest([photos], dataset, FAST)
    assert manifest_summary(dataset)["files"] == first["files"] + 1
    (dataset / STATE_DIR / INFO_MEMO).write_text("{not json")
    assert manifest_summary(dataset)["files"] == first["files"] + 1


@pytest.mark.parametrize(
    "edit",
    [{"files": "3"}, {"read": None}, {"reasons": []}, {"notes": "x"}, {"bogus": 1}, {"kept": True}],
)
def test_a_hand_edited_report_in_the_stamp_takes_the_full_run(
    walk: tuple[Path, Path], edit: dict[str, object]
) -> None:
    photos, dataset = walk
    stamp = dataset / STATE_DIR / STAMP_FILE
    saved = json.loads(stamp.read_text())
    saved["answer"]["report"].update(edit)
    stamp.write_text(json.dumps(saved))
    report = ingest([photos], dataset, FAST)
    assert not _replayed(report) and isinstance(report.files, int)


@pytest.mark.parametrize(
    "edit",
    [{}, {"settings": None}, {"settings": [1]}, {"notes": None}, {"reasons": [1, 2]},
     {"quality_worst": [1]}, {"quality_worst": {"blurry": [{"x": 1}]}}, {"extra": 1},
     {"accepted": "x"}],
)  # fmt: skip
def test_a_hand_edited_info_memo_is_made_again(walk: tuple[Path, Path], edit: dict) -> None:
    from gpskit.info import INFO_MEMO, manifest_summary

    _, dataset = walk
    first = manifest_summary(dataset)
    memo = dataset / STATE_DIR / INFO_MEMO
    saved = json.loads(memo.read_text())
    saved["answer"] = {} if edit == {} else {**saved["answer"], **edit}
    memo.write_text(json.dumps(saved))
    assert manifest_summary(dataset) == first
    from typer.testing import CliRunner

    from gpskit.cli import app

    memo.write_text(json.dumps(saved))
    result = CliRunner().invoke(app, ["info", str(dataset)])
    assert result.exit_code == 0, result.output


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edit=st.dictionaries(st.sampled_from(["files", "reasons", "settings", "quality_worst",
                                             "notes", "accepted", "extra"]), _JSON, max_size=3))  # fmt: skip
def test_any_edit_to_the_info_memo_gives_the_true_summary(
    walk: tuple[Path, Path], edit: dict[str, Any]
) -> None:
    from gpskit.info import INFO_MEMO, manifest_summary

    _, dataset = walk
    truth = manifest_summary(dataset)
    memo = dataset / STATE_DIR / INFO_MEMO
    saved = json.loads(memo.read_text())
    saved["answer"] = {**truth, **edit}
    memo.write_text(json.dumps(saved))
    assert manifest_summary(dataset) == truth  # an edited memo is not gpskit's: made again
