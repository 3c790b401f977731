"""Unit tier: pure tests, no network. The clock is an input, pinned to UTC."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

# 2026-03-29 12:00 UTC: the day Europe/Berlin moves to summer time (at 01:00 UTC).
NOON_UTC = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOON_UTC
