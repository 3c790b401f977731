"""A breakdown or a filter on a prop key that a day (or a month) may have refused: the counters
cannot answer it (the key's counts are under "(other)" there, decision 0017), so the event archive
does, exactly (decision 0031); without an archive it is a 400 that says why. A key admitted in
every such bucket answers exactly from the counters, and a range whose lists refused nothing
answers as before."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import _clear_composition_roots
from tests.integration.pipeline import Pipeline
from tests.integration.test_prop_key_flood import (
    DAY_TS,
    SITE,
    count,
    custom_events,
    records_of,
    store,
)
from tests.prop_key_lists import stored_key_lists

DAY = "2026-11-20"  # DAY_TS's day: `plan` first, then more keys than the bound
QUIET_DAY = "2026-12-05"  # another month: keys within the bound
QUIET_TS = int(datetime(2026, 12, 5, 9, 0, tzinfo=UTC).timestamp() * 1000)
REFUSED = 'was counted under "(other)" on some days of this period'


def ask(pipeline: Pipeline, key: str, path: str, **params: str) -> tuple[int, Any]:
    query = "&".join(f"{k}={quote(v, safe=',:')}" for k, v in {"site_id": SITE, **params}.items())
    response = pipeline.get(f"{path}?{query}", key)
    return response.status, response.json()


def one_day(day: str) -> dict[str, str]:
    return {"period": "custom", "date": f"{day},{day}"}


@pytest.fixture()
def flooded(
    pipeline: Pipeline,
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    set_clock: Any,
) -> tuple[str, set[str]]:
    """A site whose lists hold 3 keys: `plan` (5 events, values v0..v4) and 2 of 6 flood keys on
    DAY; `plan` and `color` on QUIET_DAY. The read key and the refused keys."""
    monkeypatch.setattr("aggregator.prop_keys.MAX_PROP_KEYS", 3)
    _clear_composition_roots()
    read_key = pipeline.add_site(SITE)
    count(records_of(custom_events(["plan"] * 5, DAY_TS)))
    flood = [f"k{n}" for n in range(6)]
    count(records_of(custom_events(flood, DAY_TS + 60_000, first=10), first=10))
    quiet = custom_events(["plan", "color"], QUIET_TS, first=20)
    count(records_of(quiet, first=20))
    set_clock(datetime(2026, 12, 31, 12, 0, tzinfo=UTC))
    lists = stored_key_lists(*store(aws_env))
    day_list = lists[(SITE, next(g for (_, g, b) in lists if b == DAY), DAY)]
    assert "plan" in day_list and len(day_list) == 3
    return read_key, set(flood) - day_list


def test_a_breakdown_by_a_refused_prop_key_is_answered_exactly_from_the_archive(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, refused = flooded
    key = sorted(refused)[0]
    n = int(key.removeprefix("k"))  # flood key kN carried the value vN, once
    status, body = ask(
        pipeline,
        read_key,
        "/api/v1/stats/breakdown",
        **one_day(DAY),
        property=f"event:props:{key}",
        metrics="visitors,events",
    )
    assert status == 200, body
    assert body["results"] == [{key: f"v{n}", "visitors": 1, "events": 1}]
    ours = ask(pipeline, read_key, "/api/stats/breakdown", **one_day(DAY), property=f"prop:{key}")
    assert ours[0] == 200 and ours[1]["answered_from"] == "archive"
    assert ours[1]["results"] == [{key: f"v{n}", "visitors": 1}]
    # and a key never sent is simply empty: the archive knows it was not sent
    status, body = ask(
        pipeline, read_key, "/api/v1/stats/breakdown", **one_day(DAY), property="event:props:zz"
    )
    assert (status, body["results"]) == (200, [])


def test_a_filter_on_a_refused_prop_key_is_answered_exactly_from_the_archive(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, refused = flooded
    key = sorted(refused)[0]
    matching = 1 if key == "k1" else 0  # kN carried vN
    day_events = 5 + 6  # `plan` five times, then one event per flood key
    for negated, events in (("==", matching), ("!=", day_events - matching)):
        status, body = ask(
            pipeline,
            read_key,
            "/api/v1/stats/aggregate",
            **one_day(DAY),
            metrics="events",
            filters=f"event:props:{key}{negated}v1",
        )
        assert status == 200 and body["results"]["events"]["value"] == events, body


@pytest.mark.usefixtures("without_archive")
def test_without_an_archive_a_breakdown_by_a_refused_prop_key_is_a_400_that_says_why(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, refused = flooded
    key = sorted(refused)[0]
    # When v1 and our API break down the flooded day by a key its list refused
    status, body = ask(
        pipeline,
        read_key,
        "/api/v1/stats/breakdown",
        **one_day(DAY),
        property=f"event:props:{key}",
        metrics="visitors,events",
    )
    # Then both answer 400, naming the key, the day and the bound, not empty rows
    assert status == 400, body
    assert f"Prop key `{key}` {REFUSED} ({DAY})" in body["error"]
    assert "more than 300 prop keys were sent those days" in body["error"]
    ours = ask(pipeline, read_key, "/api/stats/breakdown", **one_day(DAY), property=f"prop:{key}")
    assert ours[0] == 400 and REFUSED in ours[1]["error"]
    # and a key never sent there is as unknown as a refused one: it may be in "(other)" too
    status, body = ask(
        pipeline, read_key, "/api/v1/stats/breakdown", **one_day(DAY), property="event:props:zz"
    )
    assert status == 400 and REFUSED in body["error"]


@pytest.mark.usefixtures("without_archive")
def test_without_an_archive_a_filter_on_a_refused_prop_key_is_a_400_that_says_why(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, refused = flooded
    key = sorted(refused)[0]
    for negated in ("==", "!="):
        status, body = ask(
            pipeline,
            read_key,
            "/api/v1/stats/aggregate",
            **one_day(DAY),
            metrics="events",
            filters=f"event:props:{key}{negated}v1",
        )
        assert status == 400 and f"Prop key `{key}` {REFUSED}" in body["error"], body


def test_a_prop_key_admitted_on_every_refusing_day_answers_exactly(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, _ = flooded
    # When the flooded day is broken down by `plan`, admitted before the flood
    status, body = ask(
        pipeline,
        read_key,
        "/api/v1/stats/breakdown",
        **one_day(DAY),
        property="event:props:plan",
        metrics="visitors,events",
    )
    # Then its rows are its five events, one per value
    assert status == 200, body
    assert sorted((r["plan"], r["events"], r["visitors"]) for r in body["results"]) == [
        (f"v{n}", 1, 1) for n in range(5)
    ]
    filtered = ask(
        pipeline,
        read_key,
        "/api/v1/stats/aggregate",
        **one_day(DAY),
        metrics="events",
        filters="event:props:plan==v3",
    )
    assert filtered == (200, {"results": {"events": {"value": 1}}})
    # and the refused keys' events are a breakdown of their own, under "(other)"
    other = ask(
        pipeline,
        read_key,
        "/api/v1/stats/breakdown",
        **one_day(DAY),
        property="event:props:(other)",
        metrics="events",
    )
    assert other[0] == 200 and sum(r["events"] for r in other[1]["results"]) == 4


def test_a_range_whose_lists_refused_nothing_answers_as_before(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, refused = flooded
    breakdown = "/api/v1/stats/breakdown"
    # A key sent that day answers; a key not sent, even one refused elsewhere, has no rows
    status, body = ask(
        pipeline, read_key, breakdown, **one_day(QUIET_DAY), property="event:props:color"
    )
    assert status == 200 and [r["color"] for r in body["results"]] == ["v1"]
    for absent in (sorted(refused)[0], "zz"):
        status, body = ask(
            pipeline, read_key, breakdown, **one_day(QUIET_DAY), property=f"event:props:{absent}"
        )
        assert (status, body) == (200, {"results": []})


def test_the_props_card_lists_other_last_so_every_prop_event_is_shown(
    pipeline: Pipeline, flooded: tuple[str, set[str]]
) -> None:
    read_key, _ = flooded
    response = pipeline.get(
        f"/api/cards/props?site_id={SITE}&period=custom&date={DAY},{DAY}", read_key
    )
    assert response.status == 200, response.body
    shown = re.findall(r'data-prop-key="([^"]+)" title="(\d+) event', response.body)
    assert shown[0] == ("plan", "5") and shown[-1] == ("(other)", "4")
    assert sum(int(n) for _, n in shown) == 5 + 6


def test_a_daily_series_reads_the_key_lists_in_one_query(
    pipeline: Pipeline, flooded: tuple[str, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from query_api.reader import CounterReader

    read_key, _ = flooded
    reads: list[tuple[str, str]] = []
    original = CounterReader.prop_key_lists

    def counted(self: CounterReader, site: str, gran: Any, first: str, last: str) -> Any:
        reads.append((first, last))
        return original(self, site, gran, first, last)

    monkeypatch.setattr(CounterReader, "prop_key_lists", counted)
    # When a daily series over three weeks, the flooded day among them, is filtered on `plan`
    status, body = ask(
        pipeline,
        read_key,
        "/api/v1/stats/timeseries",
        period="custom",
        date=f"2026-11-15,{QUIET_DAY}",
        interval="date",
        metrics="events",
        filters="event:props:plan==v1",
    )
    # Then it answers, and the lists were read once for the whole range, not once a day
    assert status == 200, body
    assert [p["events"] for p in body["results"] if p["events"]] == [1]
    assert reads == [("2026-11-15", QUIET_DAY)]
