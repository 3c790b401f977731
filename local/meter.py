"""Counts DynamoDB capacity units the way DynamoDB bills them, inside the local moto server.

moto's own ConsumedCapacity is a constant, so the meter wraps moto's backend and sizes the real
items: a write costs ceil(max(old, new) size / 1 KB) units, doubled inside a transaction, plus one
write per global secondary index the item appears in; a read costs ceil(size / 4 KB) units, half
that when eventually consistent (a Query rounds the sum of the items it returns). It is used by
`make bench` to price a million pageviews from what the local stack actually did. Given `kind_of`
(a function of an item's partition and sort key, e.g. `core.keys.item_kind`), it also breaks
write and read units down by kind of item, with each write's billed item size (bench/writes.py).
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.responses import DynamoHandler

_local = threading.local()


@dataclass
class Usage:
    write_units: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    read_units: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    items_read: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # With a `kind_of`: (table, kind of item) → write units, and the billed size of each write
    kind_units: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    kind_sizes: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    # ... and (table, kind of item) → read units, of the items asked for (found or not)
    kind_read_units: dict[tuple[str, str], float] = field(
        default_factory=lambda: defaultdict(float)
    )

    @property
    def total_write_units(self) -> float:
        return sum(self.write_units.values())

    @property
    def total_read_units(self) -> float:
        return sum(self.read_units.values())


class CapacityMeter:
    def __init__(self, kind_of: Callable[[str, str], str] | None = None) -> None:
        self.usage = Usage()
        self._kind_of = kind_of
        self._lock = threading.Lock()
        self._installed: list[tuple[Any, str, Any]] = []

    def reset(self) -> Usage:
        with self._lock:
            usage, self.usage = self.usage, Usage()
        return usage

    def _write(self, table: str, units: float) -> None:
        with self._lock:
            self.usage.write_units[table] += units

    def _write_kind(
        self, table: str, key: tuple[str, str], units: float, size: int, deleted: bool
    ) -> None:
        if self._kind_of is None:
            return
        kind = (table, self._kind_of(*key) + (" (deleted)" if deleted else ""))
        with self._lock:
            self.usage.kind_units[kind] += units
            self.usage.kind_sizes[kind].append(size)

    def _read(self, table: str, units: float, items: int, pk: str = "", sk: str = "") -> None:
        with self._lock:
            self.usage.read_units[table] += units
            self.usage.items_read[table] += items
            if self._kind_of is not None:
                self.usage.kind_read_units[(table, self._kind_of(pk, sk))] += units

    # ---- installation -------------------------------------------------------------------------

    def install(self) -> None:
        self._wrap(DynamoDBBackend, "put_item", self._wrap_write)
        self._wrap(DynamoDBBackend, "update_item", self._wrap_write)
        self._wrap(DynamoDBBackend, "delete_item", self._wrap_write)
        self._wrap(DynamoDBBackend, "transact_write_items", self._wrap_transaction)
        self._wrap(DynamoDBBackend, "get_item", self._wrap_get)
        self._wrap(DynamoDBBackend, "query", self._wrap_query)
        self._wrap(DynamoHandler, "batch_get_item", self._wrap_batch_get)
        # moto's UpdateItem (always) and PutItem with ReturnValues=ALL_OLD read the item to answer
        # with it: DynamoDB bills no read for that, so those gets are not counted.
        self._wrap(DynamoHandler, "update_item", _unbilled_gets)
        self._wrap(DynamoHandler, "put_item", _unbilled_gets)

    def uninstall(self) -> None:
        for owner, name, original in reversed(self._installed):
            setattr(owner, name, original)
        self._installed.clear()

    def _wrap(self, owner: Any, name: str, factory: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        self._installed.append((owner, name, original))
        setattr(owner, name, factory(original))

    # ---- wrappers -----------------------------------------------------------------------------

    def _wrap_write(self, original: Any) -> Any:
        meter = self

        def write(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            table = backend.get_table(table_name)
            key_attrs = args[0] if args else kwargs.get("item_attrs") or kwargs.get("key")
            before = _existing_size(backend, table, key_attrs)
            result = original(backend, table_name, *args, **kwargs)
            after = (
                result.size()
                if hasattr(result, "size") and original.__name__ != "delete_item"
                else 0
            )
            units = math.ceil(max(before, after, 1) / 1024)
            indexed = sum(1 for index in table.global_indexes if _in_index(result, index))
            factor = 2 if getattr(_local, "in_transaction", False) else 1
            meter._write(table_name, factor * units + units * indexed)
            if meter._kind_of is not None:
                deleted = original.__name__ == "delete_item"
                key = _key_text(table, key_attrs)
                meter._write_kind(table_name, key, factor * units, max(before, after), deleted)
            return result

        return write

    def _wrap_transaction(self, original: Any) -> Any:
        def transaction(backend: Any, *args: Any, **kwargs: Any) -> Any:
            with _flag("in_transaction"):
                return original(backend, *args, **kwargs)

        return transaction

    def _wrap_get(self, original: Any) -> Any:
        meter = self

        def get(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            item = original(backend, table_name, *args, **kwargs)
            if not getattr(_local, "in_transaction", False) and not getattr(
                _local, "internal", False
            ):
                consistent = getattr(_local, "consistent", False)
                size = item.size() if item is not None else 0
                units = math.ceil(max(size, 1) / 4096) * (1.0 if consistent else 0.5)
                pk, sk = _key_text(backend.get_table(table_name), args[0] if args else None)
                meter._read(table_name, units, 1 if item is not None else 0, pk, sk)
            return item

        return get

    def _wrap_query(self, original: Any) -> Any:
        meter = self

        def query(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            result = original(backend, table_name, *args, **kwargs)
            items = result[0]
            consistent = bool(kwargs.get("consistent_read"))
            size = sum(item.size() for item in items)
            units = math.ceil(max(size, 1) / 4096) * (1.0 if consistent else 0.5)
            hash_key = args[0] if args else kwargs.get("hash_key_dict")
            pk = str(hash_key.get("S", "")) if isinstance(hash_key, dict) else ""
            meter._read(table_name, units, len(items), pk)
            return result

        return query

    def _wrap_batch_get(self, original: Any) -> Any:
        def batch_get(handler: Any) -> Any:
            consistent = any(
                request.get("ConsistentRead")
                for request in handler.body.get("RequestItems", {}).values()
            )
            with _flag("consistent", consistent):
                return original(handler)

        return batch_get


def _unbilled_gets(original: Any) -> Any:
    def handle(handler: Any) -> Any:
        with _flag("internal"):
            return original(handler)

    return handle


@contextmanager
def _flag(name: str, value: bool = True) -> Iterator[None]:
    previous = getattr(_local, name, False)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, previous)


def _existing_size(backend: Any, table: Any, attrs: dict[str, Any] | None) -> int:
    if not attrs:
        return 0
    try:
        key = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr:
            key[table.range_key_attr] = attrs[table.range_key_attr]
    except KeyError:
        return 0
    with _flag("internal"):
        item = backend.get_item(table.name, key)
    return int(item.size()) if item is not None else 0


def _key_text(table: Any, attrs: dict[str, Any] | None) -> tuple[str, str]:
    """(pk, sk) of a written item as text ("" when absent)."""

    def text(name: str | None) -> str:
        value = (attrs or {}).get(name or "", "")
        return str(value.get("S", "")) if isinstance(value, dict) else str(value)

    return text(table.hash_key_attr), text(table.range_key_attr)


def _in_index(item: Any, index: Any) -> bool:
    if item is None or not hasattr(item, "attrs"):
        return False
    return all(schema["AttributeName"] in item.attrs for schema in index.schema)
