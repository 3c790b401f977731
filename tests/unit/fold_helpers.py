"""Building one visitor's events and reading the fold's counter deltas, for the fold tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aggregator.fold import Deltas, VisitorState, fold, prune
from core.events import PAGEVIEW, RawEvent
from core.keys import TOTALS, Granularity, parse_counter_attr
from tests import oracle

MINUTE_MS = 60_000
GAP_MS = 30 * MINUTE_MS
SITE = "example.com"

Cells = dict[tuple[Granularity, str, str], dict[str, int]]


def ms(iso: str) -> int:
    """Epoch milliseconds of an ISO timestamp that must carry its own offset."""
    parsed = datetime.fromisoformat(iso)
    assert parsed.tzinfo is not None, "pin the time zone"
    return int(parsed.timestamp() * 1000)


def event(
    ts: int,
    name: str = PAGEVIEW,
    page: str = "/",
    interactive: bool = True,
    tz: str = "UTC",
    event_id: str = "",
    **attributes: Any,
) -> RawEvent:
    """One event of the test visitor; `attributes` sets any other RawEvent field (source, ...)."""
    return RawEvent(
        event_id=event_id or f"e{ts}-{name}-{page}",
        site=SITE,
        ts=ts,
        name=name,
        visitor_id="0123456789abcdef",
        tz=tz,
        page=page,
        interactive=interactive,
        **attributes,
    )


def folded(events: Iterable[RawEvent]) -> Cells:
    """The summed, pruned deltas of folding `events` in the order given, from a new visitor."""
    _, deltas = fold(VisitorState(), events)
    return prune(deltas)


def oracle_cells(events: Iterable[RawEvent]) -> Cells:
    """`tests/oracle.compute` of one site's events, keyed like the fold's cells: the fold's
    granularities (minutes are counted by aggregator/minutes.py)."""
    out: Cells = {}
    for (site, gran, dimension, bucket), attrs in oracle.compute(events).items():
        assert site == SITE
        if gran is not Granularity.MINUTE:
            out[(gran, dimension, bucket)] = dict(attrs)
    return out


def totals(deltas: Deltas | Cells, granularity: Granularity, metric: str) -> dict[str, int]:
    """`{bucket: value}` of one metric in the totals dimension, zero buckets left out."""
    out = {
        bucket: attrs.get(metric, 0)
        for (gran, dimension, bucket), attrs in deltas.items()
        if gran is granularity and dimension == TOTALS
    }
    return {bucket: value for bucket, value in out.items() if value}


def by_value(
    deltas: Deltas | Cells, granularity: Granularity, dimension: str, bucket: str, metric: str
) -> dict[str, int]:
    """`{dimension value: value}` of one metric in one cell (`metric|value` attributes)."""
    cell: Mapping[str, int] = deltas.get((granularity, dimension, bucket), {})
    out = {}
    for name, value in cell.items():
        attr_metric, attr_value = parse_counter_attr(name)
        if attr_metric == metric and attr_value is not None and value:
            out[attr_value] = value
    return out
