"""Building one visitor's events and reading the fold's counter deltas, for the fold tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from aggregator.fold import Deltas, VisitorState, fold, prune
from core.events import PAGEVIEW, RawEvent
from core.keys import TOTALS, Granularity

MINUTE_MS = 60_000
GAP_MS = 30 * MINUTE_MS


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
) -> RawEvent:
    return RawEvent(
        event_id=event_id or f"e{ts}-{name}-{page}",
        site="example.com",
        ts=ts,
        name=name,
        visitor_id="0123456789abcdef",
        tz=tz,
        page=page,
        interactive=interactive,
    )


def folded(events: Iterable[RawEvent]) -> dict[tuple[Granularity, str, str], dict[str, int]]:
    """The summed, pruned deltas of folding `events` in the order given, from a new visitor."""
    _, deltas = fold(VisitorState(), events)
    return prune(deltas)


def totals(
    deltas: Deltas | dict[tuple[Granularity, str, str], dict[str, int]],
    granularity: Granularity,
    metric: str,
) -> dict[str, int]:
    """`{bucket: value}` of one metric in the totals dimension, zero buckets left out."""
    out = {
        bucket: attrs.get(metric, 0)
        for (gran, dimension, bucket), attrs in deltas.items()
        if gran is granularity and dimension == TOTALS
    }
    return {bucket: value for bucket, value in out.items() if value}
