"""The Lambda event source mapping for a DynamoDB stream, emulated faithfully enough to test on.

Settings come from core/schema.json (the same ones Terraform gives AWS):
- batch size and batching window: a batch is sent when it is full or its first record has waited
  the window;
- filter: only records that match the tier's filter pattern (new items; for the realtime tier,
  not engagement events) reach the function; the rest are checkpointed past, as Lambda's filter
  criteria do (`matches`: the parts of Lambda's filter rule syntax the schema uses);
- function error: with bisect on, the batch is split in two and each half retried (a split does
  not use up a retry); otherwise the batch is retried whole;
- partial batch response: the checkpoint moves to the lowest reported sequence number and only the
  records from there on are retried; an unknown identifier fails the whole batch;
- retries are bounded by maximum retry attempts and maximum record age; then an on-failure record
  shaped like Lambda's (DDBStreamBatchInfo) goes to the dead-letter queue and the shard moves on.
Records are turned into a Lambda-shaped event: eventSourceARN, ApproximateCreationDateTime as
epoch seconds, binary attributes base64-encoded.

Shards: moto gives a table one stream shard; a new on-demand table in AWS has several, and a
record goes to the shard of its item's partition. The mapping emulates `shards` of them: each
record goes to the shard its partition key hashes to, each shard batches on its own, and the
shards' batches are delivered at once, each to its own instance of the function (give the
function as many instances), one batch per shard at a time, as Lambda does. A visitor's events
share a partition key (decision 0040), so they arrive on one shard, in order; different visitors'
events arrive on several shards, side by side.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.observability import logger
from core.schema import EventSourceMapping, load_schema
from local.faults import Faults, InjectedCrash

log = logger("local-esm")

Invoke = Callable[[dict[str, Any]], Any]
AGGREGATOR_ARN = "arn:aws:lambda:us-east-1:000000000000:function:aggregator"


def tier_pollers(
    streams: Any,
    sqs: Any,
    stream_arn: str,
    invoke_for: Callable[[str], Invoke],
    dlq_url: str,
    faults: Faults | None = None,
    esm_for: Callable[[str, EventSourceMapping], EventSourceMapping] = lambda _, esm: esm,
    shards: int | None = None,
) -> dict[str, StreamPoller]:
    """One mapping per aggregator tier on the same stream (decision 0010), each invoking its
    alias with the tier's settings (`esm_for` may change them: a shorter window, fewer retries),
    over `shards` emulated stream shards (default: the faults', or one)."""
    return {
        name: StreamPoller(
            streams,
            sqs,
            stream_arn,
            invoke_for(name),
            esm_for(name, tier.esm),
            dlq_url,
            faults=faults,
            function_arn=f"{AGGREGATOR_ARN}:{name}",
            shards=shards,
        )
        for name, tier in load_schema().tiers.items()
    }


@dataclass
class PollerStats:
    invocations: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    records_delivered: int = 0
    records_filtered: int = 0
    dead_lettered_batches: int = 0
    last_sequence_number: str = ""
    # The last record read from the stream (delivered or not: it is held in memory from then on),
    # and the first of any dead-lettered batch (a replay reads the stream from there): the stream
    # may be trimmed below both (local/emulator.py).
    last_read_sequence_number: str = ""
    lowest_dead_lettered: str = ""


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    first_buffered_at: float | None = None
    last_read: str = ""  # the sequence number of the last record read from it


def matches(pattern: dict[str, Any], record: Any) -> bool:
    """Whether a stream record matches a Lambda filter pattern: each key's value must be one of
    its listed values, or any value but those of an `anything-but` list, or match its nested
    pattern; a key the record lacks does not match. Other rules raise: they are not emulated."""
    if not isinstance(record, dict):
        return False
    for key, rule in pattern.items():
        if key not in record:
            return False
        value = record[key]
        if isinstance(rule, dict):
            if not matches(rule, value):
                return False
        elif not any(_allows(allowed, value) for allowed in rule):
            return False
    return True


def _allows(rule: Any, value: Any) -> bool:
    if isinstance(rule, dict):
        if set(rule) == {"anything-but"}:
            return value not in rule["anything-but"]
        raise ValueError(f"filter rule not emulated by the local mapping: {rule!r}")
    return bool(value == rule)


def to_lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A stream record from GetRecords → the record Lambda passes to the function."""
    ddb = dict(record["dynamodb"])
    created = ddb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        ddb["ApproximateCreationDateTime"] = created.timestamp()
    for image in ("Keys", "NewImage", "OldImage"):
        if image in ddb:
            ddb[image] = _b64_binary(ddb[image])
    return {
        "eventID": record.get("eventID", uuid.uuid4().hex),
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }


def _b64_binary(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _b64_binary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_b64_binary(v) for v in value]
    return value


def partition_shard(hash_key: str, partition: dict[str, Any] | None, shards: int) -> int:
    """The emulated stream shard (0..shards-1) of an item whose partition key `hash_key` has the
    wire-format value `partition`: the partition key alone picks it, as in DynamoDB every item of
    a partition streams on one shard. bench/writes.py places its batches with the same function."""
    return zlib.crc32(str({hash_key: partition}).encode()) % shards


class StreamPoller:
    def __init__(
        self,
        streams: Any,
        sqs: Any,
        stream_arn: str,
        invoke: Invoke,
        esm: EventSourceMapping,
        dlq_url: str,
        poll_interval: float = 0.1,
        clock: Callable[[], float] = time.time,
        faults: Faults | None = None,
        function_arn: str = AGGREGATOR_ARN,
        shards: int | None = None,
    ) -> None:
        self._function_arn = function_arn  # named in dead-letter messages (replay invokes it)
        self._flush_waiters: list[threading.Event] = []
        self._flush_lock = threading.Lock()
        self._streams = streams
        self._sqs = sqs
        self._arn = stream_arn
        self._invoke = invoke
        self._esm = esm
        self._hash_key = load_schema().tables[esm.source_table].hash_key
        self._dlq_url = dlq_url
        self._poll_interval = poll_interval
        self._clock = clock
        self._faults = faults
        self._shards: dict[str, _Shard] = {}
        self.shard_count = max(1, shards if shards is not None else faults.shards if faults else 1)
        # One thread a shard delivers its batches on (Lambda: one batch per shard at a time).
        # Without `shards`, the faults' shards take turns on this thread in a seeded order, so a
        # failing schedule replays.
        self._deliveries = (
            ThreadPoolExecutor(self.shard_count, thread_name_prefix="esm-shard")
            if shards is not None and shards > 1
            else None
        )
        self._stats_lock = threading.Lock()  # the shards' deliveries count at once
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = PollerStats()

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="esm-poller", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Deliver everything buffered now, windows or not (the poller's own thread does it);
        True once done. For `make bench`, to read the meter after every tier has written."""
        done = threading.Event()
        with self._flush_lock:
            self._flush_waiters.append(done)
        return done.wait(timeout)

    def stop(self, drain: bool = True, timeout: float = 10.0) -> None:
        """Stop polling; with `drain`, deliver what is buffered first. A running poller drains
        from its own thread: two threads on the same shard iterators would read records twice."""
        deadline = time.monotonic() + timeout
        if drain and self._thread is not None and self._thread.is_alive():
            self.flush(timeout)
        elif drain:
            while time.monotonic() < deadline and self.poll_once(flush=True):
                pass
        self._stop.set()
        if self._thread:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._deliveries:
            self._deliveries.shutdown(wait=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._flush_lock:
                waiters, self._flush_waiters = self._flush_waiters, []
            try:
                busy = self.poll_once(flush=bool(waiters))
                while waiters and busy:
                    busy = self.poll_once(flush=True)
            except Exception:  # keep polling: the stack must survive a transient moto error
                log.exception("stream poll failed")
                busy = False
            for waiter in waiters:
                waiter.set()
            if not busy:
                self._stop.wait(self._poll_interval)

    # ---- polling ------------------------------------------------------------------------------

    def _refresh_shards(self) -> None:
        description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
        for shard in description["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id in self._shards:
                continue
            iterator = self._streams.get_shard_iterator(
                StreamArn=self._arn,
                ShardId=shard_id,
                ShardIteratorType=self._esm.starting_position,
            )["ShardIterator"]
            self._shards[shard_id] = _Shard(shard_id, iterator)
            for n in range(1, self.shard_count):
                # An emulated sibling shard: records hashed to it are delivered on their own.
                self._shards[f"{shard_id}#sim{n}"] = _Shard(f"{shard_id}#sim{n}", None)

    def poll_once(self, flush: bool = False) -> bool:
        """Read new records and deliver due batches; True if anything was read or delivered."""
        if not self._shards:
            self._refresh_shards()
        busy = False
        for shard in self._shards.values():
            if shard.iterator:
                page = self._read(shard)
                shard.iterator = page.get("NextShardIterator")
                for record in page["Records"]:
                    shard.last_read = record["dynamodb"]["SequenceNumber"]
                    self.stats.last_read_sequence_number = shard.last_read
                    if not matches(self._esm.filter_pattern, record):
                        self._count(records_filtered=1)
                        continue
                    target = self._simulated_shard(shard, record)
                    if not target.buffer:
                        target.first_buffered_at = self._clock()
                    target.buffer.append(record)
                    busy = True
        due = [shard for shard in self._shards.values() if shard.buffer]
        if self._deliveries is None:
            if self._faults and len(due) > 1:
                due = [self._faults.pick(due) for _ in due] + due  # interleave the shards
            for shard in due:
                busy |= self._deliver_due(shard, flush)
            return busy
        # The shards deliver side by side; the next read waits for this round (a shard whose
        # batch is being retried holds the others' next batches back a little: Lambda's do not).
        rounds = [self._deliveries.submit(self._deliver_due, shard, flush) for shard in due]
        for delivered in rounds:
            busy |= delivered.result()
        return busy

    def _read(self, shard: _Shard) -> dict[str, Any]:
        """A page of the shard's records. An iterator that expired (AWS's live 15 minutes; a poll
        stuck in retries can outlast one) is taken again after the last record read, as Lambda's
        mapping resumes from its checkpoint."""
        try:
            page: dict[str, Any] = self._streams.get_records(
                ShardIterator=shard.iterator, Limit=1000
            )
            return page
        except Exception:
            if not shard.last_read:
                raise
            log.warning("shard iterator taken again", extra={"after": shard.last_read})
            shard.iterator = self._streams.get_shard_iterator(
                StreamArn=self._arn,
                ShardId=shard.shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=shard.last_read,
            )["ShardIterator"]
            page = self._streams.get_records(ShardIterator=shard.iterator, Limit=1000)
            return page

    def _simulated_shard(self, shard: _Shard, record: dict[str, Any]) -> _Shard:
        """The shard a record's item lives on: its partition key's hash picks it."""
        if self.shard_count == 1:
            return shard
        partition = record["dynamodb"].get("Keys", {}).get(self._hash_key)
        n = partition_shard(self._hash_key, partition, self.shard_count)
        return shard if n == 0 else self._shards[f"{shard.shard_id}#sim{n}"]

    def _deliver_due(self, shard: _Shard, flush: bool) -> bool:
        delivered = False
        while shard.buffer:
            waited = self._clock() - (shard.first_buffered_at or self._clock())
            full = len(shard.buffer) >= self._esm.batch_size
            if not (full or flush or waited >= self._esm.maximum_batching_window_in_seconds):
                break
            batch = shard.buffer[: self._esm.batch_size]
            shard.buffer = shard.buffer[self._esm.batch_size :]
            shard.first_buffered_at = self._clock() if shard.buffer else None
            self.deliver(shard.shard_id.split("#sim")[0], batch)
            delivered = True
        return delivered

    # ---- delivery with retries ----------------------------------------------------------------

    def deliver(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        """Deliver one batch until it succeeds, is split, or is dead-lettered."""
        pending: list[tuple[list[dict[str, Any]], int]] = [(batch, 0)]
        while pending:
            records, retries = pending.pop(0)
            failed_at = self._invoke_once(records)
            if failed_at is None:
                self.stats.last_sequence_number = records[-1]["dynamodb"]["SequenceNumber"]
                continue
            if (
                failed_at == "error"
                and self._esm.bisect_batch_on_function_error
                and len(records) > 1
            ):
                half = len(records) // 2
                pending[:0] = [(records[:half], retries), (records[half:], retries)]
                continue
            remaining = records if failed_at == "error" else records[int(failed_at) :]
            if retries >= self._esm.maximum_retry_attempts or self._too_old(remaining):
                self._dead_letter(shard_id, remaining, retries + 1)
                continue
            pending.insert(0, (remaining, retries + 1))

    def _invoke_once(self, records: list[dict[str, Any]]) -> str | None:
        """None on success, "error" on a function error, or the index to retry from."""
        event = {"Records": [to_lambda_record(r, self._arn) for r in records]}
        self._count(invocations=1, records_delivered=len(records))
        try:
            if self._faults and self._faults.happens("crash_before"):
                raise InjectedCrash("instance died before the handler ran")
            response = self._invoke(event)
            if self._faults and self._faults.happens("duplicate"):
                response = self._invoke(event)  # Lambda may invoke twice for one batch
            if self._faults and self._faults.happens("lost_response"):
                raise InjectedCrash("the handler finished but Lambda saw a timeout")
        except Exception:
            self._count(function_errors=1)
            log.exception("aggregator invocation failed")
            return "error"
        failures = (
            (response or {}).get("batchItemFailures")
            if self._esm.report_batch_item_failures
            else None
        )
        if not failures:
            return None
        self._count(partial_failures=1)
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        reported = [f.get("itemIdentifier") for f in failures]
        if any(identifier not in sequence_numbers for identifier in reported):
            return "error"  # Lambda treats an unknown identifier as a failure of the whole batch
        return str(min(sequence_numbers.index(identifier) for identifier in reported))

    def _count(self, **increments: int) -> None:
        with self._stats_lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _too_old(self, records: list[dict[str, Any]]) -> bool:
        created = records[0]["dynamodb"].get("ApproximateCreationDateTime")
        if not isinstance(created, datetime) or self._esm.maximum_record_age_in_seconds < 0:
            return False
        return self._clock() - created.timestamp() > self._esm.maximum_record_age_in_seconds

    def _dead_letter(self, shard_id: str, records: list[dict[str, Any]], attempts: int) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self._function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(first.get("ApproximateCreationDateTime")),
                "approximateArrivalOfLastRecord": _iso(last.get("ApproximateCreationDateTime")),
                "batchSize": len(records),
                "streamArn": self._arn,
            },
        }
        self._sqs.send_message(QueueUrl=self._dlq_url, MessageBody=json.dumps(message))
        with self._stats_lock:
            self.stats.dead_lettered_batches += 1
            lowest = self.stats.lowest_dead_lettered
            if not lowest or int(first["SequenceNumber"]) < int(lowest):
                self.stats.lowest_dead_lettered = first["SequenceNumber"]
            self.stats.last_sequence_number = last["SequenceNumber"]
        log.error("batch dead-lettered", extra={"batch_info": message["DDBStreamBatchInfo"]})


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")
