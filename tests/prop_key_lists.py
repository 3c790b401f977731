"""The prop key lists the aggregator recorded (decision 0017), as the oracle takes them."""

from __future__ import annotations

from typing import Any

from core.keys import KEY_SET, PROP_KEY_LIST, parse_counter_pk
from local import tables
from tests.oracle import KeyLists


def stored_key_lists(client: Any, names: dict[str, str]) -> KeyLists:
    """(site, granularity, bucket) → the keys its list admitted."""
    found = {}
    for item in tables.scan_all(client, names["aggregates"]):
        if item["pk"]["S"].startswith("C#"):
            site, gran, dimension = parse_counter_pk(item["pk"]["S"])
            if dimension == PROP_KEY_LIST:
                found[(site, gran, item["sk"]["S"])] = frozenset(item[KEY_SET]["SS"])
    return found
