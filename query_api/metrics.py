"""Metrics from counters: the arithmetic both engines share (the counters' and the archive's),
so a rate or a mean is rounded the same way whichever answered (docs/metrics.md)."""

from __future__ import annotations

from core import vocabulary
from query_api.parse import (
    BOUNCE_RATE,
    CONVERSION_RATE,
    EVENTS,
    PAGEVIEWS,
    SCROLL_DEPTH,
    TIME_ON_PAGE,
    VIEWS_PER_VISIT,
    VISIT_DURATION,
    VISITORS,
    VISITS,
)

Cell = dict[str, int]  # counters by name: {"visitors": 3, "pageviews": 5}

# The counters (core/vocabulary.py) each metric is computed from.
NEEDS = {
    VISITORS: (VISITORS,),
    VISITS: (VISITS,),
    PAGEVIEWS: (PAGEVIEWS,),
    EVENTS: (EVENTS,),
    VIEWS_PER_VISIT: (PAGEVIEWS, VISITS),
    BOUNCE_RATE: (vocabulary.BOUNCES, VISITS),
    VISIT_DURATION: (vocabulary.DURATION_MS, VISITS),
    TIME_ON_PAGE: (vocabulary.TIME_ON_PAGE_MS, vocabulary.TIME_ON_PAGE_N),
    SCROLL_DEPTH: (vocabulary.SCROLL_SUM, vocabulary.SCROLL_N),
    CONVERSION_RATE: (VISITORS,),
}

# ---- ---------------------------------------------------------------------

Number = int | float


def compute(metric: str, row: Cell, site_visitors: int = 0) -> Number:
    visits = row.get("visits", 0)
    if metric == VIEWS_PER_VISIT:
        return round(row.get("pageviews", 0) / visits, 2) if visits else 0.0
    if metric == BOUNCE_RATE:
        return round(100 * row.get("bounces", 0) / visits) if visits else 0
    if metric == VISIT_DURATION:
        return round(row.get("duration_ms", 0) / visits / 1000) if visits else 0
    if metric == TIME_ON_PAGE:
        n = row.get("top_n", 0)
        return round(row.get("top_ms", 0) / n / 1000) if n else 0
    if metric == SCROLL_DEPTH:
        n = row.get("sd_n", 0)
        return round(row.get("sd_sum", 0) / n) if n else 0
    if metric == CONVERSION_RATE:
        return round(100 * row.get("visitors", 0) / site_visitors, 1) if site_visitors else 0.0
    return row.get(metric, 0)


def change(metric: str, value: Number, previous: Number) -> Number | None:
    """Plausible's change: percentage points for rates, else percent (100 from nothing)."""
    if metric in (BOUNCE_RATE, CONVERSION_RATE):
        return round(value - previous, 1) if metric == CONVERSION_RATE else value - previous
    if previous == 0:
        return 100 if value else 0
    return round(100 * (value - previous) / previous)


def compared(
    current: dict[str, Number], previous: dict[str, Number] | None
) -> dict[str, dict[str, Number | None]]:
    """An aggregate's values, each with its previous period's value and change when compared."""
    if previous is None:
        return {m: {"value": v} for m, v in current.items()}
    return {
        m: {"value": v, "comparison_value": previous[m], "change": change(m, v, previous[m])}
        for m, v in current.items()
    }
