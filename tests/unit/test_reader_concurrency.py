"""The counter reader sends the Queries of one read spread over several partition keys at once
(the realtime card's minute parts, a day's slots), and still returns every item once, in order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from core import keys
from query_api.reader import CounterReader

SITE = "concurrent.example"


class BarrierClient:
    """A DynamoDB client whose Query answers only once `parties` Queries wait at the same time:
    Queries sent one after the other break the barrier (its timeout) instead of answering."""

    def __init__(self, parties: int, items: dict[str, list[dict[str, Any]]]) -> None:
        self._barrier = threading.Barrier(parties, timeout=5)
        self._items = items
        self.calls: list[str] = []

    def query(self, **request: Any) -> dict[str, Any]:
        pk = request["ExpressionAttributeValues"][":pk"]["S"]
        self.calls.append(pk)
        self._barrier.wait()
        return {"Items": self._items.get(pk, [])}


def test_the_realtime_reads_query_every_minute_key_at_once() -> None:
    pks = keys.minute_pks(SITE)
    now = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    minute = keys.minute_labels_between(now, now)[0]
    items = {
        pk: [{"pk": {"S": pk}, "sk": {"S": keys.counter_range(minute, minute)[0]}}] for pk in pks
    }
    client = BarrierClient(len(pks), items)
    reader = CounterReader(client, "aggregates")

    read = reader._minutes(SITE, minute, minute)

    assert sorted(client.calls) == sorted(pks)
    assert [item["pk"]["S"] for item in read] == pks  # each once, in the keys' order
    assert reader.items_read == len(pks)
