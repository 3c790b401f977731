"""`make test-dates` proves nothing unless the clock really moved: under LIVEINSIGHT_TEST_NOW,
every wall-clock read starts at that moment and ticks on, and monotonic time does not jump."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import TEST_NOW


@pytest.mark.skipif(TEST_NOW not in os.environ, reason="the suite runs at today's date")
def test_wall_clock_reads_start_at_the_moved_date_and_tick() -> None:
    moved_to = datetime.fromisoformat(os.environ[TEST_NOW])
    first, mono = time.time(), time.monotonic()
    time.sleep(0.05)
    assert 0 <= first - moved_to.timestamp() < 3600  # the run started there, not today
    assert abs(datetime.now(UTC).timestamp() - time.time()) < 1
    assert time.time() - first >= 0.04  # it ticks
    assert time.monotonic() - mono < 5  # and monotonic time kept its own pace
