"""Which visitor id an event counts under: a session over UTC midnight continues yesterday's.

The salt changes at UTC midnight, so a visitor's events after it get a new visitor id. As in
Plausible, the session goes on under yesterday's id while it is open: an event continues it if
yesterday's id counted an event (any but engagement) within the last 30 minutes (docs/metrics.md).

The rule depends on order ("counted so far"), and only ingest sees events in order: the stream's
shards deliver a visitor's events to the aggregator in any order (decision 0024). So ingest
decides, once, and the raw event carries the id it counts under (and no previous id). It keeps a
small "last seen" item per visitor id (meta table, `SEEN#<site>#<visitor id>`, TTL 2 days), only
where the rule can need it:
- written by each counted event in the last 30 minutes of its UTC day (tomorrow's first events
  may continue its session), and by each event that continues a session (the next may too);
- read by an event that has a previous id, unless this instance already found that id's session
  over: events only come later, so it stays over (a warm instance reads about once per visitor
  and day).
Costs: one consistent read per visitor and day per warm instance; a write per counted event in
the day's last 30 minutes and per continued event. A failed read or write never refuses the
event: the session is then counted as a new one, and the event is stored all the same.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from core.observability import logger

SESSION_GAP_MS = 30 * 60 * 1000
SEEN_PREFIX = "SEEN"
SEEN_TTL_SECONDS = 2 * 24 * 3600
OVER_KEPT = 10_000  # sessions this instance found over, remembered (LRU)

log = logger("ingest")


def seen_pk(site: str, visitor_id: str) -> str:
    return f"{SEEN_PREFIX}#{site}#{visitor_id}"


def day_end_ms(ts_ms: int) -> int:
    """The next UTC midnight after `ts_ms`, in epoch milliseconds (the salt changes there)."""
    day = datetime.fromtimestamp(ts_ms / 1000, UTC).date()
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    return int(end.timestamp() * 1000)


class SessionLinks:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self._over: OrderedDict[tuple[str, str], None] = OrderedDict()

    def visitor_for(
        self, site: str, current: str, previous: str | None, ts: int, counts: bool
    ) -> str:
        """The id the event counts under: `previous` while its session is open, else `current`.
        `counts`: the event keeps a session open (engagement events do not)."""
        chosen = current
        if previous is not None and (site, previous) not in self._over:
            read, last = self._last_seen(site, previous)
            if last is not None and 0 <= ts - last <= SESSION_GAP_MS:
                chosen = previous
            elif read and (last is None or ts - last > SESSION_GAP_MS):
                self._remember_over(site, previous)
        if counts and (chosen == previous or ts >= day_end_ms(ts) - SESSION_GAP_MS):
            self._seen(site, chosen, ts)
        return chosen

    def _remember_over(self, site: str, visitor: str) -> None:
        self._over[(site, visitor)] = None
        if len(self._over) > OVER_KEPT:
            self._over.popitem(last=False)

    def _last_seen(self, site: str, visitor: str) -> tuple[bool, int | None]:
        """(read at all, the time of the id's last counted event if recorded)."""
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": seen_pk(site, visitor)}, "sk": {"S": "_"}},
                ConsistentRead=True,  # the visitor's previous event may be a second old
            ).get("Item")
        except Exception as exc:  # never refuse an event for this: a new session instead
            log.warning("last seen not read", extra={"error": type(exc).__name__})
            return False, None
        return True, int(item["ts"]["N"]) if item else None

    def _seen(self, site: str, visitor: str, ts: int) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": seen_pk(site, visitor)}, "sk": {"S": "_"}},
                UpdateExpression="SET #ts = :ts, #ttl = :ttl",
                # never back in time: two instances may write one visitor's events at once
                ConditionExpression="attribute_not_exists(#ts) OR #ts < :ts",
                ExpressionAttributeNames={"#ts": "ts", "#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":ts": {"N": str(ts)},
                    ":ttl": {"N": str(ts // 1000 + SEEN_TTL_SECONDS)},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            pass  # a later event of the visitor was seen already
        except Exception as exc:
            log.warning("last seen not written", extra={"error": type(exc).__name__})
