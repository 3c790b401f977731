"""Bounded prop keys: a site's day or month counts at most MAX_PROP_KEYS keys of its own
(decision 0017).

Each prop key is a counter dimension (`prop:<key>`): a base item, and so a partition, for every
day and month it is sent in. Values are bounded per dimension (bounded.py), keys were not, so a
page sending random keys made items without end. Now a key is *admitted* into a bucket's key list
(one item per site, granularity and bucket, `keys.prop_key_list_pk`) by the first chunk that
counts it there, while the list holds fewer than MAX_PROP_KEYS keys and MAX_VALUE_BYTES bytes of
their text. The list is written in that chunk's transaction, on the condition that its version is
the one read, so it records exactly the keys that were counted under their own names. Any other
key is *refused*: its counts go to the dimension `prop:(other)` (under their values), and
`prop_keys` counts its events under "(other)", so every total is kept.

Admission is final, as for values: an admitted key stays admitted, and a list that refuses a key
(full, or its bytes would not fit) refuses it for ever, since lists only grow. So every later
event, correction or redelivery of a key in a bucket lands where the first one did, and an
instance may trust a list it read earlier for every key it holds or refuses. Only a key new to
a list that has room is a write: a chunk whose keys are all decided writes nothing more.

A key sent literally as "(other)" takes no place in a list: it counts under `prop:(other)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aggregator.bounded import MAX_VALUE_BYTES
from aggregator.fold import DIMENSION_GRANULARITIES, Deltas, empty_deltas
from core.keys import OTHER, Granularity, counter_attr, parse_counter_attr
from core.vocabulary import PROP_KEYS, PROP_PREFIX

# A day's and a month's keys of a site. A real site sends a handful (plan, author, variant…);
# 300 is as many as a dimension keeps values (bounded.MAX_VALUES), so the `prop_keys` item that
# lists them for the dashboard keeps every admitted key, and a day or a month creates at most 300
# prop items whatever a page sends.
MAX_PROP_KEYS = 300

Bucket = tuple[str, Granularity, str]  # (site, day or month, bucket label)
OTHER_DIMENSION = PROP_PREFIX + OTHER


@dataclass(frozen=True)
class KeyList:
    """A bucket's admitted prop keys as read (version 0: no list yet), and how many it may hold."""

    keys: frozenset[str] = frozenset()
    version: int = 0
    limit: int = MAX_PROP_KEYS

    @property
    def size(self) -> int:
        return sum(len(key.encode()) for key in self.keys)


def admits(known: KeyList, chosen: set[str], key: str) -> bool:
    """Whether `key` counts under its own name, given the list as read and the keys this chunk
    admits on top of it (`chosen`, updated when the key is new and fits)."""
    if key == OTHER or key in known.keys or key in chosen:
        return True
    size = known.size + sum(len(k.encode()) for k in chosen) + len(key.encode())
    if len(known.keys) + len(chosen) < known.limit and size <= MAX_VALUE_BYTES:
        chosen.add(key)
        return True
    return False


def _key_of(dimension: str) -> str | None:
    return dimension.removeprefix(PROP_PREFIX) if dimension.startswith(PROP_PREFIX) else None


def keys_in(deltas: Deltas) -> dict[tuple[Granularity, str], set[str]]:
    """(granularity, bucket) → the prop keys the deltas count there, days and months only."""
    found: dict[tuple[Granularity, str], set[str]] = {}
    for (gran, dimension, label), attrs in deltas.items():
        if gran not in DIMENSION_GRANULARITIES:
            continue
        key = _key_of(dimension)
        if key is not None:
            found.setdefault((gran, label), set()).add(key)
        elif dimension == PROP_KEYS:
            for name in attrs:
                value = parse_counter_attr(name)[1]
                if value is not None:
                    found.setdefault((gran, label), set()).add(value)
    return found


def route(
    site: str,
    deltas: Deltas,
    key_list: Callable[[Bucket], KeyList],
    chosen: Mapping[Bucket, set[str]],
) -> tuple[Deltas, dict[Bucket, set[str]]]:
    """The deltas with refused keys' counts moved to `prop:(other)` and `prop_keys|(other)`,
    and the keys they admit beyond the list and `chosen` (the chunk's admissions so far), by
    bucket. Keys new to a bucket are decided in name order, so a retry decides alike."""
    added: dict[Bucket, set[str]] = {}
    refused: set[tuple[Granularity, str, str]] = set()
    for (gran, label), found in sorted(keys_in(deltas).items()):
        bucket = (site, gran, label)
        before = chosen.get(bucket, set())
        mine = set(before)
        for key in sorted(found):
            if not admits(key_list(bucket), mine, key):
                refused.add((gran, label, key))
        if mine - before:
            added[bucket] = mine - before
    if not refused:
        return deltas, added
    out = empty_deltas()
    for (gran, dimension, label), attrs in deltas.items():
        prop = _key_of(dimension)
        if prop is not None and (gran, label, prop) in refused:
            dimension = OTHER_DIMENSION
        cell = out[(gran, dimension, label)]
        for name, delta in attrs.items():
            if dimension == PROP_KEYS:
                metric, value = parse_counter_attr(name)
                if value is not None and (gran, label, value) in refused:
                    name = counter_attr(metric, OTHER)
            cell[name] += delta
    return out, added
