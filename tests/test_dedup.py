"""Dedup: exact copies, near-duplicates, crops and bursts, on a generated evaluation set."""

from __future__ import annotations

import io
import itertools
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import piexif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance

from gpskit.dataset import DUPLICATES, Dataset
from gpskit.dedup import DedupOptions, dedup
from gpskit.exifwrite import save_photo
from gpskit.ingest import IngestOptions, ingest
from gpskit.layout import CONTACT_SHEET_FILE, DUPLICATES_FILE, OVERLAP_FILE
from gpskit.synth.samples import panorama, view

from .helpers import TAKEN, good_exif

FAST = IngestOptions(workers=2)
SPOTS = 12
HEADINGS = range(0, 360, 45)


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _crop(img: Image.Image, fraction: float, anchor: str) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * fraction), int(h * fraction)
    boxes = {
        "centre": (dx // 2, dy // 2, w - dx + dx // 2, h - dy + dy // 2),
        "top-left": (0, 0, w - dx, h - dy),
        "bottom-right": (dx, dy, w, h),
        "left": (dx, 0, w, h),
    }
    return img.crop(boxes[anchor])


TRANSFORMS = {
    "q60": lambda im: _jpeg(im, 60),
    "resize50": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "crop5_centre": lambda im: _crop(im, 0.05, "centre"),
    "crop5_corner": lambda im: _crop(im, 0.05, "bottom-right"),
    "crop5_left": lambda im: _crop(im, 0.05, "left"),
    "bright": lambda im: ImageEnhance.Brightness(im).enhance(1.15),
}


@dataclass
class EvalSet:
    folder: Path
    origin: dict[str, str]  # file -> the original view it shows


def write_eval_set(folder: Path) -> EvalSet:
    """Originals (spot x heading), transformed copies of two headings per spot, stripped and
    re-tagged copies: every file's origin is known."""
    origin: dict[str, str] = {}
    for spot in range(SPOTS):
        pano = panorama(seed=1000 + spot)
        lat, lon = 39.9500 + 0.0002 * spot, -75.1920
        for k, heading in enumerate(HEADINGS):
            name = f"s{spot:02d}_h{heading:03d}.jpg"
            img = view(pano, heading)
            exif = good_exif(
                latitude=lat,
                longitude=lon,
                heading=float(heading),
                taken=TAKEN + timedelta(minutes=10 * spot, seconds=30 * k),
            )
            save_photo(img, folder / name, exif, quality=92)
            origin[name] = name
            if heading not in (0, 135):
                continue
            stored = Image.open(folder / name).convert("RGB")
            for label, transform in TRANSFORMS.items():
                copy = f"copies/{name[:-4]}_{label}.jpg"
                save_photo(transform(stored), folder / copy, exif, quality=90)
                origin[copy] = name
            stripped = f"copies/{name[:-4]}_stripped.jpg"
            stored.save(folder / stripped, quality=92)  # re-encoded without EXIF
            origin[stripped] = name
            retagged = f"copies/{name[:-4]}_retagged.jpg"
            exif.orientation = 3
            out = io.BytesIO()
            # same compressed pixels, only the Orientation tag differs
            piexif.insert(exif.to_bytes(), (folder / name).read_bytes(), out)
            (folder / retagged).write_bytes(out.getvalue())
            origin[retagged] = name
    return EvalSet(folder, origin)


@pytest.fixture(scope="module")
def eval_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalSet, Path]:
    root = tmp_path_factory.mktemp("dedup-eval")
    evalset = write_eval_set(root / "photos")
    dataset = root / "ds"
    ingest([evalset.folder], dataset, FAST)
    return evalset, dataset


def _groups(dataset: Path) -> pd.DataFrame:
    return Dataset(dataset).load_duplicates().to_pandas()


def _pair_scores(evalset: EvalSet, table: pd.DataFrame) -> tuple[float, float, int]:
    predicted = set()
    for _, members in table[table.group_id.notna()].groupby("group_id"):
        for a, b in itertools.combinations(sorted(members.path), 2):
            predicted.add((a, b))
    truth = set()
    by_origin: dict[str, list[str]] = {}
    for path, orig in evalset.origin.items():
        by_origin.setdefault(orig, []).append(path)
    for members in by_origin.values():
        truth.update(itertools.combinations(sorted(members), 2))
    true_positive = len(predicted & truth)
    precision = true_positive / len(predicted) if predicted else 1.0
    recall = true_positive / len(truth)
    merged_views = sum(
        1
        for _, members in table[table.group_id.notna()].groupby("group_id")
        if len({evalset.origin[p] for p in members.path}) > 1
    )
    return precision, recall, merged_views


def test_precision_recall_and_no_merged_headings(eval_dataset: tuple[EvalSet, Path]) -> None:
    evalset, dataset = eval_dataset
    dedup(dataset, contact_sheet=False)
    precision, recall, merged = _pair_scores(evalset, _groups(dataset))
    assert precision >= 0.98, precision
    assert recall >= 0.95, recall
    assert merged == 0


def test_each_transform_is_found(eval_dataset: tuple[EvalSet, Path]) -> None:
    evalset, dataset = eval_dataset
    dedup(dataset, contact_sheet=False)
    table = _groups(dataset).set_index("path")
    for label in [*TRANSFORMS, "stripped", "retagged"]:
        copies = [p for p in evalset.origin if p.endswith(f"_{label}.jpg")]
        found = sum(
            1
            for p in copies
            if pd.notna(table.loc[p, "group_id"])
            and table.loc[p, "group_id"] == table.loc[evalset.origin[p], "group_id"]
        )
        assert found / len(copies) >= 0.9, (label, found, len(copies))


def test_keeper_rule_and_links(eval_dataset: tuple[EvalSet, Path]) -> None:
    _evalset, dataset = eval_dataset
    dedup(dataset, contact_sheet=False)
    table = _groups(dataset).set_index("path")
    # the full-size, least-compressed photo keeps (the original, or its re-tagged twin
    # with the same compressed pixels); the half-size copy points to it
    resized = table.loc["copies/s00_h000_resize50.jpg"]
    assert not resized["keep"]
    assert resized["keeper_path"] in ("s00_h000.jpg", "copies/s00_h000_retagged.jpg")
    assert not table.loc["copies/s00_h000_q60.jpg", "keep"]
    twins = table.loc[["s00_h000.jpg", "copies/s00_h000_retagged.jpg"]]
    assert twins.keep.sum() == 1 and twins[~twins.keep].match.iloc[0] == "pixels"
    assert table.loc["copies/s00_h000_stripped.jpg", "match"] in ("phash", "pixels")
    assert table.loc["copies/s00_h000_crop5_corner.jpg", "match"] in ("crop", "phash")
    # every group has exactly one keeper
    grouped = table[table.group_id.notna()]
    assert (grouped.groupby("group_id").keep.sum() == 1).all()


def test_crop_comparison_is_what_finds_crops(eval_dataset: tuple[EvalSet, Path]) -> None:
    _evalset, dataset = eval_dataset
    with_crops = dedup(dataset, contact_sheet=False, dry_run=True)
    without = dedup(dataset, DedupOptions(crop_variants=False), contact_sheet=False, dry_run=True)
    assert sum(with_crops.photos_in_groups.values()) > sum(without.photos_in_groups.values())


def test_outputs_written_atomically_and_marked_current(
    eval_dataset: tuple[EvalSet, Path], tmp_path: Path
) -> None:
    _, dataset = eval_dataset
    report = dedup(dataset, pairs_csv=tmp_path / "pairs.csv")
    assert (dataset / DUPLICATES_FILE).exists() and (dataset / CONTACT_SHEET_FILE).exists()
    assert Dataset(dataset).is_current(DUPLICATES)
    pairs = pd.read_csv(tmp_path / "pairs.csv")
    assert len(pairs) == report.pairs
    assert set(pairs.columns) >= {"path_a", "path_b", "kind", "match", "phash_distance"}
    with Image.open(dataset / CONTACT_SHEET_FILE) as sheet:
        assert sheet.width > 300 and sheet.height > 150


def test_dry_run_writes_nothing(reason_set: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "ds"
    ingest([reason_set], dataset, FAST)
    before = sorted(p.relative_to(dataset) for p in dataset.rglob("*"))
    dedup(dataset, dry_run=True)
    assert sorted(p.relative_to(dataset) for p in dataset.rglob("*")) == before


def test_bursts_and_gps_conflicts(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    pano = panorama(seed=7)
    lat, lon = 39.9510, -75.1910
    # a burst: three shots of one view, 1 s apart, a metre apart, 3 degrees apart
    for i in range(3):
        img = view(pano, 90 + i)  # a slightly different frame each time
        exif = good_exif(
            latitude=lat + i * 1e-5,
            longitude=lon,
            heading=90.0 + i,
            taken=TAKEN + timedelta(seconds=i),
        )
        save_photo(img, photos / f"burst_{i}.jpg", exif)
    # same place, seconds apart, but another heading: not a burst
    save_photo(
        view(pano, 180),
        photos / "turned.jpg",
        good_exif(latitude=lat, longitude=lon, heading=180.0, taken=TAKEN + timedelta(seconds=3)),
    )
    # an exact copy whose GPS says 60 m away: a conflict
    other = view(pano, 270)
    save_photo(
        other,
        photos / "west.jpg",
        good_exif(latitude=lat, longitude=lon, heading=270.0, taken=TAKEN + timedelta(minutes=5)),
    )
    moved = good_exif(
        latitude=lat + 0.00055, longitude=lon, heading=270.0, taken=TAKEN + timedelta(minutes=9)
    )
    save_photo(other, photos / "west_copy.jpg", moved)
    dataset = tmp_path / "ds"
    ingest([photos], dataset, FAST)
    report = dedup(dataset)
    table = _groups(dataset).set_index("path")
    bursts = table[table.kind == "burst"]
    assert set(bursts.index) == {"burst_0.jpg", "burst_1.jpg", "burst_2.jpg"}
    assert pd.isna(table.loc["turned.jpg", "group_id"])
    assert table.loc["west_copy.jpg", "gps_conflict"]
    assert table.loc["west_copy.jpg", "gps_offset_m"] == pytest.approx(61.2, abs=1)
    assert report.gps_conflicts == 1


def test_against_another_dataset(eval_dataset: tuple[EvalSet, Path], tmp_path: Path) -> None:
    evalset, dataset = eval_dataset
    other_photos = tmp_path / "eval"
    stored = Image.open(evalset.folder / "s03_h090.jpg").convert("RGB")
    save_photo(stored.resize((320, 240)), other_photos / "leaked.jpg", good_exif())
    save_photo(view(panorama(seed=99), 0), other_photos / "fresh.jpg", good_exif())
    (other_photos / "exact.jpg").write_bytes((evalset.folder / "s05_h045.jpg").read_bytes())
    other = tmp_path / "other-ds"
    ingest([other_photos], other, FAST)
    report = dedup(dataset, against=other, contact_sheet=False)
    assert report.overlap is not None and report.overlap["photos_also_in_other"] == 2
    overlap = pd.read_parquet(dataset / OVERLAP_FILE)
    assert set(overlap.other_path) == {"leaked.jpg", "exact.jpg"}
    assert set(overlap.path) == {"s03_h090.jpg", "s05_h045.jpg"}


def test_cli_dedup_json(eval_dataset: tuple[EvalSet, Path]) -> None:
    from typer.testing import CliRunner

    from gpskit.cli import app

    _, dataset = eval_dataset
    result = CliRunner().invoke(app, ["dedup", str(dataset), "--json", "--no-sheet"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["groups"]["near"] == SPOTS * 2  # each group has re-encoded copies
    missing = CliRunner().invoke(app, ["dedup", str(dataset / "nothing")])
    assert missing.exit_code == 2 and "gpskit ingest" in missing.stderr


def test_heading_veto_keeps_look_alike_views_apart(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    img = view(panorama(seed=11), 0)
    # the same picture tagged with headings 90 degrees apart: not a copy of each other
    save_photo(img, photos / "a.jpg", good_exif(heading=0.0, taken=TAKEN), quality=92)
    save_photo(img, photos / "b.jpg", good_exif(heading=90.0, taken=TAKEN), quality=60)
    dataset = tmp_path / "ds"
    ingest([photos], dataset, FAST)
    vetoed = dedup(dataset, contact_sheet=False, dry_run=True)
    assert sum(vetoed.photos_in_groups.values()) == 0
    allowed = dedup(dataset, DedupOptions(max_heading_diff=None), contact_sheet=False, dry_run=True)
    assert allowed.photos_in_groups["near"] == 2


def test_duplicates_go_stale_when_the_manifest_changes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    save_photo(view(panorama(seed=12), 0), photos / "a.jpg", good_exif())
    dataset = tmp_path / "ds"
    ingest([photos], dataset, FAST)
    dedup(dataset, contact_sheet=False)
    assert Dataset(dataset).is_current(DUPLICATES)
    save_photo(view(panorama(seed=13), 0), photos / "b.jpg", good_exif())
    ingest([photos], dataset, FAST)
    assert not Dataset(dataset).is_current(DUPLICATES)


def test_sideways_upside_down_and_mirrored_copies(tmp_path: Path) -> None:
    """Copies people make that turn the picture: saved without the Orientation tag (shown
    sideways), turned by hand, mirrored by an editor. Grouped, with the transform, and the
    photo shown the right way up is kept."""
    from PIL import ImageOps

    photos = tmp_path / "photos"
    upright = view(panorama(seed=21), 0, size=(640, 480))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # how a phone held upright stores it
    save_photo(stored, photos / "IMG_0001.jpg", good_exif(orientation=6), quality=92)
    Image.open(photos / "IMG_0001.jpg").save(photos / "sideways.jpg", quality=90)  # tag dropped
    save_photo(upright.rotate(180), photos / "upside_down.jpg", good_exif(), quality=85)
    save_photo(ImageOps.mirror(upright), photos / "mirrored.jpg", None, quality=85)
    for k, heading in enumerate((45, 90)):  # the same spot, other headings: not copies
        other = view(panorama(seed=21), heading, size=(640, 480))
        save_photo(other, photos / f"view_{k}.jpg", good_exif(heading=float(heading)))
    dataset = tmp_path / "ds"
    ingest([photos], dataset, FAST)
    dedup(dataset, contact_sheet=False)
    table = Dataset(dataset).load_duplicates().to_pandas().set_index("path")
    group = table.loc["IMG_0001.jpg", "group_id"]
    members = table[table.group_id == group]
    assert set(members.index) == {"IMG_0001.jpg", "sideways.jpg", "upside_down.jpg", "mirrored.jpg"}
    assert table.loc["IMG_0001.jpg", "keep"]  # the camera's original, shown upright
    assert table.loc["sideways.jpg", "transform"] == "rot90"  # copy = np.rot90(original)
    assert table.loc["upside_down.jpg", "transform"] == "rot180"
    assert table.loc["mirrored.jpg", "transform"] == "flip_lr"
    assert (members.drop("IMG_0001.jpg").phash_distance <= 8).all()
    assert table.loc[["view_0.jpg", "view_1.jpg"], "group_id"].isna().all()
    without = dedup(dataset, DedupOptions(dihedral=False), contact_sheet=False, dry_run=True)
    assert without.photos_in_groups["near"] < 4


@pytest.mark.slow
def test_real_copies_made_by_other_tools(shared_samples: Path, tmp_path: Path) -> None:
    """Real photos, copies made by ImageMagick (when installed) and Pillow the way scripts
    make them, crops of 2-10 %, screenshots, mirrored and turned copies; views of the same
    spot 45° apart must stay apart. (The full set: benchmarks/bench_dedup.py --real.)"""
    from .real_copies import build, score

    evalset = build(shared_samples, tmp_path / "photos", limit=10)
    ingest([tmp_path / "photos"], tmp_path / "ds", FAST)
    dedup(tmp_path / "ds", contact_sheet=False)
    table = score(evalset, Dataset(tmp_path / "ds").load_duplicates().to_pandas())
    assert table.attrs["recall"] >= 0.95, table
    assert table.attrs["pair_precision"] >= 0.98, table
    recall = dict(zip(table.kind, table.recall, strict=True))
    for kind in ("pillow_resave_no_exif", "mirror", "rot90", "crop_10", "screenshot"):
        assert recall[kind] >= 0.9, (kind, table)
    assert int(table.set_index("kind").loc["other_view", "wrongly_grouped"]) == 0


def test_a_search_scoped_by_position_finds_what_every_pair_finds(
    eval_dataset: tuple[EvalSet, Path], tmp_path: Path
) -> None:
    """Copies keep their photo's EXIF (or lose it all, and are then compared with every
    photo): comparing only photos within 50 m groups the evaluation set exactly as
    comparing every pair does."""
    _, dataset = eval_dataset
    everywhere = dedup(dataset, DedupOptions(everywhere=True), dry_run=True)
    nearby = dedup(dataset, DedupOptions(within_m=50.0), dry_run=True)
    assert nearby.search == {"compared": "nearby", "within_m": 50.0, "predicted_seconds": 0.0}
    assert everywhere.search is not None and everywhere.search["compared"] == "every pair"
    assert (nearby.groups, nearby.photos_in_groups, nearby.pairs) == (
        everywhere.groups,
        everywhere.photos_in_groups,
        everywhere.pairs,
    )


def test_within_and_everywhere_contradict(tmp_path: Path) -> None:
    from gpskit.errors import UsageError

    with pytest.raises(UsageError, match="contradict"):
        DedupOptions(within_m=10.0, everywhere=True).validate()
    with pytest.raises(UsageError, match="--within"):
        DedupOptions(within_m=-1.0).validate()


def test_dedup_reads_only_the_columns_it_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Projection push-down: the manifest columns read are the keys, hashes and what the
    burst and keeper rules look at (23 of 49), plus the crop and turned hashes (a batch at
    a time, as numbers) only when those searches run; their 256-bit twins never up front.
    At 10M photos each column read is memory."""
    from gpskit.dedup import options as dedup_options
    from gpskit.dedup import overlap

    asked: list[list[str]] = []
    snapshot = Dataset.manifest_snapshot
    read_lists = overlap.read_code_lists

    def recording(self: Dataset, columns: list[str] | None = None) -> object:
        asked.append(list(columns or []))
        return snapshot(self, columns)

    def recording_lists(source: object, column: str) -> object:
        asked[-1].append(column)
        return read_lists(source, column)  # type: ignore[arg-type]

    photos = tmp_path / "photos"
    save_photo(view(panorama(1), 0), photos / "a.jpg", good_exif())
    ingest([photos], tmp_path / "ds", IngestOptions(workers=1))
    monkeypatch.setattr(Dataset, "manifest_snapshot", recording)
    monkeypatch.setattr(overlap, "read_code_lists", recording_lists)
    dedup(tmp_path / "ds", DedupOptions(crop_variants=False, dihedral=False), contact_sheet=False)
    dedup(tmp_path / "ds", DedupOptions(), contact_sheet=False)
    lean, full = set(asked[0]), set(asked[1])
    assert lean == set(dedup_options.READ_COLUMNS)
    assert full == lean | set(dedup_options.CROP_COLUMNS) | set(dedup_options.DIHEDRAL_COLUMNS)
    assert not lean & {"reasons", "warnings", "sharpness", "entropy_bits", "error", "gps_flags"}
    assert not full & {"crop_phash256", "dihedral_phash256"}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seeds=st.lists(st.integers(0, 10_000), min_size=2, max_size=4, unique=True))
def test_photos_of_different_scenes_are_never_a_burst(tmp_path: Path, seeds: list[int]) -> None:
    """Distinct pictures sharing a fix, a heading and a second (a phone that kept its GPS
    and compass while the person turned to other buildings) stay distinct photos."""
    folder = tmp_path / f"scenes-{'-'.join(map(str, seeds))}"
    for i, seed in enumerate(seeds):
        save_photo(
            view(panorama(seed=seed), 90),
            folder / "photos" / f"scene_{i}.jpg",
            good_exif(heading=90.0, taken=TAKEN + timedelta(seconds=i)),
        )
    ingest([folder / "photos"], folder / "ds", FAST)
    dedup(folder / "ds")
    table = _groups(folder / "ds")
    assert table.group_id.isna().all(), table[["path", "kind", "match"]]


def test_a_burst_never_chains_through_a_dissimilar_frame() -> None:
    """Complete linkage: a frame like the first and one like the second, the two unlike
    each other, make no group of three."""
    from gpskit.dedup.links import _look_alike_groups

    ones = np.uint64(0xFFFFFFFFFFFFFFFF)
    long = np.zeros((3, 5), np.uint64)
    long[1, 0] = ones  # 64 bits from photo 0
    long[2, 0] = ones
    long[2, 1] = ones  # 64 bits from photo 1, 128 from photo 0
    a, b = np.array([0, 1]), np.array([1, 2])
    heads, members = _look_alike_groups(a, b, long, bits=64)
    assert list(zip(heads, members, strict=True)) == [(0, 1)]
    heads, members = _look_alike_groups(a, b, long, bits=128)
    assert sorted(zip(heads, members, strict=True)) == [(0, 1), (0, 2)]
    unknown = long.copy()
    unknown[1, 4] = 1  # no 256-bit hash: no visual evidence, no burst
    assert not len(_look_alike_groups(a, b, unknown, bits=256)[0])


def test_dedups_outputs_switch_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk while writing leaves the earlier set whole (table, sheet); a run without
    --against removes an earlier run's overlap.parquet (it belongs to another generation)."""
    import errno
    import os
    import shutil

    photos = tmp_path / "photos"
    save_photo(view(panorama(seed=3), 90), photos / "a.jpg", good_exif())
    shutil.copy(photos / "a.jpg", photos / "a_copy.jpg")
    save_photo(view(panorama(seed=4), 90), photos / "b.jpg", good_exif(heading=200.0))
    dataset = tmp_path / "ds"
    ingest([photos], dataset, FAST)
    dedup(dataset, against=dataset)
    files = ("duplicates.parquet", "duplicates.png", "overlap.parquet")
    before = {name: (dataset / name).read_bytes() for name in files}
    real = os.fsync
    counted = {"n": 0}

    def count(fd: int) -> None:
        counted["n"] += 1
        real(fd)

    monkeypatch.setattr(os, "fsync", count)
    dedup(dataset, DedupOptions(near_threshold=4), against=dataset)
    monkeypatch.setattr(os, "fsync", real)
    dedup(dataset, against=dataset)  # the set to keep
    before = {name: (dataset / name).read_bytes() for name in files}
    assert counted["n"] >= 2
    for fail_at in range(1, counted["n"] + 1):
        calls = {"n": 0}

        def full(fd: int, calls: dict[str, int] = calls, fail_at: int = fail_at) -> None:
            calls["n"] += 1
            if calls["n"] == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
            real(fd)

        monkeypatch.setattr(os, "fsync", full)
        with pytest.raises(Exception, match="no space left"):
            dedup(dataset, DedupOptions(near_threshold=4), against=dataset)
        monkeypatch.setattr(os, "fsync", real)
        assert {name: (dataset / name).read_bytes() for name in files} == before, fail_at
    dedup(dataset)
    assert not (dataset / "overlap.parquet").exists()
