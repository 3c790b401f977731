"""The aggregator's tiers (decision 0010): which alias writes which counters."""

from __future__ import annotations

import pytest

from aggregator.handler import UnknownTier, qualifier, tier_of
from aggregator.processor import ALL_GRANULARITIES, ignores_engagement
from core.keys import Granularity, visitor_pk
from local.runtime import LambdaContext


def test_an_unqualified_invocation_is_the_single_tier_aggregator() -> None:
    assert tier_of(LambdaContext("aggregator")) == ("", ALL_GRANULARITIES)


def test_the_alias_names_the_tier_and_its_granularities() -> None:
    assert tier_of(LambdaContext("aggregator", qualifier="realtime")) == (
        "realtime",
        frozenset({Granularity.MINUTE}),
    )
    assert tier_of(LambdaContext("aggregator", qualifier="rollup")) == (
        "rollup",
        frozenset({Granularity.HOUR, Granularity.DAY, Granularity.MONTH}),
    )


@pytest.mark.parametrize("alias", ["$LATEST", "7", "live"])
def test_a_version_or_unknown_alias_refuses_to_count(alias: str) -> None:
    # Counting there would count every event a third time, beside both tiers.
    with pytest.raises(UnknownTier):
        tier_of(LambdaContext("aggregator", qualifier=alias))


def test_only_a_tier_without_days_and_months_skips_engagement_events() -> None:
    assert ignores_engagement(frozenset({Granularity.MINUTE}))
    assert not ignores_engagement(frozenset({Granularity.HOUR, Granularity.DAY}))
    assert not ignores_engagement(ALL_GRANULARITIES)


def test_each_tier_has_its_own_visitor_states() -> None:
    keys = {visitor_pk("a.example", "v", tier) for tier in ("", "realtime", "rollup")}
    assert keys == {"V#a.example#v", "V.realtime#a.example#v", "V.rollup#a.example#v"}


def test_replay_reads_the_alias_from_a_dead_letter_message() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:liveinsight-prod-aggregator"
    assert qualifier(f"{arn}:rollup") == "rollup"
    assert qualifier(arn) == ""
