"""The isolated process pool: a crash or a hang costs one task."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpskit.pool import CRASHED, TIMED_OUT, run_isolated

from .helpers import work, write_photos


@pytest.mark.slow
def test_crash_and_hang_are_reported_and_the_rest_completes() -> None:
    tasks = [("a",), ("crash",), ("b",), ("hang",), ("c",), ("memory",), ("d",)]
    outcomes = {o.index: o for o in run_isolated(work, tasks, workers=2, timeout=2.0)}
    assert sorted(outcomes) == list(range(len(tasks)))
    assert [outcomes[i].value for i in (0, 2, 4, 6)] == ["A", "B", "C", "D"]
    assert outcomes[1].failure == CRASHED and "SIGKILL" in (outcomes[1].detail or "")
    assert outcomes[3].failure == TIMED_OUT
    assert outcomes[5].failure == CRASHED and "MemoryError" in (outcomes[5].detail or "")


def test_empty_task_list() -> None:
    assert list(run_isolated(work, [], workers=2)) == []


def test_chunks_requeue_the_rest_after_a_crash() -> None:
    tasks = [("x",)] * 5 + [("crash",)] + [("y",)] * 5
    outcomes = {o.index: o for o in run_isolated(work, tasks, workers=1, chunk_size=4)}
    assert len(outcomes) == len(tasks)
    assert [i for i, o in outcomes.items() if o.failure] == [5]
    assert all(outcomes[i].value in ("X", "Y") for i in outcomes if i != 5)


def broken_start() -> None:
    raise SystemExit(3)


def test_workers_that_cannot_start_are_an_error_not_crashed_files() -> None:
    import pytest

    from gpskit.pool import WorkerStartError

    with pytest.raises(WorkerStartError, match="could not start"):
        list(run_isolated(work, [("a",)], workers=1, initializer=broken_start))


def chatter(text: str) -> str:
    """What a C decoder does: write straight to file descriptor 2."""
    os.write(2, f"libfoo warning: {text}\n".encode())
    return text


def test_worker_stderr_goes_to_the_log(tmp_path, capfd) -> None:  # type: ignore[no-untyped-def]
    import functools

    from gpskit.pool import quiet_stderr

    log = tmp_path / "decoders.log"
    tasks = [(f"tag {i}",) for i in range(6)]
    init = functools.partial(quiet_stderr, str(log))
    results = sorted(o.value for o in run_isolated(chatter, tasks, workers=2, initializer=init))
    assert results == sorted(t[0] for t in tasks)
    assert "libfoo" not in capfd.readouterr().err
    assert log.read_text().count("libfoo warning") == 6


@pytest.fixture(scope="module")
def big_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photos large enough that reading them takes a few seconds in all (on a fast day
    30 of them were read before the interrupt landed, which then met the exit)."""
    return write_photos(tmp_path_factory.mktemp("big"), 80, (2000, 1500))


def _ingest_process(photos, dataset):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gpskit",
            "ingest",
            str(photos),
            "--out",
            str(dataset),
            "--json",
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_for_progress(dataset, proc) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    log = dataset / ".gpskit" / "logs" / "ingest.log"
    while time.monotonic() < deadline and proc.poll() is None and not log.exists():
        time.sleep(0.02)
    time.sleep(0.2)  # workers are reading
    assert proc.poll() is None, "the ingest ended before the test could interrupt it"


@pytest.mark.slow
def test_ctrl_c_prints_one_line_and_keeps_the_old_outputs(tmp_path: Path, big_photos: Path) -> None:
    proc = _ingest_process(big_photos, tmp_path / "ds")
    _wait_for_progress(tmp_path / "ds", proc)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C: the whole group
    _, err = proc.communicate(timeout=60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 130, err
    assert len(lines) == 1 and "interrupted" in lines[0], err
    assert not (tmp_path / "ds" / "manifest.parquet").exists()


@pytest.mark.slow
def test_a_killed_parent_leaves_no_traceback(tmp_path: Path, big_photos: Path) -> None:
    proc = _ingest_process(big_photos, tmp_path / "ds")
    _wait_for_progress(tmp_path / "ds", proc)
    os.kill(proc.pid, signal.SIGKILL)  # the parent only: workers find their pipe closed
    _, err = proc.communicate(timeout=60)
    time.sleep(1.0)
    log = (tmp_path / "ds" / ".gpskit" / "logs" / "ingest.log").read_text()
    assert "Traceback" not in err.decode() and "BrokenPipe" not in err.decode()
    assert "Traceback" not in log, log


def test_workers_run_numeric_libraries_on_one_thread_unless_told() -> None:
    """Each worker is one of as many processes as cores: BLAS threads on top of that fight
    over the cores (a small matrix product in every worker went 5x slower). A fresh
    process, as a user's run is: the workers' environment is fixed when they first start."""
    code = (
        "import os\n"
        "from gpskit.pool import run_isolated\n"
        "tasks = [('OPENBLAS_NUM_THREADS',), ('OMP_NUM_THREADS',)]\n"
        "found = sorted((o.index, o.value) for o in run_isolated(os.getenv, tasks, workers=1))\n"
        "print(found, os.getenv('OPENBLAS_NUM_THREADS'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OMP_NUM_THREADS"] = "3"  # the user's own setting is kept
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[(0, '1'), (1, '3')] None"  # the caller's is as it was
