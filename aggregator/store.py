"""DynamoDB access for the aggregator: visitor states in, one transaction per chunk out.

A chunk's transaction holds, atomically:
  - one dedup marker per event (Put, attribute_not_exists): an event is counted at most once;
  - each touched visitor state (Put, conditioned on the version we read): sessions stay consistent
    with the counters they drive even if two batches race;
  - the chunk's counter deltas (Update ADD on top-level attributes of each counter item).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aggregator.fold import CellKey, VisitorState
from core import keys
from core.keys import Granularity

VisitorKey = tuple[str, str]  # (site, visitor id)
VISITOR_TTL_SECONDS = 3 * 86400  # a visitor id lives one day, plus a session over midnight


@dataclass
class ChunkPlan:
    event_ids: list[tuple[str, str]]  # (site, event id), one marker each
    visitors: dict[VisitorKey, tuple[VisitorState, int]]  # new state, version read
    deltas: dict[tuple[str, CellKey], dict[str, int]]  # (site, cell) → attribute deltas

    def item_count(self) -> int:
        return len(self.event_ids) + len(self.visitors) + len(self.deltas)


@dataclass
class CommitOutcome:
    committed: bool
    duplicates: set[tuple[str, str]] = field(default_factory=set)
    stale_visitors: set[VisitorKey] = field(default_factory=set)
    retryable: bool = False
    reason: str = ""


class AggregateStore:
    def __init__(self, client: Any, table: str, marker_ttl_seconds: int, minute_ttl_seconds: int):
        self._client = client
        self._table = table
        self._marker_ttl = marker_ttl_seconds
        self._minute_ttl = minute_ttl_seconds

    def load_visitors(self, wanted: set[VisitorKey]) -> dict[VisitorKey, VisitorState]:
        found: dict[VisitorKey, VisitorState] = {}
        pending = [
            {"pk": {"S": keys.visitor_pk(site, vid)}, "sk": {"S": keys.NO_SORT}}
            for site, vid in sorted(wanted)
        ]
        while pending:
            batch, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self._table: {"Keys": batch, "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table, []):
                    _, site, vid = item["pk"]["S"].split(keys.SEP, 2)
                    found[(site, vid)] = VisitorState.from_json(
                        item["state"]["S"], int(item["v"]["N"])
                    )
                request = response.get("UnprocessedKeys") or {}
        return found

    def commit(self, plan: ChunkPlan, now: float | None = None) -> CommitOutcome:
        now = time.time() if now is None else now
        actions: list[tuple[str, Any, dict[str, Any]]] = []
        for site, event_id in plan.event_ids:
            actions.append(("marker", (site, event_id), self._marker(site, event_id, now)))
        for vkey, (state, version) in plan.visitors.items():
            actions.append(("visitor", vkey, self._visitor(vkey, state, version, now)))
        for (site, cell), attrs in plan.deltas.items():
            actions.append(("counter", None, self._counter(site, cell, attrs, now)))
        try:
            self._client.transact_write_items(TransactItems=[a[2] for a in actions])
        except self._client.exceptions.TransactionCanceledException as exc:
            return _cancelled(actions, exc.response.get("CancellationReasons", []))
        except (
            self._client.exceptions.TransactionConflictException,
            self._client.exceptions.ProvisionedThroughputExceededException,
            self._client.exceptions.RequestLimitExceeded,
            self._client.exceptions.InternalServerError,
        ) as exc:
            return CommitOutcome(False, retryable=True, reason=type(exc).__name__)
        return CommitOutcome(True)

    # ---- transaction items --------------------------------------------------------------------

    def _marker(self, site: str, event_id: str, now: float) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": {"S": keys.dedup_pk(site, event_id)},
                    "sk": {"S": keys.NO_SORT},
                    "ttl": {"N": str(int(now) + self._marker_ttl)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _visitor(
        self, vkey: VisitorKey, state: VisitorState, version: int, now: float
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": keys.visitor_pk(*vkey)},
                "sk": {"S": keys.NO_SORT},
                "state": {"S": state.to_json()},
                "v": {"N": str(version + 1)},
                "ttl": {"N": str(int(now) + VISITOR_TTL_SECONDS)},
            },
        }
        if version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "v = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
        return {"Put": put}

    def _counter(
        self, site: str, cell: CellKey, attrs: dict[str, int], now: float
    ) -> dict[str, Any]:
        gran, dimension, bucket = cell
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds = []
        for i, (attr, delta) in enumerate(sorted(attrs.items())):
            names[f"#a{i}"] = attr
            values[f":a{i}"] = {"N": str(delta)}
            adds.append(f"#a{i} :a{i}")
        expression = "ADD " + ", ".join(adds)
        if gran is Granularity.MINUTE:
            # Minute buckets serve realtime only; they expire, hours and days stay.
            names["#ttl"] = "ttl"
            values[":ttl"] = {"N": str(int(now) + self._minute_ttl)}
            expression += " SET #ttl = if_not_exists(#ttl, :ttl)"
        return {
            "Update": {
                "TableName": self._table,
                "Key": {
                    "pk": {"S": keys.counter_pk(site, gran, dimension)},
                    "sk": {"S": bucket},
                },
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


def _cancelled(
    actions: list[tuple[str, Any, dict[str, Any]]], reasons: list[dict[str, Any]]
) -> CommitOutcome:
    outcome = CommitOutcome(False, reason="TransactionCanceled")
    for (kind, ref, _), reason in zip(actions, reasons, strict=False):
        code = reason.get("Code", "None")
        if code == "ConditionalCheckFailed":
            if kind == "marker":
                outcome.duplicates.add(ref)
            elif kind == "visitor":
                outcome.stale_visitors.add(ref)
        elif code not in ("None", ""):
            outcome.retryable = True  # TransactionConflict, throttling: back off and retry
            outcome.reason = code
    if not outcome.duplicates and not outcome.stale_visitors:
        outcome.retryable = True
    return outcome
