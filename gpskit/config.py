"""Defaults that several steps share, each defined once."""

from __future__ import annotations

from pathlib import Path

#: Where ``gpskit ingest`` writes and every later step reads, unless told otherwise.
DEFAULT_DATASET_DIR = Path("gpskit-data")
#: Environment variable that overrides :data:`DEFAULT_DATASET_DIR`.
DATASET_ENV = "GPSKIT_DATASET"


def _bundled_dir(name: str) -> Path:
    """Find ``schemas/`` or ``regions/`` in a wheel install or a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_bundled" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gpskit's bundled {name}/ folder is missing (looked next to {here})")


def schemas_dir() -> Path:
    """Folder of the versioned JSON schemas shipped with gpskit."""
    return _bundled_dir("schemas")


def regions_dir() -> Path:
    """Folder of the GeoJSON regions shipped with gpskit."""
    return _bundled_dir("regions")
