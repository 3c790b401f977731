"""DynamoDB access for the aggregator: visitor states in, one transaction per chunk out.

A chunk's transaction holds, atomically:
  - each touched visitor state (Put, conditioned on the version we read). The state lists the
    events folded into it, so it is also the record that an event was counted (decision 0005);
  - the chunk's counter deltas (Update ADD on top-level attributes of each counter item).

A write is billed by the size of the whole item, so chunks add to small items: shards 1-4 of a
bucket. A dimension shard is moved into the bucket's base item (shard 0) in a transaction of its
own (decision 0013) once what its writes cost beyond the 1 KB minimum since the last move has
reached what the move costs (decision 0014): a base that holds a month's 300 values is rewritten
rarely, a small one often, and a shard never grows past FLUSH_AT_VALUES values.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aggregator.bounded import (
    Admission,
    KnownValues,
    admit,
    has_values,
    write_units,
)
from aggregator.fold import CellKey, VisitorState
from core import keys
from core.keys import BYTES_ATTR, COUNT_ATTR, SPENT_ATTR, VERSION
from core.observability import logger

VisitorKey = tuple[str, str]  # (site, visitor id)
KNOWN_ITEMS_CACHED = 20_000
FLUSH_AT_VALUES = 64  # a shard with this many values is moved whatever the costs say
# Counters one move carries. DynamoDB allows ~300 (an update expression is at most 4 KB, and the
# base's ADD takes `#a249 :a249, `, 13 characters, a counter); moto's expression parser recurses
# once per term and fails a transaction of 200 (RecursionError), so the local stack sets the bound.
FLUSH_MAX_ATTRIBUTES = 120
COUNTER_OVERHEAD = 4  # bytes a counter takes beside its name: a number's digits and type


@dataclass
class ChunkPlan:
    event_ids: list[tuple[str, str]]  # (site, event id) folded in by this chunk
    visitors: dict[VisitorKey, tuple[VisitorState, int]]  # new state, version read
    deltas: dict[tuple[str, CellKey], dict[str, int]]  # (site, cell) → attribute deltas
    duplicates: int = 0  # events skipped because their visitor state already held them

    @property
    def shard(self) -> int:
        """The counter shard this chunk writes to: any but the base, readers sum them all."""
        first = self.event_ids[0][1] if self.event_ids else ""
        return 1 + zlib.crc32(first.encode()) % keys.COUNTER_SHARDS


@dataclass
class CommitOutcome:
    committed: bool
    stale_counters: set[tuple[str, str]] = field(default_factory=set)
    stale_visitors: set[VisitorKey] = field(default_factory=set)
    retryable: bool = False
    reason: str = ""


def item_version(item: dict[str, Any]) -> int:
    """An item's `ver` as read (0: never written, or written before it had one)."""
    return int(item.get(VERSION, {}).get("N", 0))


def version_condition(version: int, values: dict[str, Any]) -> str:
    """A write's condition that the item's `ver` (`#ver`) is still `version`; adds `:ver`."""
    if not version:
        return "attribute_not_exists(#ver)"
    values[":ver"] = {"N": str(version)}
    return "#ver = :ver"


def transient_errors(client: Any) -> tuple[type[Exception], ...]:
    """What DynamoDB raises for a write worth trying again as it was: throttling, a conflicting
    transaction, a server error."""
    errors = client.exceptions
    return (
        errors.TransactionConflictException,
        errors.ProvisionedThroughputExceededException,
        errors.RequestLimitExceeded,
        errors.InternalServerError,
    )


def batch_get(
    client: Any, table: str, wanted: Iterable[tuple[str, str]], consistent: bool
) -> Iterator[dict[str, Any]]:
    """The items of these (pk, sk) keys that exist: BatchGetItem, 100 keys a call, unprocessed
    keys asked again."""
    pending = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in sorted(wanted)]
    while pending:
        batch, pending = pending[:100], pending[100:]
        request: dict[str, Any] = {table: {"Keys": batch, "ConsistentRead": consistent}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            yield from response["Responses"].get(table, [])
            request = response.get("UnprocessedKeys") or {}


class AggregateStore:
    def __init__(
        self,
        client: Any,
        table: str,
        visitor_ttl_seconds: int,
        tier: str = "",
    ):
        self._client = client
        self._table = table
        self.tier = tier  # whose visitor states these are ("": the single-tier aggregator's)
        # A visitor's state is also the record of which events were counted: it must outlive any
        # redelivery (24 h stream retention + the mapping's maximum record age).
        self._visitor_ttl = visitor_ttl_seconds
        # What each dimension item holds, as last read or written by this instance.
        self._known: dict[tuple[str, str], KnownValues] = {}

    def load_visitors(self, wanted: set[VisitorKey]) -> dict[VisitorKey, VisitorState]:
        found: dict[VisitorKey, VisitorState] = {}
        wanted_keys = [
            (keys.visitor_pk(site, vid, self.tier), keys.NO_SORT) for site, vid in wanted
        ]
        for item in batch_get(self._client, self._table, wanted_keys, consistent=True):
            _, site, vid = item["pk"]["S"].split(keys.SEP, 2)
            found[(site, vid)] = VisitorState.from_json(item["state"]["S"], int(item["v"]["N"]))
        return found

    def commit(self, plan: ChunkPlan, now: float | None = None) -> CommitOutcome:
        now = time.time() if now is None else now
        actions: list[tuple[str, Any, dict[str, Any]]] = []
        for vkey, (state, version) in plan.visitors.items():
            actions.append(("visitor", vkey, self._visitor(vkey, state, version, now)))
        admissions: dict[tuple[str, str], tuple[Admission, int, int]] = {}
        for (site, cell), attrs in plan.deltas.items():
            key = (keys.counter_pk(site, cell[0], cell[1]), keys.counter_sk(cell[2], plan.shard))
            admission = self._admit(key, attrs) if has_values(attrs) else None
            spent = 0
            if admission is not None:
                growth = _growth(admission)
                # what this write costs beyond the minimum, counted towards the shard's move
                spent = write_units(self._known_item(key).item_bytes + growth) - 1
                admissions[key] = (admission, growth, spent)
            action = self._counter(key, admission.attrs if admission else attrs, admission, spent)
            actions.append(("counter", key, action))
        try:
            self._client.transact_write_items(TransactItems=[a[2] for a in actions])
        except self._client.exceptions.TransactionCanceledException as exc:
            outcome = _cancelled(actions, exc.response.get("CancellationReasons", []))
            for key in outcome.stale_counters:
                self._known.pop(key, None)  # someone else admitted values: read it again
            return outcome
        except transient_errors(self._client) as exc:
            return CommitOutcome(False, retryable=True, reason=type(exc).__name__)
        for key, (admission, growth, spent) in admissions.items():
            self._learn(key, admission, growth, spent)
            if self._move_due(key):
                self.flush(key)
        return CommitOutcome(True)

    def _move_due(self, shard: tuple[str, str]) -> bool:
        """Whether a shard should be moved into its base now: once the units its writes spent
        beyond the minimum since the last move reach what the move would cost (rent until the
        rent paid equals the price), or once it holds FLUSH_AT_VALUES values."""
        known = self._known.get(shard)
        if known is None:
            return False
        if known.count >= FLUSH_AT_VALUES:
            return True
        if not known.spent:
            return False
        base = self._known_item(_base_of(shard))
        return known.spent >= write_units(base.item_bytes + known.item_bytes)

    def flush(self, shard: tuple[str, str]) -> bool:
        """Move a dimension shard's counters into the bucket's base item, in one transaction
        conditioned on the shard's version: exact, or not at all (a racing writer: next time)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": shard[0]}, "sk": {"S": shard[1]}},
            ConsistentRead=True,
        ).get("Item", {})
        move = _move_of(item)
        if not move.names:
            return False
        base = _base_of(shard)
        to_base = {name: count for name, count in move.counters.items() if count}
        admission = self._admit(base, to_base) if to_base else None
        version = item_version(item)
        names = {"#ver": VERSION, "#n": COUNT_ATTR, "#b": BYTES_ATTR, "#w": SPENT_ATTR}
        values: dict[str, Any] = {
            ":next": {"N": str(version + 1)},
            ":n": {"N": str(move.kept.count)},
            ":b": {"N": str(move.kept.size)},
            ":w": {"N": "0"},
        }
        removed = []
        for i, name in enumerate(sorted(move.names)):
            names[f"#r{i}"] = name
            removed.append(f"#r{i}")
        condition = version_condition(version, values)
        emptied = {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": shard[0]}, "sk": {"S": shard[1]}},
                "UpdateExpression": f"REMOVE {', '.join(removed)} "
                "SET #ver = :next, #n = :n, #b = :b, #w = :w",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        actions = [emptied]
        if admission is not None:
            actions.insert(0, self._counter(base, admission.attrs, admission))
        try:
            self._client.transact_write_items(TransactItems=actions)
        except (
            self._client.exceptions.TransactionCanceledException,
            *transient_errors(self._client),
        ) as exc:
            # Nothing moved and nothing is lost; a racing writer is routine, anything else
            # (a cancellation for another reason) would leave the shard growing: say so.
            reasons = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]
            logger("aggregator").warning(
                "shard move failed",
                extra={"pk": shard[0], "sk": shard[1], "reasons": reasons or [type(exc).__name__]},
            )
            self._known.pop(base, None)  # someone moved first: read both again when needed
            self._known.pop(shard, None)
            return False
        if admission is not None:
            self._learn(base, admission, _growth(admission))
        self._known[shard] = move.kept
        return True

    def _learn(
        self, key: tuple[str, str], admission: Admission, growth: int, spent: int = 0
    ) -> None:
        known = self._known.get(key)
        if known is None:  # dropped with the whole cache meanwhile: read again when needed
            return
        known.values.update(admission.admitted)
        known.count += len(admission.admitted)
        known.size += admission.added_bytes
        known.item_bytes += growth
        known.spent += spent

    def _known_item(self, key: tuple[str, str]) -> KnownValues:
        if len(self._known) > KNOWN_ITEMS_CACHED:
            self._known.clear()  # a warm instance must not grow without bound; re-read on demand
        if key not in self._known:
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                ConsistentRead=True,
            )
            self._known[key] = KnownValues.from_item(response.get("Item", {}))
        return self._known[key]

    def _admit(self, key: tuple[str, str], attrs: dict[str, int]) -> Admission:
        return admit(self._known_item(key), attrs)

    # ---- transaction items --------------------------------------------------------------------

    def _visitor(
        self, vkey: VisitorKey, state: VisitorState, version: int, now: float
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": keys.visitor_pk(*vkey, self.tier)},
                "sk": {"S": keys.NO_SORT},
                "state": {"S": state.to_json()},
                "v": {"N": str(version + 1)},
                "ttl": {"N": str(int(now) + self._visitor_ttl)},
            },
        }
        if version == 0:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "v = :v"
            put["ExpressionAttributeValues"] = {":v": {"N": str(version)}}
        return {"Put": put}

    def _counter(
        self,
        key: tuple[str, str],
        attrs: dict[str, int],
        admission: Admission | None,
        spent: int = 0,
    ) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds = []
        for i, (attr, delta) in enumerate(sorted(attrs.items())):
            names[f"#a{i}"] = keys.stored_attr(attr)
            values[f":a{i}"] = {"N": str(delta)}
            adds.append(f"#a{i} :a{i}")
        update: dict[str, Any] = {}
        if admission is not None and admission.admitted:
            # New values take places in the item: only if nobody took some since we looked.
            names["#n"], names["#b"] = COUNT_ATTR, BYTES_ATTR
            values[":n"] = {"N": str(len(admission.admitted))}
            values[":b"] = {"N": str(admission.added_bytes)}
            values[":seen"] = {"N": str(admission.expected_count)}
            adds += ["#n :n", "#b :b"]
            update["ConditionExpression"] = (
                "attribute_not_exists(#n) OR #n = :seen"  # (a shard emptied by a move holds 0)
                if admission.expected_count == 0
                else "#n = :seen"
            )
        if admission is not None:  # a dimension item: its version moves with every write
            names["#ver"], values[":one"] = VERSION, {"N": "1"}
            adds.append("#ver :one")
        if spent:
            names["#w"], values[":w"] = SPENT_ATTR, {"N": str(spent)}
            adds.append("#w :w")
        expression = "ADD " + ", ".join(adds)
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                "UpdateExpression": expression,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                **update,
            }
        }


@dataclass
class _Move:
    counters: dict[str, int] = field(default_factory=dict)  # full name → count, to the base
    names: set[str] = field(default_factory=set)  # the shard's attributes that held them
    kept: KnownValues = field(default_factory=KnownValues)  # values left for a later move


def _base_of(shard: tuple[str, str]) -> tuple[str, str]:
    return shard[0], keys.counter_sk(keys.parse_counter_sk(shard[1]), keys.BASE_SHARD)


def _growth(admission: Admission) -> int:
    """Bytes an item grows by when these values are admitted: their counters' names and numbers
    (a known value's new metric is not counted; the estimate is renewed whenever it is read)."""
    new = set(admission.admitted)
    return sum(
        len(keys.stored_attr(name).encode()) + COUNTER_OVERHEAD
        for name in admission.attrs
        if keys.parse_counter_attr(name)[1] in new
    )


def _move_of(item: dict[str, Any]) -> _Move:
    """A shard's counters to move, whole values in order, as many as one update carries."""
    by_value: dict[str, list[tuple[str, str, int]]] = {}
    for name, raw in item.items():
        metric, value = keys.parse_counter_attr(name)
        if value is not None and "N" in raw:
            full = keys.counter_attr(metric, value)
            by_value.setdefault(value, []).append((name, full, int(raw["N"])))
    move = _Move()
    for value, counters in sorted(by_value.items()):
        if len(move.names) + len(counters) <= FLUSH_MAX_ATTRIBUTES:
            for name, full, count in counters:
                move.names.add(name)
                move.counters[full] = move.counters.get(full, 0) + count
        elif value != keys.OTHER:
            move.kept.values.add(value)
            move.kept.count += 1
            move.kept.size += len(value.encode())
            move.kept.item_bytes += sum(len(n.encode()) + COUNTER_OVERHEAD for n, _, _ in counters)
    return move


def _cancelled(
    actions: list[tuple[str, Any, dict[str, Any]]], reasons: list[dict[str, Any]]
) -> CommitOutcome:
    outcome = CommitOutcome(False, reason="TransactionCanceled")
    for (kind, ref, _), reason in zip(actions, reasons, strict=False):
        code = reason.get("Code", "None")
        if code == "ConditionalCheckFailed" and kind == "visitor":
            outcome.stale_visitors.add(ref)
        elif code == "ConditionalCheckFailed" and kind == "counter":
            outcome.stale_counters.add(ref)
        elif code not in ("None", ""):
            outcome.retryable = True  # TransactionConflict, throttling: back off and retry
            outcome.reason = code
    if not outcome.stale_visitors and not outcome.stale_counters:
        outcome.retryable = True
    return outcome
