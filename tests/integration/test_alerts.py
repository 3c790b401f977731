"""Alerts from the stream to a webhook (issue 23, decision 0036): the real ingest, aggregator and
delivery handlers under moto, the delivery function fed by the emulated SQS event source
mapping, and a capture server on 127.0.0.1 that checks each body's signature."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest

from alerts.deliver import KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from alerts.rules import RuleStore
from local.queue_poller import QueuePoller, create_alert_queues
from local.runtime import LocalFunction
from tests.conftest import _clear_composition_roots
from tests.integration.admin_client import Browser
from tests.integration.pipeline import Pipeline

SITE = "alerts.example"
SECRET = "whsec_test-secret-0123456789"


@dataclass
class Capture:
    """A webhook receiver: records each POST; answers `status` after `delay` seconds."""

    status: int = 200
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.received]


@pytest.fixture()
def capture() -> Iterator[Capture]:
    state = Capture()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            state.received.append(
                {
                    "body": body,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "valid": verify(
                        SECRET,
                        self.headers.get(TIMESTAMP_HEADER, ""),
                        body,
                        self.headers.get(SIGNATURE_HEADER, ""),
                        time.time(),
                    ),
                }
            )
            time.sleep(state.delay)
            try:
                self.send_response(state.status)
                self.end_headers()
            except OSError:  # the sender timed out and left
                pass

        def log_message(self, *args: Any) -> None:
            pass

    state.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=state.server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.server.shutdown()


@dataclass
class World:
    pipeline: Pipeline
    rules: RuleStore
    queue: QueuePoller
    queue_url: str
    dlq_url: str

    def visitors(self, n: int, first: int = 0) -> None:
        for i in range(first, first + n):
            page = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
            assert self.pipeline.send(page, ip=f"198.51.100.{i + 1}").status == 202

    def deliver(self, rounds: int = 3) -> None:
        """Run the delivery function's mapping until the queue has nothing visible."""
        for _ in range(rounds):
            if not self.queue.poll_once(wait_seconds=0):
                return

    def dead_letters(self) -> list[dict[str, Any]]:
        from core.aws import make_client

        got = make_client("sqs").receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]


@pytest.fixture()
def world(sign_in_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> World:
    from alerts import handler as alerts_handler
    from core.aws import make_client

    sqs = make_client("sqs")
    queue_url, dlq_url = create_alert_queues(sqs, sign_in_env["events"].rsplit("-", 1)[0])
    monkeypatch.setenv("LIVEINSIGHT_ALERTS_QUEUE_URL", queue_url)
    monkeypatch.setenv("LIVEINSIGHT_RETRY_BASE_SECONDS", "0")  # retries at once, in the test
    monkeypatch.setenv("LIVEINSIGHT_WEBHOOK_TIMEOUT_SECONDS", "0.5")
    _clear_composition_roots()
    alerts_handler.get_config.cache_clear()
    alerts_handler.get_clients.cache_clear()
    pipeline = Pipeline(sign_in_env)
    pipeline.add_site(SITE)
    function = LocalFunction("alerts", alerts_handler.handler)
    poller = QueuePoller(sqs, queue_url, function.invoke, batch_size=5, wait_seconds=0)
    return World(pipeline, RuleStore(pipeline.ddb, sign_in_env["meta"]), poller, queue_url, dlq_url)


def test_a_spike_sends_one_signed_webhook_and_a_redelivered_batch_no_second(
    world: World, capture: Capture
) -> None:
    # Given a rule: more than 2 current visitors (no cool-down: only the crossing's record holds
    # a second alert back)
    rule = world.rules.add(SITE, "spike", 2, capture.url, SECRET, cooldown_seconds=0)
    # When 3 visitors arrive and the realtime batch is counted, then delivered
    world.visitors(3)
    records = world.pipeline.read_stream()
    assert world.pipeline.aggregate(records) == {"batchItemFailures": []}
    assert capture.received == []  # the aggregator only queues
    world.deliver()
    # Then one webhook came, signed with the rule's secret, its key in body and header
    assert len(capture.received) == 1
    sent = capture.received[0]
    assert sent["valid"]
    body = json.loads(sent["body"])
    assert body["type"] == "alert" and body["value"] == 3 and body["rule"]["id"] == rule.id
    assert sent["headers"][KEY_HEADER.lower()] == body["id"] == f"{rule.id}.1.alert"
    # And the same batch delivered again (a Lambda retry, on a new instance) sends nothing more
    _clear_composition_roots()
    assert world.pipeline.aggregate(records) == {"batchItemFailures": []}
    world.visitors(1, first=3)  # nor does a fourth visitor while it fires
    world.pipeline.pump()
    world.deliver()
    assert len(capture.received) == 1
    # And the delivery log says so
    (entry,) = _deliveries(world)
    assert entry["status"] == "delivered" and entry["http_status"] == 200


def _deliveries(world: World) -> list[dict[str, Any]]:
    from alerts.deliver import DeliveryLog

    return DeliveryLog(world.pipeline.ddb, world.pipeline.names["meta"]).recent(SITE)


def test_resolved_is_sent_once_and_the_cool_down_holds(world: World, capture: Capture) -> None:
    from aggregator.handler import get_alerts

    start = datetime.now(UTC).replace(second=0, microsecond=0)
    clock = {"now": start}
    alerts = get_alerts()
    assert alerts is not None
    alerts.clock = lambda: clock["now"].timestamp()

    def at(moment: datetime, visitors: int, first: int) -> None:
        clock["now"] = moment
        with mock.patch("ingest.handler.now", return_value=moment):
            world.visitors(visitors, first)
        world.pipeline.pump()
        world.deliver()

    # Given a spike rule (more than 2) with the default cool-down of 6 hours
    world.rules.add(SITE, "spike", 2, capture.url, SECRET)
    at(start, 3, 0)  # fires
    at(start + timedelta(minutes=10), 1, 10)  # one visitor now: resolved
    at(start + timedelta(minutes=11), 1, 11)  # still calm: nothing
    at(start + timedelta(minutes=20), 3, 20)  # crosses again within 6 hours: held back
    at(start + timedelta(minutes=30), 1, 30)  # calm: nothing to resolve
    types = [b["type"] for b in capture.bodies()]
    assert types == ["alert", "resolved"]
    assert all(r["valid"] for r in capture.received)
    # When it crosses again after the cool-down
    at(start + timedelta(hours=6, minutes=1), 3, 40)
    # Then a second alert, under its own key
    bodies = capture.bodies()
    assert [b["type"] for b in bodies] == ["alert", "resolved", "alert"]
    assert len({b["id"] for b in bodies}) == 3


def test_an_endpoint_answering_500_is_retried_then_dead_lettered(
    world: World, capture: Capture
) -> None:
    # Given a webhook that answers 500
    capture.status = 500
    world.rules.add(SITE, "spike", 1, capture.url, SECRET)
    world.visitors(2)
    world.pipeline.pump()
    # When the mapping delivers until the queue is empty (retries at once in this test)
    world.deliver(rounds=10)
    # Then it was tried max_receive_count times, logged, and the message is in the DLQ
    assert len(capture.received) == 5
    statuses = [e["status"] for e in _deliveries(world)]
    assert statuses == ["dead-lettered"] + ["failed"] * 4
    (dead,) = world.dead_letters()
    assert dead["type"] == "alert" and dead["site"] == SITE


def test_an_endpoint_that_times_out_is_retried_and_the_batch_is_not_slowed(
    world: World, capture: Capture
) -> None:
    # Given a webhook that answers only after 2 s (the delivery waits 0.5 s)
    capture.delay = 2.0
    world.rules.add(SITE, "spike", 1, capture.url, SECRET)
    world.visitors(2)
    # When the realtime batch is counted: it queues and returns without calling the webhook
    records = world.pipeline.read_stream()
    assert world.pipeline.aggregate(records) == {"batchItemFailures": []}
    assert capture.received == []
    # Then the delivery times out, and the message comes back for another attempt
    world.queue.poll_once(wait_seconds=0)
    (entry,) = _deliveries(world)
    assert entry["status"] == "failed" and "timed out" in entry["error"].lower()
    capture.delay = 0.0
    world.deliver()
    assert [e["status"] for e in _deliveries(world)] == ["delivered", "failed"]


def test_a_site_without_rules_reads_its_rules_once_per_cache_period(world: World) -> None:
    from aggregator.handler import get_alerts

    alerts = get_alerts()
    assert alerts is not None
    queries: list[str] = []
    original = world.pipeline.ddb.query

    def counted(**request: Any) -> Any:
        queries.append(request["ExpressionAttributeValues"][":pk"]["S"])
        return original(**request)

    with mock.patch.object(alerts.rules._client, "query", side_effect=counted):
        reports = [alerts.after_batch({SITE}) for _ in range(3)]
    assert [r.rules_read for r in reports] == [1, 0, 0]
    assert queries == [f"ALERTS#{SITE}"]


def test_bad_rule_input_gets_a_4xx(world: World, capture: Capture) -> None:
    admin = Browser(world.pipeline)
    assert admin.login().status == 200
    path = f"/api/admin/sites/{SITE}/alerts"
    hook = {"url": capture.url}
    bad = [
        {"kind": "spike", "threshold": 0, "webhook": hook},
        {"kind": "flood", "threshold": 5, "webhook": hook},
        {"kind": "spike", "threshold": 5, "webhook": {"url": "http://203.0.113.9/hook"}},
        {"kind": "spike", "threshold": 5, "webhook": {"url": "ftp://x.example/"}},
        {"kind": "spike", "threshold": 5, "webhook": {**hook, "secret": "short"}},
        {"kind": "spike", "threshold": 5, "webhook": hook, "extra": 1},
        {"kind": "goal", "threshold": 5, "webhook": hook},
        {"kind": "goal", "threshold": 5, "goal": " Signup", "webhook": hook},
        {"kind": "goal", "threshold": 5, "goal": "Visit /a*", "webhook": hook},
        {"kind": "spike", "webhook": hook},
        {"kind": "drop", "threshold": 2, "webhook": hook},
        {"kind": "drop", "window_minutes": 181, "webhook": hook},
        {"kind": "new_referrer", "window_minutes": 5, "webhook": hook},
        {"kind": "spike", "threshold": 5},
        {"kind": "spike", "threshold": 5, "emails": ["not-an-address"]},
        {"kind": "spike", "threshold": 5, "emails": "a@b.example"},
        {"kind": "spike", "threshold": 5, "emails": [f"o{i}@b.example" for i in range(6)]},
        {"kind": "spike", "threshold": 5, "emails": ["a@b.example"], "webhook": {"url": ""}},
        {
            "kind": "goal",
            "threshold": 5,
            "goal": "Visit /a",
            "window_minutes": 999,
            "webhook": hook,
        },
        {"kind": "spike", "threshold": 5, "cooldown_seconds": 10**9, "webhook": hook},
        {"kind": "spike", "threshold": "many", "webhook": hook},
    ]
    for body in bad:
        reply = admin.request("POST", path, json_body=body)
        assert reply.status == 400, (body, reply.body)
        assert "error" in reply.json()
    assert admin.request("DELETE", f"{path}/not-an-id").status == 400
    assert admin.request("DELETE", f"{path}/0123456789ab").status == 404
    assert admin.request(
        "POST", "/api/admin/sites/nobody.example/alerts", json_body=bad[0]
    ).status in (
        400,
        404,
    )
    # And a good one is listed without its secret, which the creation showed once
    made = admin.request("POST", path, json_body={"kind": "spike", "threshold": 5, "webhook": hook})
    assert made.status == 201
    secret = made.json()["webhook"]["secret"]
    assert secret.startswith("whsec_")
    listed = admin.request("GET", path).json()["alerts"]
    assert [a["id"] for a in listed] == [made.json()["id"]] and secret not in json.dumps(listed)
    assert admin.request("GET", f"{path}/deliveries").json() == {"deliveries": []}
    assert admin.request("DELETE", f"{path}/{made.json()['id']}").status == 204
    assert admin.request("GET", path).json() == {"alerts": []}


def test_every_kind_of_rule_is_made_and_listed_by_the_admin_api(world: World) -> None:
    # The shapes decision 0036 documents for the settings page
    admin = Browser(world.pipeline)
    assert admin.login().status == 200
    path = f"/api/admin/sites/{SITE}/alerts"
    emails = ["ops@example.com"]
    bodies = [
        {"kind": "goal", "threshold": 3, "goal": "Signup", "window_minutes": 10, "emails": emails},
        {"kind": "drop", "window_minutes": 30, "emails": emails},
        {"kind": "new_referrer", "emails": emails, "cooldown_seconds": 3600},
    ]
    made = [admin.request("POST", path, json_body=b) for b in bodies]
    assert [m.status for m in made] == [201, 201, 201], [m.body for m in made]
    shapes = [
        {k: m.json()[k] for k in ("kind", "threshold", "goal", "window_minutes", "webhook")}
        for m in made
    ]
    assert shapes == [
        {"kind": "goal", "threshold": 3, "goal": "Signup", "window_minutes": 10, "webhook": None},
        {"kind": "drop", "threshold": None, "goal": None, "window_minutes": 30, "webhook": None},
        {
            "kind": "new_referrer",
            "threshold": 1,
            "goal": None,
            "window_minutes": None,
            "webhook": None,
        },
    ]
    listed = admin.request("GET", path).json()["alerts"]
    assert sorted(a["kind"] for a in listed) == ["drop", "goal", "new_referrer"]
    assert all(a["emails"] == emails and a["firing"] is False for a in listed)


def test_of_two_writers_that_see_the_same_crossing_one_records_it(world: World) -> None:
    from alerts.detect import decide
    from alerts.rules import StateMoved

    # Given two instances that read the rule in the same state
    world.rules.add(SITE, "spike", 2, "http://127.0.0.1:9/hook", SECRET)
    (first,) = world.rules.list(SITE, consistent=True)
    (second,) = world.rules.list(SITE, consistent=True)
    # When both see the crossing and record it
    now = int(time.time())
    state = decide(first, 3, now)
    assert state is not None and decide(second, 3, now) == state
    world.rules.record(first, state)
    # Then the second write is refused: one record, one message
    with pytest.raises(StateMoved):
        world.rules.record(second, state)
    (stored,) = world.rules.list(SITE, consistent=True)
    assert stored.state.crossing == 1 and stored.state.pending == f"{stored.id}.1.alert"
