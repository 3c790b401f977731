"""A dimension shard that has grown is moved into its bucket's base item (decision 0013): chunks
then write small items, and what readers sum stays the same, to the count."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from aggregator import store as store_module
from aggregator.bounded import item_size, write_units
from core.events import RawEvent
from core.keys import Granularity
from local.runtime import LambdaContext
from tests.integration.test_flood import stream_record

SITE = "moves.example"
DAY = "2026-11-20"
TS = int(datetime(2026, 11, 20, 12, 0, tzinfo=UTC).timestamp() * 1000)
PK = f"C#{SITE}#d#page"


def pageviews(first: int, count: int, path: str = "/") -> list[dict[str, Any]]:
    """Pageviews of new pages, each by a visitor of its own, in chunks that write shard 1."""
    ids = [f"e{n}" for n in range(first, first + 400) if zlib.crc32(f"e{n}".encode()) % 4 == 0]
    events = [
        RawEvent(
            event_id=i,
            site=SITE,
            ts=TS + n,
            name="pageview",
            visitor_id=i,
            page=f"{path}{i}",
            hostname=SITE,
        )
        for n, i in enumerate(ids[:count])
    ]
    return [stream_record(e, first + n) for n, e in enumerate(events)]


def count(records: list[dict[str, Any]]) -> None:
    from aggregator.handler import handler

    for record in records:  # one chunk each: the first event id picks the shard
        assert handler({"Records": [record]}, LambdaContext("aggregator")) == {
            "batchItemFailures": []
        }


def page_items(aws_env: dict[str, str], pk: str = PK) -> dict[str, dict[str, Any]]:
    from core.aws import make_client
    from local import tables

    items = tables.scan_all(make_client("dynamodb"), aws_env["aggregates"])
    return {i["sk"]["S"]: i for i in items if i["pk"]["S"] == pk}


def read_pages(aws_env: dict[str, str]) -> dict[str, int]:
    from core.aws import make_client
    from query_api.reader import CounterReader

    cells = CounterReader(make_client("dynamodb"), aws_env["aggregates"]).buckets(
        SITE, Granularity.DAY, "page", DAY, DAY
    )
    return {name: n for name, n in cells[DAY].items() if name.startswith("pageviews|")}


def test_a_grown_shard_moves_into_the_base_and_reads_the_same(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "FLUSH_AT_VALUES", 3)
    records = pageviews(1000, 5)
    count(records[:2])
    assert set(page_items(aws_env)) == {f"{DAY}#1"}  # two values: no move yet
    before = read_pages(aws_env)

    count(records[2:])  # the third value fills the shard: moved; two more after it

    items = page_items(aws_env)
    shard, base = items[f"{DAY}#1"], items[DAY]
    assert sorted(n for n in base if n.startswith("p|")) == sorted(
        f"p|/{r['dynamodb']['NewImage']['event_id']['S']}" for r in records[:3]
    )
    assert len([n for n in shard if n.startswith("p|")]) == 2  # the fourth and fifth pages
    assert shard["n"] == {"N": "2"} and base["n"] == {"N": "3"}
    pages = read_pages(aws_env)
    assert before.items() <= pages.items() and len(pages) == 5
    assert set(pages.values()) == {1}


def test_a_move_that_races_a_writer_moves_nothing(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aggregator.handler import get_store

    records = pageviews(2000, 3)
    count(records)
    store = get_store()
    shard = (PK, f"{DAY}#1")
    original = store._client.get_item
    # another visitor's view of the first page, in a chunk that writes the same shard
    again = pageviews(5000, 1)[0]
    again["dynamodb"]["NewImage"]["page"] = records[0]["dynamodb"]["NewImage"]["page"]

    def read_then_a_writer_lands(**kwargs: Any) -> Any:
        response = original(**kwargs)
        count([again])  # lands after the move read the shard: a +1 the move did not see
        return response

    with monkeypatch.context() as patched:
        patched.setattr(store._client, "get_item", read_then_a_writer_lands)
        assert store.flush(shard) is False
    failed = [r for r in caplog.records if r.getMessage() == "shard move failed"]
    assert [r.__dict__["reasons"] for r in failed] == [["None", "ConditionalCheckFailed"]]

    assert DAY not in page_items(aws_env)  # nothing reached the base
    assert sorted(read_pages(aws_env).values()) == [1, 1, 2]  # and nothing was lost
    assert store.flush(shard) is True  # the next move, on a fresh read, goes through
    assert DAY in page_items(aws_env) and sorted(read_pages(aws_env).values()) == [1, 1, 2]


def test_a_shard_is_moved_once_its_writes_have_cost_what_rewriting_the_base_costs(
    aws_env: dict[str, str],
) -> None:
    from core.aws import make_client

    # A base that already holds 60 long paths (~15 KB): moving into it costs ~15 units.
    held = [f"/{'old-' * 40}{n}" for n in range(60)]
    base_item = {"pk": {"S": PK}, "sk": {"S": DAY}, "n": {"N": "60"}}
    base_item["b"] = {"N": str(sum(len(p) for p in held))}
    for page in held:
        base_item[f"p|{page}"] = base_item[f"v|{page}"] = {"N": "1"}
    make_client("dynamodb").put_item(TableName=aws_env["aggregates"], Item=base_item)
    base_units = write_units(item_size(base_item))
    assert base_units >= 15

    records = pageviews(3000, 40, path=f"/{'new-' * 40}")  # ~200-byte paths, shard 1 each time
    spent: list[int] = []
    before: dict[str, Any] = {}  # the shard as the last chunk before the move left it
    for record in records:
        count([record])
        items = page_items(aws_env)
        if items[DAY]["n"] != {"N": "60"}:  # values reached the base: the shard was moved
            break
        before = items[f"{DAY}#1"]
        spent.append(int(before.get("w", {"N": "0"})["N"]))
        # not due yet, or it would have moved: the move costs at least the base and the shard
        assert spent[-1] < base_units + write_units(item_size(before))
    else:
        pytest.fail("the shard was never moved")

    assert spent[0] == 0  # a first write under 1 KB costs the minimum: nothing counted
    assert len([w for w in spent if w]) >= 3 and spent == sorted(spent)
    # Not moved early: the moving chunk's write (one ~400-byte value more than the shard held)
    # brought what was spent up to at least the base's units.
    assert spent[-1] + write_units(item_size(before) + 1024) - 1 >= base_units
    shard = items[f"{DAY}#1"]
    assert shard["w"] == {"N": "0"} and not [a for a in shard if a.startswith("p|")]
    pages = read_pages(aws_env)
    moved = len(spent) + 1  # the new pages, every one of them in the base now
    assert len(pages) == len(held) + moved and set(pages.values()) == {1}

    # The hostname's shard took every one of these writes and stayed under 1 KB: never moved.
    hostname = page_items(aws_env, f"C#{SITE}#d#hostname")
    assert set(hostname) == {f"{DAY}#1"} and "w" not in hostname[f"{DAY}#1"]


def test_a_move_of_as_many_counters_as_it_may_carry_goes_through(aws_env: dict[str, str]) -> None:
    from aggregator.handler import get_store
    from core.aws import make_client

    # a shard of values with 5 counters each: more than one move carries
    values = store_module.FLUSH_MAX_ATTRIBUTES // 5 + 6
    shard: dict[str, Any] = {"pk": {"S": PK}, "sk": {"S": f"{DAY}#2"}, "n": {"N": str(values)}}
    shard["b"], shard["ver"] = {"N": str(values * 22)}, {"N": "4"}
    for n in range(values):
        for code in ("p", "v", "s", "b", "d"):
            shard[f"{code}|/blog/some-long-path-{n}"] = {"N": str(n + 1)}
    make_client("dynamodb").put_item(TableName=aws_env["aggregates"], Item=shard)
    before = read_pages(aws_env)

    store = get_store()
    assert store.flush((PK, f"{DAY}#2")) is True
    moved = [a for a in page_items(aws_env)[DAY] if a.startswith("p|")]
    assert len(moved) * 5 > store_module.FLUSH_MAX_ATTRIBUTES - 5  # as many as one move carries
    assert store.flush((PK, f"{DAY}#2")) is True  # and the rest with the next
    assert f"{DAY}#2" in page_items(aws_env) and read_pages(aws_env) == before
    assert not [a for a in page_items(aws_env)[f"{DAY}#2"] if "|" in a]
