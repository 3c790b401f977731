"""A chunk leaves a day's and a month's counts in one slot of its own; a fold adds the slots into
each dimension's base and deletes them (decision 0015). Readers sum both, so a fold changes no
number, and a fold that loses a race changes nothing at all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.events import RawEvent
from core.keys import Granularity, packed_cells, slot_pks
from local.runtime import LambdaContext
from tests.conftest import _clear_composition_roots
from tests.integration.test_flood import stream_record

SITE = "folds.example"
DAY = "2026-11-20"
MONTH = "2026-11"
TS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)


def pageviews(first: int, count: int, path: str = "/p", day_ts: int = TS) -> list[dict[str, Any]]:
    """Pageviews of page `path<n>`, each by a visitor of its own."""
    return [
        stream_record(
            RawEvent(
                event_id=f"e{n}",
                site=SITE,
                ts=day_ts + n,
                name="pageview",
                visitor_id=f"v{n}",
                page=f"{path}{n}",
                hostname=SITE,
            ),
            n,
        )
        for n in range(first, first + count)
    ]


def count(records: list[dict[str, Any]]) -> None:
    from aggregator.handler import handler

    for record in records:  # a batch, a chunk and a slot each
        assert handler({"Records": [record]}, LambdaContext("aggregator")) == {
            "batchItemFailures": []
        }


def items(aws_env: dict[str, str]) -> list[dict[str, Any]]:
    from core.aws import make_client
    from local import tables

    return tables.scan_all(make_client("dynamodb"), aws_env["aggregates"])


def slots(aws_env: dict[str, str], gran: str = "d") -> list[dict[str, Any]]:
    """A day's (or a month's) slots under every key they are spread over (decision 0018)."""
    pks = set(slot_pks(SITE, Granularity(gran)))
    return [item for item in items(aws_env) if item["pk"]["S"] in pks]


def read(aws_env: dict[str, str], dimension: str, gran: Granularity = Granularity.DAY) -> Any:
    from core.aws import make_client
    from query_api.reader import CounterReader

    label = DAY if gran is Granularity.DAY else MONTH
    cells = CounterReader(make_client("dynamodb"), aws_env["aggregates"]).buckets(
        SITE, gran, dimension, label, label
    )
    return cells.get(label, {})


def test_a_chunk_writes_one_slot_per_day_and_month_and_readers_count_it(
    aws_env: dict[str, str], fold_at: Any
) -> None:
    fold_at(slots=100)
    count(pageviews(0, 3))
    day_slots, month_slots = slots(aws_env, "d"), slots(aws_env, "M")
    assert len(day_slots) == 3 and len(month_slots) == 3
    # Every dimension of the day in the one item, and no dimension's own item written yet
    assert {"_", "page", "entry_page", "hostname"} <= set(packed_cells(day_slots[0]))
    assert not [i for i in items(aws_env) if i["pk"]["S"] == f"C#{SITE}#d#page"]
    assert read(aws_env, "page")["pageviews|/p1"] == 1
    assert read(aws_env, "_", Granularity.MONTH)["pageviews"] == 3


def test_a_fold_moves_the_slots_into_the_bases_and_every_number_reads_the_same(
    aws_env: dict[str, str], fold_at: Any
) -> None:
    fold_at(slots=4)
    count(pageviews(0, 3))
    before = {d: read(aws_env, d) for d in ("_", "page", "entry_page", "exit_page", "hostname")}
    assert len(slots(aws_env)) == 3
    count(pageviews(3, 1))  # the fourth slot: this instance folds the bucket
    assert slots(aws_env) == [] and slots(aws_env, "M") == []
    base = next(i for i in items(aws_env) if i["pk"]["S"] == f"C#{SITE}#d#page")
    assert base["sk"]["S"] == DAY and base["ver"]["N"] == "1"
    assert packed_cells(base)["page"]["pageviews|/p3"] == 1
    after = {d: read(aws_env, d) for d in before}
    assert after["page"] == {**before["page"], "pageviews|/p3": 1, "visitors|/p3": 1}
    assert after["_"]["pageviews"] == before["_"]["pageviews"] + 1 == 4
    # A second fold adds to the base, conditioned on the version the first one left
    count(pageviews(4, 4))
    assert slots(aws_env) == []
    assert read(aws_env, "_")["pageviews"] == 8
    assert read(aws_env, "page", Granularity.MONTH)["pageviews|/p7"] == 1


def test_a_fold_that_loses_a_race_changes_nothing(aws_env: dict[str, str], fold_at: Any) -> None:
    from aggregator import handler as aggregator_handler
    from aggregator import store as store_module

    fold_at(slots=100)
    count(pageviews(0, 3))
    store = aggregator_handler.get_store()
    before = read(aws_env, "page")
    # Another instance folds the same slots between our read of them and our transaction
    real_batch_get = store_module.batch_get
    from core.aws import make_client

    other = store_module.AggregateStore(
        make_client("dynamodb"), aws_env["aggregates"], visitor_ttl_seconds=3600
    )

    def racing_batch_get(*args: Any, **kwargs: Any) -> Any:
        store_module.batch_get = real_batch_get
        assert other.fold(SITE, Granularity.DAY, DAY) is True
        return real_batch_get(*args, **kwargs)

    store_module.batch_get = racing_batch_get
    try:
        assert store.fold(SITE, Granularity.DAY, DAY) is False
    finally:
        store_module.batch_get = real_batch_get
    assert slots(aws_env) == []
    assert read(aws_env, "page") == before  # folded once, by the winner


def test_slots_of_an_earlier_day_that_nobody_folded_are_folded_with_today(
    aws_env: dict[str, str], fold_at: Any
) -> None:
    fold_at(slots=100)
    count(pageviews(0, 2))  # 2026-11-20, left as slots (say, by an instance gone cold)
    _clear_composition_roots()
    fold_at(slots=1)
    count(pageviews(10, 1, day_ts=TS + 86_400_000))  # the next day: its fold takes both days
    assert slots(aws_env) == []
    assert read(aws_env, "_")["pageviews"] == 2
    assert read(aws_env, "page")["pageviews|/p1"] == 1


def test_an_instance_folds_a_bucket_once_it_left_enough_slots_there(
    aws_env: dict[str, str], fold_at: Any
) -> None:
    from aggregator import handler as aggregator_handler

    fold_at(slots=3)
    count(pageviews(0, 2))
    store = aggregator_handler.get_store()
    assert store.due() == [] and len(slots(aws_env)) == 2
    count(pageviews(2, 1))
    assert store.due() == [] and slots(aws_env) == []  # the third slot: folded, none pending


def test_a_fold_that_cannot_read_leaves_the_chunk_counted_and_tries_again_next_time(
    aws_env: dict[str, str], fold_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import store as store_module

    fold_at(slots=2)
    count(pageviews(0, 1))
    real_query = store_module.query_between

    def throttled(client: Any, *args: Any, **kwargs: Any) -> Any:
        raise client.exceptions.ProvisionedThroughputExceededException(
            {"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Query"
        )

    monkeypatch.setattr(store_module, "query_between", throttled)
    count(pageviews(1, 1))  # its slots commit; the fold they make due cannot read
    assert len(slots(aws_env)) == 2 and read(aws_env, "_")["pageviews"] == 2
    monkeypatch.setattr(store_module, "query_between", real_query)
    count(pageviews(2, 1))  # the next commit folds, the bucket still due
    assert slots(aws_env) == [] and read(aws_env, "_")["pageviews"] == 3


def test_a_fold_throttled_or_in_conflict_is_tried_again_by_the_next_commit(
    aws_env: dict[str, str], fold_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import handler as aggregator_handler

    fold_at(slots=2)
    count(pageviews(0, 1))
    client = aggregator_handler.get_store()._client
    real = client.transact_write_items
    calls = {"n": 0}

    def conflict_on_the_fold(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the commit goes through, the first of its two folds (month) not
            raise client.exceptions.TransactionConflictException(
                {"Error": {"Code": "TransactionConflictException"}}, "TransactWriteItems"
            )
        return real(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", conflict_on_the_fold)
    count(pageviews(1, 1))
    assert calls["n"] == 3 and len(slots(aws_env, "M")) == 2  # the month: nothing folded
    assert slots(aws_env, "d") == []  # the day's fold went through
    assert read(aws_env, "_", Granularity.MONTH)["pageviews"] == 2
    count(pageviews(2, 1))  # one slot more, not two: the month was still due
    assert slots(aws_env, "M") == [] and read(aws_env, "_", Granularity.MONTH)["pageviews"] == 3
