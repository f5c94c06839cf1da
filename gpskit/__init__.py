"""gpskit: phone photos in, a clean, leak-free, geotagged image dataset (and a model) out.

The Python API (``docs/api.md``): :class:`Dataset` (a dataset folder with ``ingest``,
``dedup``, ``coverage``, ``split``) and :func:`load_model` (a trained or published model
whose ``predict`` takes paths, PIL images or numpy arrays). Both are imported on first
use, so ``import gpskit`` and the command line stay quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CoverageOptions",
    "Dataset",
    "DedupOptions",
    "IngestOptions",
    "SplitOptions",
    "TrainOptions",
    "__version__",
    "load_model",
]

if TYPE_CHECKING:
    from gpskit.api import Dataset, load_model
    from gpskit.coverage.options import CoverageOptions
    from gpskit.dedup.options import DedupOptions
    from gpskit.ingest.options import IngestOptions
    from gpskit.split.options import SplitOptions
    from gpskit.train.options import TrainOptions

_LAZY = {
    "Dataset": "gpskit.api",
    "load_model": "gpskit.api",
    "CoverageOptions": "gpskit.coverage.options",
    "DedupOptions": "gpskit.dedup.options",
    "IngestOptions": "gpskit.ingest.options",
    "SplitOptions": "gpskit.split.options",
    "TrainOptions": "gpskit.train.options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gpskit' has no attribute {name!r}")
