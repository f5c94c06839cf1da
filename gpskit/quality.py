"""Image-quality measures, from the decode ingest already does for hashing.

Photos taken walking a campus include motion blur, a finger over the lens, shots into the
sun, of the ground or the sky, and night shots. Each is visible in a 128-pixel copy of the
luma plane ingest decodes anyway (cleanvision's measures, computed in about a millisecond):

- ``brightness_p99`` / ``brightness_p05``: the 99th / 5th percentile of luma (0-255). A
  dark photo has even its brightest pixels dark; a washed-out one even its darkest light.
- ``entropy_bits``: Shannon entropy of the luma histogram (0-8 bits): low for a frame of
  sky, tarmac or fingertip.
- ``sharpness``: twice the smaller of the variances of the horizontal and vertical second
  derivatives of the 128-pixel copy (about the Laplacian's variance for a sharp photo):
  low when edges are smeared in any direction (motion blur, focus missed, a smudge).
- ``colour_spread``: mean spread between the strongest and weakest colour channel (0 for a
  grayscale photo); unknown (None) for colour JPEGs, whose chroma the draft decode skips.

The checks that read these (``dark``, ``too_bright``, ``low_information``, ``blurry``,
``grayscale``, ``odd_aspect_ratio``) live in :mod:`gpskit.checks` with their thresholds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

#: Longer side of the copy every measure is taken on (a fixed scale: sharpness compares).
QUALITY_SIDE = 128
#: Manifest columns this module fills.
COLUMNS = ("brightness_p05", "brightness_p99", "entropy_bits", "sharpness", "colour_spread")


def _small(img: Image.Image) -> Image.Image:
    """The image with its longer side at most QUALITY_SIDE (integer box reduction first:
    several times faster than a resize, the same averaging)."""
    factor = max(img.size) // QUALITY_SIDE
    if factor >= 2:
        img = img.reduce(factor)
    scale = QUALITY_SIDE / max(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BOX)


def measure(gray: Image.Image, colour: Image.Image | None = None) -> dict[str, Any]:
    """The measures of an oriented luma image (``colour``: the same image with its colour,
    when the decode kept it; see the module docstring)."""
    luma = np.asarray(_small(gray if gray.mode == "L" else gray.convert("L")), dtype=np.uint8)
    counts = np.bincount(luma.ravel(), minlength=256).astype(np.float64)
    cumulative = np.cumsum(counts) / counts.sum()
    share = counts[counts > 0] / counts.sum()
    out: dict[str, Any] = {
        "brightness_p05": float(np.searchsorted(cumulative, 0.05)),
        "brightness_p99": float(np.searchsorted(cumulative, 0.99)),
        "entropy_bits": float(max(0.0, -(share * np.log2(share)).sum())),
        "sharpness": _laplacian_variance(luma),
        "colour_spread": None,
    }
    if colour is not None:
        # shrink first where the mode allows it (resizing a palette image mixes indices)
        small = _small(colour) if colour.mode in ("RGB", "RGBA") else _small(colour.convert("RGB"))
        r, g, b = (np.asarray(band, dtype=np.int16) for band in small.convert("RGB").split())
        spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
        out["colour_spread"] = float(spread.mean())
    return out


def _laplacian_variance(luma: np.ndarray[Any, Any]) -> float:
    """Twice the smaller of the variances of the horizontal and the vertical second
    derivative (0 for images under 3 pixels a side). For a sharp photo this is about the
    Laplacian's variance; taking the weaker direction also catches motion blur, which
    smears one direction and leaves edges along it."""
    if min(luma.shape) < 3:
        return 0.0
    x = luma.astype(np.float32)
    across = 2 * x[1:-1, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]
    down = 2 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1]
    return float(2 * min(across.var(), down.var()))


#: For each quality check, the measure that ranks its offenders and whether low is worse.
RANKING: dict[str, tuple[str, bool]] = {
    "blurry": ("sharpness", True),
    "dark": ("brightness_p99", True),
    "too_bright": ("brightness_p05", False),
    "low_information": ("entropy_bits", True),
    "grayscale": ("colour_spread", True),
    "odd_aspect_ratio": ("aspect_ratio", False),
}


def worst_offenders(manifest: Any, per_check: int = 6) -> dict[str, Any]:
    """For each quality check with offenders: a frame of the worst ``per_check`` of them
    (root, path, code, measure, value), worst first. ``manifest``: the manifest as a
    pandas frame (warnings, reasons, the measures, width, height)."""
    frame = manifest.copy()
    long_side = frame[["width", "height"]].max(axis=1)
    frame["aspect_ratio"] = long_side / frame[["width", "height"]].min(axis=1).clip(lower=1)
    flagged = [set(w) | set(r) for w, r in zip(frame["warnings"], frame["reasons"], strict=True)]
    found = {}
    for code, (column, low_is_worse) in RANKING.items():
        hits = frame[[code in codes for codes in flagged]]
        if not len(hits):
            continue
        hits = hits.sort_values(column, ascending=low_is_worse, kind="stable").head(per_check)
        found[code] = hits.assign(code=code, measure=column, value=hits[column])[
            ["root", "path", "code", "measure", "value"]
        ].reset_index(drop=True)
    return found
