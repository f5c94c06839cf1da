"""Image-quality measures: their cost per photo, and the distributions the default
thresholds were set from.

1. Cost: ``gpskit.quality.measure`` on the luma image ingest's hashing already decoded
   (a 12 MP JPEG draft-decodes to 504x378, a 640x480 one to 160x120; other formats are
   bounded at 512 px and also pass their colour), median of many calls.
2. Distributions: each measure on the real camera and phone photos of the shared corpus
   (JPEG/HEIC of at least 0.3 MP), and on the same photos blurred (Gaussian, 0.5/1/2 % of
   the width), darkened (x0.15, x0.3) and brightened (x3): where each threshold sits.

    python benchmarks/bench_quality.py [--corpus ../shared/exif-samples]
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from gpskit import checks, quality
from gpskit.reader import _init_worker, read_file

ROOT = Path(__file__).resolve().parents[1]


def cost() -> None:
    print("## cost per photo (median of 200 calls)")
    from gpskit.synth.samples import textured_image

    for name, size, colour in (
        ("12 MP JPEG (luma 504x378)", (504, 378), False),
        ("640x480 JPEG (luma 160x120)", (160, 120), False),
        ("PNG/HEIC (512x384, with colour)", (512, 384), True),
    ):
        rgb = textured_image(*size, seed=0)
        gray = rgb.convert("L")
        times = []
        for _ in range(200):
            start = time.perf_counter()
            quality.measure(gray, rgb if colour else None)
            times.append(time.perf_counter() - start)
        print(f"{name:>34}: {statistics.median(times) * 1e3:.2f} ms")


def _measures(image: Image.Image) -> dict[str, float]:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=90)
    path = Path("/tmp/gpskit-bench-quality.jpg")
    path.write_bytes(buffer.getvalue())
    row = read_file(str(path), True, 256_000_000)
    return {column: row[column] for column in quality.COLUMNS if row[column] is not None}


def distributions(corpus: Path) -> None:
    _init_worker(256_000_000)
    real = []
    for path in sorted(corpus.rglob("*")):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".heic", ".heif"):
            continue
        row = read_file(str(path), True, 256_000_000)
        if row.get("decoded") and (row["width"] or 0) * (row["height"] or 0) >= 300_000:
            real.append((path, row))
    print(f"\n## {len(real)} real photos (>= 0.3 MP JPEG/HEIC) in {corpus}")
    print(f"{'measure':>16} {'min':>8} {'p1':>8} {'p5':>8} {'median':>8} {'max':>8}")
    for column in quality.COLUMNS:
        values = np.array([r[column] for _, r in real if r[column] is not None], dtype=float)
        if len(values):
            p = np.percentile(values, [0, 1, 5, 50, 100])
            print(f"{column:>16} " + " ".join(f"{v:>8.1f}" for v in p))
    flagged = {}
    for path, row in real:
        _, warned = checks.evaluate(row, checks.default_thresholds())
        codes = sorted(set(warned) & set(checks.quality_codes()))
        if codes:
            flagged[path.relative_to(corpus).as_posix()] = codes
    print(f"real photos flagged with the default thresholds: {len(flagged)}")
    for name, codes in flagged.items():
        print(f"  {name}: {', '.join(codes)}")
    print("\n## the same photos degraded (median of each measure)")
    variants = {
        "blur 0.5 %": lambda im: im.filter(ImageFilter.GaussianBlur(im.width * 0.005)),
        "blur 1 %": lambda im: im.filter(ImageFilter.GaussianBlur(im.width * 0.01)),
        "blur 2 %": lambda im: im.filter(ImageFilter.GaussianBlur(im.width * 0.02)),
        "dark x0.15": lambda im: ImageEnhance.Brightness(im).enhance(0.15),
        "dark x0.3": lambda im: ImageEnhance.Brightness(im).enhance(0.3),
        "bright x3": lambda im: ImageEnhance.Brightness(im).enhance(3.0),
    }
    sample = real[:: max(1, len(real) // 12)]
    print(f"{'variant':>12} " + " ".join(f"{c:>15}" for c in quality.COLUMNS[:4]))
    for name, change in variants.items():
        rows = []
        for path, _ in sample:
            with Image.open(path) as img:
                img.draft("RGB", (1024, 1024))
                rows.append(_measures(change(img.convert("RGB"))))
        medians = [statistics.median(r[c] for r in rows) for c in quality.COLUMNS[:4]]
        print(f"{name:>12} " + " ".join(f"{m:>15.1f}" for m in medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "exif-samples")
    args = parser.parse_args()
    cost()
    if args.corpus.is_dir():
        distributions(args.corpus)
    else:
        print(f"\n(no distributions: {args.corpus} not found)")


if __name__ == "__main__":
    main()
