"""Typed access to core/schema.json, the one source of table and event-source-mapping settings.

Terraform decodes the same file, so anything the code relies on (key names, TTL attribute, stream
view type, batching, retries) cannot drift between the local stack and AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema.json")


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None


@dataclass(frozen=True)
class Table:
    logical_name: str
    hash_key: str
    range_key: str | None
    attributes: dict[str, str]
    ttl_attribute: str | None
    stream_view_type: str | None
    indexes: tuple[Index, ...]
    # `<prefix>-<physical_suffix>` is the table's name, locally and in AWS (decision 0040)
    physical_suffix: str = ""

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}-{self.physical_suffix or self.logical_name}"


@dataclass(frozen=True)
class EventSourceMapping:
    source_table: str
    batch_size: int
    maximum_batching_window_in_seconds: float
    starting_position: str
    # Lambda's filter criteria (one pattern): records that do not match never reach the function
    filter_pattern: dict[str, Any] = field(hash=False)
    bisect_batch_on_function_error: bool
    maximum_retry_attempts: int
    maximum_record_age_in_seconds: int
    report_batch_item_failures: bool


@dataclass(frozen=True)
class Retention:
    raw_event_ttl_seconds: int
    visitor_state_ttl_seconds: int
    minute_bucket_ttl_seconds: int
    salt_max_age_seconds: int


@dataclass(frozen=True)
class AggregatorTier:
    """One alias of the aggregator and its own event source mapping (decision 0010)."""

    name: str
    granularities: tuple[str, ...]  # core.keys.Granularity values whose counters it writes
    esm: EventSourceMapping


@dataclass(frozen=True)
class Schema:
    tables: dict[str, Table]
    tiers: dict[str, AggregatorTier]
    retention: Retention

    @property
    def esm(self) -> EventSourceMapping:
        """The realtime tier's mapping: the one whose batching sets how fresh realtime is."""
        return self.tiers["realtime"].esm


@lru_cache(maxsize=1)
def load_schema() -> Schema:
    raw: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    tables = {
        name: Table(
            logical_name=name,
            hash_key=t["hash_key"],
            range_key=t.get("range_key"),
            attributes=dict(t["attributes"]),
            ttl_attribute=t.get("ttl_attribute"),
            stream_view_type=t.get("stream_view_type"),
            indexes=tuple(
                Index(i["name"], i["hash_key"], i.get("range_key"))
                for i in t.get("global_secondary_indexes", [])
            ),
            physical_suffix=t.get("physical_suffix", ""),
        )
        for name, t in raw["tables"].items()
    }
    m = raw["event_source_mapping"]
    tiers = {
        name: AggregatorTier(
            name=name,
            granularities=tuple(t["granularities"]),
            esm=EventSourceMapping(
                source_table=m["source_table"],
                batch_size=int(t["batch_size"]),
                maximum_batching_window_in_seconds=float(t["maximum_batching_window_in_seconds"]),
                starting_position=m["starting_position"],
                filter_pattern=dict(t["filter_pattern"]),
                bisect_batch_on_function_error=bool(m["bisect_batch_on_function_error"]),
                maximum_retry_attempts=int(m["maximum_retry_attempts"]),
                maximum_record_age_in_seconds=int(m["maximum_record_age_in_seconds"]),
                report_batch_item_failures="ReportBatchItemFailures"
                in m["function_response_types"],
            ),
        )
        for name, t in raw["aggregator_tiers"].items()
    }
    return Schema(tables=tables, tiers=tiers, retention=Retention(**raw["retention"]))


def create_table_request(table: Table, physical_name: str, *, with_stream: bool) -> dict[str, Any]:
    """The CreateTable request for a table, as the local stack and the tests issue it."""
    key_schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
    if table.range_key:
        key_schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
    request: dict[str, Any] = {
        "TableName": physical_name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in table.attributes.items()
        ],
    }
    if table.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": [{"AttributeName": i.hash_key, "KeyType": "HASH"}]
                + ([{"AttributeName": i.range_key, "KeyType": "RANGE"}] if i.range_key else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in table.indexes
        ]
    if with_stream and table.stream_view_type:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": table.stream_view_type,
        }
    return request
