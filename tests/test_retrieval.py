"""Retrieval: the index in the run folder and its nearest-neighbour positions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gpskit.errors import InputError
from gpskit.train.model import DESCRIPTOR, Descriptor
from gpskit.train.retrieval import INDEX_FILE, RetrievalIndex


def _index(n: int = 200, dim: int = 32, seed: int = 0) -> RetrievalIndex:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    positions = rng.uniform(-2, 2, size=(n, 2))
    return RetrievalIndex(vectors, positions, np.array([f"p{i}.jpg" for i in range(n)]))


def test_a_training_photo_gets_its_own_position(tmp_path: Path) -> None:
    index = _index()
    index.save(tmp_path)
    loaded = RetrievalIndex.load(tmp_path)
    assert loaded is not None and (tmp_path / INDEX_FILE).exists()
    # stored as float16: still the exact match of its own photo, whatever k
    for k in (1, 8, 50):
        found = loaded.query(index.embeddings[:20], k)
        assert found == pytest.approx(index.positions[:20], abs=1e-9)
    assert list(loaded.paths[:2]) == ["p0.jpg", "p1.jpg"]


def test_neighbours_weighted_by_similarity() -> None:
    index = RetrievalIndex(
        np.array([[1, 0], [0, 1], [-1, 0]], np.float32),
        np.array([[0.0, 0.0], [10.0, 0.0], [99.0, 99.0]]),
        np.array(["a", "b", "c"]),
    )
    between = np.array([[np.sqrt(0.5), np.sqrt(0.5)]], np.float32)
    assert index.query(between, 2)[0] == pytest.approx([5.0, 0.0])  # equally near a and b
    leaning = np.array([[0.8, 0.6]], np.float32)
    x = index.query(leaning, 2)[0, 0]
    assert 0.0 < x < 5.0  # nearer a, so nearer a's position
    assert index.query(leaning, 100).shape == (1, 2)  # k above the index size: all of it


def test_queries_in_chunks_agree_with_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo's position does not depend on which photos share its batch, to float32
    precision: BLAS picks other kernels for other shapes, so similarities differ in their
    last bits (seen: 5e-6 standardised units, under a millimetre), never more."""
    import gpskit.train.retrieval as retrieval

    index = _index(500)
    queries = _index(300, seed=1).embeddings
    whole = index.query(queries, 5)
    monkeypatch.setattr(retrieval, "QUERY_CHUNK", 7)
    chunked = index.query(queries, 5)
    assert chunked == pytest.approx(whole, rel=1e-4, abs=1e-4)
    monkeypatch.setattr(retrieval, "QUERY_CHUNK", 1)  # one photo at a time, as predict may
    assert index.query(queries, 5) == pytest.approx(whole, rel=1e-4, abs=1e-4)


def test_missing_or_hostile_index(tmp_path: Path) -> None:
    assert RetrievalIndex.load(tmp_path) is None
    np.savez(tmp_path / INDEX_FILE, embeddings=np.array([object()], dtype=object))
    with pytest.raises(InputError, match="not a readable retrieval index"):
        RetrievalIndex.load(tmp_path)  # pickled objects are never loaded
    (tmp_path / INDEX_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="not a readable"):
        RetrievalIndex.load(tmp_path)
    np.savez(
        tmp_path / INDEX_FILE,
        embeddings=np.zeros((3, 4)),
        positions=np.zeros((2, 2)),
        paths=np.array(["a", "b", "c"]),
    )
    with pytest.raises(InputError, match="disagree"):
        RetrievalIndex.load(tmp_path)


def _facing_index() -> RetrievalIndex:
    """Two training photos that look alike, taken facing north and south."""
    return RetrievalIndex(
        np.array([[1, 0], [0.999, np.sqrt(1 - 0.999**2)], [0, 1]], np.float32),
        np.array([[0.0, 0.0], [10.0, 0.0], [50.0, 50.0]]),
        np.array(["north.jpg", "south.jpg", "east.jpg"]),
        np.array([0.0, 180.0, 90.0]),
    )


def test_heading_window_keeps_to_photos_facing_the_same_way() -> None:
    index = _facing_index()
    query = np.array([[1, 0]], np.float32)
    anywhere = index.query(query, 1)[0]
    assert anywhere == pytest.approx([0.0, 0.0])  # most similar: the north photo
    facing_south = index.query(query, 1, np.array([170.0]), 45.0)[0]
    assert facing_south == pytest.approx([10.0, 0.0])  # the south photo, though less similar
    # across north: 350° is 10° from 0°
    assert index.query(query, 1, np.array([350.0]), 45.0)[0] == pytest.approx([0.0, 0.0])


def test_heading_window_falls_back_rather_than_guess_from_nothing() -> None:
    index = _facing_index()
    query = np.array([[1, 0]], np.float32)
    unknown = index.query(query, 1, np.array([np.nan]), 45.0)[0]
    assert unknown == pytest.approx([0.0, 0.0])  # no heading: every photo
    # fewer than k photos within the window: all of them, not a partial neighbourhood
    assert index.query(query, 2, np.array([170.0]), 10.0) == pytest.approx(index.query(query, 2))
    assert index.query(query, 1, np.array([170.0]), 180.0) == pytest.approx(index.query(query, 1))


def test_headings_survive_the_run_folder_and_old_indexes_load(tmp_path: Path) -> None:
    index = _facing_index()
    index.save(tmp_path)
    loaded = RetrievalIndex.load(tmp_path)
    assert loaded is not None and loaded.headings == pytest.approx([0.0, 180.0, 90.0])
    np.savez(
        tmp_path / INDEX_FILE,
        embeddings=index.embeddings,
        positions=index.positions,
        paths=index.paths,
    )  # written before headings were stored
    old = RetrievalIndex.load(tmp_path)
    assert old is not None and np.isnan(old.headings).all()
    assert old.query(index.embeddings[:1], 1, np.array([170.0]), 45.0)[0] == pytest.approx([0, 0])


def test_an_index_records_its_descriptor_and_old_ones_read_as_the_last_block(
    tmp_path: Path,
) -> None:
    index = _facing_index()
    assert index.descriptor == DESCRIPTOR == Descriptor.LAYERS34.value
    index.save(tmp_path)
    loaded = RetrievalIndex.load(tmp_path)
    assert loaded is not None and loaded.descriptor == DESCRIPTOR
    columns = {"embeddings": index.embeddings, "positions": index.positions, "paths": index.paths}
    np.savez(tmp_path / INDEX_FILE, **columns)  # written before descriptors were stored
    old = RetrievalIndex.load(tmp_path)
    assert old is not None and old.descriptor == Descriptor.LAYER4.value
    np.savez(tmp_path / INDEX_FILE, **columns, descriptor=np.array("vit-cls"))
    with pytest.raises(InputError, match="descriptor 'vit-cls'"):
        RetrievalIndex.load(tmp_path)


def test_queries_are_made_the_way_the_index_was(tmp_path: Path) -> None:
    """Each descriptor has its own size; an index of either kind finds a training photo
    itself (its own position), so queries follow the index's descriptor."""
    torch = pytest.importorskip("torch", reason="gpskit[train] not installed")
    from gpskit.train.heads import PositionHead
    from gpskit.train.loss import TargetScaler
    from gpskit.train.model import build_model, features
    from gpskit.train.predictor import variants
    from gpskit.train.retrieval import embed

    torch.manual_seed(0)
    model = build_model("resnet18", "none", 0.0, 2).eval()
    images = torch.randn(6, 3, 48, 48)
    loader = [(images, torch.zeros(6, 2), torch.arange(6))]
    with torch.no_grad():
        last = features(model, images, Descriptor.LAYER4.value)
        both = features(model, images, Descriptor.LAYERS34.value)
    assert last.shape == (6, 512) and both.shape == (6, 256 + 512)
    assert torch.allclose(both[:, 256:], torch.nn.functional.normalize(last, dim=1), atol=1e-5)
    assert torch.allclose(both[:, :256].norm(dim=1), torch.ones(6), atol=1e-5)
    positions = np.arange(12, dtype=float).reshape(6, 2)
    scaler = TargetScaler.fit(np.array([39.95, 39.951]), np.array([-75.19, -75.191]))
    head = PositionHead("regression", scaler, None)
    for descriptor in (Descriptor.LAYER4.value, Descriptor.LAYERS34.value):
        vectors = embed(model, loader, torch.device("cpu"), descriptor=descriptor)
        index = RetrievalIndex(vectors, positions, np.array([f"{i}.jpg" for i in range(6)]))
        index.descriptor = descriptor
        index.save(tmp_path)
        loaded = RetrievalIndex.load(tmp_path)
        assert loaded is not None
        found = variants(model, loader, torch.device("cpu"), head, loaded, knn=3)
        assert found["retrieval"] == pytest.approx(positions, abs=1e-6)


@pytest.mark.parametrize("k", [1, 8, 64])
def test_faiss_and_numpy_find_the_same_neighbours(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """With faiss installed the exact search runs there; it must rank as numpy does."""
    pytest.importorskip("faiss")
    index = _index(n=3000, dim=64, seed=3)
    queries = _index(n=300, dim=64, seed=4).embeddings
    fast = index.nearest(queries, k)
    assert index._flat is not None  # faiss answered
    monkeypatch.setenv("GPSKIT_NO_FAISS", "1")
    plain = RetrievalIndex(index.embeddings, index.positions, index.paths).nearest(queries, k)
    np.testing.assert_allclose(fast[2], plain[2], atol=1e-5)  # the similarities
    assert (fast[0] == plain[0]).mean() > 0.999  # the rows (ties aside)
    np.testing.assert_allclose(fast[1], plain[1], atol=1e-4)  # the weights
    # the heading window always ranks in numpy, and a training photo finds itself
    own = index.nearest(index.embeddings[:5], 4)
    assert (own[0][:, 0] == np.arange(5)).all() and np.allclose(own[1][:, 0], 1.0)


def _places(n: int, dim: int = 48, places: int = 150, seed: int = 0) -> np.ndarray:
    """Embeddings as a campus makes them: many photos around each place, unit length."""
    centres = np.random.default_rng(12345).normal(size=(places, dim))  # the same campus
    rng = np.random.default_rng(seed)  # photos taken there
    vectors = centres[rng.integers(0, places, n)] + 1.2 * rng.normal(size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def _big_index(monkeypatch: pytest.MonkeyPatch, n: int = 6000, k: int = 8) -> RetrievalIndex:
    from gpskit.train import retrieval

    monkeypatch.setattr(retrieval, "APPROX_ROWS", 1000)  # "big" for a test
    vectors = _places(n)
    rng = np.random.default_rng(1)
    index = RetrievalIndex(
        vectors, rng.uniform(-2, 2, (n, 2)), np.array([f"p{i}" for i in range(n)])
    )
    assert index.cluster_if_large(k)
    return index


def test_a_big_index_searches_approximately_and_eval_measures_its_recall(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("faiss")
    from gpskit.train.ann import TARGET_RECALL

    index = _big_index(monkeypatch)
    assert index.clusters is not None and index.clusters.tuned_recall >= TARGET_RECALL
    assert 1 <= index.clusters.nprobe < len(index.clusters.centroids)  # it skips clusters
    index.save(tmp_path)
    loaded = RetrievalIndex.load(tmp_path)
    assert loaded is not None and loaded.clusters is not None
    assert loaded.clusters.nprobe == index.clusters.nprobe
    np.testing.assert_array_equal(loaded.clusters.lists, index.clusters.lists)
    queries = _places(500, seed=7)  # new photos of the same places
    loaded.audit()
    rows, weights, _ = loaded.nearest(queries, 8)
    report = loaded.search_report()
    assert report["search"].startswith("approximate") and report["recall_at_k"] >= 0.85
    assert (rows >= 0).all() and np.allclose(weights.sum(axis=1), 1.0)
    monkeypatch.setenv("GPSKIT_EXACT_SEARCH", "1")
    exact = RetrievalIndex.load(tmp_path)
    assert exact is not None
    exact_rows = exact.nearest(queries, 8)[0]
    assert exact.search_report()["search"] == "exact"
    overlap = np.mean([len(set(a) & set(b)) / 8 for a, b in zip(rows, exact_rows, strict=True)])
    assert overlap == pytest.approx(report["recall_at_k"], abs=1e-4)


def test_an_approximate_search_that_finds_fewer_than_k_fills_with_no_weight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("faiss")
    index = _big_index(monkeypatch)
    assert index.clusters is not None
    index.clusters.nprobe = 1  # one cluster: some hold fewer photos than k asks
    smallest = np.bincount(index.clusters.lists).min()
    k = int(smallest) + 5
    rows, weights, _ = index.nearest(_places(200, seed=9), k)
    assert (rows >= 0).all() and (rows < len(index.embeddings)).all()
    assert np.allclose(weights.sum(axis=1), 1.0) and np.isfinite(weights).all()


@pytest.mark.parametrize(
    "damage",
    [
        {"ivf_lists": np.full(6000, 10**6, np.int32)},
        {"ivf_lists": np.zeros(5, np.int32)},
        {"ivf_nprobe": np.array(0)},
        {"ivf_centroids": np.zeros((4, 3), np.float32)},
        {"ivf_centroids": np.zeros((0, 48), np.float32)},
    ],
)
def test_damaged_clusters_are_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: dict[str, np.ndarray]
) -> None:
    pytest.importorskip("faiss")
    _big_index(monkeypatch).save(tmp_path)
    with np.load(tmp_path / INDEX_FILE) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(tmp_path / INDEX_FILE, **{**arrays, **damage})
    with pytest.raises(InputError, match=r"train the run again|not a readable"):
        RetrievalIndex.load(tmp_path)


def test_without_faiss_a_big_index_searches_exactly_in_numpy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("faiss")
    from gpskit.train import retrieval

    _big_index(monkeypatch).save(tmp_path)
    monkeypatch.setattr(retrieval, "faiss_module", lambda: None)
    loaded = RetrievalIndex.load(tmp_path)
    assert loaded is not None and not loaded.cluster_if_large(8)
    rows = loaded.nearest(_places(50, seed=5), 8)[0]
    assert loaded.search_report() == {"search": "exact", "engine": "numpy", "rows": 6000}
    assert (rows >= 0).all()


def _saved(tmp_path: Path, **arrays: np.ndarray) -> Path:
    good = {
        "embeddings": np.eye(4, 8, dtype=np.float16),
        "positions": np.zeros((4, 2)),
        "paths": np.array(["a", "b", "c", "d"]),
    }
    np.savez(tmp_path / INDEX_FILE, **{**good, **arrays})
    return tmp_path


@pytest.mark.parametrize(
    "arrays",
    [
        {"embeddings": np.ones(4, np.float16)},
        {"embeddings": np.zeros((0, 8)), "positions": np.zeros((0, 2)), "paths": np.array([])},
        {"embeddings": np.full((4, 8), np.nan)},
        {"positions": np.full((4, 2), np.inf)},
    ],
    ids=["one-dimensional", "no rows", "NaN embeddings", "infinite positions"],
)
def test_an_index_that_cannot_place_a_photo_is_one_line(
    tmp_path: Path, arrays: dict[str, np.ndarray]
) -> None:
    with pytest.raises(InputError, match=r"not a readable|no training|disagree|not finite"):
        RetrievalIndex.load(_saved(tmp_path, **arrays))


def test_an_index_whose_header_claims_more_than_the_file_holds(tmp_path: Path) -> None:
    """A damaged or hostile header would ask for any amount of memory (it was MemoryError)."""
    import zipfile

    _saved(tmp_path)
    header = np.lib.format.header_data_from_array_1_0(np.zeros((2, 2)))
    header["shape"] = (100_000_000, 512)
    with zipfile.ZipFile(tmp_path / INDEX_FILE, "a") as archive, archive.open("big.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\x00" * 32)
    with pytest.raises(InputError, match="claims"):
        RetrievalIndex.load(tmp_path)


def test_an_index_that_is_a_fifo_never_blocks(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / INDEX_FILE)
    with pytest.raises(InputError, match="not a file"):
        RetrievalIndex.load(tmp_path)


def test_queries_from_another_model_are_one_line() -> None:
    index = _index(n=50, dim=32)
    with pytest.raises(InputError, match="another model"):
        index.nearest(np.ones((2, 768), np.float32), 4)


@pytest.mark.parametrize(
    "text",
    ["", "{", "[]", '{"method": "evil", "knn": 8}', '{"method": "head", "knn": "x"}',
     '{"method": "blend", "knn": 8, "heading_window": "x"}',
     '{"method": "blend", "knn": 8, "heading_window": 400}', '{"method": "head", "knn": true}'],
)  # fmt: skip
def test_a_hand_edited_choice_of_method_is_one_line(tmp_path: Path, text: str) -> None:
    from gpskit.train.predictor import load_choice

    (tmp_path / "prediction.json").write_text(text)
    with pytest.raises(InputError, match="not the run's choice"):
        load_choice(tmp_path)
