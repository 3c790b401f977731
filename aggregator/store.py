"""DynamoDB access for the aggregator: visitor states in, one transaction per chunk out.

A chunk's transaction holds, atomically:
  - each touched visitor state (Put, conditioned on the version we read). The state lists the
    events folded into it, so it is also the record that an event was counted (decision 0005);
  - the chunk's deltas of each day and month it touches, every dimension at once, in one new
    packed item (a *slot*, decision 0015);
  - its hour totals (Update ADD on one of the hour's shards);
  - the prop keys it admits into a day's or a month's key list, if any (decision 0017).

A write is billed by the size of the whole item, so a chunk writes only small, new items. Once an
instance has left `fold_at_slots` slots in a bucket, it folds the bucket's slots (everyone's) into each dimension's base (shard 0, packed too) in a transaction of their own that
also deletes them: a base that holds a month's 300 pages is rewritten once per fold, not once per
chunk. Readers sum a bucket's bases, slots and shards, so a fold changes no number. A bucket's
slots are spread over a few partition keys (`keys.slot_pks`, decision 0018), which a fold reads
each of.
"""

from __future__ import annotations

import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from aggregator import prop_keys
from aggregator.bounded import fold_into
from aggregator.fold import CellKey, VisitorState
from aggregator.prop_keys import KeyList
from core import keys
from core.aws import query_between
from core.keys import VERSION, Granularity
from core.observability import logger

VisitorKey = tuple[str, str]  # (site, visitor id)
Bucket = tuple[str, Granularity, str]  # (site, granularity, bucket label)
# Days and months are written as slots and folded (decision 0015); hours as ADDs to shards.
SLOT_GRANULARITIES = frozenset({Granularity.DAY, Granularity.MONTH})
FOLD_AT_SLOTS = 16  # an instance folds a bucket once it left this many slots there
# A fold is one transaction: a base Put per dimension and a Delete per slot, 100 actions at most.
FOLD_MAX_ACTIONS = 100
# Key lists a warm instance keeps (a site's day and month each): enough for every site it counts.
KEY_LISTS_KEPT = 1024


@dataclass
class ChunkPlan:
    event_ids: list[tuple[str, str]]  # (site, event id) folded in by this chunk
    visitors: dict[VisitorKey, tuple[VisitorState, int]]  # new state, version read
    deltas: dict[tuple[str, CellKey], dict[str, int]]  # (site, cell) → attribute deltas
    duplicates: int = 0  # events skipped because their visitor state already held them
    # The prop keys the chunk admits (decision 0017): bucket → (its key list as read, new keys)
    admitted: dict[Bucket, tuple[KeyList, frozenset[str]]] = field(default_factory=dict)

    @property
    def shard(self) -> int:
        """The counter shard this chunk writes to: any but the base, readers sum them all."""
        first = self.event_ids[0][1] if self.event_ids else ""
        return 1 + zlib.crc32(first.encode()) % keys.COUNTER_SHARDS


@dataclass
class CommitOutcome:
    committed: bool
    stale_visitors: set[VisitorKey] = field(default_factory=set)
    stale_key_lists: set[Bucket] = field(default_factory=set)  # another chunk admitted keys there
    retryable: bool = False
    reason: str = ""


# A visitor state is stored packed (zlib of its JSON, ~half the bytes): most then stay under the
# 1 KB a write unit covers (decision 0015). States written before hold the JSON as `state`.
PACKED_STATE = "sz"


def state_text(item: dict[str, Any]) -> str:
    """A stored visitor state's JSON, packed or as written before."""
    if PACKED_STATE in item:
        return zlib.decompress(bytes(item[PACKED_STATE]["B"])).decode()
    return str(item["state"]["S"])


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
        fold_at_slots: int = FOLD_AT_SLOTS,
        clock: Callable[[], float] = time.time,
        max_prop_keys: int | None = None,
    ):
        self._client = client
        self._clock = clock  # epoch seconds: the visitor states' TTL and the slots' ids
        self._table = table
        self.tier = tier  # whose visitor states these are ("": the single-tier aggregator's)
        # A visitor's state is also the record of which events were counted: it must outlive any
        # redelivery (24 h stream retention + the mapping's maximum record age).
        self._visitor_ttl = visitor_ttl_seconds
        self.fold_at_slots = fold_at_slots
        # The buckets this instance left slots in since it last folded them, and how many.
        self._pending: dict[Bucket, int] = {}
        self._slot_turn = 0  # the slot key (keys.slot_pk) this instance's next commit writes
        self.max_prop_keys = prop_keys.MAX_PROP_KEYS if max_prop_keys is None else max_prop_keys
        # Key lists as last read or written. Admission is final, so a list read earlier still
        # decides every key it holds or refuses; a key it would admit is written conditioned on
        # its version, and a stale list is read again (decision 0017).
        self._key_lists: dict[Bucket, KeyList] = {}
        # In AWS an instance is a process with one thread; the local stack runs a tier's
        # instances (one per stream shard) as threads that share this store, so what it keeps
        # across calls changes under a lock.
        self._lock = threading.Lock()

    def load_visitors(self, wanted: set[VisitorKey]) -> dict[VisitorKey, VisitorState]:
        found: dict[VisitorKey, VisitorState] = {}
        wanted_keys = [
            (keys.visitor_pk(site, vid, self.tier), keys.NO_SORT) for site, vid in wanted
        ]
        for item in batch_get(self._client, self._table, wanted_keys, consistent=True):
            _, site, vid = item["pk"]["S"].split(keys.SEP, 2)
            found[(site, vid)] = VisitorState.from_json(state_text(item), int(item["v"]["N"]))
        return found

    def key_list(self, bucket: Bucket) -> KeyList:
        """A day's or a month's admitted prop keys, as this instance last saw them."""
        if bucket not in self._key_lists:
            self.load_key_lists({bucket})
        return self._key_lists[bucket]

    def know_key_lists(self, buckets: set[Bucket]) -> None:
        """Read, in one go, the key lists of these buckets that this instance does not know."""
        unknown = buckets - set(self._key_lists)
        if unknown:
            self.load_key_lists(unknown)

    def load_key_lists(self, buckets: set[Bucket]) -> None:
        """Read these buckets' key lists (consistently), replacing what this instance knew."""
        found = read_key_lists(self._client, self._table, buckets, self.max_prop_keys)
        for bucket, known in found.items():
            self._keep_key_list(bucket, known)

    def _keep_key_list(self, bucket: Bucket, known: KeyList) -> None:
        with self._lock:
            self._key_lists.pop(bucket, None)
            self._key_lists[bucket] = known
            while len(self._key_lists) > KEY_LISTS_KEPT:  # the least recently read or written
                del self._key_lists[next(iter(self._key_lists))]

    def commit(self, plan: ChunkPlan, now: float | None = None) -> CommitOutcome:
        now = self._clock() if now is None else now
        actions: list[tuple[str, Any, dict[str, Any]]] = []
        for vkey, (state, version) in plan.visitors.items():
            actions.append(("visitor", vkey, self._visitor(vkey, state, version, now)))
        for bucket, (known, new) in sorted(plan.admitted.items()):
            actions.append(
                ("keys", bucket, {"Update": key_list_update(self._table, bucket, known, new)})
            )
        slots: dict[Bucket, dict[str, dict[str, int]]] = {}
        for (site, (gran, dimension, label)), attrs in plan.deltas.items():
            if gran in SLOT_GRANULARITIES:
                slots.setdefault((site, gran, label), {})[dimension] = attrs
                continue
            key = (keys.counter_pk(site, gran, dimension), keys.counter_sk(label, plan.shard))
            actions.append(("counter", key, self._counter(key, attrs)))
        # Time first, so a bucket's slots list oldest first; random after, so no two collide.
        slot_id = f"{int(now * 1000):013d}{secrets.token_hex(4)}"
        # Each commit's slots go to the next of the slot keys in turn (decision 0018): a busy
        # site's instances are warm for thousands of chunks, so each key takes its share.
        with self._lock:
            partition, self._slot_turn = self._slot_turn, self._slot_turn + 1
        for (site, gran, label), cells in sorted(slots.items()):
            key = (keys.slot_pk(site, gran, partition), keys.slot_sk(label, slot_id))
            actions.append(("slot", key, self._slot(key, cells)))
        try:
            self._client.transact_write_items(TransactItems=[a[2] for a in actions])
        except self._client.exceptions.TransactionCanceledException as exc:
            return _cancelled(actions, exc.response.get("CancellationReasons", []))
        except transient_errors(self._client) as exc:
            return CommitOutcome(False, retryable=True, reason=type(exc).__name__)
        for bucket, (known, new) in plan.admitted.items():
            self._keep_key_list(
                bucket, replace(known, keys=known.keys | new, version=known.version + 1)
            )
        with self._lock:
            for bucket in slots:
                self._pending[bucket] = self._pending.get(bucket, 0) + 1
        for bucket in self.due():
            try:
                self.fold(*bucket)
            except transient_errors(self._client) as exc:  # counted all the same; folded later
                logger("aggregator").warning(
                    "fold failed",
                    extra={"site": bucket[0], "bucket": bucket[2], "reasons": [type(exc).__name__]},
                )
                self._postpone(bucket)
        return CommitOutcome(True)

    def due(self) -> list[Bucket]:
        """The buckets this instance should fold now: it left `fold_at_slots` slots there. A
        count, not an age, so a quiet site's slots wait (readers sum them) and a busy site's
        folds come often but each carries many chunks."""
        with self._lock:
            return sorted(b for b, n in self._pending.items() if n >= self.fold_at_slots)

    def _postpone(self, bucket: Bucket) -> None:
        """Fold the bucket at this instance's next commit."""
        with self._lock:
            self._pending[bucket] = self.fold_at_slots

    def fold(self, site: str, gran: Granularity, bucket: str) -> bool:
        """Add the bucket's slots (every writer's, oldest first) into its dimensions' bases and
        delete them, in one transaction: each base Put on the condition that its version is the
        one read, each slot Delete on the condition that it is still there. Two folds racing, or
        a rebuild, cancel one of them; nothing is counted twice or lost. Slots of older buckets
        of the same granularity that nobody folded (their writer went cold) are folded too."""
        with self._lock:
            self._pending.pop((site, gran, bucket), None)
        # One Query per slot key (decision 0018). Key 0 is the one every slot had before, so the
        # slots written before the upgrade are folded like the rest. Merged in sk order (time
        # first), so a fold that cannot take them all takes the oldest, whatever their key.
        low, high = keys.slot_range("", bucket)
        found = [
            item
            for pk in keys.slot_pks(site, gran)
            for item in query_between(self._client, self._table, pk, low, high, consistent=True)
        ]
        by_bucket: dict[str, list[dict[str, Any]]] = {}
        for item in sorted(found, key=lambda item: str(item["sk"]["S"])):
            by_bucket.setdefault(keys.parse_counter_sk(item["sk"]["S"]), []).append(item)
        folded = True
        for label, slots in sorted(by_bucket.items()):
            folded = self._fold_slots(site, gran, label, slots) and folded
        return folded

    def _fold_slots(
        self, site: str, gran: Granularity, bucket: str, slots: list[dict[str, Any]]
    ) -> bool:
        taken: list[dict[str, Any]] = []
        cells: dict[str, dict[str, int]] = {}
        for slot in slots:
            more = keys.packed_cells(slot)
            if taken and len(set(cells) | set(more)) + len(taken) + 1 > FOLD_MAX_ACTIONS:
                self._postpone((site, gran, bucket))  # the rest: next commit
                break
            taken.append(slot)
            for dimension, counters in more.items():
                into = cells.setdefault(dimension, {})
                for name, count in counters.items():
                    into[name] = into.get(name, 0) + count
        base_sk = keys.counter_sk(bucket, keys.BASE_SHARD)
        wanted = [(keys.counter_pk(site, gran, dimension), base_sk) for dimension in cells]
        bases = {
            item["pk"]["S"]: item
            for item in batch_get(self._client, self._table, wanted, consistent=True)
        }
        actions = []
        for dimension, deltas in sorted(cells.items()):
            pk = keys.counter_pk(site, gran, dimension)
            base = bases.get(pk, {})
            counters = {n: c for n, c in fold_into(keys.item_counters(base), deltas).items() if c}
            actions.append(self._base((pk, base_sk), dimension, counters, item_version(base)))
        for slot in taken:
            actions.append(
                {
                    "Delete": {
                        "TableName": self._table,
                        "Key": {"pk": slot["pk"], "sk": slot["sk"]},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                }
            )
        try:
            self._client.transact_write_items(TransactItems=actions)
        except (
            self._client.exceptions.TransactionCanceledException,
            *transient_errors(self._client),
        ) as exc:
            # Nothing folded and nothing lost: the slots still count where they are. A racing
            # fold is routine; anything else would leave slots piling up, so say why.
            reasons = [r.get("Code", "") for r in exc.response.get("CancellationReasons", [])]
            logger("aggregator").warning(
                "fold failed",
                extra={"site": site, "bucket": bucket, "reasons": reasons or [type(exc).__name__]},
            )
            if "ConditionalCheckFailed" not in reasons:  # not a racing fold: ours, next commit
                self._postpone((site, gran, bucket))
            return False
        return True

    # ---- transaction items --------------------------------------------------------------------

    def _visitor(
        self, vkey: VisitorKey, state: VisitorState, version: int, now: float
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": keys.visitor_pk(*vkey, self.tier)},
                "sk": {"S": keys.NO_SORT},
                PACKED_STATE: {"B": zlib.compress(state.to_json().encode(), 6)},
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

    def _slot(self, key: tuple[str, str], cells: dict[str, dict[str, int]]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table,
                "Item": {
                    "pk": {"S": key[0]},
                    "sk": {"S": key[1]},
                    keys.PACKED: {"B": keys.pack(cells)},
                },
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _base(
        self, key: tuple[str, str], dimension: str, counters: dict[str, int], version: int
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        condition = version_condition(version, values)
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {
                "pk": {"S": key[0]},
                "sk": {"S": key[1]},
                keys.PACKED: {"B": keys.pack({dimension: counters})},
                VERSION: {"N": str(version + 1)},
            },
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#ver": VERSION},
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _counter(self, key: tuple[str, str], attrs: dict[str, int]) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        adds = []
        for i, (attr, delta) in enumerate(sorted(attrs.items())):
            names[f"#a{i}"] = keys.stored_attr(attr)
            values[f":a{i}"] = {"N": str(delta)}
            adds.append(f"#a{i} :a{i}")
        return {
            "Update": {
                "TableName": self._table,
                "Key": {"pk": {"S": key[0]}, "sk": {"S": key[1]}},
                "UpdateExpression": "ADD " + ", ".join(adds),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }


def read_key_lists(
    client: Any, table: str, buckets: set[Bucket], limit: int
) -> dict[Bucket, KeyList]:
    """These buckets' prop key lists, read consistently (an empty list where none is stored)."""
    wanted = {(keys.prop_key_list_pk(s, g), label): (s, g, label) for s, g, label in buckets}
    found = dict.fromkeys(buckets, KeyList(limit=limit))
    for item in batch_get(client, table, wanted, consistent=True):
        found[wanted[(item["pk"]["S"], item["sk"]["S"])]] = KeyList(
            frozenset(item.get(keys.KEY_SET, {}).get("SS", [])), item_version(item), limit
        )
    return found


def key_list_update(
    table: str, bucket: Bucket, known: KeyList, new: frozenset[str]
) -> dict[str, Any]:
    """An UpdateItem that adds keys to a bucket's list if nobody changed it since it was read:
    the list then holds exactly the keys counted under their own names (decision 0017)."""
    site, gran, label = bucket
    values: dict[str, Any] = {":new": {"SS": sorted(new)}, ":one": {"N": "1"}}
    return {
        "TableName": table,
        "Key": {"pk": {"S": keys.prop_key_list_pk(site, gran)}, "sk": {"S": label}},
        "UpdateExpression": "ADD #ks :new, #ver :one",
        "ConditionExpression": version_condition(known.version, values),
        "ExpressionAttributeNames": {"#ks": keys.KEY_SET, "#ver": VERSION},
        "ExpressionAttributeValues": values,
    }


def _cancelled(
    actions: list[tuple[str, Any, dict[str, Any]]], reasons: list[dict[str, Any]]
) -> CommitOutcome:
    outcome = CommitOutcome(False, reason="TransactionCanceled")
    for (kind, ref, _), reason in zip(actions, reasons, strict=False):
        code = reason.get("Code", "None")
        if code == "ConditionalCheckFailed" and kind == "visitor":
            outcome.stale_visitors.add(ref)
        elif code == "ConditionalCheckFailed" and kind == "keys":
            outcome.stale_key_lists.add(ref)
        elif code not in ("None", ""):
            outcome.retryable = True  # TransactionConflict, throttling: back off and retry
            outcome.reason = code
    if not outcome.stale_visitors and not outcome.stale_key_lists:
        outcome.retryable = True
    return outcome
