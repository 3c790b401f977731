"""The built tracker (tracker/dist/script.js, `make build`): present, minified, within 1,024 B gzip.

The script sits on every page of every client site, so its size is a feature (issue 6): Plausible's
all-features script is 2.7 KB gzip, Umami's 2.2 KB, Counterscale's 1.9 KB.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "tracker" / "src" / "script.js"
BUILT = REPO / "tracker" / "dist" / "script.js"
GZIP_BUDGET = 1024

# Local names of the source: a minifier renames every one of them.
SOURCE_LOCALS = ("hashMode", "pageUrl", "optedOut", "engage", "prev", "script")


@pytest.fixture(scope="module")
def built() -> str:
    if not BUILT.is_file():
        pytest.fail(f"{BUILT.relative_to(REPO)} is missing: run `make build` (make test does it)")
    return BUILT.read_text(encoding="utf-8")


def test_built_tracker_is_at_most_1024_bytes_gzipped(built: str) -> None:
    size = len(gzip.compress(built.encode(), compresslevel=9))
    assert size <= GZIP_BUDGET, f"tracker is {size} B gzip, over the {GZIP_BUDGET} B budget"


def test_built_tracker_is_minified(built: str) -> None:
    # Given the source with its comments, indentation and readable names
    source = SOURCE.read_text(encoding="utf-8")
    # Then the build has none of them and is far smaller
    assert built.count("\n") <= 1
    assert "/*" not in built and not re.search(r"(^|[;{}])\s*//", built)
    assert "  " not in built
    leftover = [name for name in SOURCE_LOCALS if re.search(rf"\b{name}\b", built)]
    assert leftover == [], f"local names survived minification: {leftover}"
    assert len(built) < len(source) / 2


def test_built_tracker_is_not_older_than_its_source(built: str) -> None:
    assert BUILT.stat().st_mtime >= SOURCE.stat().st_mtime, "stale build: run `make build`"


def test_built_tracker_has_every_automatic_event(built: str) -> None:
    for name in (
        '"pageview"',
        '"engagement"',
        '"Outbound Link: Click"',
        '"File Download"',
        '"404"',
    ):
        assert name in built


def test_bench_reports_raw_and_gzip_bytes_next_to_the_peers_published_sizes(built: str) -> None:
    from bench import tracker

    rows = {r["figure"]: r for r in tracker.rows()}
    assert rows["tracker size, raw (minified)"]["value"] == len(built.encode())
    gzipped = rows["tracker size, gzip"]
    assert gzipped["value"] == len(gzip.compress(built.encode(), compresslevel=9))
    assert "Plausible 2.7 KB, Umami 2.2 KB, Counterscale 1.9 KB" in gzipped["anchor"]
    assert rows["tracker gzip size / Counterscale's published size"]["value"] < 1
