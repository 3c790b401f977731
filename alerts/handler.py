"""Lambda entry point: the alerts queue (SQS) → webhooks and email, at least once (decisions 0036,
0038).

Each message is one alert or resolved message the realtime tier recorded. A delivered key is
logged and never posted again; a failed attempt is reported in `batchItemFailures` (only that
message comes back) after its visibility is stretched to the next backoff; on its last receive
(the queue's maxReceiveCount, core/schema.json) the failure is logged as dead-lettered and SQS
moves the message to the dead-letter queue. A removed rule's messages are dropped. A rule's
channels (its webhook, its email recipients through SES) are delivered and logged each on its own:
a retry sends only the channels not yet delivered.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from alerts.deliver import (
    DELIVERED,
    DROPPED,
    EMAIL,
    GAVE_UP,
    Attempt,
    DeliveryLog,
    attempt,
    channel_key,
    channels,
    email_attempt,
    post,
)
from alerts.rules import Rule, RuleStore
from core import mail, settings
from core.aws import make_client
from core.observability import logger
from core.schema import SCHEMA_PATH

log = logger("alerts")


@lru_cache(maxsize=1)
def get_config() -> settings.AlertSettings:
    return settings.load(settings.AlertSettings)


@lru_cache(maxsize=1)
def max_receive_count() -> int:
    return int(json.loads(SCHEMA_PATH.read_text())["alert_queue"]["max_receive_count"])


@lru_cache(maxsize=1)
def get_clients() -> tuple[Any, Any]:
    return make_client("dynamodb"), make_client("sqs")


@lru_cache(maxsize=1)
def get_ses() -> Any:
    """Built on the first email only: a webhook-only deployment never makes it."""
    return make_client("sesv2")


def send_mail(message: mail.Mail) -> str:
    return mail.send(get_ses(), message, get_config().email_from)


def clock() -> float:
    return time.time()


@log.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failed = [
        {"itemIdentifier": record["messageId"]}
        for record in event.get("Records", [])
        if not deliver(record)
    ]
    return {"batchItemFailures": failed}


def deliver(record: dict[str, Any]) -> bool:
    """True when the message is done with (delivered, dropped, unreadable)."""
    try:
        message = json.loads(record["body"])
        site, key, rule_id = message["site"], message["key"], message["rule_id"]
    except (KeyError, TypeError, ValueError):
        log.error("unreadable alert message dropped", extra={"id": record.get("messageId")})
        return True
    receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    config = get_config()
    ddb, sqs = get_clients()
    deliveries = DeliveryLog(ddb, config.meta_table)
    rule = RuleStore(ddb, config.meta_table).get(site, rule_id)
    if rule is None:
        _log(deliveries, message, Attempt(DROPPED, error="the rule was removed"), receives)
        return True
    last = receives >= max_receive_count()
    failed = False
    for channel in channels(rule):
        if deliveries.delivered(site, channel_key(key, channel)):
            continue  # delivered by an earlier receive of the message
        result = _attempt(channel, message, rule, config)
        if result.status != DELIVERED:
            failed = True
            result = Attempt(GAVE_UP, *_rest(result)) if last else result
        _log(deliveries, message, result, receives, channel)
    if not failed:
        return True
    # The next try after the backoff; after the last one at once: the next receive moves the
    # message to the dead-letter queue (SQS does that on a receive, not when visibility ends).
    backoff = min(config.retry_base_seconds * 2 ** (receives - 1), config.retry_max_seconds)
    try:
        sqs.change_message_visibility(
            QueueUrl=config.alerts_queue_url,
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=0 if last else backoff,
        )
    except Exception as exc:  # the queue's own visibility timeout applies instead
        log.warning("backoff not set", extra={"key": key, "error": repr(exc)[:200]})
    return False


def _attempt(
    channel: str, message: dict[str, Any], rule: Rule, config: settings.AlertSettings
) -> Attempt:
    if channel == EMAIL:
        return email_attempt(message, rule, send_mail)
    return attempt(message, rule, clock, post, config.webhook_timeout_seconds)


def _rest(result: Attempt) -> tuple[int | None, int | None, str]:
    return result.http_status, result.latency_ms, result.error


def _log(
    deliveries: DeliveryLog,
    message: dict[str, Any],
    result: Attempt,
    receives: int,
    channel: str = "webhook",
) -> None:
    entry = {"key": message["key"], "site": message["site"], "status": result.status}
    (log.info if result.status == DELIVERED else log.warning)(
        f"{channel} {result.status}",
        extra={**entry, "http_status": result.http_status, "attempt": receives},
    )
    try:
        deliveries.record(message, result, receives, channel)
    except Exception as exc:  # the webhook went (or not) either way; the log is for people
        log.warning("delivery log not written", extra={**entry, "error": repr(exc)[:200]})
