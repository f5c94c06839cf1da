"""An independent evaluation set for dedup: real photos, and copies made the way people and
other tools make them.

Originals are the real camera and phone photos of the team's corpus (``shared/exif-samples``:
JPEG and HEIC from many makers), not gpskit's generator. Copies come from ImageMagick
(``convert``: resize, re-encode, strip, HEIC to JPEG) when it is installed, and from Pillow
the way scripts use it (save with and without ``exif=``, ``ImageOps.exif_transpose``), plus
crops of 2-10 %, screenshot-like rescales with borders, mirror images and quarter turns.
Negatives: two views cut from each photo, side by side with a fifth of overlap, as a
photographer turning 45° at one spot takes them: different training examples, not copies.

Used by ``tests/test_dedup.py`` and ``benchmarks/bench_dedup.py --real``.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from gpskit.imaging import decode_oriented, hamming, phash, register_heif

CopyMaker = Callable[[Path, Image.Image, Path], Path | None]


@dataclass
class EvalSet:
    """Files with the original each shows (``origin``) and how each copy was made."""

    folder: Path
    origin: dict[str, str] = field(default_factory=dict)  # file -> origin id
    kind: dict[str, str] = field(default_factory=dict)  # file -> how it was made


def real_originals(shared: Path, limit: int = 40) -> list[Path]:
    """Decodable real photos of 640 px or more, no two alike (distinct scenes)."""
    register_heif()
    with open(shared / "truth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    chosen: list[Path] = []
    hashes: list[str] = []
    for row in rows:
        if row["format"] not in ("JPEG", "HEIC", "HEIF") or "orientation-examples" in row["path"]:
            continue
        try:
            if max(int(float(row["width"])), int(float(row["height"]))) < 640:
                continue
            img = decode_oriented(shared / row["path"], max_side=512)
        except (ValueError, OSError, SyntaxError):
            continue
        except Exception:  # a fuzzed or broken file: not an original
            continue
        code = phash(img)
        if any(hamming(code, h) <= 12 for h in hashes):
            continue  # the same scene as one chosen already (HDR pairs, bursts)
        width = int(img.width * 0.6)
        left, right = (
            img.crop((0, 0, width, img.height)),
            img.crop((img.width - width, 0, img.width, img.height)),
        )
        if hamming(phash(left), phash(right)) <= 12:
            continue  # a pattern, not a scene: its two sides are the same picture
        chosen.append(shared / row["path"])
        hashes.append(code)
        if len(chosen) >= limit:
            break
    return chosen


def _save(img: Image.Image, target: Path, **kwargs: object) -> Path:
    img.convert("RGB").save(target, **kwargs)
    return target


def _magick(*args: str) -> bool:
    if shutil.which("convert") is None:
        return False
    return subprocess.run(["convert", *args], capture_output=True, timeout=120).returncode == 0


def _im(operation: list[str], suffix: str = ".jpg") -> CopyMaker:
    def make(source: Path, shown: Image.Image, target: Path) -> Path | None:
        out = target.with_suffix(suffix)
        return out if _magick(str(source), *operation, str(out)) else None

    return make


def _pil_resave(keep_exif: bool) -> CopyMaker:
    def make(source: Path, shown: Image.Image, target: Path) -> Path | None:
        with Image.open(source) as img:
            extra = {"exif": img.info["exif"]} if keep_exif and img.info.get("exif") else {}
            return _save(img, target.with_suffix(".jpg"), quality=88, **extra)

    return make


def _exif_transpose(source: Path, shown: Image.Image, target: Path) -> Path:
    with Image.open(source) as img:
        return _save(ImageOps.exif_transpose(img), target.with_suffix(".jpg"), quality=90)


def _crop(fraction: float, anchor: tuple[float, float]) -> CopyMaker:
    def make(source: Path, shown: Image.Image, target: Path) -> Path:
        w, h = shown.size
        dx, dy = int(w * fraction), int(h * fraction)
        x0, y0 = int(dx * anchor[0]), int(dy * anchor[1])
        return _save(shown.crop((x0, y0, x0 + w - dx, y0 + h - dy)), target.with_suffix(".jpg"))

    return make


def _screenshot(source: Path, shown: Image.Image, target: Path) -> Path:
    """Shown on a phone screen and captured: rescaled into 1170x2532 or 2532x1170, bars."""
    screen = (1170, 2532) if shown.height > shown.width else (2532, 1170)
    fitted = ImageOps.contain(shown, screen)
    canvas = Image.new("RGB", screen, (0, 0, 0))
    canvas.paste(fitted, ((screen[0] - fitted.width) // 2, (screen[1] - fitted.height) // 2))
    return _save(canvas, target.with_suffix(".png"))


def _turned(op: Image.Transpose) -> CopyMaker:
    def make(source: Path, shown: Image.Image, target: Path) -> Path:
        return _save(shown.transpose(op), target.with_suffix(".jpg"), quality=88)

    return make


#: kind -> how the copy is made from (file, the photo as shown, target stem)
COPIES: dict[str, CopyMaker] = {
    "imagemagick_resize_50": _im(["-resize", "50%", "-quality", "80"]),
    "imagemagick_reencode_q60": _im(["-quality", "60"]),
    "imagemagick_strip": _im(["-strip", "-quality", "85"]),
    "imagemagick_to_jpeg": _im(["-quality", "92"]),
    "pillow_resave_no_exif": _pil_resave(keep_exif=False),
    "pillow_resave_exif": _pil_resave(keep_exif=True),
    "pillow_exif_transpose": _exif_transpose,
    "crop_2": _crop(0.02, (0.5, 0.5)),
    "crop_5": _crop(0.05, (1.0, 0.0)),
    "crop_10": _crop(0.10, (0.0, 1.0)),
    "screenshot": _screenshot,
    "mirror": _turned(Image.Transpose.FLIP_LEFT_RIGHT),
    "rot90": _turned(Image.Transpose.ROTATE_90),
    "rot180": _turned(Image.Transpose.ROTATE_180),
}


def _views(shown: Image.Image, folder: Path, stem: str, evalset: EvalSet) -> None:
    """Two views of the spot, turned 45° from each other (a fifth of the frame shared)."""
    w, h = shown.size
    width = int(w * 0.6)
    for side, x0 in (("left", 0), ("right", w - width)):
        name = f"{stem}_view_{side}.jpg"
        _save(shown.crop((x0, 0, x0 + width, h)), folder / name, quality=90)
        evalset.origin[name], evalset.kind[name] = f"{stem}:{side}", "other_view"


def build(shared: Path, folder: Path, limit: int = 40) -> EvalSet:
    """Write the originals, their copies and the negatives into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    evalset = EvalSet(folder)
    for number, source in enumerate(real_originals(shared, limit)):
        stem = f"o{number:02d}"
        original = folder / f"{stem}{source.suffix.lower()}"
        shutil.copyfile(source, original)
        evalset.origin[original.name], evalset.kind[original.name] = stem, "original"
        shown = decode_oriented(source, max_side=2048)
        for kind, make in COPIES.items():
            if kind == "imagemagick_to_jpeg" and source.suffix.lower() not in (".heic", ".heif"):
                continue
            made = make(source, shown, folder / f"{stem}_{kind}")
            if made is not None:
                evalset.origin[made.name], evalset.kind[made.name] = stem, kind
        _views(shown, folder, stem, evalset)
    _orientation_variants(shared, folder, evalset)
    return evalset


def _orientation_variants(shared: Path, folder: Path, evalset: EvalSet) -> None:
    """A real test suite's photo stored in all 8 EXIF orientations (one picture shown)."""
    source = shared / "exif-orientation-examples"
    for series in ("Landscape", "Portrait"):
        for k in range(9):
            path = source / f"{series}_{k}.jpg"
            if path.exists():
                shutil.copyfile(path, folder / path.name)
                kind = "original" if k == 1 else "orientation_tag_variant"
                evalset.origin[path.name], evalset.kind[path.name] = series, kind


def score(evalset: EvalSet, groups: pd.DataFrame) -> pd.DataFrame:
    """Recall (copies grouped with their original) and pair precision, per kind.

    ``groups``: duplicates.parquet rows (path, group_id). A pair is predicted when two
    files share a group; it is right when they show the same origin.
    """
    group = dict(zip(groups.path, groups.group_id, strict=True))
    originals = {o: f for f, o in evalset.origin.items() if evalset.kind[f] == "original"}
    rows = []
    for kind in sorted(set(evalset.kind.values()) - {"original"}):
        files = [f for f, k in evalset.kind.items() if k == kind]
        if kind == "other_view":
            found = [f for f in files if pd.notna(group.get(f))]
            rows.append(
                {"kind": kind, "files": len(files), "recall": None, "wrongly_grouped": len(found)}
            )
            continue
        hit = [
            f
            for f in files
            if pd.notna(group.get(f))
            and group.get(f) == group.get(originals.get(evalset.origin[f], ""))
        ]
        rows.append(
            {
                "kind": kind,
                "files": len(files),
                "recall": len(hit) / len(files),
                "wrongly_grouped": 0,
            }
        )
    table = pd.DataFrame(rows)
    predicted = right = 0
    by_group: dict[object, list[str]] = {}
    for f, g in group.items():
        if f in evalset.origin and pd.notna(g):
            by_group.setdefault(g, []).append(f)
    for members in by_group.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                predicted += 1
                right += evalset.origin[a] == evalset.origin[b]
    table.attrs["pair_precision"] = right / predicted if predicted else 1.0
    table.attrs["pairs"] = predicted
    copies = table[table.recall.notna()]
    weights = copies.files.to_numpy(float)
    table.attrs["recall"] = (
        float(np.average(copies.recall, weights=weights)) if len(copies) else 0.0
    )
    return table
