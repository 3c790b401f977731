"""Fixtures of the unit tier."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tf(tmp_path: Path) -> Path:
    """A copy of terraform/ (and the schema it reads) for a test to change: the bill reads it."""
    shutil.copytree(REPO / "terraform", tmp_path / "terraform")
    (tmp_path / "core").mkdir()
    shutil.copy(REPO / "core" / "schema.json", tmp_path / "core" / "schema.json")
    return tmp_path / "terraform"
