"""The link registry: every kind found through one path, a new kind is one function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gpskit.dedup import links as links_module
from gpskit.dedup import overlap as overlap_module
from gpskit.dedup.links import LINKS, MATCHES, LinkKind, find_links, link
from gpskit.dedup.options import DedupOptions
from gpskit.dedup.overlap import _hits
from gpskit.schema import load_schema


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Manifest rows with the columns the finders read (hashes absent unless given)."""
    base = {
        "read_status": "ok", "sha256": None, "pixel_hash": None, "stored_pixel_hash": None,
        "phash": None, "phash256": None, "trimmed_phash": None, "trimmed_phash256": None,
        "crop_hashes": [], "crop_phash256": [], "dihedral_hashes": None,
        "dihedral_phash256": None, "latitude": None, "longitude": None, "img_direction": None,
        "datetime_original": None, "datetime_original_utc": None,
    }  # fmt: skip
    return pd.DataFrame([{**base, **row} for row in rows])


def test_registry_order_is_the_schemas_match_enum() -> None:
    assert load_schema("duplicates").enum("match") == MATCHES
    assert all(isinstance(kind, LinkKind) and callable(kind.find) for kind in LINKS)


def test_a_new_link_is_one_decorated_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered with @link, a finder's pairs reach find_links and the overlap search,
    with the heading veto applied when the link is perceptual."""
    registry = list(LINKS)
    monkeypatch.setattr(links_module, "LINKS", registry)
    monkeypatch.setattr(overlap_module, "LINKS", registry)
    monkeypatch.setattr(links_module, "MATCHES", (*MATCHES, "same_name"))

    @link("same_name", "near", 6, "the same file name", perceptual=True)
    def _same_name(mine: pd.DataFrame, theirs: pd.DataFrame | None, options: DedupOptions):
        other = mine if theirs is None else theirs
        a, b = np.meshgrid(mine.index.to_numpy(), other.index.to_numpy(), indexing="ij")
        same = mine.name.to_numpy()[:, None] == other.name.to_numpy()[None, :]
        a, b = a[same], b[same]
        zeros = np.zeros(len(a), np.int64)
        return [links_module.Pairs(a, b, zeros.astype(np.int8), zeros)]

    frame = _frame(
        [
            {"name": "x.jpg", "img_direction": 0.0},
            {"name": "x.jpg", "img_direction": 5.0},
            {"name": "x.jpg", "img_direction": 180.0},  # another view: vetoed
            {"name": "y.jpg"},
        ]
    )
    pairs = find_links(frame, DedupOptions())
    assert [(a, b) for a, b in zip(pairs.a, pairs.b, strict=True)] == [(0, 1)]
    assert links_module.MATCHES[int(pairs.match.iloc[0])] == "same_name"
    across = _hits(frame, frame.iloc[[3]].reset_index(drop=True), DedupOptions())
    assert across is not None and set(across.match) == {"same_name"}
    assert list(across.m) == [3]


def test_exact_links_star_to_the_first_and_join_across() -> None:
    frame = _frame([{"sha256": "a"}, {"sha256": "a"}, {"sha256": "a"}, {"sha256": "b"}])
    pairs = find_links(frame, DedupOptions())
    assert sorted(zip(pairs.a, pairs.b, strict=True)) == [(0, 1), (0, 2)]
    other = _frame([{"sha256": "b"}, {"sha256": "a"}])
    hits = _hits(frame, other, DedupOptions())
    assert hits is not None
    assert sorted(zip(hits.m, hits.o, strict=True)) == [(0, 1), (1, 1), (2, 1), (3, 0)]
