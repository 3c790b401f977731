"""Webhook delivery of queued alerts: signed bodies, one POST, a per-site delivery log.

The body is JSON (`json`: the alert as data, with a `text` line) or Slack-compatible (`slack`:
`{"text": …}`, what an incoming webhook takes). Either is signed: `X-LiveInsight-Timestamp` is the
Unix time of the attempt, `X-LiveInsight-Signature` is `sha256=` and the hex HMAC-SHA256, keyed
with the rule's secret, of `<timestamp>.<raw body>`; a receiver recomputes it and refuses a
timestamp more than a few minutes old (a replay). The idempotency key is in the body (`id`) and
in `X-LiveInsight-Idempotency-Key`: delivery is at least once, and a receiver that has seen a key
drops it.

Email (decision 0038): a rule with recipients gets one message per recipient through SES, a
text and an HTML part, the same words as the webhook's `text`. Each channel of a rule (webhook,
email) is delivered and logged on its own: the email channel's key is `<key>.email`, so a failed
webhook's retry does not mail the recipients again, nor the other way round.

The log (pk `ALERTLOG#<site>`) keeps each attempt 30 days and the keys delivered (checked
before sending, so a message SQS hands over twice is posted once in nearly every case).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alerts.rules import FIRED, SLACK, SPIKE, Rule
from core import keys
from core.mail import Mail

SIGNATURE_HEADER = "X-LiveInsight-Signature"
TIMESTAMP_HEADER = "X-LiveInsight-Timestamp"
KEY_HEADER = "X-LiveInsight-Idempotency-Key"
USER_AGENT = "LiveInsight-Webhook/1"
LOG_TTL_SECONDS = 30 * 24 * 3600
MAX_LOGGED = 100  # the admin API's longest listing
REPLAY_TOLERANCE_SECONDS = 300

DELIVERED, FAILED, GAVE_UP, DROPPED = "delivered", "failed", "dead-lettered", "dropped"
WEBHOOK, EMAIL = "webhook", "email"


def channel_key(key: str, channel: str) -> str:
    """The key a channel's delivery is logged under: the webhook's is the message's own."""
    return key if channel == WEBHOOK else f"{key}.{channel}"


def channels(rule: Rule) -> list[str]:
    return [
        c for c, on in ((WEBHOOK, bool(rule.target.url)), (EMAIL, bool(rule.target.emails))) if on
    ]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance: int = REPLAY_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does (and the tests' capture server): the signature, then the time."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)


def describe(message: dict[str, Any]) -> str:
    if message.get("text"):  # every kind's words, queued with it (alerts/text.py, 0037)
        return str(message["text"])
    rule, value, site = message["rule"], message["value"], message["site"]
    if rule["kind"] == SPIKE:
        what = f"{value} current visitors"
        limit = f"above {rule['threshold']}"
        calm = f"{rule['threshold']} or fewer"
    else:
        what = f"{rule['goal']}: {value} conversions in {rule['window_minutes']} minutes"
        limit = f"reached {rule['threshold']}"
        calm = f"below {rule['threshold']}"
    if message["type"] == FIRED:
        return f"{site}: {what} ({limit})"
    return f"Resolved, {site}: {what} ({calm})"


def body_of(message: dict[str, Any], rule: Rule) -> bytes:
    text = describe(message)
    if rule.target.format == SLACK:
        data: dict[str, Any] = {"text": text}
    else:
        data = {
            "id": message["key"],
            "type": message["type"],
            "site": message["site"],
            "rule": {"id": rule.id, **message["rule"]},
            "value": message["value"],
            "detected_at": datetime.fromtimestamp(message["detected_at"], UTC).isoformat(),
            "text": text,
        }
    return json.dumps(data, separators=(",", ":")).encode()


Post = Callable[[str, bytes, dict[str, str], float], int]


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST and the status (an HTTP error's too); raises on no answer (refused, timed out).
    Redirects are not followed: the owner's URL is the one place a webhook goes."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(1024)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass(frozen=True)
class Attempt:
    status: str  # DELIVERED, FAILED, GAVE_UP, DROPPED
    http_status: int | None = None
    latency_ms: int | None = None  # detected → answered
    error: str = ""


def attempt(
    message: dict[str, Any], rule: Rule, now: Callable[[], float], send: Post, timeout: float
) -> Attempt:
    body = body_of(message, rule)
    stamp = int(now())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(rule.target.secret, stamp, body),
        KEY_HEADER: message["key"],
    }
    try:
        status = send(rule.target.url, body, headers, timeout)
    except (OSError, ValueError) as exc:  # refused, timed out, a bad answer
        return Attempt(FAILED, error=repr(exc)[:200])
    latency = round(now() * 1000 - message["detected_at"] * 1000)
    if 200 <= status < 300:
        return Attempt(DELIVERED, status, latency)
    return Attempt(FAILED, status, error=f"HTTP {status}")


SendMail = Callable[[Mail], str]


def alert_mail(message: dict[str, Any], to: str) -> Mail:
    text = describe(message)
    when = datetime.fromtimestamp(message["detected_at"], UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [text, "", f"Detected at {when}.", f"Idempotency key: {message['key']}"]
    escaped = html.escape(text)
    body = (
        f'<!doctype html><html><body style="font-family:sans-serif"><p><strong>{escaped}'
        f'</strong></p><p>Detected at {html.escape(when)}.</p><p style="color:#666;'
        f'font-size:12px">Idempotency key: {html.escape(message["key"])}</p></body></html>'
    )
    prefix = "[LiveInsight] "
    return Mail(
        to,
        prefix + text,
        "\n".join(lines) + "\n",
        body,
        {"X-LiveInsight-Idempotency-Key": message["key"]},
    )


def email_attempt(message: dict[str, Any], rule: Rule, send_mail: SendMail) -> Attempt:
    """One message to each recipient; a failure fails the channel (all are sent again on the
    retry: at least once)."""
    try:
        for address in rule.target.emails:
            send_mail(alert_mail(message, address))
    except Exception as exc:  # SES refused or did not answer: the queue retries
        return Attempt(FAILED, error=repr(exc)[:200])
    return Attempt(DELIVERED)


class DeliveryLog:
    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client, self._table, self._clock = client, table, clock

    def delivered(self, site: str, key: str) -> bool:
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": keys.alert_log_pk(site)}, "sk": {"S": keys.alert_sent_sk(key)}},
        )
        return "Item" in response

    def record(
        self,
        message: dict[str, Any],
        result: Attempt,
        attempt_number: int,
        channel: str = WEBHOOK,
    ) -> dict[str, Any]:
        now = self._clock()
        entry = {
            "key": message["key"],
            "channel": channel,
            "rule_id": message["rule_id"],
            "type": message["type"],
            "status": result.status,
            "http_status": result.http_status,
            "latency_ms": result.latency_ms,
            "attempt": attempt_number,
            "at": int(now),
            "error": result.error,
        }
        ttl = {"N": str(int(now) + LOG_TTL_SECONDS)}
        pk = {"S": keys.alert_log_pk(message["site"])}
        self._client.put_item(
            TableName=self._table,
            Item={
                "pk": pk,
                "sk": {
                    "S": keys.alert_log_sk(int(now * 1000), channel_key(message["key"], channel))
                },
                "entry": {"S": json.dumps(entry, separators=(",", ":"))},
                "ttl": ttl,
            },
        )
        if result.status == DELIVERED:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": pk,
                    "sk": {"S": keys.alert_sent_sk(channel_key(message["key"], channel))},
                    "ttl": ttl,
                },
            )
        return entry

    def recent(self, site: str, limit: int = 20) -> list[dict[str, Any]]:
        """The latest attempts, newest first."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :log)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.alert_log_pk(site)},
                ":log": {"S": keys.ALERT_LOG_PREFIX},
            },
            ScanIndexForward=False,
            Limit=min(limit, MAX_LOGGED),
        )
        return [json.loads(item["entry"]["S"]) for item in response["Items"]]
