"""Two emulator fixes for moto's DynamoDB, applied by the local stack and the tests.

moto 5.2 backs up a transaction by deep-copying the *whole table once per action* before it runs
(measured: a 50-action transaction on a 10,000-item table takes ~10 s). Our aggregator commits one
transaction per chunk, so the local stack would slow to a crawl as dedup markers pile up.

The fix keeps moto's semantics (all actions apply, or none) but backs up only the items the
transaction touches, and restores exactly those on cancellation. It changes how moto rolls back,
not what DynamoDB answers: conditions, cancellation reasons and item values are moto's own.

moto also keeps every model instance it ever created (`instances_tracked`, for its own data
browser), DynamoDB items included: each update's copy of the old item and each transaction's
backup live as long as the server. A 100,000-event flood grew the emulator past 6 GB and its
garbage collection stalled requests past the client's timeout. Items are no longer tracked.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import moto.dynamodb.models as moto_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

_applied = False
_lock = threading.Lock()


def _untracked_item(cls: type[Any], *_args: Any, **_kwargs: Any) -> Any:
    """Item.__new__ without moto's register (`BaseModel.__new__` appends every instance to a
    list that `mock_aws` resets to a new one, so replacing the list would not last)."""
    return object.__new__(cls)


class _ShallowTables:
    """Stands in for the `copy` module in moto's models: everything but a Table is deep-copied."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        if isinstance(value, Table):
            return value
        return copy.deepcopy(value, memo)


def _key_values(table: Any, op_type: str, op: dict[str, Any]) -> tuple[Any, Any]:
    attrs = op["Item"] if op_type == "Put" else op["Key"]
    hash_value = DynamoType(attrs[table.hash_key_attr])
    range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _restore(table: Any, hash_value: Any, range_value: Any, old: Any) -> None:
    if range_value is not None:
        bucket = table.items[hash_value]
        if old is None:
            bucket.pop(range_value, None)
            if not bucket:
                table.items.pop(hash_value, None)
        else:
            bucket[range_value] = old
    elif old is None:
        table.items.pop(hash_value, None)
    else:
        table.items[hash_value] = old


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        original = DynamoDBBackend.transact_write_items

        def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
            backups = []
            for entry in transact_items[:100]:
                if len(entry) != 1:
                    continue
                op_type, op = next(iter(entry.items()))
                table = self.tables.get(op.get("TableName", ""))
                if table is None or op_type not in {"Put", "Update", "Delete"}:
                    continue
                try:
                    hash_value, range_value = _key_values(table, op_type, op)
                except KeyError:
                    continue
                old = table.get_item(hash_value, range_value)
                backups.append((table, hash_value, range_value, copy.deepcopy(old)))
            try:
                original(self, transact_items)
            except Exception:
                for table, hash_value, range_value, old in reversed(backups):
                    _restore(table, hash_value, range_value, old)
                raise

        # Only a Table is ever passed by value here; other deep copies (old images) stay real.
        # Patched on moto's own module (not via a wrapper's globals: the capacity meter may have
        # wrapped the method first).
        setattr(moto_models, "copy", _ShallowTables)  # noqa: B010 - moto has no typed hook for this
        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
        Item.__new__ = _untracked_item  # type: ignore[method-assign]
        _applied = True
