"""Ingest handler throughput per core, without a database round trip.

The real Lambda entry point (`ingest.handler.handler`: API Gateway event parsing, Powertools'
log line and metrics, validation, enrichment with ua-parser, visitor hashing, bot checks) runs on
one thread; only the event store is replaced, at its seam, by one that keeps events in memory.
Sites and salts come from in-process moto and are cached by the handler after the first event,
as in a warm Lambda. Throughput is events per CPU-second of that thread (noisy neighbours do not
inflate CPU time), median of RUNS.

Left out: the PutItem round trip (~5-10 ms in AWS, I/O not CPU), API Gateway, a cold start, and
the site cache's refresh every 30 s. User agents come from a pool of 400 (ua-parser caches what
it parsed), so a long tail of new user agents would cost more.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from unittest import mock

from core.events import RawEvent
from ingest.store import EventStore

RUNS = 5
EVENTS_PER_RUN = 2_000
SITE = "cpu.example"
# A 256 MB Lambda gets about a seventh of a vCPU (DESIGN.md's cost model).
LAMBDA_256_SHARE = 1 / 7


class MemoryEventStore(EventStore):
    """The event store's seam, in memory: a resend (same id) is refused as PutItem's condition
    would refuse it."""

    def __init__(self) -> None:
        self.events: dict[str, RawEvent] = {}

    def put(self, event: RawEvent, client_id: bool = False) -> bool:
        if event.event_id in self.events:
            return False
        self.events[event.event_id] = event
        return True


def user_agents(count: int, rnd: random.Random) -> list[str]:
    browsers = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{v}.0.{b}.{p} Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/{m}.{p} Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS {m}_{p} like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        "like Gecko) Version/{m}.{p} Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android {m}; Pixel {p}) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{v}.0.{b}.{p} Mobile Safari/537.36",
    )
    return [
        rnd.choice(browsers).format(
            v=rnd.randint(110, 133),
            b=rnd.randint(1000, 6999),
            p=rnd.randint(1, 99),
            m=rnd.randint(12, 18),
        )
        for _ in range(count)
    ]


def requests(count: int, seed: int) -> list[dict[str, Any]]:
    """API Gateway events as the front builds them: pageviews (some with referrers and UTM) and
    a few custom events, from many visitors."""
    from local.front import api_gateway_event

    rnd = random.Random(seed)
    agents = user_agents(400, rnd)
    referrers = (None, "https://www.google.com/", "https://news.ycombinator.com/", "https://t.co/x")
    out = []
    for i in range(count):
        body: dict[str, Any] = {
            "n": "pageview" if rnd.random() < 0.9 else "Signup",
            "u": f"https://{SITE}/docs/{rnd.randrange(200)}"
            + ("?utm_source=news&utm_medium=email" if rnd.random() < 0.1 else ""),
            "d": SITE,
            "r": rnd.choice(referrers),
            "w": rnd.choice((390, 1280, 1920)),
        }
        headers = {"content-type": "text/plain", "user-agent": rnd.choice(agents)}
        ip = f"198.51.100.{i % 250 + 1}" if i % 2 else f"203.0.113.{rnd.randrange(250) + 1}"
        out.append(api_gateway_event("POST", "/api/event", headers, json.dumps(body).encode(), ip))
    return out


@contextlib.contextmanager
def warm_ingest() -> Iterator[tuple[Any, MemoryEventStore]]:
    """The real handler with a warm instance's dependencies, its event store in memory."""
    from moto import mock_aws

    from core.aws import make_client
    from core.sites import SiteStore
    from local import tables

    names = tables.table_names("bench-cpu")
    environment = {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "LIVEINSIGHT_EVENTS_TABLE": names["events"],
        "LIVEINSIGHT_AGGREGATES_TABLE": names["aggregates"],
        "LIVEINSIGHT_META_TABLE": names["meta"],
        "POWERTOOLS_METRICS_NAMESPACE": "LiveInsight",
    }
    saved = {name: os.environ.get(name) for name in [*environment, "AWS_ENDPOINT_URL"]}
    os.environ.update(environment)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            client = make_client("dynamodb")
            tables.create_tables(client, {"meta": names["meta"]}, with_stream=False)
            SiteStore(client, names["meta"]).add(SITE)
            import ingest.handler as ingest_handler

            ingest_handler.get_deps.cache_clear()
            store = MemoryEventStore()
            deps = replace(ingest_handler.get_deps(), events=store)
            with mock.patch.object(ingest_handler, "get_deps", lambda: deps):
                yield ingest_handler.handler, store
            ingest_handler.get_deps.cache_clear()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def events_per_cpu_second(runs: int = RUNS, events: int = EVENTS_PER_RUN) -> float:
    from local.runtime import LambdaContext

    samples = []
    # stdout first: the handler's logger keeps the stream it finds when it is imported
    with contextlib.redirect_stdout(io.StringIO()) as sink, warm_ingest() as (handler, store):
        context = LambdaContext("ingest")
        for warm in requests(50, seed=99):  # first events: site and salts read, parsers loaded
            assert handler(warm, context)["statusCode"] == 202
        for run in range(runs):
            batch = requests(events, seed=run)
            before = len(store.events)
            started = time.thread_time()
            for event in batch:
                handler(event, context)
            spent = time.thread_time() - started
            accepted = len(store.events) - before
            assert accepted >= events * 0.95, f"only {accepted} of {events} accepted"
            samples.append(accepted / spent)
            sink.seek(0)
            sink.truncate()  # the handler's log lines, as CloudWatch would take them
    return statistics.median(samples)


def rows() -> list[dict[str, Any]]:
    per_core = events_per_cpu_second()
    note = (
        "real handler, event store faked in memory: no PutItem round trip, no API Gateway, "
        "no cold start; 400 distinct user agents"
    )
    return [
        {
            "figure": f"ingest handler throughput per core, no database (median of {RUNS})",
            "value": round(per_core),
            "unit": "events/s",
            "goal": "≥ 2,000",
            "anchor": note,
        },
        {
            "figure": "  … per 256 MB Lambda instance (a seventh of a vCPU)",
            "value": round(per_core * LAMBDA_256_SHARE),
            "unit": "events/s",
            "goal": "",
            "anchor": "plus the PutItem wait; Lambda adds instances with concurrency",
        },
    ]


if __name__ == "__main__":
    for r in rows():
        print(r)
