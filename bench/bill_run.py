"""Measures what the bill model (bench/bill.py) needs, on the local stack: `python -m bench --only
bill` runs it alone.

For each rate (pageviews a second) the tracker's event mix is sent for at most SECONDS: every
pageview, one engagement a few seconds later, and outbound, download and custom events at the
shape's rates, from a pool of visitors, by a few paced clients. Then the realtime card is fetched
REFRESHES times, as an open dashboard tab does every 5 s. Each part is measured on its own:

- requests and bytes through the front (what the client sent and got back, plus the headers a
  browser and CloudFront add, estimated: BROWSER_HEADERS, CLOUDFRONT_HEADERS);
- each function's invocations, handler CPU time (thread time, on this machine's full core) and
  waiting time (wall minus CPU: the DynamoDB round trips to moto);
- DynamoDB units per table from the capacity meter, plus failed conditional writes (the meter
  counts only writes that succeed; DynamoDB bills both);
- bytes stored per table (DynamoDB's item size plus 100 bytes of overhead an item);
- the functions' log lines: they log at DEBUG here, so any Terraform level can be applied later.

The aggregates table's write and read units are taken from a steady state instead
(bench/writes.py, up to STEADY_MAX_RATE): a minute of traffic cannot fill the rollup tier's 300 s
windows nor reach a fold, every visitor in it is new, and the run's realtime instances are younger
than the 16 minutes in which an instance still reads decision 0018's legacy minute parts, so the
live run overstates them (decision 0025: 11.6 write units a pageview where whole windows and folds
take 4.4). The live run's failed conditional writes on that table are kept on top.

Left out, and said so in the rows: Lambda cold starts (one warm instance per function and shard:
WARM_UP_SECONDS of traffic go first, unmeasured),
API Gateway's and DynamoDB's real latencies (moto's in their place), and at 40 pageviews/s what
this shared machine cannot send.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import heapq
import json
import logging
import math
import os
import random
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bill
from bench.bill import FunctionUse, Shape, Usage

REPO = Path(__file__).resolve().parent.parent
SITE = "bill.example"
QUIET_SITE = "quiet.bill.example"  # no traffic: what a refresh costs before any pageview
RATES = tuple(float(r) for r in os.environ.get("BENCH_BILL_RATES", "0.4,4,40").split(","))
SECONDS = float(os.environ.get("BENCH_BILL_SECONDS", "60"))
# A rate's run lasts at least long enough to send this many pageviews (0.4/s: 150 s, not 60 s:
# 24 pageviews made the low rate's figures swing by dollars between runs).
MIN_PAGEVIEWS = float(os.environ.get("BENCH_BILL_MIN_PAGEVIEWS", "60"))
# Traffic sent and flushed before anything is measured: every function and every shard's tier
# instances have imported their code and made their clients (DuckDB for the archive's Parquet,
# the S3 client, Powertools) and are warm, as an instance invoked every few seconds (ingest, the
# realtime tier) or every 300 s (the rollup tier) stays. Without it, the first rate's 24
# pageviews paid the whole process's first-use cost: 124 ms of aggregator CPU a pageview instead
# of ~22 ms. Cold starts are left out of the bill and said so (decision 0022 measures them).
WARM_UP_RATE, WARM_UP_SECONDS = 4.0, 10.0
REFRESHES = int(os.environ.get("BENCH_BILL_REFRESHES", "30"))
SHARDS = 4
STEADY_MAX_RATE = float(os.environ.get("BENCH_BILL_STEADY_MAX_RATE", "4"))
# One more run at SPA_RATE: a single-page app's site, where SPA_SHARE of the pageviews are in-app
# navigations carrying the engagement of the page they leave (decision 0041). Half: visits of two
# pageviews on average, every one after the landing page in-app. 0 leaves the run out.
SPA_SHARE = float(os.environ.get("BENCH_BILL_SPA_SHARE", "0.5"))
SPA_RATE = 0.4
UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# A browser's keepalive fetch carries more headers than urllib's (accept-language, sec-ch-ua-*,
# origin, referer, ...); CloudFront adds its own to the response (via, x-cache, x-amz-cf-pop,
# x-amz-cf-id). Typical sizes, not measured here.
BROWSER_HEADERS = 700
CLOUDFRONT_HEADERS = 200
FUNCTIONS = ("ingest", "aggregator", "query")


@dataclass
class Measured:
    per_pageview: dict[float, Usage]  # by target rate
    achieved: dict[float, float]  # pageviews/s sent
    late: dict[float, float]  # seconds the clients fell behind their plan at worst
    # per_refresh: refreshes of a site with `window` pageviews in its realtime window;
    # quiet_refresh: of a site with none
    per_refresh: Usage
    quiet_refresh: Usage
    window: float
    shape: Shape
    name_prefix: str
    spa: Usage | None = None  # at SPA_RATE, the same mix with SPA_SHARE of SPA navigations

    def refresh_at(self, pageviews_a_month: float) -> Usage:
        """What a realtime refresh costs at this volume (bill.refresh_at)."""
        return bill.refresh_at(pageviews_a_month, self.quiet_refresh, self.per_refresh, self.window)


# ---- instruments ----------------------------------------------------------------------------


class HandlerClock:
    """Invocations, CPU and wall time of each handler, whatever runs it (any thread, any shard)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])

    def wrap(self, name: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        def timed(event: Any, context: Any) -> Any:
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return handler(event, context)
            finally:
                cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
                with self._lock:
                    total = self.totals[name]
                    total[0] += 1
                    total[1] += cpu
                    total[2] += wall

        return timed

    def snapshot(self) -> dict[str, tuple[float, float, float]]:
        with self._lock:
            return {k: (v[0], v[1], v[2]) for k, v in self.totals.items()}


@contextlib.contextmanager
def timed_handlers(clock: HandlerClock) -> Iterator[None]:
    """The three handlers wrapped before the stack imports them."""
    import aggregator.handler
    import ingest.handler
    import query_api.handler

    modules = {"ingest": ingest.handler, "aggregator": aggregator.handler}
    modules["query"] = query_api.handler
    originals = {name: module.handler for name, module in modules.items()}
    for name, module in modules.items():
        module.handler = clock.wrap(name, originals[name])  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for name, module in modules.items():
            module.handler = originals[name]  # type: ignore[attr-defined]


class FailedWrites:
    """Write units of conditional writes that failed (DynamoDB bills them; the meter does not)."""

    def __init__(self) -> None:
        self.units: dict[str, float] = defaultdict(float)
        self._installed: list[tuple[str, Any]] = []

    def install(self) -> None:
        from moto.dynamodb.exceptions import ConditionalCheckFailed
        from moto.dynamodb.models import DynamoDBBackend

        from local.meter import _existing_size

        for method in ("put_item", "update_item", "delete_item"):
            original = getattr(DynamoDBBackend, method)
            self._installed.append((method, original))

            def wrapped(
                backend: Any, table_name: str, *args: Any, _original: Any = original, **kw: Any
            ) -> Any:
                try:
                    return _original(backend, table_name, *args, **kw)
                except ConditionalCheckFailed:
                    table = backend.get_table(table_name)
                    key = args[0] if args else kw.get("item_attrs") or kw.get("key")
                    size = _existing_size(backend, table, key)
                    self.units[table_name] += math.ceil(max(size, 1) / 1024)
                    raise

            setattr(DynamoDBBackend, method, wrapped)

    def uninstall(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        for method, original in reversed(self._installed):
            setattr(DynamoDBBackend, method, original)
        self._installed.clear()

    def reset(self) -> dict[str, float]:
        units, self.units = dict(self.units), defaultdict(float)
        return units


@contextlib.contextmanager
def captured_logs(path: Path) -> Iterator[Path]:
    """The functions' log lines (at DEBUG) and EMF blobs into `path` while the block runs."""
    from core.observability import logger

    with path.open("a") as sink:
        saved: list[tuple[Any, Any, Any]] = []
        for service in FUNCTIONS:
            log = logger(service)
            handlers = [h for h in log._logger.handlers if isinstance(h, logging.StreamHandler)]
            saved.append((log, log.log_level, [h.setStream(sink) for h in handlers]))
            log.setLevel("DEBUG")
        console, sys.stdout = sys.stdout, sink  # EMF blobs are print()ed
        try:
            yield path
        finally:
            sys.stdout = console
            for log, level, streams in saved:
                log.setLevel(level)
                handlers = [h for h in log._logger.handlers if isinstance(h, logging.StreamHandler)]
                for handler, stream in zip(handlers, streams, strict=True):
                    if stream is not None:
                        handler.setStream(stream)


def table_bytes(names: dict[str, str]) -> dict[str, float]:
    """DynamoDB's billed size of each table: item sizes plus 100 bytes an item."""
    from moto.dynamodb.models import dynamodb_backends

    sizes: dict[str, float] = {}
    for account in dynamodb_backends.values():
        backend = account["us-east-1"]
        for logical, physical in names.items():
            if physical in backend.tables:
                items = list(backend.get_table(physical).all_items())
                sizes[logical] = sizes.get(logical, 0.0) + sum(i.size() + 100 for i in items)
    return sizes


# ---- traffic --------------------------------------------------------------------------------


def _send(url: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, int]:
    """(bytes sent, bytes received) of one request, as a browser and CloudFront would size it."""
    request = urllib.request.Request(url + path, data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=20) as response:
        payload = response.read()
        head = sum(len(k) + len(v) + 4 for k, v in response.getheaders()) + 17
    if len(payload) >= 1000:  # CloudFront compresses text of 1 kB and more (compress = true)
        payload = gzip.compress(payload)
    sent = len(body or b"") + BROWSER_HEADERS
    return sent, head + len(payload) + CLOUDFRONT_HEADERS


def plan(
    rate: float, seconds: float, shape: Shape, seed: int
) -> list[tuple[float, dict[str, Any]]]:
    """(second, event body) of the tracker's mix: pageviews at `rate` (Poisson) and what each
    pageview brings (engagement on leaving, clicks while on the page).

    With `shape.spa_share`, a visit goes on in-app with that probability after each page: its
    next pageview carries the engagement of the page it leaves (`l`, decision 0041) instead of an
    engagement request of its own. Visits then begin at rate x (1 - spa_share), so pageviews
    still come at `rate`, that share of them SPA navigations."""
    rnd = random.Random(seed)
    events: list[tuple[float, dict[str, Any]]] = []
    spa = shape.spa_share
    visits = rate * (1 - spa)
    at = rnd.expovariate(visits)
    while at < seconds:
        page = f"https://{SITE}/p/{rnd.randrange(40)}"
        ip = f"203.0.113.{rnd.randrange(200) + 1}"
        now, left = at, None
        while True:
            base = {"u": page, "d": SITE, "ip": ip}
            body = {**base, "n": "pageview", "r": "", "w": 1280, "h": 0}
            events.append((now, body if left is None else {**body, "l": left}))
            stay = rnd.uniform(2, 15)
            if rnd.random() < shape.outbound_per_pageview:
                url = "https://elsewhere.example/x"
                events.append(
                    (now + stay / 2, {**base, "n": "Outbound Link: Click", "props": {"url": url}})
                )
            if rnd.random() < shape.download_per_pageview:
                events.append(
                    (
                        now + stay / 2,
                        {**base, "n": "File Download", "props": {"url": page + ".pdf"}},
                    )
                )
            if rnd.random() < shape.custom_per_pageview:
                events.append((now + stay / 3, {**base, "n": "Signup", "props": {"plan": "pro"}}))
            engagement = None
            if rnd.random() < shape.engagement_per_pageview:
                engagement = {"sd": rnd.randrange(101), "e": int(stay * 1000)}
            if spa and rnd.random() < spa and now + stay < seconds:  # an in-app navigation
                left = {"u": page, **engagement} if engagement else None
                now += stay
                page = f"https://{SITE}/p/{rnd.randrange(40)}"
                continue
            if engagement:
                events.append((min(now + stay, seconds), {**base, "n": "engagement", **engagement}))
            break
        at += rnd.expovariate(visits)
    return sorted(events, key=lambda e: e[0])


def send_plan(url: str, events: list[tuple[float, dict[str, Any]]], workers: int) -> dict[str, Any]:
    """Sends each event at its second (late if the clients cannot keep up); bytes and counts."""
    queue = [(at, i, body) for i, (at, body) in enumerate(events)]
    heapq.heapify(queue)
    lock = threading.Lock()
    totals = {"requests": 0, "sent": 0, "received": 0, "pageviews": 0, "late": 0.0}
    start = time.monotonic()

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                at, _, body = heapq.heappop(queue)
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            ip = body.pop("ip")
            headers = {"content-type": "text/plain", "user-agent": UA, "x-forwarded-for": ip}
            sent, received = _send(url, "/api/event", json.dumps(body).encode(), headers)
            with lock:
                totals["requests"] += 1
                totals["sent"] += sent
                totals["received"] += received
                totals["pageviews"] += body["n"] == "pageview"
                totals["late"] = max(totals["late"], -delay)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals["elapsed"] = time.monotonic() - start
    return totals


# ---- the run --------------------------------------------------------------------------------


def _usage(
    units: float,
    traffic: dict[str, float],
    path: str,
    clock: tuple[dict[str, tuple[float, float, float]], dict[str, tuple[float, float, float]]],
    capacity: Any,
    failed: dict[str, float],
    stored: tuple[dict[str, float], dict[str, float]],
    log_text: str,
    names: dict[str, str],
    name_prefix: str,
) -> Usage:
    before, after = clock
    functions = {}
    for name in FUNCTIONS:
        b, a = before.get(name, (0.0, 0.0, 0.0)), after.get(name, (0.0, 0.0, 0.0))
        calls, cpu, wall = a[0] - b[0], a[1] - b[1], a[2] - b[2]
        if calls:
            functions[name] = FunctionUse(calls, cpu, max(0.0, wall - cpu))
    logical = {physical: logical for logical, physical in names.items()}
    writes: dict[str, float] = defaultdict(float)
    for table, units_ in capacity.write_units.items():
        writes[logical.get(table, table)] += units_
    failed_by = {logical.get(t, t): u for t, u in failed.items()}
    for table, units_ in failed_by.items():
        writes[table] += units_
    reads = {logical.get(t, t): u for t, u in capacity.read_units.items()}
    logs = bill.parse_log(log_text, set(FUNCTIONS), name_prefix)
    kept = "\n".join(
        line for line in log_text.splitlines() if '"level":"DEBUG"' not in line
    ).encode()
    compression = len(gzip.compress(kept)) / len(kept) if kept else 0.15
    b_store, a_store = stored
    return Usage(
        units=units,
        requests={path: traffic["requests"]},
        bytes_out={path: traffic["received"]},
        bytes_to_origin={path: traffic["sent"]},
        functions=functions,
        write_units=dict(writes),
        failed_write_units=failed_by,
        read_units=reads,
        stored_bytes={t: max(0.0, a_store.get(t, 0.0) - b_store.get(t, 0.0)) for t in a_store},
        logs=logs,
        log_compression=compression,
    )


def _quiet(clock: HandlerClock, seconds: float = 3.0, timeout: float = 120.0) -> None:
    """Waits until no handler has been invoked for `seconds`."""
    deadline = time.monotonic() + timeout
    last, since = clock.snapshot(), time.monotonic()
    while time.monotonic() - since < seconds:
        if time.monotonic() > deadline:
            raise TimeoutError("the functions never went quiet")
        time.sleep(0.5)
        now = clock.snapshot()
        if now != last:
            last, since = now, time.monotonic()


def _read_from(path: Path, offset: int) -> tuple[str, int]:
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    return data.decode(errors="replace"), offset + len(data)


def _realtime_pageviews(url: str, key: str) -> int:
    request = urllib.request.Request(
        f"{url}/api/realtime?site_id={SITE}", headers={"authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return int(json.loads(response.read())["pageviews"])


def measure(
    rates: tuple[float, ...] = RATES,
    seconds: float = SECONDS,
    refreshes: int = REFRESHES,
    shape: Shape | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Measured:
    """Runs the local stack on SHARDS stream shards and measures each rate."""
    from core.aws import READ_TIMEOUT_VARIABLE

    os.environ.setdefault(READ_TIMEOUT_VARIABLE, "300")
    os.environ["POWERTOOLS_LOG_LEVEL"] = "DEBUG"
    from bench.terraform_facts import _Config
    from local.meter import CapacityMeter
    from local.stack import LocalStack, StackConfig

    shape = shape or Shape(static_bytes=static_bytes(), script_bytes=script_bytes())
    name_prefix = _Config(REPO / "terraform").evaluate("${local.name}") + "-"
    clock = HandlerClock()
    meter, failed = CapacityMeter(), FailedWrites()
    meter.install()
    failed.install()
    per_pageview: dict[float, Usage] = {}
    spa: Usage | None = None  # at SPA_RATE, a SPA_SHARE of the pageviews SPA navigations
    achieved: dict[float, float] = {}
    late: dict[float, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bill-") as tmp, timed_handlers(clock):
        log_path = Path(tmp) / "functions.log"
        log_path.touch()
        config = StackConfig(
            port=free_port(), data_dir=Path(tmp), persist=False, stream_shards=SHARDS
        )
        with captured_logs(log_path):
            stack = LocalStack(config)
            stack.start()
            try:
                from core.aws import make_client
                from core.sites import SiteStore

                sites = SiteStore(make_client("dynamodb"), stack.names["meta"])
                sites.add(SITE)
                key = sites.create_key(SITE)
                url = stack.url
                progress("bill: warming every function and shard up (not measured)")
                send_plan(url, plan(WARM_UP_RATE, WARM_UP_SECONDS, shape, seed=7), workers=4)
                time.sleep(3)
                stack.flush()
                _quiet(clock)
                _realtime_pageviews(url, key)
                offset = log_path.stat().st_size

                def run(rate: float, run_shape: Shape, label: str) -> tuple[Usage, float, float]:
                    """One rate's traffic, measured: (usage, pageviews/s sent, worst lateness)."""
                    nonlocal offset
                    duration = max(seconds, MIN_PAGEVIEWS / rate)
                    progress(f"bill: {rate:g} pageviews/s{label} for {duration:g} s")
                    counted = _realtime_pageviews(url, key)
                    events = plan(rate, duration, run_shape, seed=int(rate * 100))
                    meter.reset()
                    failed.reset()
                    stored_before = table_bytes(stack.names)
                    before = clock.snapshot()
                    _, offset = _read_from(log_path, offset)
                    traffic = send_plan(url, events, workers=max(2, min(12, int(rate))))
                    # No API polls while measuring (they would read too): the realtime tier's
                    # window, the rollup tier flushed, then both quiet for a few seconds.
                    time.sleep(3)
                    stack.flush()  # the rollup tier's batch, before its window ends
                    _quiet(clock)
                    sys.stdout.flush()
                    text, offset = _read_from(log_path, offset)
                    after = clock.snapshot()
                    metered, lost = meter.reset(), failed.reset()
                    if _realtime_pageviews(url, key) < counted + traffic["pageviews"]:
                        raise RuntimeError(f"the {rate:g}/s traffic was not all counted")
                    pageviews = traffic["pageviews"]
                    usage = _usage(
                        pageviews,
                        traffic,
                        "/api/event",
                        (before, after),
                        metered,
                        lost,
                        (stored_before, table_bytes(stack.names)),
                        text,
                        stack.names,
                        name_prefix,
                    )
                    usage.functions.pop("query", None)  # the check above
                    return usage, pageviews / duration, traffic["late"]

                for rate in rates:
                    per_pageview[rate], achieved[rate], late[rate] = run(rate, shape, "")
                if SPA_SHARE:
                    spa_shape = dataclasses.replace(shape, spa_share=SPA_SHARE)
                    spa, _, _ = run(SPA_RATE, spa_shape, f", an SPA ({SPA_SHARE:.0%})")

                def refreshes_of(site: str, site_key: str) -> Usage:
                    """`refreshes` realtime card refreshes of a site, measured."""
                    nonlocal offset
                    meter.reset()
                    failed.reset()
                    before = clock.snapshot()
                    _, offset = _read_from(log_path, offset)
                    totals = {"requests": 0.0, "sent": 0.0, "received": 0.0}
                    auth = f"Bearer {site_key}"
                    headers = {"authorization": auth, "user-agent": UA, "hx-request": "true"}
                    for _ in range(refreshes):
                        path = f"/api/realtime/card?site_id={site}"
                        sent, received = _send(url, path, None, headers)
                        totals["requests"] += 1
                        totals["sent"] += sent
                        totals["received"] += received
                    sys.stdout.flush()
                    text, offset = _read_from(log_path, offset)
                    return _usage(
                        refreshes,
                        totals,
                        "/api/realtime/card",
                        (before, clock.snapshot()),
                        meter.reset(),
                        failed.reset(),
                        ({}, {}),
                        text,
                        stack.names,
                        name_prefix,
                    )

                # A refresh reads the last 30 minutes' minute parts: what it costs grows with the
                # pageviews in them. Measured on a site without any and on the one every run
                # sent to; the bill prices each volume between the two (bill.refresh_at).
                progress("bill: realtime refreshes, a quiet site and the busy one")
                sites.add(QUIET_SITE)
                quiet = refreshes_of(QUIET_SITE, sites.create_key(QUIET_SITE))
                window = _realtime_pageviews(url, key)
                per_refresh = refreshes_of(SITE, key)
                # rate → the aggregates' (write, read) units a pageview
                steady: dict[float, tuple[float, float]] = {}
                for rate, usage in per_pageview.items():
                    if rate <= STEADY_MAX_RATE:
                        progress(f"bill: aggregates' steady units at {rate:g} pageviews/s")
                        steady[rate] = steady_units(rate, stack.moto.endpoint)
                        steady_aggregates(usage, steady[rate])
                if spa is not None:  # its events are the same mix: so are its steady units
                    if SPA_RATE not in steady:
                        steady[SPA_RATE] = steady_units(SPA_RATE, stack.moto.endpoint)
                    steady_aggregates(spa, steady[SPA_RATE])
            finally:
                stack.stop()
                meter.uninstall()
                failed.uninstall()
    return Measured(
        per_pageview, achieved, late, per_refresh, quiet, window, shape, name_prefix, spa
    )


def steady_units(rate: float, endpoint: str) -> tuple[float, float]:
    """The aggregates table's (write, read) units a pageview at `rate` in whole windows and fold
    cycles, the instances warm (bench/writes.py: one cycle, simulated time)."""
    from bench import writes

    tiers = writes.measure(rate, endpoint, fold_cycles=1).values()
    return sum(t.per_pageview() for t in tiers), sum(t.reads_per_pageview() for t in tiers)


def steady_aggregates(usage: Usage, per_pageview: tuple[float, float]) -> None:
    """The aggregates' steady write and read units a pageview in place of the live run's, plus
    its failed conditional writes."""
    writes, reads = per_pageview
    failed = usage.failed_write_units.get("aggregates", 0.0)
    usage.write_units["aggregates"] = writes * usage.units + failed
    usage.read_units["aggregates"] = reads * usage.units


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def static_bytes() -> float:
    """The dashboard and tracker builds in S3, twice (a noncurrent copy kept 30 days)."""
    roots = [REPO / "dashboard" / "dist", REPO / "tracker" / "dist"]
    size = sum(p.stat().st_size for root in roots if root.exists() for p in root.rglob("*"))
    return 2.0 * size


def script_bytes() -> float:
    """The tracker as CloudFront sends it: gzip body plus response headers (CORS, security)."""
    script = REPO / "tracker" / "dist" / "script.js"
    body = len(gzip.compress(script.read_bytes())) if script.exists() else 1000
    return body + 600 + CLOUDFRONT_HEADERS


# ---- the bench rows -------------------------------------------------------------------------


def rows(progress: Callable[[str], None] = lambda _: None) -> list[dict[str, Any]]:
    """`python -m bench --only bill`: the full bill's rows, the curve's table and PNG."""
    from bench import curve, prices, terraform_facts

    facts = terraform_facts.read()  # before the run: an unreadable Terraform fails at once
    measured = measure(progress=progress)
    shape = measured.shape
    out: list[dict[str, Any]] = []

    def row(figure: str, value: float, unit: str, goal: str = "", anchor: str = "") -> None:
        out.append(
            {
                "figure": figure,
                "value": round(value, 4),
                "unit": unit,
                "goal": goal,
                "anchor": anchor,
            }
        )

    scope = f"{shape.tabs} dashboard tab {shape.tab_hours_per_day:g} h/day, no free tier"
    swa = f"serverless-website-analytics worst case ${prices.PEER_SWA_PER_MILLION}/M at 1 M/month"
    for rate, usage in sorted(measured.per_pageview.items()):
        volume = rate * prices.SECONDS_PER_MONTH
        total = bill.monthly(volume, usage, measured.refresh_at(volume), facts, shape).total
        sent = measured.achieved[rate]
        note = f"; sent {sent:.2f}/s here, {measured.late[rate]:.1f} s behind at worst"
        if sent >= 0.9 * rate and measured.late[rate] < 2:
            note = ""
        row(
            f"all-in $ per million pageviews at {rate:g} pageviews/s "
            f"({volume / 1e6:,.1f} M a month, event mix, {scope}{note})",
            total / (volume / 1e6),
            "USD",
            "≤ 4",
            swa,
        )
    if measured.spa is not None:
        # A single-page app's site: the same events, fewer requests (decision 0041)
        spa_shape = dataclasses.replace(shape, spa_share=SPA_SHARE)
        volume = SPA_RATE * prices.SECONDS_PER_MONTH
        refresh = measured.refresh_at(volume)
        spa_bill = bill.monthly(volume, measured.spa, refresh, facts, spa_shape)
        full_loads = measured.per_pageview.get(SPA_RATE)
        anchor = swa
        if full_loads is not None:
            before = bill.monthly(volume, full_loads, refresh, facts, shape).total
            anchor = f"every page a full load: ${before / (volume / 1e6):.2f}/M; {swa}"
        row(
            f"all-in $ per million pageviews at {SPA_RATE:g} pageviews/s, an SPA site "
            f"({SPA_SHARE:.0%} of pageviews in-app navigations carrying the engagement of the page "
            f"they leave, decision 0041; {scope})",
            spa_bill.total / (volume / 1e6),
            "USD",
            "≤ 4",
            anchor,
        )
        for name, usage in (("every page a full load", full_loads), ("an SPA", measured.spa)):
            if usage is not None:
                row(
                    f"  … requests to /api/event per pageview, {name}",
                    usage.requests.get("/api/event", 0.0) / usage.units,
                    "requests",
                )
    row(
        "realtime refresh: pageviews in the busy site's 30-minute window when measured (a "
        "volume's refresh is priced on the line from the quiet site's, with none)",
        measured.window,
        "pageviews",
    )
    idle = bill.idle(
        measured.per_pageview[min(measured.per_pageview)], measured.per_refresh, facts, shape
    )
    row(
        "idle: fixed monthly items (no visitor, no open tab, no free tier)",
        idle.total,
        "USD/month",
        "≤ 1",
        "Plausible Cloud: $9 a month at its smallest plan",
    )
    row("idle with the always-free tier", idle.total_free_tier, "USD/month", "≤ 1")
    # One site's alert rules and email reports (issue 23), at 1 M pageviews a month: what they
    # add to the same bill.
    alerts = bill.AlertUse()
    low_usage = measured.per_pageview[min(measured.per_pageview)]
    base = bill.monthly(1e6, low_usage, measured.refresh_at(1e6), facts, shape)
    with_alerts = bill.monthly(
        1e6, low_usage, measured.refresh_at(1e6), facts, dataclasses.replace(shape, alerts=alerts)
    )
    row(
        f"alerts and reports for a site at 1 M a month ({alerts.describe()})",
        with_alerts.total - base.total,
        "USD/month",
        "",
        "Plausible: traffic alerts and reports included in its plans; Umami: none",
    )
    low = measured.per_pageview[min(measured.per_pageview)]
    levels = sorted({f.log_level for f in facts.functions.values()})
    row(
        f"log bytes per pageview at the Terraform level ({', '.join(levels)}), billed size, "
        f"at {min(measured.per_pageview):g}/s",
        bill.log_bytes_per_unit(low, facts),
        "bytes",
        "≤ 300",
        "issue 20 estimate before: ~3,200 at INFO",
    )
    points = curve.points(measured.per_pageview, measured.refresh_at, facts, shape)
    for point in points[1:]:
        row(
            f"monthly bill at {point.label} pageviews ({scope})",
            point.bill.total,
            "USD/month",
            "",
            prices.peer_anchor(point.pageviews),
        )
    million = next(p for p in points if p.pageviews == 1_000_000)
    row(
        f"all-in $ per million pageviews at 1 M a month with the always-free tier (event mix, "
        f"{shape.tabs} dashboard tab {shape.tab_hours_per_day:g} h/day; the account runs nothing "
        f"else; DynamoDB on demand has no free tier)",
        million.bill.total_free_tier,
        "USD",
        "≤ 4",
        f"no free tier: ${million.bill.total:.2f}; {swa}",
    )
    for item in sorted(million.bill.items, key=lambda i: -i.usd):
        row(f"  … at 1 M a month: {item.name}", item.usd, "USD/month", "", item.covers[:120])
    table = curve.markdown(points)
    print(table, file=sys.__stderr__)
    try:
        curve.render_png(points)
    except Exception as error:  # no Chromium or Chart.js here: the table still stands
        print(f"bench: no bill curve PNG ({error})", file=sys.__stderr__)
    return out
