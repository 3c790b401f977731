"""Bounded counter items: a flood of distinct values folds into "(other)", totals preserved.

A dimension item (say, pages on 2026-11-26) admits at most MAX_VALUES distinct values and
MAX_VALUE_BYTES bytes of value text; every later value is counted under OTHER. Admission is
first come: once an item is full it stays full, and a value that is absent stays absent, so a
later correction (a -1 when a late event moves a session) lands where the +1 did. The item keeps
its count of values `n` and their bytes `b`; admitting values is conditioned on `n` being what we
last read, so two writers cannot both take the last places (decision record 0005).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.keys import BYTES_ATTR, COUNT_ATTR, OTHER, parse_counter_attr

MAX_VALUES = 300
MAX_VALUE_BYTES = 16 * 1024


@dataclass
class KnownValues:
    """What an item held when we last read it (or wrote it)."""

    values: set[str] = field(default_factory=set)
    count: int = 0
    size: int = 0  # bytes of the values' text, as the item's `b` says

    @classmethod
    def from_item(cls, item: dict[str, object]) -> KnownValues:
        values = set()
        for name in item:  # counters and a minute's sets of visitors by source (`a|<source>`)
            _, value = parse_counter_attr(name)
            if value is not None and value != OTHER:
                values.add(value)
        count = int(_number(item.get(COUNT_ATTR)))
        size = int(_number(item.get(BYTES_ATTR)))
        return cls(values, count, size)


def _number(raw: object) -> float:
    if isinstance(raw, dict) and "N" in raw:
        return float(raw["N"])
    return 0.0


@dataclass(frozen=True)
class Admission:
    attrs: dict[str, int]  # the deltas, with values that did not fit renamed to OTHER
    admitted: tuple[str, ...]  # values new to the item
    expected_count: int  # the item's `n` the admission is conditioned on

    @property
    def added_bytes(self) -> int:
        return sum(len(v.encode()) for v in self.admitted)


def admit(known: KnownValues, attrs: dict[str, int]) -> Admission:
    """Route each `metric|value` delta to its value if the item has it or has room, else OTHER."""
    admitted: list[str] = []
    count, size = known.count, known.size
    out: dict[str, int] = {}
    for name, delta in sorted(attrs.items()):
        metric, value = parse_counter_attr(name)
        if (
            value is not None
            and value != OTHER
            and value not in known.values
            and value not in admitted
        ):
            weight = len(value.encode())
            if count + 1 <= MAX_VALUES and size + weight <= MAX_VALUE_BYTES:
                admitted.append(value)
                count += 1
                size += weight
            else:
                name = f"{metric}|{OTHER}"
        out[name] = out.get(name, 0) + delta
    return Admission(out, tuple(admitted), known.count)


# Counters that say how much a value matters, to rank values new to a base (fold_into).
WEIGHTS = ("pageviews", "visits", "events", "visitors")


def fold_into(base: dict[str, int], deltas: dict[str, int]) -> dict[str, int]:
    """A base's counters with a fold's deltas added (decision 0015). Values the base holds keep
    their counters; new values are admitted, the ones with most weight first, while the base
    stays within MAX_VALUES values and MAX_VALUE_BYTES bytes of their text; the rest count
    under OTHER. Admission is final, as in `admit`: a value once admitted or refused stays so,
    so a later correction lands where the count it corrects did."""
    held: set[str] = set()
    for name in base:
        _, value = parse_counter_attr(name)
        if value is not None and value != OTHER:
            held.add(value)
    weight: dict[str, int] = {}
    for name, delta in deltas.items():
        metric, value = parse_counter_attr(name)
        if value is not None and value != OTHER and value not in held:
            weight[value] = weight.get(value, 0) + (abs(delta) if metric in WEIGHTS else 0)
    count, size = len(held), sum(len(v.encode()) for v in held)
    admitted = set()
    for value in sorted(weight, key=lambda v: (-weight[v], v)):
        if count + 1 <= MAX_VALUES and size + len(value.encode()) <= MAX_VALUE_BYTES:
            admitted.add(value)
            count += 1
            size += len(value.encode())
    out = dict(base)
    for name, delta in deltas.items():
        metric, value = parse_counter_attr(name)
        if value is not None and value not in held and value not in admitted:
            name = f"{metric}|{OTHER}"
        out[name] = out.get(name, 0) + delta
    return out
