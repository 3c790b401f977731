"""The local stack's moto fix keeps DynamoDB's all-or-nothing transactions."""

from __future__ import annotations

from typing import Any

import pytest

from core.aws import make_client


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws_env: dict[str, str]) -> None:
    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    client.put_item(TableName=table, Item={"pk": {"S": "C#x"}, "sk": {"S": "1"}, "n": {"N": "5"}})
    with pytest.raises(client.exceptions.TransactionCanceledException) as cancelled:
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "V#new"}, "sk": {"S": "_"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "C#x"}, "sk": {"S": "1"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"pk": {"S": "C#x"}, "sk": {"S": "2"}},
                        "ConditionExpression": "attribute_exists(pk)",  # fails: nothing there
                    }
                },
            ]
        )
    codes = [r["Code"] for r in cancelled.value.response["CancellationReasons"]]
    assert codes == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(
        TableName=table, Key={"pk": {"S": "V#new"}, "sk": {"S": "_"}}
    )
    item = client.get_item(TableName=table, Key={"pk": {"S": "C#x"}, "sk": {"S": "1"}})["Item"]
    assert item["n"] == {"N": "5"}


def test_the_emulator_does_not_keep_every_copy_of_an_item(aws_env: dict[str, str]) -> None:
    import gc

    from moto.core.model_instances import reset_model_data
    from moto.dynamodb.models.dynamo_type import Item

    reset_model_data()  # as every in-process mock_aws does (the unit tests run in this process)

    def alive() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, Item))

    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    key = {"pk": {"S": "C#x"}, "sk": {"S": "1"}}
    before = alive()
    for _ in range(100):  # each update copies the old item; each transaction backs it up
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD n :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": key,
                        "UpdateExpression": "ADD m :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                }
            ]
        )
    assert client.get_item(TableName=table, Key=key)["Item"]["n"] == {"N": "100"}
    assert alive() - before < 10  # the item itself, not 300 copies of it


def _update(client: Any, table: str, expression: str, values: dict[str, Any] | None = None) -> None:
    client.update_item(
        TableName=table,
        Key={"pk": {"S": "C#big"}, "sk": {"S": "1"}},
        UpdateExpression=expression,
        **({"ExpressionAttributeValues": values} if values else {}),
    )


def _item(client: Any, table: str) -> dict[str, Any]:
    return client.get_item(TableName=table, Key={"pk": {"S": "C#big"}, "sk": {"S": "1"}})["Item"]


def test_update_expressions_are_still_checked_as_moto_checks_them(aws_env: dict[str, str]) -> None:
    # (the checks now run once per expression, not once per nested node)
    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    one = {":one": {"N": "1"}}
    many = ", ".join(f"c{i} :one" for i in range(150))
    _update(client, table, f"ADD {many}", one)  # a long expression is fine
    for expression, complaint in (
        (f"ADD {many}, c7 :one", "Two document paths"),  # the 151st action names c7 again
        (f"ADD {many} SET x = :one SET y = :one", 'The "SET" section can only be used once'),
        (f"ADD {many} REMOVE c1 REMOVE c2", 'The "REMOVE" section can only be used once'),
    ):
        with pytest.raises(client.exceptions.ClientError, match=complaint):
            _update(client, table, expression, one)
    item = _item(client, table)
    assert item["c7"] == {"N": "1"} and "x" not in item  # the refused updates changed nothing


def test_an_update_past_400_kb_is_still_refused(aws_env: dict[str, str]) -> None:
    # (the item's size is now summed once per update and kept as its SETs go)
    client = make_client("dynamodb")
    table = aws_env["aggregates"]
    values = {f":v{i}": {"S": "x" * 1100} for i in range(100)}

    def set_part(part: int) -> None:  # ~110 KB: 100 attributes of 1,100 bytes
        _update(
            client, table, "SET " + ", ".join(f"a{part}_{i} = :v{i}" for i in range(100)), values
        )

    for part in range(3):
        set_part(part)
    set_part(0)  # replaced attributes are not counted twice (~331 KB, not ~442)
    with pytest.raises(client.exceptions.ClientError, match="maximum allowed size"):
        set_part(3)
    # once an update has freed space, the item may grow again
    _update(client, table, "REMOVE " + ", ".join(f"a2_{i}" for i in range(100)))
    set_part(3)
    assert sum(1 for name in _item(client, table) if name.startswith("a3_")) == 100


def test_the_server_finds_a_backend_without_listing_its_package_on_each_request(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    import moto
    import moto.backends

    from local import moto_patch

    # Given the patched emulator, and a count of listings of moto's package from here on
    moto_patch.apply()
    client = make_client("dynamodb")
    package = os.path.dirname(moto.__file__)
    listings: list[str] = []
    listdir = os.listdir

    def counted(path: Any = ".") -> list[str]:
        if str(path) == package:
            listings.append(str(path))
        return listdir(path)

    monkeypatch.setattr(os, "listdir", counted)
    # When requests name their backend by host
    for _ in range(3):
        client.describe_table(TableName=aws_env["meta"])
    # Then the backends were listed once, at apply, and still include DynamoDB
    assert listings == []
    assert "dynamodb" in moto.backends.list_of_moto_modules()


def test_concurrent_writers_on_one_item_lose_no_update(aws_env: dict[str, str]) -> None:
    """DynamoDB applies each write to an item atomically; moto's Python does not, so concurrent
    tier instances (one per stream shard) could lose ADDs or both pass a condition. The local
    stack serialises moto's DynamoDB operations."""
    import sys
    import threading

    table = aws_env["aggregates"]
    key = {"pk": {"S": "C#race"}, "sk": {"S": "1"}}
    writers, adds = 8, 60
    winners: list[int] = []

    def write(n: int) -> None:
        client = make_client("dynamodb")
        for i in range(adds):
            client.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
            try:  # each marker may be written once, by exactly one writer
                client.put_item(
                    TableName=table,
                    Item={"pk": {"S": "M#race"}, "sk": {"S": str(i)}},
                    ConditionExpression="attribute_not_exists(pk)",
                )
                winners.append(i)
            except client.exceptions.ConditionalCheckFailedException:
                pass

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often (moto's server runs in this process)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    client = make_client("dynamodb")
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": str(writers * adds)}
    assert sorted(winners) == list(range(adds))
