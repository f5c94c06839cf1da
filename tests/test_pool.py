"""The isolated process pool: a crash or a hang costs one task."""

from __future__ import annotations

import os
import signal
import time

from gpskit.pool import CRASHED, TIMED_OUT, run_isolated


def work(kind: str) -> str:
    if kind == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "hang":
        time.sleep(60)
    if kind == "memory":
        raise MemoryError("too big")
    return kind.upper()


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
