"""The local stack's moto fix keeps DynamoDB's all-or-nothing transactions."""

from __future__ import annotations

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
