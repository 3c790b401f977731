"""Lambda entry point: the events table's stream (INSERT only) → aggregates, exactly once.

One function, one alias per tier (decision 0010): the `realtime` alias's event source mapping
writes the minute counters every second, the `rollup` alias's writes hours, days and months in
larger batches. The alias an invocation came through names its tier; an unqualified invocation
is the single-tier aggregator, which writes everything.

The tier that writes hours, days and months also archives the events it counted (decision 0027):
Parquet on S3, written after counting. The realtime tier never imports the archive (nor DuckDB).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent

from aggregator.minutes import MinuteStore, count_minutes
from aggregator.processor import ALL_GRANULARITIES, BatchResult, StreamItem, process
from aggregator.store import AggregateStore
from core import settings
from core.aws import make_client
from core.events import MalformedEvent, RawEvent
from core.keys import Granularity
from core.observability import COUNT, logger, metrics, trace, traced
from core.schema import load_schema

if TYPE_CHECKING:
    from alerts.detect import Alerts
    from archive.store import ArchiveStore

log = logger("aggregator")
metric = metrics("aggregator")
# A realtime batch this old is worth its summary line at INFO: the tier is behind (RUNBOOK.md,
# stream-iterator-age). Its usual batch is a second old.
LATE_SECONDS = 60.0


@lru_cache(maxsize=1)
def get_config() -> settings.AggregatorSettings:
    return settings.load(settings.AggregatorSettings)


@lru_cache(maxsize=1)
def get_client() -> Any:
    return make_client("dynamodb")


@lru_cache(maxsize=1)
def get_minute_store() -> MinuteStore:
    """Cached: a warm instance keeps the full parts it has read."""
    return new_minute_store()


def new_minute_store(clock: Callable[[], float] = time.time) -> MinuteStore:
    """An instance's minute store, on `clock` (bench/writes.py runs one on simulated time)."""
    retention = load_schema().retention
    return MinuteStore(
        get_client(), get_config().aggregates_table, retention.minute_bucket_ttl_seconds, clock
    )


@lru_cache(maxsize=4)
def get_store(tier: str = "") -> AggregateStore:
    retention = load_schema().retention
    return AggregateStore(
        get_client(),
        get_config().aggregates_table,
        visitor_ttl_seconds=retention.visitor_state_ttl_seconds,
        tier=tier,
        fold_at_slots=get_config().fold_at_slots,
    )


@lru_cache(maxsize=1)
def get_archive() -> ArchiveStore | None:
    """The event archive, or None where no bucket is configured. Imported here, on the first
    rollup batch: the realtime tier never loads it."""
    bucket = get_config().archive_bucket
    if not bucket:
        return None
    from archive.store import ArchiveStore

    return ArchiveStore(make_client("s3"), bucket)


@lru_cache(maxsize=1)
def get_alerts() -> Alerts | None:
    """The alert rules' hook (decision 0036), or None where no queue is configured."""
    config = get_config()
    if not (config.meta_table and config.alerts_queue_url):
        return None
    from alerts.detect import Alerts

    client = get_client()
    return Alerts(
        client,
        config.meta_table,
        client,
        config.aggregates_table,
        make_client("sqs"),
        config.alerts_queue_url,
    )


class UnknownTier(ValueError):
    """Invoked through a qualifier that is no tier: counting there would count twice."""


def qualifier(function_arn: str) -> str:
    """The alias in a function ARN (arn:aws:lambda:region:account:function:name:alias), or ""."""
    parts = function_arn.split(":")
    return parts[7] if len(parts) > 7 else ""


def tier_of(context: Any) -> tuple[str, frozenset[Granularity]]:
    """(tier, the granularities it writes) from the alias in the invoked ARN."""
    alias = qualifier(getattr(context, "invoked_function_arn", "") or "")
    if not alias:
        return "", ALL_GRANULARITIES
    tier = load_schema().tiers.get(alias)
    if tier is None:
        raise UnknownTier(f"invoked as {alias!r}: not one of {sorted(load_schema().tiers)}")
    return tier.name, frozenset(Granularity(g) for g in tier.granularities)


def parse_records(event: dict[str, Any]) -> tuple[list[StreamItem], int, float | None]:
    """Stream records → events; malformed ones are counted and logged, never retried."""
    items: list[StreamItem] = []
    malformed = 0
    oldest: float | None = None
    for record in DynamoDBStreamEvent(event).records:
        stream = record.dynamodb
        sequence = stream.sequence_number if stream else None
        created = stream.approximate_creation_date_time if stream else None
        if created is not None:
            oldest = created if oldest is None else min(oldest, created)
        try:
            if stream is None or sequence is None or stream.new_image is None:
                raise MalformedEvent("record has no new image")
            items.append(StreamItem(sequence, RawEvent.from_image(stream.new_image)))
        except (MalformedEvent, TypeError, ValueError, KeyError) as exc:
            malformed += 1
            log.warning(
                "malformed record skipped", extra={"sequence_number": sequence, "error": str(exc)}
            )
    return items, malformed, oldest


# No log_metrics decorator: report() flushes the metrics it has, and an invocation with none to
# say writes no EMF blob (and no "no metrics" warning).
@log.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.monotonic()
    # A batch carries many requests' ids: batch lines use the invocation's, event lines their own.
    log.set_correlation_id(getattr(context, "aws_request_id", None))
    tier, granularities = tier_of(context)
    log.append_keys(tier=tier or "single")
    items, malformed, oldest = parse_records(event)
    result = count(items, tier, granularities)
    if Granularity.MINUTE in granularities:
        alert(items, result)
    rolls_up = bool(granularities - {Granularity.MINUTE})
    archive_ms = archive(items, result) if rolls_up else None
    report(
        items,
        malformed,
        oldest,
        result,
        batch_id=getattr(context, "aws_request_id", ""),
        rolls_up=rolls_up,
        seconds=time.monotonic() - started,
        archive_ms=archive_ms,
    )
    if result.failed_sequence_number is None:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": result.failed_sequence_number}]}


def count(items: list[StreamItem], tier: str, granularities: frozenset[Granularity]) -> BatchResult:
    """Minutes are counted into items that record their own events (decision 0012); hours, days
    and months by the fold, with the tier's visitor states. The single tier does both."""
    config = get_config()
    results = []
    if Granularity.MINUTE in granularities:
        results.append(
            count_minutes(items, get_minute_store(), max_attempts=config.max_transaction_attempts)
        )
    if granularities - {Granularity.MINUTE}:
        results.append(
            process(
                items,
                get_store(tier),
                max_items=config.max_transaction_items,
                max_attempts=config.max_transaction_attempts,
                granularities=granularities - {Granularity.MINUTE},
            )
        )
    return merged(results)


def counted_through(items: list[StreamItem], result: BatchResult) -> list[StreamItem]:
    """The items before the first failed one: those Lambda checkpoints."""
    if result.failed_sequence_number is None:
        return items
    return items[: [it.sequence_number for it in items].index(result.failed_sequence_number)]


def alert(items: list[StreamItem], result: BatchResult) -> None:
    """After the minutes are written: the rules of the batch's sites against the fresh numbers.
    It only reads and queues (never fails the batch; delivery is another function's)."""
    alerts = get_alerts()
    if alerts is not None:
        done = counted_through(items, result)
        alerts.after_batch({it.event.site for it in done if not it.event.is_engagement})


def archive(items: list[StreamItem], result: BatchResult) -> int | None:
    """Archive the events counted through; the milliseconds it took (None: no archive).

    Every event before the failure goes, those counted before (a redelivery) too: the objects are
    named by their events, so a whole batch again writes the same objects again. An S3 failure
    fails the batch from its first item: Lambda retries it, the counters skip what they counted,
    and the archive gets the events once the write succeeds.
    """
    store = get_archive()
    done = counted_through(items, result)
    if store is None or not done:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    started = time.perf_counter()
    try:
        store.write_batch(item.event for item in done)
    except (BotoCoreError, ClientError, OSError) as exc:
        log.error("archive write failed", extra={"error": repr(exc)[:500]})
        result.failed_sequence_number = items[0].sequence_number
        result.errors.append(f"archive write failed: {exc!r}"[:500])
    return round((time.perf_counter() - started) * 1000)


def merged(results: list[BatchResult]) -> BatchResult:
    """One invocation's result from its counting passes: the last pass's counts (the fold's, when
    it ran: it also takes engagement events), the earliest failure of any."""
    out = BatchResult(
        counted=results[-1].counted,
        duplicates=results[-1].duplicates,
        ignored=results[-1].ignored,
        transactions=sum(r.transactions for r in results),
        retries=sum(r.retries for r in results),
        errors=[e for r in results for e in r.errors],
    )
    failed = [r.failed_sequence_number for r in results if r.failed_sequence_number is not None]
    if failed:
        out.failed_sequence_number = min(failed, key=int)
    return out


def report(
    items: list[StreamItem],
    malformed: int,
    oldest: float | None,
    result: BatchResult,
    batch_id: str,
    rolls_up: bool = True,
    seconds: float = 0.0,
    archive_ms: int | None = None,
) -> None:
    """Metrics and log lines of one invocation (decision 0021).

    The tier that writes hours, days and months (rollup, or the single tier) counts each event
    once: it logs every batch's summary (`counted`, `retries`, ...), one line per up to 300 s.
    The realtime tier, a batch a second, speaks only when it has something to say: a duplicate, a
    malformed record, a retry, a stop, a batch LATE_SECONDS old. Metrics only for what is rare
    and worth a look, each published only when not zero: duplicates and malformed records.
    Counted events and transaction retries were metrics published every hour, a metric-month
    ($0.30) each for numbers that page nobody; the dashboard sums them from the summaries
    (decision 0020). Freshness is Lambda's free IteratorAge. Each counted event's own line
    carries its request's correlation id, at INFO for traced ids, DEBUG for the rest.
    """
    age = round(max(0.0, time.time() - oldest), 1) if oldest is not None else None
    if result.duplicates:
        metric.add_metric(name="DuplicatesSkipped", unit=COUNT, value=result.duplicates)
    if malformed:
        metric.add_metric(name="MalformedRecords", unit=COUNT, value=malformed)
    if metric.metric_set:
        metric.flush_metrics()
    failed = (
        [it.sequence_number for it in items].index(result.failed_sequence_number)
        if result.failed_sequence_number
        else len(items)
    )
    every_event = log.log_level <= logging.DEBUG
    for item in items[:failed]:
        correlation_id = item.event.correlation_id
        if every_event or traced(correlation_id):
            log.set_correlation_id(correlation_id)
            trace(log, correlation_id)(
                "event aggregated",
                extra={
                    "event_id": item.event.event_id,
                    "site": item.event.site,
                    "sequence_number": item.sequence_number,
                },
            )
    log.set_correlation_id(batch_id)
    notable = (
        rolls_up
        or malformed
        or result.duplicates
        or result.retries
        or result.failed_sequence_number is not None
        or (age is not None and age >= LATE_SECONDS)
    )
    (log.info if notable else log.debug)(
        "batch processed",
        extra={
            "records": len(items) + malformed,
            "counted": result.counted,
            "duplicates": result.duplicates,
            "ignored": result.ignored,
            "malformed": malformed,
            "transactions": result.transactions,
            "retries": result.retries,
            "failed_sequence_number": result.failed_sequence_number,
            "oldest_record_age_s": age,
            "duration_ms": round(seconds * 1000),
            **({"archive_ms": archive_ms} if archive_ms is not None else {}),
        },
    )
    if result.failed_sequence_number is not None:
        log.error("batch stopped", extra={"errors": result.errors})
