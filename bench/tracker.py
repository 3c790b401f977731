"""`make bench` rows for the tracker's size: our build next to the peers' published sizes.

The peers publish the gzip size of their all-features script; each ratio to one is a row of its
own. The npm trackers the end-to-end tests drive (tests/trackers, built by `make trackers` with the
same esbuild) are measured here too, for a like-for-like look at what a site would ship.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BUILT = REPO / "tracker" / "dist" / "script.js"
PEERS_DIST = REPO / "tests" / "trackers" / "dist"
GZIP_BUDGET = 1024
# Published gzip sizes of the all-features scripts (issue 6), in bytes (1 KB = 1,000 B).
PUBLISHED = {"Plausible": 2700, "Umami": 2200, "Counterscale": 1900}
PUBLISHED_ANCHOR = "published gzip: " + ", ".join(
    f"{name} {size / 1000:g} KB" for name, size in PUBLISHED.items()
)
NPM_TRACKERS = {
    "plausible-tracker.js": "plausible-tracker 0.3.9 (npm)",
    "plausible-analytics-tracker.js": "@plausible-analytics/tracker 0.4.6 (npm)",
    "umami.js": "Umami 2.10.0 script.js (npm umami, src/tracker)",
}


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def rows() -> list[dict[str, Any]]:
    if not BUILT.is_file():
        return []
    code = BUILT.read_bytes()
    ours = gzip_size(code)
    result = [
        _row("tracker size, raw (minified)", len(code), "bytes", "", PUBLISHED_ANCHOR),
        _row("tracker size, gzip", ours, "bytes", f"≤ {GZIP_BUDGET}", PUBLISHED_ANCHOR),
    ]
    for name, size in PUBLISHED.items():
        result.append(
            _row(
                f"tracker gzip size / {name}'s published size",
                ours / size,
                "ratio",
                "< 1",
                f"{name} {size / 1000:g} KB gzip",
            )
        )
    for file, label in NPM_TRACKERS.items():
        path = PEERS_DIST / file
        if path.is_file():
            peer = path.read_bytes()
            result.append(
                _row(
                    f"peer tracker size, gzip: {label}",
                    gzip_size(peer),
                    "bytes",
                    "",
                    f"{len(peer)} bytes raw, minified here by esbuild",
                )
            )
    return result


def _row(figure: str, value: float, unit: str, goal: str, anchor: str) -> dict[str, Any]:
    return {
        "figure": figure,
        "value": round(value, 4),
        "unit": unit,
        "goal": goal,
        "anchor": anchor,
    }
