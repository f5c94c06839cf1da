"""Engines: the same per-file guarantees and the same rows on gpskit's pool and on Ray.

The Ray tests start a local Ray instance (2 CPUs) once for this module; they are skipped
only where Ray is not installed (``pip install 'gpskit[ray]'``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gpskit.engines import EngineOptions, map_isolated, require_ray
from gpskit.errors import InputError, MissingDependencyError
from gpskit.ingest import IngestOptions, ingest
from gpskit.pool import CRASHED, TIMED_OUT
from gpskit.split import SplitOptions
from gpskit.split.write import embed_images

from . import helpers
from .helpers import good_exif, kill_ingest_half_way, work, write_photos

RAY = EngineOptions("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'gpskit[ray]')")
    ray.init(
        num_cpus=2,
        object_store_memory=256 * 1024**2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    # these modules are not importable in Ray's workers: send their functions by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.cloudpickle.register_pickle_by_value(helpers)  # where the task ``work`` lives
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_crash_or_a_hang_costs_one_task_on_either_engine(
    engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "ray":
        request.getfixturevalue("ray_cluster")
    tasks = [("a",), ("crash",), ("b",), ("hang",), ("c",), ("memory",), ("d",), ("e",)]
    outcomes = {
        o.index: o
        for o in map_isolated(work, tasks, engine=EngineOptions(engine), workers=2, timeout=3.0)
    }
    assert sorted(outcomes) == list(range(len(tasks)))
    assert [outcomes[i].value for i in (0, 2, 4, 6, 7)] == ["A", "B", "C", "D", "E"]
    assert outcomes[1].failure == CRASHED
    assert outcomes[3].failure == TIMED_OUT
    assert outcomes[5].failure == CRASHED and "MemoryError" in (outcomes[5].detail or "")


def _photos(folder: Path, count: int, size: tuple[int, int] = (320, 240)) -> Path:
    return write_photos(folder, count, size, exif=lambda i: good_exif(heading=i * 45.0))


@pytest.mark.slow
def test_ray_ingest_writes_the_local_engines_manifest_byte_for_byte(
    ray_cluster: Any, reason_set: Path, tmp_path: Path
) -> None:
    ingest([reason_set], tmp_path / "local", IngestOptions(workers=2))
    report = ingest([reason_set], tmp_path / "ray", IngestOptions(workers=2, engine=RAY))
    assert report.read == report.files > 10
    local = (tmp_path / "local" / "manifest.parquet").read_bytes()
    assert (tmp_path / "ray" / "manifest.parquet").read_bytes() == local


@pytest.mark.slow
def test_ray_ingest_killed_half_way_resumes_to_the_same_manifest(
    ray_cluster: Any, tmp_path: Path
) -> None:
    photos = _photos(tmp_path / "photos", 60, (1600, 1200))
    dataset = tmp_path / "killed"
    journaled = kill_ingest_half_way(photos, dataset, 60, engine="ray")
    assert 0 < journaled < 60  # Ray may lose the shard being renamed at the kill
    resumed = ingest([photos], dataset, IngestOptions(workers=2, engine=RAY))
    assert resumed.read == 60 - journaled and resumed.reused == journaled
    ingest([photos], tmp_path / "whole", IngestOptions(workers=2))
    whole = (tmp_path / "whole" / "manifest.parquet").read_bytes()
    assert (dataset / "manifest.parquet").read_bytes() == whole


@pytest.mark.slow
def test_split_embeds_the_same_bytes_on_ray(ray_cluster: Any, tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 6)
    frame = pd.DataFrame({"root": str(photos), "path": [f"p{i:03d}.jpg" for i in range(6)]})
    frame.loc[len(frame)] = [str(photos), "missing.jpg"]
    local = embed_images(frame, SplitOptions(embed=True, max_side=64), None)
    on_ray = embed_images(frame, SplitOptions(embed=True, max_side=64, engine=RAY), None)
    assert on_ray == local and all(isinstance(b, bytes) for b in local[:6])
    assert isinstance(local[6], str) and "FileNotFoundError" in local[6]


def test_engine_options_are_checked() -> None:
    with pytest.raises(InputError, match="--engine must be one of"):
        EngineOptions("spark").validate()
    with pytest.raises(InputError, match="needs --engine ray"):
        EngineOptions("local", "auto").validate()


def test_without_ray_the_engine_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # None: an import raises ImportError
    with pytest.raises(MissingDependencyError, match=r"gpskit\[ray\]"):
        require_ray()
