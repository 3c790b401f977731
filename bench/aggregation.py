"""Issue 3's benchmarks: the oracle campaign, a naive aggregator side by side, CPU per batch, flood.

Run by `make bench` through bench/__main__.py; each function returns rows for the table.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.store import FOLD_AT_SLOTS
from tests.integration.pipeline import fresh_pipeline

# Cost rows run for whole cycles of folds (decision 0015): an instance folds a bucket once it left
# FOLD_AT_SLOTS slots there, so a shorter run would leave the folds out of the bill.
FOLD_CYCLES = 4

Row = dict[str, Any]


def row(figure: str, value: float, unit: str, goal: str = "", anchor: str = "") -> Row:
    return {
        "figure": figure,
        "value": round(value, 4),
        "unit": unit,
        "goal": goal,
        "anchor": anchor,
    }


def ingest_traffic(pipeline: Any, events: int, visitors: int, seed: int) -> list[dict[str, Any]]:
    from tests.faults import Traffic

    rnd = random.Random(seed)
    traffic = Traffic.random(
        rnd, events, visitors, datetime(2026, 11, 25, 22, 0, tzinfo=UTC), tz="Europe/Berlin"
    )
    pipeline.add_site(traffic.site, tz=traffic.tz)
    with pinned_clock() as pin:
        for now, body, ip, ua in traffic.payloads():
            pin(now)
            pipeline.send(body, ip=ip, user_agent=ua)
    return list(pipeline.read_stream())


def naive_aggregate(pipeline: Any, event: dict[str, Any]) -> dict[str, Any]:
    """What a first attempt does: one ADD per counter per record, no dedup, no sessions."""
    from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

    from aggregator.fold import event_counts
    from core.events import MalformedEvent, RawEvent
    from core.keys import counter_pk

    for record in DynamoDBStreamEvent(event).records:
        try:
            raw = RawEvent.from_image(record.dynamodb.new_image)  # type: ignore[union-attr,arg-type]
        except (MalformedEvent, AttributeError, TypeError, ValueError):
            continue
        deltas: Any = defaultdict(lambda: defaultdict(int))
        event_counts(raw, deltas)
        for (gran, dim, bucket), attrs in deltas.items():
            names = {f"#a{i}": a for i, a in enumerate(attrs)}
            values = {f":a{i}": {"N": str(v)} for i, v in enumerate(attrs.values())}
            pipeline.ddb.update_item(
                TableName=pipeline.names["aggregates"],
                Key={"pk": {"S": counter_pk(raw.site, gran, dim)}, "sk": {"S": bucket}},
                UpdateExpression="ADD " + ", ".join(f"{n} {n.replace('#', ':')}" for n in names),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
    return {"batchItemFailures": []}


def fresh_aggregates(pipeline: Any, name: str) -> None:
    """Point the aggregator at a new, empty aggregates table (a clean slate per fault schedule)."""
    from core.schema import create_table_request, load_schema
    from tests.conftest import _clear_composition_roots

    pipeline.ddb.create_table(
        **create_table_request(load_schema().tables["aggregates"], name, with_stream=False)
    )
    pipeline.names["aggregates"] = name
    os.environ["LIVEINSIGHT_AGGREGATES_TABLE"] = name
    # Every cached client and store, the realtime tier's minute store included: one left behind
    # went on writing minutes to the last schedule's table (22,363 "mismatches" in one run).
    _clear_composition_roots()


def campaign(
    endpoint: str, meter: Any, events: int = 2000, schedules: int = 20, naive_runs: int = 3
) -> list[Row]:
    """The same traffic under many fault schedules: ours against the oracle; naive side by side."""
    from tests import oracle
    from tests.faults import (
        FaultyStore,
        Schedule,
        deliver,
        mismatches,
        stored_counters,
        stored_events,
    )

    ours_mismatches = naive_mismatches = 0
    ours_units: list[float] = []
    naive_units: list[float] = []
    with fresh_pipeline(endpoint, f"bench-campaign-{os.getpid()}") as pipeline:
        records = ingest_traffic(pipeline, events, visitors=max(2, events // 8), seed=1)
        stored = stored_events(pipeline.ddb, pipeline.names)
        assert len(records) == len(stored), "every stored event must be delivered to the aggregator"
        pageviews = max(1, sum(1 for e in stored if e.is_pageview))
        expected = oracle.compute(stored)
        naive_expected = {
            cell: kept for cell, attrs in expected.items() if (kept := _event_level(cell, attrs))
        }
        for n in range(schedules):
            schedule = Schedule.random(random.Random(1000 + n), len(records))
            fresh_aggregates(pipeline, f"bench-ours-{n}-{os.getpid()}")
            meter.reset()
            # As deployed: both tiers read the stream, each under a fault schedule of its own.
            for tier, function in pipeline.tier_fns.items():
                own = (
                    schedule
                    if tier == "realtime"
                    else Schedule.random(random.Random(n), len(records))
                )
                faults = FaultyStore()
                with faults.installed():
                    deliver(function.invoke, records, own, faults)
            ours_units.append(
                meter.reset().write_units.get(pipeline.names["aggregates"], 0.0) / pageviews
            )
            ours_mismatches += len(
                mismatches(expected, stored_counters(pipeline.ddb, pipeline.names))
            )
            if n >= naive_runs:
                continue
            fresh_aggregates(pipeline, f"bench-naive-{n}-{os.getpid()}")
            meter.reset()
            deliver(lambda e: naive_aggregate(pipeline, e), records, schedule, FaultyStore())
            naive_units.append(
                meter.reset().write_units.get(pipeline.names["aggregates"], 0.0) / pageviews
            )
            naive_mismatches += len(
                mismatches(naive_expected, stored_counters(pipeline.ddb, pipeline.names))
            )
    return [
        row(
            f"oracle campaign: {events} events x {schedules} fault schedules, mismatched cells (ours, both tiers)",
            ours_mismatches,
            "cells",
            "0",
        ),
        row(
            f"oracle campaign: mismatched cells, naive per-event ADD ({min(naive_runs, schedules)} of the same schedules)",
            naive_mismatches,
            "cells",
            "",
            "expected > 0",
        ),
        row(
            "aggregates write units per pageview under those faults (ours, every metric)",
            statistics.median(ours_units),
            "WCU",
        ),
        row(
            "aggregates write units per pageview under those faults (naive, event counts only)",
            statistics.median(naive_units),
            "WCU",
        ),
    ]


def _event_level(cell: Any, attrs: dict[str, int]) -> dict[str, int]:
    """The counters a per-event ADD can keep: events and pageviews by page, name, hostname, prop."""
    dimension = cell[2]
    if dimension not in ("_", "page", "name", "hostname") and not dimension.startswith("prop:"):
        return {}
    return {a: v for a, v in attrs.items() if a.split("|")[0] in ("events", "pageviews")}


def steady_user_agents() -> tuple[str, ...]:
    from tests.unit import samples

    return (samples.CHROME_WINDOWS, samples.SAFARI_IPHONE, samples.FIREFOX_MAC)


def steady_visits(
    rate: float, seconds: float, seed: int
) -> list[tuple[float, dict[str, Any], str]]:
    """(second, body, ip) of visits arriving at `rate` pageviews/s: 1-7 pageviews each, 20-120 s
    apart, over 60 pages and 6 referrers — a small site's steady day, on a simulated clock."""
    rnd = random.Random(seed)
    sends: list[tuple[float, dict[str, Any], str]] = []
    at, visit = 0.0, 0
    while at < seconds:
        at += rnd.expovariate(rate / 3.3)  # a visit has 3.3 pageviews on average
        visit += 1
        ip = f"10.{visit // 65536 % 256}.{visit // 256 % 256}.{visit % 256}"
        referrer = rnd.choice(("", "", "https://www.google.com/", "https://t.co/x", "https://news.ycombinator.com/", "https://example.org/blog"))  # fmt: skip
        when = at
        for n in range(rnd.choice((1, 1, 2, 3, 4, 5, 7))):
            body = {
                "n": "pageview",
                "u": f"https://steady.example/p/{rnd.randrange(60)}",
                "d": "steady.example",
                "r": referrer if n == 0 else "",
                "w": rnd.choice((390, 1280, 1920)),
            }
            sends.append((when, body, ip))
            when += rnd.uniform(20, 120)
    return sorted((s for s in sends if s[0] < seconds), key=lambda s: s[0])


@contextmanager
def pinned_clock() -> Iterator[Callable[[datetime], None]]:
    """Set the ingest handler's clock per request (simulated time); restored afterwards."""
    import ingest.handler

    original = ingest.handler.now

    def pin(moment: datetime) -> None:
        ingest.handler.now = lambda: moment

    try:
        yield pin
    finally:
        ingest.handler.now = original


def _deliver_in_windows(
    function: Any, arrivals: list[tuple[float, list[dict[str, Any]]]], window: float, size: int
) -> None:
    """Deliver as an event source mapping with this batching window and batch size would."""
    batches: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for at, records in arrivals:
        batches[int(at // window)].extend(records)
    for records in batches.values():
        for start in range(0, len(records), size):
            result = function.invoke({"Records": records[start : start + size]})
            assert result == {"batchItemFailures": []}, result


def steady_window_cost(
    endpoint: str,
    meter: Any,
    rate: float = 0.4,
    seconds: float = FOLD_AT_SLOTS * 300,  # a fold cycle at the longest window, 80 minutes
    windows: tuple[int, ...] = (1, 60, 300),
    rollup_windows: tuple[int, ...] = (60, 300),
) -> list[Row]:
    """Write units and cost per pageview of the same steady traffic (0.4 pageviews/s is ~1
    million a month): the single-tier aggregator in batches of `window` seconds, then the two
    tiers of decision 0010 (realtime at 1 s, rollup at each of `rollup_windows`).

    The real ingest and aggregator handlers on a simulated clock, so an hour takes seconds: at a
    1 s window a batch holds one event and every counter it touches is rewritten for it."""
    from bench.prices import per_million
    from core.schema import load_schema

    base = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    tiers = load_schema().tiers
    rows = []
    visits = steady_visits(rate, seconds, seed=7)
    pageviews = len(visits)
    agents = steady_user_agents()
    with fresh_pipeline(endpoint, f"bench-steady-{os.getpid()}") as pipeline:
        pipeline.add_site("steady.example")
        arrivals: list[tuple[float, list[dict[str, Any]]]] = []
        meter.reset()
        with pinned_clock() as pin:
            for at, body, ip in visits:
                pin(base + timedelta(seconds=at))
                ua = agents[int(ip.rsplit(".", 1)[1]) % len(agents)]
                assert pipeline.send(body, ip=ip, user_agent=ua).status == 202
                arrivals.append((at, pipeline.read_stream()))
        ingest = meter.reset()
        ingest_seconds = pipeline.ingest_fn.billed_seconds
        functions = [pipeline.aggregator_fn, *pipeline.tier_fns.values()]

        def all_in(label: str, goal: str) -> list[Row]:
            usage = meter.reset()
            aggregates = usage.write_units.get(pipeline.names["aggregates"], 0.0)
            cost = sum(
                per_million(
                    pageviews,
                    write_units=ingest.total_write_units + usage.total_write_units,
                    read_units=ingest.total_read_units + usage.total_read_units,
                    lambda_seconds=ingest_seconds + sum(f.billed_seconds for f in functions),
                    invocations=pageviews + sum(f.invocations for f in functions),
                    api_requests=pageviews,
                )
            )
            for function in functions:
                function.billed_seconds, function.invocations = 0.0, 0
            return [
                row(
                    f"aggregates write units per pageview, {rate:g} pageviews/s steady, {label}",
                    aggregates / pageviews,
                    "WCU",
                ),
                row(
                    f"cost per million pageviews at {rate:g}/s steady, {label}: all-in",
                    cost,
                    "USD",
                    goal,
                ),
            ]

        for window in windows:
            fresh_aggregates(pipeline, f"bench-steady-{window}-{os.getpid()}")
            meter.reset()
            _deliver_in_windows(
                pipeline.aggregator_fn, arrivals, window, tiers["realtime"].esm.batch_size
            )
            rows += all_in(f"single tier, {window} s batches", "")
        for window in rollup_windows:
            fresh_aggregates(pipeline, f"bench-steady-tiers-{window}-{os.getpid()}")
            meter.reset()
            realtime = tiers["realtime"].esm
            _deliver_in_windows(
                pipeline.tier_fns["realtime"],
                arrivals,
                realtime.maximum_batching_window_in_seconds,
                realtime.batch_size,
            )
            _deliver_in_windows(
                pipeline.tier_fns["rollup"], arrivals, window, tiers["rollup"].esm.batch_size
            )
            default = tiers["rollup"].esm.maximum_batching_window_in_seconds == window
            rows += all_in(
                f"two tiers, realtime 1 s + rollup {window} s{' (default)' if default else ''}",
                "≤ 4",
            )
    return rows


def blog_events(
    rnd: random.Random, start: datetime, seconds: float, rate: float, prefix: str
) -> list[Any]:
    """Raw events of a small blog's traffic at `rate` pageviews/s: 400 pages by popularity (long
    paths), 40 referrers, a dozen browsers and versions, 60 countries, a campaign now and then."""
    from core.events import RawEvent

    pages = ["/"] + [f"/blog/{2020 + k % 6}/notes-on-serverless-analytics-part-{k}" for k in range(399)]  # fmt: skip
    page_weights = [1 / (k + 1) ** 1.1 for k in range(len(pages))]
    referrers = [("", "Direct / None")] + [(f"https://{s.lower()}.example/", s) for s in ("Google", "Bing", "DuckDuckGo", "Twitter", "Hacker News", "Reddit")] + [(f"https://blog{k}.example.net/post/{k}", f"blog{k}.example.net") for k in range(34)]  # fmt: skip
    referrer_weights = [40, 20, 4, 3, 3, 2, 2] + [0.5] * 34
    browsers = [("Chrome", 12, 60), ("Safari", 4, 20), ("Firefox", 8, 10), ("Edge", 2, 6), ("Opera", 1, 4)]  # fmt: skip
    systems = [("Windows", 2, 40), ("Mac", 3, 20), ("iOS", 3, 20), ("Android", 3, 15), ("GNU/Linux", 1, 5)]  # fmt: skip
    countries = [f"C{k:02d}" for k in range(60)]
    country_weights = [1 / (k + 1) ** 1.3 for k in range(60)]
    end = start + timedelta(seconds=seconds)
    events = []
    at, visit = 0.0, 0
    while at < seconds:
        at += rnd.expovariate(rate / 3.3)
        visit += 1
        visitor = f"{prefix}{visit:08x}"
        referrer, source = rnd.choices(referrers, referrer_weights)[0]
        browser, versions, _ = rnd.choices(browsers, [b[2] for b in browsers])[0]
        system, system_versions, _ = rnd.choices(systems, [s[2] for s in systems])[0]
        campaign = f"newsletter-{rnd.randrange(15)}" if rnd.random() < 0.1 else ""
        visitor_event = RawEvent(
            event_id="",
            site="blog.example",
            ts=0,
            name="pageview",
            visitor_id=visitor,
            hostname="blog.example",
            browser=browser,
            browser_version=str(100 + rnd.randrange(versions)),
            os=system,
            os_version=str(10 + rnd.randrange(system_versions)),
            device=rnd.choice(("Desktop", "Desktop", "Mobile", "Tablet")),
            country=rnd.choices(countries, country_weights)[0],
        )
        moment = start + timedelta(seconds=at)
        for n in range(rnd.randint(1, 7)):
            first = n == 0
            events.append(
                replace(
                    visitor_event,
                    event_id=f"{visitor}-{n}",
                    ts=int(moment.timestamp() * 1000),
                    page=rnd.choices(pages, page_weights)[0],
                    referrer=referrer if first else "",
                    source=source if first else "Direct / None",
                    internal=not first,
                    utm_source="newsletter" if campaign and first else "",
                    utm_medium="email" if campaign and first else "",
                    utm_campaign=campaign if first else "",
                )
            )
            moment += timedelta(seconds=rnd.uniform(20, 120))
    return sorted((e for e in events if e.ts < end.timestamp() * 1000), key=lambda e: e.ts)


def mid_month_cost(
    endpoint: str,
    meter: Any,
    seeded_days: int = 3,
    per_day: int = 1500,
    rollup_window: float | None = None,
) -> list[Row]:
    """What 0.4 pageviews/s cost once the month's items are full: a blog's month so far
    (`seeded_days` of diverse traffic, then an hour) counted first, then metered, the realtime
    tier at its window and the rollup tier at `rollup_window` (default: its own; the steady rows
    start from empty items). Metered for FOLD_CYCLES times the batches after which an instance
    folds a bucket (decision 0015), so the folds are paid in proportion."""
    from core.schema import load_schema
    from tests.integration.test_flood import stream_record

    tiers = load_schema().tiers
    window = rollup_window or tiers["rollup"].esm.maximum_batching_window_in_seconds
    rnd = random.Random(11)
    today = datetime(2026, 11, 15, tzinfo=UTC)
    morning = today + timedelta(hours=1)
    seed: list[Any] = []
    for day in range(seeded_days, 0, -1):
        seed += blog_events(rnd, today - timedelta(days=day), 86400, per_day / 86400, f"d{day}x")
    seed += blog_events(rnd, today, 3600, 0.4, "t0x")
    metered_seconds = FOLD_CYCLES * FOLD_AT_SLOTS * window
    measured = blog_events(rnd, morning, metered_seconds, 0.4, "t1x")
    records = [stream_record(e, n + 1) for n, e in enumerate(seed + measured)]
    seeded, metered = records[: len(seed)], records[len(seed) :]
    # (tables of their own for each window: a second run into the first's finds its site there)
    with fresh_pipeline(endpoint, f"bench-mid-{rollup_window or 0:g}-{os.getpid()}") as pipeline:
        pipeline.add_site("blog.example")
        rollup, realtime = tiers["rollup"].esm, tiers["realtime"].esm
        _deliver_in_windows(pipeline.tier_fns["rollup"], [(0.0, seeded)], 1, rollup.batch_size)
        arrivals = [
            ((e.ts - morning.timestamp() * 1000) / 1000, [r])
            for e, r in zip(measured, metered, strict=True)
        ]
        meter.reset()
        _deliver_in_windows(
            pipeline.tier_fns["realtime"],
            arrivals,
            realtime.maximum_batching_window_in_seconds,
            realtime.batch_size,
        )
        realtime_units = meter.reset().write_units.get(pipeline.names["aggregates"], 0.0)
        _deliver_in_windows(pipeline.tier_fns["rollup"], arrivals, window, rollup.batch_size)
        rollup_units = meter.reset().write_units.get(pipeline.names["aggregates"], 0.0)
    label = f"0.4 pageviews/s mid-month on a 400-page blog ({len(seed):,} events counted before)"
    if rollup_window is not None:
        return [  # the trade-off: ranges up to `window` behind (decisions 0014, 0015)
            row(
                f"… the rollup tier at a {window:g} s window, {label}",
                rollup_units / len(measured),
                "WCU",
            )
        ]
    return [
        row(
            f"aggregates write units per pageview, {label}, two tiers (default)",
            (realtime_units + rollup_units) / len(measured),
            "WCU",
        ),
        row(f"… of which the rollup tier, {label}", rollup_units / len(measured), "WCU"),
    ]


def cpu_per_batch(batches: int = 30) -> list[Row]:
    """Aggregator CPU per 100-record batch, DynamoDB round trips excluded (a store that only plans)."""
    from aggregator.processor import StreamItem, process
    from aggregator.store import CommitOutcome
    from core.events import RawEvent

    class PlanningOnly:
        def load_visitors(self, wanted: Any) -> dict[Any, Any]:
            return {}

        def commit(self, plan: Any, now: float | None = None) -> CommitOutcome:
            return CommitOutcome(True)

    rnd = random.Random(3)
    start = int(datetime(2026, 11, 26, 10, 0, tzinfo=UTC).timestamp() * 1000)
    timings = []
    for b in range(batches):
        items = [
            StreamItem(
                f"{b:05d}{i:05d}",
                RawEvent(
                    event_id=f"cpu{b}-{i}",
                    site="cpu.example",
                    ts=start + b * 60_000 + i * 500,
                    name=rnd.choice(("pageview", "pageview", "pageview", "Signup")),
                    visitor_id=f"{rnd.randrange(40):016x}",
                    page=rnd.choice(("/", "/a", "/b", "/c", "/d")),
                    source=rnd.choice(("Google", "Direct / None", "Twitter")),
                    browser="Chrome",
                    os="Mac",
                    device="Desktop",
                    country="DE",
                    hostname="cpu.example",
                ),
            )
            for i in range(100)
        ]
        began = time.process_time()
        process(items, PlanningOnly())  # type: ignore[arg-type]
        timings.append(time.process_time() - began)
    return [
        row(
            "aggregator CPU per 100-record batch (no DynamoDB round trips), median",
            statistics.median(timings) * 1000,
            "ms",
        )
    ]


def flood(endpoint: str, paths: int = 100_000) -> list[Row]:
    """The 100,000-distinct-path flood of one minute: largest item and the page breakdown's total."""
    from aggregator.handler import handler
    from core import keys
    from core.events import RawEvent
    from core.keys import parse_counter_attr
    from local import tables
    from local.runtime import LambdaContext
    from query_api.reader import CounterReader
    from tests.integration.test_flood import item_bytes, stream_record

    with fresh_pipeline(endpoint, f"bench-flood-{os.getpid()}") as pipeline:
        minute = (int(time.time()) // 60) * 60 * 1000
        records = [
            stream_record(
                RawEvent(
                    event_id=f"f{i}",
                    site="flood.example",
                    ts=minute + i * 50_000 // paths,
                    name="pageview",
                    visitor_id=f"{i // 10:016x}",
                    page=f"/p/{i}",
                    hostname="flood.example",
                ),
                i + 1,
            )
            for i in range(paths)
        ]
        began = time.perf_counter()
        failures = 0
        for start in range(0, len(records), 100):
            failures += len(
                handler({"Records": records[start : start + 100]}, LambdaContext("aggregator"))[
                    "batchItemFailures"
                ]
            )
        seconds = time.perf_counter() - began
        items = tables.scan_all(pipeline.ddb, pipeline.names["aggregates"])
        largest = max(item_bytes(i) for i in items)
        # the day's page breakdown as the query API reads it: bases, and slots not folded yet
        day = keys.day_label(minute, "UTC")
        cells = CounterReader(pipeline.ddb, pipeline.names["aggregates"]).buckets(
            "flood.example", keys.Granularity.DAY, "page", day, day
        )
        total = sum(
            count
            for name, count in cells.get(day, {}).items()
            if parse_counter_attr(name)[0] == "pageviews" and parse_counter_attr(name)[1]
        )
    return [
        row(
            f"flood: {paths:,} distinct paths in a minute, failed batches", failures, "batches", "0"
        ),
        row("flood: largest item", largest / 1024, "KB", "< 100"),
        row("flood: page breakdown total minus pageviews", total - paths, "pageviews", "0"),
        row("flood: aggregation time on moto", seconds, "s"),
    ]
