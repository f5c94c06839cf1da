"""The Python API: the documented example runs, exports resolve, `import gpskit` is light."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gpskit

ROOT = Path(__file__).resolve().parents[1]


def test_every_export_resolves() -> None:
    for name in gpskit.__all__:
        assert getattr(gpskit, name) is not None, name
    with pytest.raises(AttributeError):
        _ = gpskit.no_such_name  # type: ignore[attr-defined]


def test_import_gpskit_loads_no_heavy_library() -> None:
    code = "import sys, gpskit; print(sorted(m for m in ('pandas', 'pyarrow', 'torch', 'PIL') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((40, 60, 3), np.uint8),
        np.full((40, 60), 200, np.uint8),
        np.random.default_rng(0).random((40, 60, 3)),  # floats 0-1
        np.zeros((40, 60, 4), np.uint8),
    ],
)
def test_arrays_become_rgb_images(array: np.ndarray) -> None:
    pytest.importorskip("torch")
    from gpskit.train.inference import as_image

    image = as_image(array, 32)
    assert image.mode == "RGB" and image.size == (60, 40)


def test_a_wrong_array_is_a_clear_error() -> None:
    pytest.importorskip("torch")
    from gpskit.train.inference import as_image

    with pytest.raises(ValueError, match="H x W x 3"):
        as_image(np.zeros((4, 5, 6, 7)), 32)


@pytest.mark.slow
def test_the_documented_example_runs() -> None:
    pytest.importorskip("torch")
    failed, attempted = doctest.testfile(
        str(ROOT / "docs" / "api.md"), module_relative=False, optionflags=doctest.ELLIPSIS
    )
    assert attempted > 20 and failed == 0
