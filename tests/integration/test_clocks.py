"""Every stored time comes from the clock a store is given, never from the wall clock behind a
test's back: the visitor states' and minute parts' TTLs, the slots' ids, a site's, key's and
shared link's creation times. A clock years away from today shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest

from core.keys import slot_partition
from tests.conftest import _clear_composition_roots
from tests.integration.test_folds import SITE, count, items, pageviews

# Far from any day the suite runs on, so a wall-clock read cannot pass for it.
FIXED = datetime(2031, 2, 28, 23, 59, 58, tzinfo=UTC).timestamp()


def fixed() -> float:
    return FIXED


def test_aggregator_stores_stamp_ttls_and_slots_from_their_clock(
    aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator import handler
    from aggregator.store import AggregateStore
    from core.schema import load_schema

    # Given the composition root building its stores on a fixed clock
    monkeypatch.setattr(handler, "AggregateStore", partial(AggregateStore, clock=fixed))
    monkeypatch.setattr(handler, "new_minute_store", partial(handler.new_minute_store, fixed))
    _clear_composition_roots()
    retention = load_schema().retention
    # When pageviews are counted
    count(pageviews(0, 2))
    # Then every TTL and slot id derives from that clock
    stored = items(aws_env)
    visitor_ttls = {int(i["ttl"]["N"]) for i in stored if i["pk"]["S"].startswith("V")}
    minute_ttls = {int(i["ttl"]["N"]) for i in stored if i["pk"]["S"].startswith(f"C#{SITE}#m#")}
    slot_ids = [
        i["sk"]["S"].rsplit("#", 1)[-1] for i in stored if slot_partition(i["pk"]["S"]) is not None
    ]
    assert visitor_ttls == {int(FIXED) + retention.visitor_state_ttl_seconds}
    assert minute_ttls == {int(FIXED) + retention.minute_bucket_ttl_seconds}
    assert slot_ids and all(f"{int(FIXED * 1000):013d}" in s for s in slot_ids)


def test_sites_keys_and_links_are_created_at_the_store_clock(aws_env: dict[str, str]) -> None:
    from core.aws import make_client
    from core.sites import SiteStore

    sites = SiteStore(make_client("dynamodb"), aws_env["meta"], cache_seconds=0, clock=fixed)
    site = sites.add("clock.example")
    sites.create_key(site.domain)
    sites.create_share(site.domain)
    assert site.created_at == int(FIXED)
    assert {k.created_at for k in sites.list_keys(site.domain)} == {int(FIXED)}
    assert {s.created_at for s in sites.list_shares(site.domain)} == {int(FIXED)}
