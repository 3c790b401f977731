"""The capacity meter (local/meter.py) that `make bench` prices DynamoDB with: read units as
DynamoDB bills them, by the kind of item asked for (bench/writes.py's RRU column)."""

from __future__ import annotations

from typing import Any

import pytest

from core import keys
from core.aws import make_client
from core.keys import Granularity, item_kind
from local.meter import CapacityMeter


@pytest.fixture()
def meter() -> Any:
    m = CapacityMeter(kind_of=item_kind)
    m.install()
    yield m
    m.uninstall()


def test_read_units_are_counted_by_kind_of_item(aws_env: dict[str, str], meter: Any) -> None:
    table = aws_env["aggregates"]
    client = make_client("dynamodb")
    visitor = keys.visitor_pk("blog.example", "v1", "rollup")
    minute = keys.minute_pk("blog.example", 1)
    big = "x" * 5000  # two 4 KB read units when read consistently, one when not
    client.put_item(
        TableName=table, Item={"pk": {"S": visitor}, "sk": {"S": keys.NO_SORT}, "s": {"S": big}}
    )
    client.put_item(TableName=table, Item={"pk": {"S": minute}, "sk": {"S": "2026-01-01T00:00"}})
    meter.reset()

    wanted = [
        {"pk": {"S": visitor}, "sk": {"S": keys.NO_SORT}},
        {"pk": {"S": minute}, "sk": {"S": "2026-01-01T00:00"}},
        {"pk": {"S": minute}, "sk": {"S": "2026-01-01T00:01"}},  # absent: billed all the same
    ]
    client.batch_get_item(RequestItems={table: {"Keys": wanted, "ConsistentRead": True}})
    client.batch_get_item(RequestItems={table: {"Keys": wanted[1:]}})
    day = keys.counter_pk("blog.example", Granularity.DAY, "page")
    client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": day}},
    )
    usage = meter.reset()

    by_kind = {kind: units for (t, kind), units in usage.kind_read_units.items() if t == table}
    assert by_kind == {"visitor state": 2.0, "minute part": 2.0 + 0.5 + 0.5, "day base": 0.5}
    assert usage.read_units[table] == pytest.approx(sum(by_kind.values()))


def test_a_write_is_billed_write_units_only_whatever_it_returns(
    aws_env: dict[str, str], meter: Any
) -> None:
    # moto's UpdateItem (always) and PutItem asked for ALL_OLD read the item to answer with it;
    # DynamoDB bills neither for a read
    table = aws_env["aggregates"]
    client = make_client("dynamodb")
    minute = {"pk": {"S": keys.minute_pk("blog.example", 1)}, "sk": {"S": "2026-01-01T00:00"}}
    client.put_item(TableName=table, Item={**minute, "n": {"N": "1"}, "s": {"S": "x" * 1500}})
    meter.reset()

    client.update_item(
        TableName=table,
        Key=minute,
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    client.put_item(TableName=table, Item={**minute, "n": {"N": "5"}}, ReturnValues="ALL_OLD")
    usage = meter.reset()

    # Then each is billed by the larger of the item before and after it (1.5 KB: 2 units)
    assert usage.write_units[table] == 2 + 2
    assert usage.read_units[table] == 0
    assert not usage.kind_read_units
