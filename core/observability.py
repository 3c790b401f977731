"""Powertools Logger and Metrics, configured the same way in every Lambda.

Log lines are JSON with level, message, timestamp, service, function_request_id and, for a
request, correlation_id. Nothing here logs request headers or bodies: the IP address and user
agent never reach a log line.

CloudWatch bills every byte of every line (decision 0021), so at INFO a function says what is
worth a line: drops, errors, one summary per batch. A line per event or per request is INFO only
for the correlation ids `traced` picks (one in TRACE_ONE_IN, the same ids in ingest and in both
aggregator tiers, so a traced event can be followed end to end), DEBUG for the rest. Lines carry no
key CloudWatch already knows (the function, its memory, its ARN) or that is always empty here (the
X-Ray trace id: tracing is off). Metrics leave in as few EMF blobs as possible: ingest sums its
counts in the warm instance and flushes them at most once a minute (`MetricBuffer`).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "LiveInsight"
TRACE_ONE_IN = 100
# Keys Powertools adds that a line does not need: the log group and stream name the function and
# its version; cold starts are in Lambda's Init Duration; tracing is off.
DROPPED_KEYS = (
    "location",
    "function_name",
    "function_memory_size",
    "function_arn",
    "cold_start",
    "xray_trace_id",
    "sampling_rate",
)


class CompactFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        for key in DROPPED_KEYS:
            log.pop(key, None)  # type: ignore[misc]
        return super().serialize(log)


@cache
def logger(service: str) -> Logger:
    return Logger(service=service, logger_formatter=CompactFormatter())


@cache
def metrics(service: str) -> EphemeralMetrics:
    # EphemeralMetrics keeps its own metric set: `Metrics` shares one set per process, which would
    # mix the three functions' metrics when the local stack runs them in one process.
    return EphemeralMetrics(namespace=NAMESPACE, service=service)


def traced(correlation_id: str | None) -> bool:
    """Whether an event's or a request's own lines are INFO: a stable one in TRACE_ONE_IN ids."""
    return zlib.crc32((correlation_id or "").encode()) % TRACE_ONE_IN == 0


def trace(log: Logger, correlation_id: str | None) -> Callable[..., None]:
    """`log.info` for a traced id, `log.debug` for the rest: how an event's own line is logged."""
    return log.info if traced(correlation_id) else log.debug


class MetricBuffer:
    """Counts summed across a warm instance's invocations, flushed as one EMF blob once `interval`
    seconds have passed since the first count it holds (checked by `flush_if_due`, after each
    invocation). Counts still held when Lambda retires the instance are lost: a metric may miss an
    instance's last minute, the data never."""

    def __init__(
        self,
        target: EphemeralMetrics,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.interval = interval
        self.clock = clock
        self._counts: dict[str, float] = {}
        self._since: float | None = None

    def add_metric(self, name: str, value: float) -> None:
        if self._since is None:
            self._since = self.clock()
        self._counts[name] = self._counts.get(name, 0.0) + value

    def flush_if_due(self) -> None:
        if self._since is not None and self.clock() - self._since >= self.interval:
            self.flush()

    def flush(self) -> None:
        for name, value in self._counts.items():
            self.target.add_metric(name=name, unit=COUNT, value=value)
        if self._counts:
            self.target.flush_metrics()
        self._counts.clear()
        self._since = None


@cache
def metric_buffer(service: str) -> MetricBuffer:
    return MetricBuffer(metrics(service))


COUNT = MetricUnit.Count
MILLISECONDS = MetricUnit.Milliseconds
SECONDS = MetricUnit.Seconds
