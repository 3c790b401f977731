"""The full monthly bill: every AWS line item, from what a run measured and what Terraform says.

Pure: the functions here take a measured run (bench/bill_run.py measures one on the local stack),
the Terraform facts (bench/terraform_facts.py) and the traffic's shape, and return line items; no
file, clock or network. `monthly()` scales a run to any volume, so the curve (bench/curve.py)
and the bench rows come from the same model.

What a run measures, per unit of work (a pageview with its share of the event mix, or one
refresh of the realtime view): requests through the front by path and their bytes, each
function's invocations and handler time (CPU on a full core, and time waiting for DynamoDB),
DynamoDB units per table (failed conditional writes included), bytes stored per table, and the
functions' log lines by level (EMF blobs apart). Lambda's CPU share: below 1,769 MB a function gets
memory/1,769 of a core, so CPU time measured on a full core is billed that much longer; waiting
is billed as it is.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace

from bench import prices
from bench.terraform_facts import LEVELS, TerraformFacts

REQUEST_ID = "8f507cfc-6c2f-4c07-b8b1-5a2b0f2d1e3a"
# Lambda's platform lines, at their real sizes (a Text-format function; JSON-format records are
# longer). Billed like any other log event.
PLATFORM_TEXT = (
    f"START RequestId: {REQUEST_ID} Version: $LATEST",
    f"END RequestId: {REQUEST_ID}",
    f"REPORT RequestId: {REQUEST_ID}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
    "Memory Size: 256 MB\tMax Memory Used: 89 MB\t",
)
PLATFORM_JSON = (
    '{"time":"2026-12-06T10:00:00.000Z","type":"platform.start","record":{"requestId":"'
    + REQUEST_ID
    + '","version":"$LATEST"}}',
    '{"time":"2026-12-06T10:00:00.013Z","type":"platform.runtimeDone","record":{"requestId":"'
    + REQUEST_ID
    + '","status":"success","spans":[{"name":"responseLatency","start":"2026-12-06T10:00:00.001Z",'
    '"durationMs":11.9},{"name":"responseDuration","start":"2026-12-06T10:00:00.013Z",'
    '"durationMs":0.1}],"metrics":{"durationMs":12.3,"producedBytes":120}}}',
    '{"time":"2026-12-06T10:00:00.014Z","type":"platform.report","record":{"requestId":"'
    + REQUEST_ID
    + '","metrics":{"durationMs":12.34,"billedDurationMs":13,"memorySizeMB":256,'
    '"maxMemoryUsedMB":89},"status":"success"}}',
)
# Lambda rounds each invocation's duration up to the next millisecond: half of one on average.
ROUNDING_SECONDS = 0.0005


# ---- what a run measured --------------------------------------------------------------------


@dataclass
class FunctionLogs:
    """One function's log lines: (lines, bytes) by level, EMF blobs apart, and EMF metrics
    (namespace, name, dimensions) with how many times each was published."""

    by_level: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    emf: list[int] = field(default_factory=lambda: [0, 0])
    metrics: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = field(
        default_factory=lambda: defaultdict(int)
    )

    def lines_at_or_above(self, level: str) -> tuple[int, int]:
        floor = LEVELS[level]
        kept = [v for lvl, v in self.by_level.items() if LEVELS.get(lvl, 50) >= floor]
        return sum(v[0] for v in kept), sum(v[1] for v in kept)


def parse_log(text: str, functions: set[str], name_prefix: str = "") -> dict[str, FunctionLogs]:
    """The functions' JSON log lines, by the `service` each names (other lines are not theirs).

    `name_prefix` is what a deployment puts before a function's name (Terraform's
    `<project>-<environment>-`): the local stack's lines name the bare function, so each
    function_name and function_arn gets the prefix's bytes added."""
    found: dict[str, FunctionLogs] = {name: FunctionLogs() for name in functions}
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        service = record.get("service") if isinstance(record, dict) else None
        if service not in found:
            continue
        size = len(line.encode())
        size += len(name_prefix.encode()) * (
            ("function_name" in record) + ("function_arn" in record)
        )
        logs = found[service]
        if "_aws" in record:
            logs.emf[0] += 1
            logs.emf[1] += size
            for directive in record["_aws"].get("CloudWatchMetrics", []):
                for dimension_set in directive.get("Dimensions", []):
                    dims = tuple(sorted((d, str(record.get(d, ""))) for d in dimension_set))
                    for metric in directive.get("Metrics", []):
                        logs.metrics[(directive["Namespace"], metric["Name"], dims)] += 1
            continue
        level = str(record.get("level", "INFO")).upper()
        logs.by_level[level][0] += 1
        logs.by_level[level][1] += size
    return found


@dataclass(frozen=True)
class FunctionUse:
    invocations: float
    cpu_seconds: float  # handler CPU time on a full core
    wait_seconds: float  # handler time not on the CPU (DynamoDB round trips)


@dataclass
class Usage:
    """What `units` of work used (units: pageviews, or realtime refreshes)."""

    units: float
    requests: dict[str, float] = field(default_factory=dict)  # through the front, by path
    bytes_out: dict[str, float] = field(default_factory=dict)  # to viewers, headers included
    bytes_to_origin: dict[str, float] = field(default_factory=dict)  # request bodies + headers
    functions: dict[str, FunctionUse] = field(default_factory=dict)
    write_units: dict[str, float] = field(default_factory=dict)  # by table, failed ones included
    failed_write_units: dict[str, float] = field(default_factory=dict)  # of which failed
    read_units: dict[str, float] = field(default_factory=dict)
    stored_bytes: dict[str, float] = field(default_factory=dict)  # added, by table
    logs: dict[str, FunctionLogs] = field(default_factory=dict)
    log_compression: float = 0.15  # stored (compressed) / ingested bytes


@dataclass(frozen=True)
class AlertUse:
    """One site's alert rules and email reports (issue 23), priced from the calls the code makes
    (decisions 0036-0038): what a rule reads per realtime batch or per scheduled minute, what a
    message and a report cost to deliver."""

    stream_rules: bool = True  # spike or goal rules: read with each realtime batch of the site
    stream_read_units_per_batch: float = 2.0  # 4 minute-part Queries at a small site
    drop_rules: int = 1  # read by the minute schedule (0037: <= 2.5 read units a minute)
    drop_read_units_per_minute: float = 2.5
    referrer_rules: int = 1  # every 5th minute, ~3.5 read units
    referrer_read_units_per_run: float = 3.5
    messages: float = 20.0  # alerts and "resolved" messages a month
    webhook_seconds: float = 0.3  # the delivery function waiting on the endpoint, 128 MB
    report_recipients: int = 2  # weekly and monthly reports each
    report_seconds: float = 0.35  # measured (0038): a weekly report's build and send, 512 MB
    report_read_units: float = 16.0  # the report's questions to the counters

    def describe(self) -> str:
        return (
            f"one site with {'spike/goal rules, ' if self.stream_rules else ''}"
            f"{self.drop_rules} drop and {self.referrer_rules} new-referrer rule(s), "
            f"{self.messages:g} alert messages a month, weekly and monthly reports to "
            f"{self.report_recipients} recipient(s)"
        )


@dataclass(frozen=True)
class Shape:
    """The traffic around the measured run: what a run does not do itself."""

    engagement_per_pageview: float = 1.0
    # Pageviews that are an SPA's in-app navigations: each carries the engagement of the page it
    # leaves (decision 0041), one request for the two. 0: every page a full load (the blog).
    spa_share: float = 0.0
    outbound_per_pageview: float = 0.05
    download_per_pageview: float = 0.02
    custom_per_pageview: float = 0.05
    # The tracker script: browsers keep it a day (cdn.tf's response headers policy), CloudFront's
    # edges 300 s; a fetch per visit more or less, about 0.3 a pageview (decision 0026).
    script_fetches_per_pageview: float = 0.3
    script_bytes: float = 1400.0  # gzip body + response headers
    tabs: int = 1  # dashboard tabs open on the realtime view
    tab_hours_per_day: float = 8.0
    # The realtime view polls every 10 s when nobody uses the page, 2 s while someone does (an
    # hour watched costs ~$0.0034 more, decision 0026): a tab left open is priced.
    refresh_seconds: float = 10.0
    # Days data stays in each table (the schema's TTLs); None: kept (counted for one month).
    table_retention_days: dict[str, float | None] = field(
        default_factory=lambda: {"events": 7.0, "aggregates": None, "meta": None}
    )
    static_bytes: float = 0.0  # the dashboard and tracker in S3 (with one noncurrent copy)
    # The event archive (issue 18). Bytes per event after compaction and a compaction run's
    # CPU (one site-day merged, on a full core) as bench/archive.py measured them at 1 M
    # pageviews a month; the stream's shards, each its own rollup batches (decision 0025: 4).
    archive_bytes_per_event: float = 60.0
    compaction_cpu_seconds_per_run: float = 0.5
    compaction_wait_seconds_per_run: float = 0.3  # S3 round trips: list, get, put, deletes
    stream_shards: int = 4
    # Questions only the archive answers (a filtered breakdown): each fetches its days' objects
    # once into the query function's cache (S3 GETs) and scans them (Lambda time: in the run's
    # query use when it measured some). None by default: a click through a card is priced by
    # bench/archive.py's $ per 1,000 queries.
    archive_queries: float = 0.0
    archive_gets_per_query: float = 32.0  # 30 days plus one on each side
    athena_queries: float = 0.0  # with var.athena: queries a month, each scanning
    athena_bytes_per_query: float = 0.0
    # Scheduled functions besides compaction (decisions 0037, 0038): what a run costs when it
    # finds nothing to do, from the calls the code makes: a warm invocation waiting on one
    # eventually consistent read (0.5 read units) of the meta table.
    scheduled_run_wait_seconds: float = 0.03
    scheduled_run_read_units: float = 0.5
    alerts: AlertUse | None = None  # one site's alert rules and reports; None: no rules

    def events_per_pageview(self) -> float:
        return (
            1.0
            + self.engagement_per_pageview
            + self.outbound_per_pageview
            + self.download_per_pageview
            + self.custom_per_pageview
        )

    def refreshes_per_month(self) -> float:
        if not self.tabs:
            return 0.0
        per_day = self.tabs * self.tab_hours_per_day * 3600 / self.refresh_seconds
        return per_day * prices.DAYS_PER_MONTH

    def describe(self) -> str:
        spa = (
            f" ({self.spa_share:.0%} of pageviews SPA navigations carrying the page left's)"
            if self.spa_share
            else ""
        )
        return (
            f"per pageview: {self.engagement_per_pageview:g} engagement{spa}, "
            f"{self.outbound_per_pageview:g} outbound, {self.download_per_pageview:g} download, "
            f"{self.custom_per_pageview:g} custom events, "
            f"{self.script_fetches_per_pageview:g} tracker script fetches; "
            f"{self.tabs} dashboard tab(s) on the realtime view {self.tab_hours_per_day:g} h a day "
            f"(a refresh every {self.refresh_seconds:g} s)"
        )


# ---- the bill -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    name: str
    usd: float  # a month, without any free tier
    usd_free_tier: float  # a month, after the always-free offers
    fixed: bool
    covers: str


@dataclass(frozen=True)
class Bill:
    pageviews: float
    items: tuple[LineItem, ...]
    scope: str

    @property
    def total(self) -> float:
        return sum(i.usd for i in self.items)

    @property
    def total_free_tier(self) -> float:
        return sum(i.usd_free_tier for i in self.items)

    @property
    def fixed(self) -> float:
        return sum(i.usd for i in self.items if i.fixed)

    def item(self, prefix: str) -> float:
        return sum(i.usd for i in self.items if i.name.startswith(prefix))


def billed_seconds(use: FunctionUse, memory_mb: int) -> float:
    """Lambda's billed duration for measured CPU and waiting time at a memory size."""
    share = min(1.0, memory_mb / prices.LAMBDA_FULL_CORE_MB)
    return use.cpu_seconds / share + use.wait_seconds + use.invocations * ROUNDING_SECONDS


def log_bytes(
    logs: FunctionLogs, level: str, invocations: float, platform: tuple[str, ...]
) -> tuple[float, float]:
    """(log events, billed bytes) a function writes at `level`: its lines at or above it, its
    EMF blobs, and Lambda's platform lines per invocation, each event 26 bytes more."""
    kept_lines, kept_bytes = logs.lines_at_or_above(level)
    lines = kept_lines + logs.emf[0] + invocations * len(platform)
    size = kept_bytes + logs.emf[1] + invocations * sum(len(p.encode()) for p in platform)
    return lines, size + lines * prices.LOG_EVENT_OVERHEAD_BYTES


def platform_lines(facts: TerraformFacts, name: str) -> tuple[str, ...]:
    """Lambda's START/END/REPORT lines of one invocation of a function, as Terraform configures
    them (none when its system logs are at WARN)."""
    function = facts.functions[name]
    if not function.platform_lines:
        return ()
    return PLATFORM_JSON if function.log_format == "JSON" else PLATFORM_TEXT


def function_log_bytes(usage: Usage, name: str, facts: TerraformFacts) -> float:
    """Billed log bytes one function wrote for `usage`, at its Terraform level."""
    if name not in usage.logs and name not in usage.functions:
        return 0.0
    logs = usage.logs.get(name, FunctionLogs())
    use = usage.functions.get(name, FunctionUse(0, 0, 0))
    level = facts.functions[name].log_level
    return log_bytes(logs, level, use.invocations, platform_lines(facts, name))[1]


# The realtime card reads the last 30 minutes (query_api/reader.py REALTIME_MINUTES).
REALTIME_WINDOW_SECONDS = 30 * 60


def refresh_at(pageviews_a_month: float, quiet: Usage, busy: Usage, busy_window: float) -> Usage:
    """Realtime refreshes at this volume: measured on a site with no pageview in its 30-minute
    window (`quiet`) and on one with `busy_window` of them (`busy`), and taken on the line
    through the two, by the pageviews the volume puts in the window (beyond `busy_window`, the
    line goes on: the parts read, their bytes and the visitor hashes joined grow with it). As
    many refreshes as `busy` measured; their log lines are `busy`'s."""
    window = pageviews_a_month / prices.SECONDS_PER_MONTH * REALTIME_WINDOW_SECONDS
    t = window / busy_window if busy_window > 0 else 0.0
    ratio = busy.units / quiet.units if quiet.units else 0.0

    def line(low: float, high: float) -> float:
        return max(0.0, low * ratio + (high - low * ratio) * t)

    def each(low: dict[str, float], high: dict[str, float]) -> dict[str, float]:
        return {k: line(low.get(k, 0.0), high.get(k, 0.0)) for k in set(low) | set(high)}

    functions = {}
    for name in set(quiet.functions) | set(busy.functions):
        a = quiet.functions.get(name, FunctionUse(0, 0, 0))
        b = busy.functions.get(name, FunctionUse(0, 0, 0))
        functions[name] = FunctionUse(
            line(a.invocations, b.invocations),
            line(a.cpu_seconds, b.cpu_seconds),
            line(a.wait_seconds, b.wait_seconds),
        )
    return replace(
        busy,
        requests=each(quiet.requests, busy.requests),
        bytes_out=each(quiet.bytes_out, busy.bytes_out),
        bytes_to_origin=each(quiet.bytes_to_origin, busy.bytes_to_origin),
        functions=functions,
        write_units=each(quiet.write_units, busy.write_units),
        failed_write_units=each(quiet.failed_write_units, busy.failed_write_units),
        read_units=each(quiet.read_units, busy.read_units),
        stored_bytes=each(quiet.stored_bytes, busy.stored_bytes),
    )


def log_bytes_per_unit(usage: Usage, facts: TerraformFacts) -> float:
    """Billed CloudWatch Logs bytes per unit of work: every function at its Terraform level and
    the API access log."""
    size = sum(function_log_bytes(usage, name, facts) for name in facts.functions)
    for path, n in usage.requests.items():
        route = facts.routes.get(path)
        if route and route.access_log_bytes:
            size += n * (route.access_log_bytes + prices.LOG_EVENT_OVERHEAD_BYTES)
    return size / usage.units if usage.units else 0.0


def _scaled(usage: Usage, factor: float) -> dict[str, float]:
    """Flat sums of a usage times `factor`, keyed for the line items below."""
    out: dict[str, float] = defaultdict(float)
    for path, n in usage.requests.items():
        out[f"requests {path}"] += n * factor
    for path, n in usage.bytes_out.items():
        out[f"bytes_out {path}"] += n * factor
    for path, n in usage.bytes_to_origin.items():
        out[f"bytes_to_origin {path}"] += n * factor
    for name, use in usage.functions.items():
        out[f"invocations {name}"] += use.invocations * factor
        out[f"cpu {name}"] += use.cpu_seconds * factor
        out[f"wait {name}"] += use.wait_seconds * factor
    for table, units in usage.write_units.items():
        out[f"wru {table}"] += units * factor
    for table, units in usage.failed_write_units.items():
        out[f"failed_wru {table}"] += units * factor
    for table, units in usage.read_units.items():
        out[f"rru {table}"] += units * factor
    for table, size in usage.stored_bytes.items():
        out[f"stored {table}"] += size * factor
    return out


def monthly(
    pageviews: float,
    per_pageview: Usage,
    per_refresh: Usage,
    facts: TerraformFacts,
    shape: Shape,
) -> Bill:
    """The bill of a month with `pageviews` (the run's mix of events) and `shape.tabs` tabs."""
    refreshes = shape.refreshes_per_month() if pageviews > 0 or shape.tabs else 0.0
    pv_factor = pageviews / per_pageview.units if per_pageview.units else 0.0
    q_factor = refreshes / per_refresh.units if per_refresh.units else 0.0
    flat: dict[str, float] = defaultdict(float)
    for usage, factor in ((per_pageview, pv_factor), (per_refresh, q_factor)):
        for key, value in _scaled(usage, factor).items():
            flat[key] += value
    add = _Ledger()

    paths = sorted({k.split(" ", 1)[1] for k in flat if k.startswith("requests ")})
    script = "/js/script.js"
    flat[f"requests {script}"] += pageviews * shape.script_fetches_per_pageview
    flat[f"bytes_out {script}"] += (
        pageviews * shape.script_fetches_per_pageview * shape.script_bytes
    )
    if script not in paths:
        paths.append(script)

    _front(add, flat, facts, paths)
    _archive(add, flat, pageviews, shape, facts)  # before _lambda: it adds compaction's runs
    _scheduled(add, facts, shape)
    _alerts(add, flat, facts, shape)  # before _lambda and _dynamodb: its runs and reads
    _lambda(add, flat, facts)
    _dynamodb(add, flat, pageviews, shape, facts)
    _logs(add, per_pageview, per_refresh, pv_factor, q_factor, flat, facts)
    _metrics(add, per_pageview, per_refresh, pv_factor, q_factor, facts)
    _fixed(add, facts, shape)
    scope = (
        f"{pageviews:,.0f} pageviews a month; {shape.describe()}; prices: us-east-1 list "
        f"prices as of {prices.AS_OF}; totals without and with the always-free tier; archive: "
        f"{_archive_scope(facts, shape)}; alerts and reports: "
        f"{shape.alerts.describe() if shape.alerts else 'no rule, no report'}; not counted: S3 GETs on CloudFront cache "
        "misses, dashboard page loads, SNS e-mails, data transfer of anything but CloudFront, the "
        "query function's /tmp beyond 512 MB (1.5 GB at $0.0000000309 a GB-s: ~$0.00005 per "
        "1,000 one-second archive questions)"
    )
    return Bill(pageviews, tuple(add.items), scope)


def idle(per_pageview: Usage, per_refresh: Usage, facts: TerraformFacts, shape: Shape) -> Bill:
    """No visitor and no open dashboard: what the month costs before anything happens."""
    return monthly(0, per_pageview, per_refresh, facts, replace(shape, tabs=0))


class _Ledger:
    """The line items as they are added: `add(name, usd, usd_free_tier, fixed, covers)`."""

    def __init__(self) -> None:
        self.items: list[LineItem] = []

    def __call__(self, name: str, usd: float, free: float, fixed: bool, covers: str) -> None:
        self.items.append(LineItem(name, usd, max(0.0, free), fixed, covers))


def _front(add: _Ledger, flat: dict[str, float], facts: TerraformFacts, paths: list[str]) -> None:
    cf_requests = cf_bytes = origin_bytes = cf_function_runs = 0.0
    by_origin: dict[str, float] = defaultdict(float)
    for path in paths:
        route = facts.route(path)
        n = flat.get(f"requests {path}", 0.0)
        if route.cloudfront:
            cf_requests += n
            cf_bytes += flat.get(f"bytes_out {path}", 0.0)
            origin_bytes += flat.get(f"bytes_to_origin {path}", 0.0)
            cf_function_runs += n * route.cloudfront_functions
        by_origin[route.origin] += n
    gb = 1024**3
    if facts.cloudfront:
        p = prices.CLOUDFRONT_REQUEST
        add(
            "CloudFront requests",
            cf_requests * p.usd,
            (cf_requests - prices.CLOUDFRONT_FREE_REQUESTS) * p.usd,
            False,
            f"{cf_requests:,.0f} requests (events, realtime refreshes, tracker script); {p.cite()}",
        )
        p = prices.CLOUDFRONT_DATA_OUT
        add(
            "CloudFront data out",
            cf_bytes / gb * p.usd,
            (cf_bytes / gb - prices.CLOUDFRONT_FREE_GB) * p.usd,
            False,
            f"{cf_bytes / gb:,.3f} GB to viewers, headers included; {p.cite()}",
        )
        p = prices.CLOUDFRONT_DATA_TO_ORIGIN
        add(
            "CloudFront data to origin",
            origin_bytes / gb * p.usd,
            origin_bytes / gb * p.usd,
            False,
            f"{origin_bytes / gb:,.3f} GB of requests sent on to the API; {p.cite()}",
        )
        if cf_function_runs:
            p = prices.CLOUDFRONT_FUNCTION
            add(
                "CloudFront Functions",
                cf_function_runs * p.usd,
                (cf_function_runs - 2_000_000) * p.usd,
                False,
                f"{cf_function_runs:,.0f} invocations; {p.cite()}",
            )
    fronts = {
        "http_api": ("HTTP API requests", prices.HTTP_API_REQUEST),
        "rest_api": ("REST API requests", prices.REST_API_REQUEST),
        "function_url": ("Lambda function URL requests", prices.FUNCTION_URL_REQUEST),
    }
    for origin, (name, p) in fronts.items():
        if origin in by_origin:
            n = by_origin[origin]
            add(name, n * p.usd, n * p.usd, False, f"{n:,.0f} requests; {p.cite()}")


def _archive_scope(facts: TerraformFacts, shape: Shape) -> str:
    if facts.archive is None:
        return "none"
    return (
        f"{shape.archive_bytes_per_event:g} bytes an event, a month's events stored (the archive "
        f"grows month on month up to each site's retention), {shape.archive_queries:g} archive "
        f"queries"
    )


def archive_puts(events: float, facts: TerraformFacts, shape: Shape) -> float:
    """Objects the archiving tier writes in a month for one site: one per batch (and day), a
    batch per shard per window while events flow, more when batches fill before the window ends.
    """
    if facts.archive is None or events <= 0:
        return 0.0
    windows = prices.SECONDS_PER_MONTH / facts.archive.batch_window_seconds * shape.stream_shards
    return min(events, max(windows, events / facts.archive.batch_size))


def _archive(
    add: _Ledger, flat: dict[str, float], pageviews: float, shape: Shape, facts: TerraformFacts
) -> None:
    """S3 requests and storage of the event archive, and its compaction runs' Lambda use (added
    to `flat` for _lambda). One site; its day's objects are merged once an hour."""
    archive = facts.archive
    if archive is None:
        return
    events = pageviews * shape.events_per_pageview()
    written = archive_puts(events, facts, shape)
    runs = archive.compaction_runs_per_month
    merging = min(runs, written)  # runs that find new parts: each writes one merged object
    # A run lists the site's days, gets the new parts and the day's merged object, puts the new
    # merged object and deletes the parts (free).
    lists = runs
    gets = written + merging + shape.archive_queries * shape.archive_gets_per_query
    puts = written + merging
    p_put, p_get, p_list = prices.S3_PUT, prices.S3_GET, prices.S3_LIST
    add(
        "S3 archive: PUT requests",
        puts * p_put.usd,
        puts * p_put.usd,
        False,
        f"{written:,.0f} objects from the rollup tier's batches ({shape.stream_shards} shards, "
        f"a {archive.batch_window_seconds:g} s window, {events:,.0f} events), {merging:,.0f} "
        f"merged by compaction; {p_put.cite()}",
    )
    add(
        "S3 archive: GET requests",
        gets * p_get.usd,
        gets * p_get.usd,
        False,
        f"{gets:,.0f} GETs: compaction reads each part and the day's merged object, "
        f"{shape.archive_queries:g} archive queries x {shape.archive_gets_per_query:g} days' "
        f"objects; {p_get.cite()}",
    )
    stored_gb = events * shape.archive_bytes_per_event / 1024**3
    p = prices.S3_STORAGE
    add(
        "S3 archive: storage",
        stored_gb * p.usd,
        stored_gb * p.usd,
        False,
        f"{stored_gb:,.3f} GB: a month's events at {shape.archive_bytes_per_event:g} bytes each "
        f"(Parquet, compacted; the archive keeps each month up to the site's retention, 24 "
        f"months by default); {p.cite()}",
    )
    p = prices.EVENTBRIDGE_SCHEDULED_EVENT
    add("EventBridge: compaction schedule", 0.0, 0.0, True, f"{runs:,.0f} events; {p.cite()}")
    # Every run costs its request, its listing and its round trips, traffic or not: fixed. The
    # merging CPU goes to the compaction function's duration line with the rest (_lambda).
    name = archive.compaction_function
    function = facts.functions[name]
    arm = function.architecture == "arm64"
    gb_second = prices.LAMBDA_GB_SECOND_ARM if arm else prices.LAMBDA_GB_SECOND_X86
    idle_gb_s = runs * shape.compaction_wait_seconds_per_run * function.memory_mb / 1024
    usd = runs * prices.LAMBDA_REQUEST.usd + idle_gb_s * gb_second.usd + lists * p_list.usd
    add(
        "Archive compaction runs (requests, listings, waiting)",
        usd,
        usd,
        True,
        f"{runs:,.0f} runs a month, {idle_gb_s:,.0f} GB-s at {function.memory_mb} MB waiting on "
        f"S3, {lists:,.0f} LISTs; {gb_second.cite()}",
    )
    if merging:
        flat[f"cpu {name}"] += merging * shape.compaction_cpu_seconds_per_run
    if archive.athena and shape.athena_queries:
        scanned = shape.athena_queries * max(shape.athena_bytes_per_query, prices.ATHENA_MIN_BYTES)
        p = prices.ATHENA_SCANNED
        usd = scanned / 1024**4 * p.usd
        add(
            "Athena: archive queries",
            usd,
            usd,
            False,
            f"{shape.athena_queries:,.0f} queries scanning {scanned / 1024**3:,.1f} GB; {p.cite()}",
        )


def _scheduled(add: _Ledger, facts: TerraformFacts, shape: Shape) -> None:
    """The runs of every scheduled function but compaction (priced in _archive): each an
    invocation waiting on one read, traffic or not (the alerts' minute schedule; the reports'
    hourly one when email is on). Fixed items: they are paid before the first visitor."""
    compaction = facts.archive.compaction_function if facts.archive else ""
    for name, runs in sorted(facts.scheduled_runs.items()):
        if name == compaction:
            continue
        function = facts.functions[name]
        arm = function.architecture == "arm64"
        gb_second = prices.LAMBDA_GB_SECOND_ARM if arm else prices.LAMBDA_GB_SECOND_X86
        gb_s = runs * (shape.scheduled_run_wait_seconds + ROUNDING_SECONDS) * function.memory_mb
        gb_s /= 1024
        reads = runs * shape.scheduled_run_read_units
        lam = runs * prices.LAMBDA_REQUEST.usd + gb_s * gb_second.usd
        dynamo = reads * prices.READ_REQUEST_UNIT.usd
        add(
            f"Scheduled runs: {name}",
            lam + dynamo,
            dynamo,  # its requests and GB-s fit in Lambda's always-free tier at these sizes
            True,
            f"{runs:,.0f} runs, {gb_s:,.0f} GB-s at {function.memory_mb} MB waiting on "
            f"{reads:,.0f} read units of meta; {gb_second.cite()}",
        )
    if facts.scheduler_invocations:
        n = facts.scheduler_invocations
        p = prices.EVENTBRIDGE_SCHEDULER_INVOCATION
        add(
            "EventBridge Scheduler",
            n * p.usd,
            max(0.0, n - prices.EVENTBRIDGE_SCHEDULER_FREE) * p.usd,
            True,
            f"{n:,.0f} invocations (the alerts' minute schedule); {p.cite()}",
        )


def _alerts(add: _Ledger, flat: dict[str, float], facts: TerraformFacts, shape: Shape) -> None:
    """One site's rules and reports: the reads its rules add to realtime batches and scheduled
    minutes, the messages' queue, delivery and mail, the reports' runs and mail."""
    use = shape.alerts
    if use is None:
        return
    minutes = prices.SECONDS_PER_MONTH / 60
    # The site's realtime batches: the aggregator's invocations (the rollup tier's 300 s batches
    # are a few thousand of them a month).
    batches = flat.get("invocations aggregator", 0.0) if use.stream_rules else 0.0
    reads = batches * use.stream_read_units_per_batch
    reads += use.drop_rules * minutes * use.drop_read_units_per_minute
    reads += use.referrer_rules * minutes / 5 * use.referrer_read_units_per_run
    # A message: 2 conditional writes to record it, the delivery's 1.5 read units and 2 writes
    # (0036); SendMessage, ReceiveMessage and DeleteMessage; one 128 MB invocation.
    reads += use.messages * 1.5
    writes = use.messages * 4
    sqs = use.messages * 3
    flat["invocations alerts"] += use.messages
    flat["wait alerts"] += use.messages * use.webhook_seconds
    # Reports: 4.35 weekly and 1 monthly a month, built once per period and sent to each
    # recipient (2 write units a recipient: the sent marker claimed, then marked sent).
    periods = prices.DAYS_PER_MONTH / 7 + 1
    reads += periods * use.report_read_units
    writes += periods * use.report_recipients * 2
    flat["invocations reports"] += periods
    flat["wait reports"] += periods * use.report_seconds
    mails = periods * use.report_recipients + use.messages
    flat["rru meta"] += reads
    flat["wru meta"] += writes
    p = prices.SQS_REQUEST
    add("SQS: alert messages", sqs * p.usd, 0.0, False, f"{sqs:,.0f} requests; {p.cite()}")
    p = prices.SES_EMAIL
    add(
        "SES: alert and report mail",
        mails * p.usd,
        mails * p.usd,
        False,
        f"{mails:,.0f} emails ({use.describe()}); {p.cite()}",
    )


def _lambda(add: _Ledger, flat: dict[str, float], facts: TerraformFacts) -> None:
    invocations = sum(v for k, v in flat.items() if k.startswith("invocations "))
    p = prices.LAMBDA_REQUEST
    add(
        "Lambda requests",
        invocations * p.usd,
        (invocations - prices.LAMBDA_FREE_REQUESTS) * p.usd,
        False,
        f"{invocations:,.0f} invocations, every function; {p.cite()}",
    )
    free_left = prices.LAMBDA_FREE_GB_SECONDS
    for name in sorted(facts.functions):
        function = facts.functions[name]
        use = FunctionUse(
            flat.get(f"invocations {name}", 0.0),
            flat.get(f"cpu {name}", 0.0),
            flat.get(f"wait {name}", 0.0),
        )
        # CPU without invocations: compaction's merging, its runs priced as a fixed item.
        seconds = (
            billed_seconds(use, function.memory_mb) if use.invocations or use.cpu_seconds else 0.0
        )
        gb_seconds = seconds * function.memory_mb / 1024
        p = (
            prices.LAMBDA_GB_SECOND_ARM
            if function.architecture == "arm64"
            else prices.LAMBDA_GB_SECOND_X86
        )
        free = min(free_left, gb_seconds)
        free_left -= free
        add(
            f"Lambda duration: {name}",
            gb_seconds * p.usd,
            (gb_seconds - free) * p.usd,
            False,
            f"{gb_seconds:,.0f} GB-s at {function.memory_mb} MB {function.architecture}: CPU "
            f"{use.cpu_seconds:,.0f} s on a full core x {prices.LAMBDA_FULL_CORE_MB}/"
            f"{min(function.memory_mb, prices.LAMBDA_FULL_CORE_MB)} + {use.wait_seconds:,.0f} s "
            f"waiting; {p.cite()}",
        )


def _dynamodb(
    add: _Ledger, flat: dict[str, float], pageviews: float, shape: Shape, facts: TerraformFacts
) -> None:
    del pageviews
    tables = sorted({k.split(" ", 1)[1] for k in flat if k.split(" ", 1)[0] in ("wru", "rru")})
    for table in tables:
        wru, rru = flat.get(f"wru {table}", 0.0), flat.get(f"rru {table}", 0.0)
        failed = flat.get(f"failed_wru {table}", 0.0)
        w, r = prices.WRITE_REQUEST_UNIT, prices.READ_REQUEST_UNIT
        usd = wru * w.usd + rru * r.usd
        add(
            f"DynamoDB requests: {table}",
            usd,
            usd,
            False,
            f"{wru:,.0f} write units ({failed:,.0f} of them failed conditional writes), "
            f"{rru:,.0f} read units; {w.cite()}",
        )
    stored_gb = 0.0
    pitr_gb = 0.0
    for key in sorted(k for k in flat if k.startswith("stored ")):
        table = key.split(" ", 1)[1]
        days = shape.table_retention_days.get(table)
        months = min(1.0, days / prices.DAYS_PER_MONTH) if days is not None else 1.0
        gb = flat[key] * months / 1024**3
        stored_gb += gb
        if table in facts.pitr_tables:
            pitr_gb += gb
    p = prices.DYNAMODB_STORAGE
    add(
        "DynamoDB storage",
        stored_gb * p.usd,
        (stored_gb - prices.DYNAMODB_FREE_STORAGE_GB) * p.usd,
        False,
        f"{stored_gb:,.3f} GB: raw events for their TTL, a month's aggregates (they grow "
        f"month on month); {p.cite()}",
    )
    if pitr_gb:
        p = prices.DYNAMODB_PITR
        add(
            "DynamoDB point-in-time recovery",
            pitr_gb * p.usd,
            pitr_gb * p.usd,
            False,
            f"{pitr_gb:,.3f} GB in {', '.join(facts.pitr_tables)}; {p.cite()}",
        )


def _logs(
    add: _Ledger,
    per_pageview: Usage,
    per_refresh: Usage,
    pv_factor: float,
    q_factor: float,
    flat: dict[str, float],
    facts: TerraformFacts,
) -> None:
    gb = 1024**3
    ingested = 0.0
    compression = per_pageview.log_compression
    for name in sorted(facts.functions):
        function = facts.functions[name]
        size = sum(
            function_log_bytes(usage, name, facts) * factor
            for usage, factor in ((per_pageview, pv_factor), (per_refresh, q_factor))
        )
        platform = platform_lines(facts, name)
        ingested += size
        add(
            f"CloudWatch Logs ingestion: {name}",
            size / gb * facts.log_ingestion_usd_per_gb,
            size / gb * facts.log_ingestion_usd_per_gb,
            False,
            f"{size / gb:,.3f} GB at {function.log_level} (lines at or above it, EMF blobs, "
            f"{len(platform)} platform lines an invocation, 26 bytes an event); "
            f"${facts.log_ingestion_usd_per_gb}/GB, {prices.LOGS_INGESTION.cite()}",
        )
    access = 0.0
    for path, route in facts.routes.items():
        if route.access_log_bytes:
            n = flat.get(f"requests {path}", 0.0)
            access += n * (route.access_log_bytes + prices.LOG_EVENT_OVERHEAD_BYTES)
    if access:
        ingested += access
        add(
            "CloudWatch Logs ingestion: API access log",
            access / gb * prices.LOGS_INGESTION.usd,
            access / gb * prices.LOGS_INGESTION.usd,
            False,
            f"{access / gb:,.3f} GB, one line a request in the stage's format; "
            f"{prices.LOGS_INGESTION.cite()}",
        )
    months_kept = facts.log_retention_days / prices.DAYS_PER_MONTH
    stored = ingested * compression * months_kept
    p = prices.LOGS_STORAGE
    add(
        "CloudWatch Logs storage",
        stored / gb * p.usd,
        stored / gb * p.usd,
        False,
        f"{stored / gb:,.3f} GB: a month's logs compressed to {compression:.0%} (measured), kept "
        f"{facts.log_retention_days} days; {p.cite()}",
    )
    # The free 5 GB covers ingestion, storage and scans together: taken off the largest item.
    free = prices.LOGS_FREE_GB * prices.LOGS_INGESTION.usd
    ingestion = [i for i, item in enumerate(add.items) if "Logs ingestion" in item.name]
    for i in sorted(ingestion, key=lambda i: -add.items[i].usd):
        item = add.items[i]
        taken = min(free, item.usd_free_tier)
        add.items[i] = replace(item, usd_free_tier=item.usd_free_tier - taken)
        free -= taken


def _metrics(
    add: _Ledger,
    per_pageview: Usage,
    per_refresh: Usage,
    pv_factor: float,
    q_factor: float,
    facts: TerraformFacts,
) -> None:
    publications: dict[tuple[str, str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
    for usage, factor in ((per_pageview, pv_factor), (per_refresh, q_factor)):
        for logs in usage.logs.values():
            for metric, n in logs.metrics.items():
                publications[metric] += n * factor
    # A custom metric is billed for the hours it is published in: with n publications a month
    # spread at random, the share of hours that see one is 1 - e^(-n/730).
    months = sum(1 - math.exp(-n / prices.HOURS_PER_MONTH) for n in publications.values())
    months += facts.log_metric_filters
    p = prices.CUSTOM_METRIC
    add(
        "CloudWatch custom metrics",
        months * p.usd,
        (months - prices.FREE_CUSTOM_METRICS) * p.usd,
        False,
        f"{len(publications)} EMF metrics seen in the run (name x dimensions), "
        f"{months:,.1f} metric-months after prorating by hours published, "
        f"+ {facts.log_metric_filters} log metric filters; {p.cite()}",
    )


def _fixed(add: _Ledger, facts: TerraformFacts, shape: Shape) -> None:
    p = prices.ALARM_METRIC
    add(
        "CloudWatch alarms",
        facts.alarm_metrics * p.usd,
        (facts.alarm_metrics - prices.FREE_ALARM_METRICS) * p.usd,
        True,
        f"{facts.alarms} alarms evaluating {facts.alarm_metrics} metrics (an anomaly band "
        f"counts 3); {p.cite()}",
    )
    if facts.composite_alarms:
        p = prices.COMPOSITE_ALARM
        usd = facts.composite_alarms * p.usd
        add("CloudWatch composite alarms", usd, usd, True, p.cite())
    p = prices.DASHBOARD
    add(
        "CloudWatch dashboards",
        facts.dashboards * p.usd,
        (facts.dashboards - prices.FREE_DASHBOARDS) * p.usd,
        True,
        f"{facts.dashboards} dashboard(s); {p.cite()}",
    )
    for item in facts.fixed:
        add(item.name, item.usd_per_month, item.usd_per_month, True, item.covers)
    p = prices.S3_STORAGE
    usd = shape.static_bytes / 1024**3 * p.usd
    add("S3 storage (dashboard, tracker)", usd, usd, True, f"{p.cite()}")
