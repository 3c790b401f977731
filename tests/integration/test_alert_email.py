"""Alerts by email through SES (decision 0038): the real ingest, aggregator and delivery handlers
under moto, the delivery function fed by the emulated SQS event source mapping, the mail read
from moto's SES backend (as the local outbox reads it)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest

from alerts.rules import RuleStore
from local import outbox
from local.queue_poller import QueuePoller, create_alert_queues
from local.runtime import LocalFunction
from tests.conftest import _clear_composition_roots
from tests.integration.pipeline import Pipeline

SITE = "alert-mail.example"
SENDER = "alerts@liveinsight.test"
_ids = itertools.count()


@dataclass
class World:
    pipeline: Pipeline
    rules: RuleStore
    queue: QueuePoller

    def visitors(self, n: int, first: int = 0) -> None:
        for i in range(first, first + n):
            page = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
            assert self.pipeline.send(page, ip=f"198.51.100.{i + 1}").status == 202

    def deliver(self, rounds: int = 4) -> None:
        for _ in range(rounds):
            if not self.queue.poll_once(wait_seconds=0):
                return


def mail_to(address: str) -> list[outbox.OutboxMail]:
    return [m for m in outbox.sent() if m.to == address]


@pytest.fixture()
def world(sign_in_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> World:
    from alerts import handler as alerts_handler
    from core.aws import make_client

    sqs = make_client("sqs")
    queue_url, _ = create_alert_queues(sqs, sign_in_env["events"].rsplit("-", 1)[0])
    monkeypatch.setenv("LIVEINSIGHT_ALERTS_QUEUE_URL", queue_url)
    monkeypatch.setenv("LIVEINSIGHT_RETRY_BASE_SECONDS", "0")
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", SENDER)
    make_client("sesv2").create_email_identity(EmailIdentity="liveinsight.test")
    _clear_composition_roots()
    for cached in (alerts_handler.get_config, alerts_handler.get_clients, alerts_handler.get_ses):
        cached.cache_clear()
    pipeline = Pipeline(sign_in_env)
    pipeline.add_site(SITE)
    function = LocalFunction("alerts", alerts_handler.handler)
    poller = QueuePoller(sqs, queue_url, function.invoke, batch_size=5, wait_seconds=0)
    return World(pipeline, RuleStore(pipeline.ddb, sign_in_env["meta"]), poller)


def test_an_email_rule_sends_one_email_per_crossing_to_each_recipient(world: World) -> None:
    first, second = (f"ops{next(_ids)}-{i}@example.com" for i in range(2))
    # Given a spike rule (more than 2 current visitors) that emails two addresses
    rule = world.rules.add(SITE, "spike", 2, None, emails=[first, second], cooldown_seconds=0)
    # When 3 visitors arrive, the batch is counted, then delivered
    world.visitors(3)
    records = world.pipeline.read_stream()
    assert world.pipeline.aggregate(records) == {"batchItemFailures": []}
    world.deliver()
    # Then each recipient got one mail: the alert's words, a text and an HTML part
    (mail,) = mail_to(first)
    assert len(mail_to(second)) == 1
    assert mail.subject == f"[LiveInsight] {SITE}: 3 current visitors (above 2)"
    assert "3 current visitors" in mail.text and "3 current visitors" in mail.html
    assert mail.headers["X-LiveInsight-Idempotency-Key"] == f"{rule.id}.1.alert"
    assert mail.headers["From"].endswith(f"<{SENDER}>")
    # And the same batch again (a retry on a new instance) and a fourth visitor send nothing more
    _clear_composition_roots()
    assert world.pipeline.aggregate(records) == {"batchItemFailures": []}
    world.visitors(1, first=3)
    world.pipeline.pump()
    world.deliver()
    assert len(mail_to(first)) == 1 and len(mail_to(second)) == 1
    (entry,) = _log(world)
    assert entry["channel"] == "email" and entry["status"] == "delivered"


def _log(world: World) -> list[dict[str, Any]]:
    from alerts.deliver import DeliveryLog

    return DeliveryLog(world.pipeline.ddb, world.pipeline.names["meta"]).recent(SITE)


def test_ses_failing_is_retried_and_a_webhook_delivered_is_not_posted_again(
    world: World,
) -> None:
    from alerts import handler as alerts_handler

    to = f"ops{next(_ids)}@example.com"
    posts: list[str] = []

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        posts.append(headers["X-LiveInsight-Idempotency-Key"])
        return 204

    # Given a rule with a webhook and an address, and SES refusing the first time
    world.rules.add(SITE, "spike", 1, "http://127.0.0.1:9/hook", emails=[to])
    world.visitors(2)
    world.pipeline.pump()
    with (
        mock.patch.object(alerts_handler, "post", post),
        mock.patch.object(alerts_handler, "get_ses") as ses,
    ):
        ses.return_value.send_email.side_effect = OSError("SES unreachable")
        world.queue.poll_once(wait_seconds=0)
    assert mail_to(to) == [] and len(posts) == 1
    # When the message comes back
    with mock.patch.object(alerts_handler, "post", post):
        world.deliver()
    # Then the mail went once, and the webhook was not posted a second time
    assert len(mail_to(to)) == 1 and len(posts) == 1
    channels = [(e["channel"], e["status"]) for e in reversed(_log(world))]
    assert channels == [("webhook", "delivered"), ("email", "failed"), ("email", "delivered")]
