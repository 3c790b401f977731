"""Emulator fixes for moto's DynamoDB, applied by the local stack and the tests.

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

Three checks of an UpdateItem were quadratic: "one SET/ADD/REMOVE clause" and "no overlapping
paths" ran at every nested node of the expression, and the 400 KB limit summed the whole item at
every SET. A chunk's 300-counter update on a 50 KB base spent seconds in them, so the bench's
100,000-path flood ran for hours (measured: 5,000 paths took 207 s, now 99 s). They
now run once per expression and keep a running size; what they accept and refuse is moto's.

moto's server lists its own package directory (listdir, then isdir for each of ~150 entries) on
every request to find the backend a Host names: 13 % of the local stack's samples under 100
events a second. The list never changes while it runs, so it is read once.

DynamoDB applies each request to an item atomically, and a transaction in isolation; moto runs
each request's Python in a server thread with no lock, so two concurrent ADDs to one item could
lose one, and two conditional puts could both pass (measured: 8 writers x 60 ADDs kept 471 of 480
with frequent thread switches). The local event source mapping runs one aggregator instance per
stream shard at once, as Lambda does, so moto's DynamoDB operations are serialised.
"""

from __future__ import annotations

import copy
import functools
import itertools
import threading
from collections.abc import Callable
from typing import Any

import moto.backends as moto_backends
import moto.dynamodb.models as moto_models
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.parsing.ast_nodes import UpdateExpression  # type: ignore[attr-defined]
from moto.dynamodb.parsing.validators import ActionCountValidator, OverlappingPathsValidator

_applied = False
_lock = threading.Lock()
_data_lock = threading.RLock()  # one DynamoDB operation at a time (see the docstring)
_DATA_OPERATIONS = (
    "put_item",
    "get_item",
    "query",
    "scan",
    "update_item",
    "delete_item",
    "transact_write_items",
    "transact_get_items",
    "batch_get_item",
    "batch_write_item",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
)


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _data_lock:
            return method(self, *args, **kwargs)

    return run


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


def _at_root_only(check: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A validator's `traverse` that runs its check on the whole expression once.

    moto runs the action-count and overlapping-path checks at every nested UpdateExpression
    node, each walking the subtree below it: quadratic in the number of actions. The root's walk
    finds every clause and path a nested node's would, so checking the root alone raises
    whenever moto would (with several duplicates, it may name another one first).
    """

    def traverse(self: Any, node: Any) -> Any:
        if isinstance(node, UpdateExpression):
            check(self, node)
        return node

    return traverse


_updates = itertools.count(1)
_current = threading.local()  # the UpdateItem this thread is running
_ITEM_LIMIT = 405_000  # moto's: DynamoDB's measured limit is between 409 and 410 KB


def _sized_setitem(attrs: Any, key: str, value: Any) -> None:
    """moto's LimitedSizeDict.__setitem__, which summed the whole item's size on every SET.

    The sum is taken once per UpdateItem (at its first SET, so in-place set additions before it
    count) and kept up to date by each further SET of that update: the 400 KB check is moto's,
    without a full pass per counter. Any other change (REMOVE, a new update) starts a new sum.
    """
    cached = getattr(attrs, "_li_size", None)
    update = getattr(_current, "update", None)
    if cached is None or update is None or cached[0] != update:
        total = sum(_size(part) for part in (*attrs.keys(), *attrs.values()))
    else:
        total = cached[1]
    added = _size(key) + _size(value)
    if total + added > _ITEM_LIMIT:  # moto's check: the item as it is, plus the new pair
        raise ItemSizeTooLarge
    if key in attrs:
        total -= _size(key) + _size(attrs[key])
    dict.__setitem__(attrs, key, value)
    attrs._li_size = (update, total + added)


def _size(part: Any) -> int:
    return int(part.size()) if type(part) is DynamoType else len(str(part).encode())


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
        ActionCountValidator.traverse = _at_root_only(ActionCountValidator.verify_action_counts)
        OverlappingPathsValidator.traverse = _at_root_only(
            OverlappingPathsValidator.check_for_overlapping_paths
        )
        update_item = DynamoDBBackend.update_item

        def sized_update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
            _current.update = next(_updates)  # a new sum for each update, in its own thread
            try:
                return update_item(self, *args, **kwargs)
            finally:
                _current.update = None

        DynamoDBBackend.update_item = sized_update_item  # type: ignore[method-assign]
        modules = tuple(moto_backends.list_of_moto_modules())
        moto_backends.list_of_moto_modules = lambda: modules
        LimitedSizeDict.__setitem__ = _sized_setitem  # type: ignore[method-assign]
        for name in _DATA_OPERATIONS:
            setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
        _applied = True
