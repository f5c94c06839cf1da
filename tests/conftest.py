"""Shared fixtures (pytest finds them here); plain helper functions live in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import SHARED, write_reason_set


@pytest.fixture(scope="session")
def reason_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reason_set(tmp_path_factory.mktemp("reasons"))


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared EXIF corpus not found at {SHARED} (only in the team's workspace)")
    return SHARED
