"""AWS client construction, shared by every composition root.

We build low-level clients from `botocore.session` rather than `boto3.client`: the API is the same
(`client.put_item(...)`), but boto3 also imports s3transfer, ~0.1 s of cold start we never use.
Endpoints come from the standard `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_SQS` variables,
so the local stack points the same code at moto without a setting of our own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import botocore.config
import botocore.session

# A Lambda fails fast on a stuck call (5 s, then a retry); `make bench` drives one in-process moto
# through 100,000-item scans and floods, where a call can take longer, and raises it.
READ_TIMEOUT_VARIABLE = "LIVEINSIGHT_AWS_READ_TIMEOUT"


def make_client(service: str) -> Any:
    # moto 5.2 does not answer DynamoDB Streams calls from botocore 1.44+ that resolve an
    # account-id endpoint; disabling that mode is harmless in AWS too.
    os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    session = botocore.session.get_session()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=float(os.environ.get(READ_TIMEOUT_VARIABLE, "5")),
        max_pool_connections=20,
    )
    return session.create_client(service, region_name=region, config=config)


def paged(call: Callable[..., dict[str, Any]], **request: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paged Query or Scan: `call(**request)`, then again from each page's
    LastEvaluatedKey until a page has none."""
    while True:
        page = call(**request)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        request = {**request, "ExclusiveStartKey": page["LastEvaluatedKey"]}


def query_between(
    client: Any, table: str, pk: str, low: str, high: str, consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """Every item of the partition `pk` with low <= sk <= high."""
    return paged(
        client.query,
        TableName=table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :a AND :b",
        ExpressionAttributeValues={":pk": {"S": pk}, ":a": {"S": low}, ":b": {"S": high}},
        ConsistentRead=consistent,
    )
