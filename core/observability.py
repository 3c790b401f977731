"""Powertools Logger and Metrics, configured the same way in every Lambda.

Log lines are JSON with level, service and correlation_id. Nothing here logs request headers or
bodies: the IP address and user agent never reach a log line.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "LiveInsight"


@cache
def logger(service: str) -> Logger:
    return Logger(service=service)


@cache
def metrics(service: str) -> EphemeralMetrics:
    # EphemeralMetrics keeps its own metric set: `Metrics` shares one set per process, which would
    # mix the three functions' metrics when the local stack runs them in one process.
    return EphemeralMetrics(namespace=NAMESPACE, service=service)


COUNT = MetricUnit.Count
MILLISECONDS = MetricUnit.Milliseconds
SECONDS = MetricUnit.Seconds
