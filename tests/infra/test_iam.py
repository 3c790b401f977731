"""Each role allows exactly the DynamoDB/SQS/SSM/S3 actions its function's code calls, on exactly
its tables, parameters and archive prefixes.

The calls are recorded, not guessed: every botocore client made during the scenario gets a
`before-call` hook, and a call is attributed to the function whose invocation makes it (a context
variable set around each invocation in local/runtime.py; it follows FastAPI's sync endpoints into
their worker threads). The real handlers run
against the moto server, through ingest → stream → aggregator → query, including the paths that
only happen sometimes: a new day's salt replacing an expired one, a resend, a redelivered batch
(cancelled transaction), a bot, an unknown site, a bad key, a public site listing, and the
admin's side: secrets and the dashboard's public URL read from SSM (decision 0023), a failed
and a good sign-in, every kind of site change, a shared link, a Plausible import uploaded, listed,
read and deleted (decision 0035), an Umami import uploaded, done by the archive function on S3's
notification and removed the same way (decision 0039), sign-out; an alert emailed and the
weekly report sent by SES (decision 0038), one send failing.

A grant names the partition too where a statement has a `dynamodb:LeadingKeys` condition: the
calls record the partition key each one names (Key, Item or the Query's `pk = :pk`), so the
ingest role's meta access is checked down to the partitions it reads (sites, salts) and the one
it writes (salts).

Operations map to IAM actions as AWS authorizes them: TransactWriteItems has no action of its
own, each Put/Update/Delete/ConditionCheck inside it needs PutItem/UpdateItem/DeleteItem/
ConditionCheckItem on its table. The stream read actions and sqs:SendMessage are the event source
mapping's (it polls the stream and writes on-failure records with the function's role), so for
the aggregator they are derived from the mapping's resource, not from the code; likewise the
archive function's sqs:SendMessage, from its asynchronous invocation's on-failure destination.

S3 calls are recorded with their API parameters (bucket, key, list prefix), before they are
serialized: a grant on the archive names the object key, or for s3:ListBucket the listed prefix,
matched against the policy's `<prefix>*` resources and its `s3:prefix` condition. DeleteObjects
needs s3:DeleteObject on each key, CopyObject s3:GetObject on the source and s3:PutObject on the
copy. The archive function runs a scheduled compaction (parts merged, an unreadable object
quarantined, a day past retention deleted with its quarantined object); the rollup tier archives
its batch; the query function answers from the archive what the counters refuse.
"""

from __future__ import annotations

import contextvars
import fnmatch
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import botocore.session
import pytest

from core import keys
from core.events import RawEvent
from core.sites import SiteStore
from local.front import api_gateway_event
from local.runtime import LocalFunction
from tests.conftest import _clear_composition_roots
from tests.infra import terraform as tf
from tests.integration.pipeline import DESKTOP_UA, Pipeline

SITE = "iam.example"
UMAMI_ID = "50429a93-8479-4073-be80-d5d29c09c2ec"  # an Umami website id attached to SITE
PUBLIC_SITE = "public.example"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
STREAM_READ = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}

CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_function", default=None
)

# (IAM action, resource: "table:<logical>" | "stream:<logical>" | ..., partition key or ANY_KEY)
Grant = tuple[str, str, str]
ANY_KEY = "*"  # a statement without a LeadingKeys condition; a call whose key is not recorded


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []  # function, service, op, body
        self._lock = threading.Lock()

    def hook(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        function = CURRENT_FUNCTION.get()
        if function is None or model.service_model.service_name == "s3":
            return  # the test's own setup and stream reads; S3: s3_hook
        raw = params.get("body") or b"{}"
        body = json.loads(raw.decode() if isinstance(raw, bytes) else raw or "{}")
        with self._lock:
            self.calls.append((function, model.service_model.service_name, model.name, body))

    def s3_hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """S3's API parameters as the code passed them (its REST request hides the bucket)."""
        function = CURRENT_FUNCTION.get()
        if function is None:
            return
        body = {k: v for k, v in params.items() if k in ("Bucket", "Key", "Prefix", "CopySource")}
        if model.name == "DeleteObjects":
            body["Keys"] = [o["Key"] for o in params["Delete"]["Objects"]]
        with self._lock:
            self.calls.append((function, "s3", model.name, body))


@pytest.fixture()
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    recorder = Recorder()
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        client.meta.events.register("before-call.*", recorder.hook)
        client.meta.events.register("provide-client-params.s3.*", recorder.s3_hook)
        return client

    invoke = LocalFunction._timed

    def timed(self: LocalFunction, event: dict[str, Any]) -> Any:
        token = CURRENT_FUNCTION.set(self.name)
        try:
            return invoke(self, event)
        finally:
            CURRENT_FUNCTION.reset(token)

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    monkeypatch.setattr(LocalFunction, "_timed", timed)
    yield recorder


# The sign-in secrets as the scenario names them, by the logical name of their Terraform resource.
PARAMETERS = {
    "/liveinsight/iam-test/admin-password-hash": "admin_password_hash",
    "/liveinsight/iam-test/session-signing-key": "session_signing_key",
}
# The dashboard's origin, as Terraform writes it when there is no custom domain (decision 0023).
PUBLIC_URL_PARAMETER = "/liveinsight/iam-test/public-url"
ADMIN_PASSWORD = "iam scenario password"
# The sender, as var.email_from names it; its domain is the SES identity (decision 0038).
EMAIL_DOMAIN = "liveinsight.test"
SENDER = f"reports@{EMAIL_DOMAIN}"


def grants_from_call(
    service: str, operation: str, body: dict[str, Any], logical: dict[str, str]
) -> set[Grant]:
    if service == "ssm" and "Name" in body:
        named = {**PARAMETERS, PUBLIC_URL_PARAMETER: "public_url"}
        return {(f"ssm:{operation}", "param:" + named.get(body["Name"], "unknown"), ANY_KEY)}
    if service == "s3":
        return s3_grants(operation, body, logical)
    if service == "sqs":
        queue = logical.get(body.get("QueueUrl", "").rsplit("/", 1)[-1], "unknown")
        return {(f"sqs:{operation}", "queue:" + queue, ANY_KEY)}
    if service == "sesv2" and operation == "SendEmail":
        return ses_grants(body)
    if service != "dynamodb":
        return {(f"{service}:{operation}", "unknown", ANY_KEY)}
    if operation == "TransactWriteItems":
        return {
            (f"dynamodb:{TRANSACT_ACTIONS[kind]}", "table:" + logical[spec["TableName"]], pk(spec))
            for item in body["TransactItems"]
            for kind, spec in item.items()
        }
    if operation == "TransactGetItems":
        return {
            ("dynamodb:GetItem", "table:" + logical[item["Get"]["TableName"]], pk(item["Get"]))
            for item in body["TransactItems"]
        }
    if operation == "BatchGetItem":
        return {
            (f"dynamodb:{operation}", "table:" + logical[table], key["pk"]["S"])
            for table, spec in body["RequestItems"].items()
            for key in spec["Keys"]
        }
    if operation == "BatchWriteItem":
        return {
            (f"dynamodb:{operation}", "table:" + logical[table], pk(next(iter(request.values()))))
            for table, requests in body["RequestItems"].items()
            for request in requests
        }
    return {(f"dynamodb:{operation}", "table:" + logical[body["TableName"]], pk(body))}


# S3 operations as IAM authorizes them (the object actions; listing is s3:ListBucket).
S3_ACTIONS = {
    "PutObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
}


def s3_grants(operation: str, body: dict[str, Any], logical: dict[str, str]) -> set[Grant]:
    bucket = "bucket:" + logical.get(body.get("Bucket", ""), "unknown")
    if operation in ("ListObjectsV2", "ListObjects"):
        return {("s3:ListBucket", bucket, body.get("Prefix", ""))}
    if operation == "DeleteObjects":
        return {("s3:DeleteObject", bucket, key) for key in body["Keys"]}
    if operation == "CopyObject":
        source = body["CopySource"]
        if isinstance(source, str):
            source_bucket, _, source_key = source.lstrip("/").partition("/")
            source = {"Bucket": source_bucket, "Key": source_key}
        source_grants = s3_grants("GetObject", source, logical)
        return source_grants | {("s3:PutObject", bucket, body["Key"])}
    return {(S3_ACTIONS.get(operation, f"s3:{operation}"), bucket, body["Key"])}


def ses_grants(body: dict[str, Any]) -> set[Grant]:
    """SES v2 SendEmail as IAM authorizes it: ses:SendEmail on the identity of the From address's
    domain, and ses:SendRawEmail too for raw content; the From address is the condition key
    ses:FromAddress, recorded where a DynamoDB grant records its partition."""
    sender = body["FromEmailAddress"]
    identity = "identity:email" if sender.endswith("@" + EMAIL_DOMAIN) else "unknown"
    raw = "Raw" in body.get("Content", {})
    actions = ["ses:SendEmail", *(["ses:SendRawEmail"] if raw else [])]
    return {(action, identity, sender) for action in actions}


def email_grants(function: str) -> set[Grant]:
    """The email policy (terraform/reports.tf), for the functions it is attached to: sending
    through the identity, from var.email_from only, which their environment names as sender."""
    attached = tf.resource("aws_iam_role_policy.email")
    assert attached["policy"] == "${data.aws_iam_policy_document.email[0].json}"
    assert attached["role"] == "${aws_iam_role.lambda[each.key].id}"
    m = re.fullmatch(
        r'\$\{var\.email_from != "" \? toset\(\[(.*)\]\) : toset\(\[\]\)\}', attached["for_each"]
    )
    assert m, attached["for_each"]
    if f'"{function}"' not in m.group(1).split(", "):
        return set()
    environment = tf.locals_()["functions"][function]["environment"]
    assert environment["LIVEINSIGHT_EMAIL_FROM"] == "${var.email_from}"
    grants: set[Grant] = set()
    for statement in tf.data("aws_iam_policy_document.email")["statement"]:
        (condition,) = statement["condition"]
        assert (condition["test"], condition["variable"]) == ("StringEquals", "ses:FromAddress")
        assert condition["values"] == ["${var.email_from}"]
        for action in statement["actions"]:
            assert "*" not in action, action
            grants.update((action, classify(r), SENDER) for r in statement["resources"])
    return grants


def pk(request: dict[str, Any]) -> str:
    """The partition key a DynamoDB request names: IAM's dynamodb:LeadingKeys."""
    for field in ("Key", "Item"):
        if field in request:
            return str(request[field]["pk"]["S"])
    condition = request.get("KeyConditionExpression", "")
    if m := re.match(r"\s*pk\s*=\s*(:\w+)", condition):
        return str(request["ExpressionAttributeValues"][m.group(1)]["S"])
    return ANY_KEY  # a Scan: no partition named, which ForAllValues would let through


def run_scenario(pipeline: Pipeline) -> None:
    # Given a private site with a key, a public site, and a salt from long ago
    key = pipeline.add_site(SITE)
    pipeline.add_site(PUBLIC_SITE, public=True)
    pipeline.ddb.put_item(
        TableName=pipeline.names["meta"],
        Item={
            "pk": {"S": keys.SALT_PK},
            "sk": {"S": keys.salt_sk("2000-01-01")},
            "salt": {"B": b"0" * 32},
        },
    )
    # When events arrive: accepted, resent, from a bot, for an unknown site
    page = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE, "id": "client-event-0001"}
    assert pipeline.send(page).status == 202
    assert pipeline.send(page).status == 202  # the same client id again: a resend
    assert pipeline.send({**page, "id": None}, ip="198.51.100.8").status == 202
    assert pipeline.send({**page, "id": None}, user_agent=BOT_UA).status == 202
    unknown = {"n": "pageview", "u": "https://nobody.example/", "d": "nobody.example"}
    assert pipeline.send(unknown, user_agent=DESKTOP_UA).status == 202
    # And @umami/node sends a website id attached to the site (no hostname: read by id)
    SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).update(SITE, umami_id=UMAMI_ID)
    umami = {"type": "event", "payload": {"website": UMAMI_ID, "name": "signup"}}
    headers = {"content-type": "application/json", "user-agent": "node/v20.11.1"}
    sent = pipeline.ingest_fn.invoke(
        api_gateway_event("POST", "/api/send", headers, json.dumps(umami).encode(), "127.0.0.1")
    )
    assert sent["statusCode"] == 200, sent
    # And a visitor's session goes on over UTC midnight (last-seen items, ingest/sessions.py)
    for at in (
        datetime(2026, 11, 25, 23, 50, tzinfo=UTC),
        datetime(2026, 11, 26, 0, 5, tzinfo=UTC),
    ):
        with mock.patch("ingest.handler.now", return_value=at):
            assert pipeline.send({**page, "id": None}, ip="198.51.100.9").status == 202
    # And the site has an alert rule (decision 0036) whose webhook does not answer, and which
    # emails a recipient (decision 0038)
    from alerts.rules import RuleStore

    RuleStore(pipeline.ddb, pipeline.names["meta"]).add(
        SITE, "spike", 1, "http://127.0.0.1:9/", emails=["ops@iam.example"]
    )
    # And the aggregator counts them, folding every slot at once (decision 0015), then gets the
    # same batch again (duplicate markers); its realtime numbers cross the rule
    records = pipeline.read_stream()
    assert records
    with mock.patch.dict(os.environ, {"LIVEINSIGHT_FOLD_AT_SLOTS": "1"}):
        _clear_composition_roots()
        assert pipeline.aggregate(records) == {"batchItemFailures": []}
        assert pipeline.aggregate(records) == {"batchItemFailures": []}
    _clear_composition_roots()
    # And the query API is read with a key, without one, with a wrong one, and listed
    assert pipeline.realtime(SITE, key)["pageviews"] == 2
    assert pipeline.get(f"/api/realtime/card?site_id={SITE}", key).status == 200
    assert pipeline.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}", key).status == 200
    assert pipeline.get(f"/api/realtime?site_id={SITE}", "li_wrong").status == 401
    assert pipeline.get(f"/api/realtime?site_id={PUBLIC_SITE}").status == 200
    assert pipeline.get("/api/v1/sites/public").status == 200
    # And a question the counters refuse (a page breakdown filtered by source) is answered from
    # the archive the aggregator wrote: the days' objects listed and fetched
    breakdown = pipeline.get(
        f"/api/v1/stats/breakdown?site_id={SITE}&period=custom&date=2026-11-25,2026-11-26"
        "&property=event:page&filters=visit:source%3D%3DGoogle",
        key,
    )
    assert breakdown.status == 200, breakdown.body
    assert breakdown.headers.get("x-liveinsight-answered-from") == "archive"
    run_admin_scenario(pipeline)
    run_compaction_scenario(pipeline)
    run_alerts_scenario(pipeline)
    run_alert_schedule_scenario(pipeline)
    run_reports_scenario(pipeline)


def run_reports_scenario(pipeline: Pipeline) -> None:
    """The hourly reports run (decision 0038) on a Monday morning: the sites listed, the site's
    subscriptions read, each recipient's marker claimed; the report's questions asked of the
    counters and, for the breakdowns the counters refuse (as for a site with more pages than
    they keep), of the archive; the unsubscribe key's secret and the origin read from SSM; SES
    failing once (the claim released), then sending."""
    from unittest import mock

    from query_api import counters
    from reports import handler
    from reports.store import ReportStore

    store = ReportStore(pipeline.ddb, pipeline.names["meta"])
    for address in ("first@iam.example", "second@iam.example"):
        store.subscribe(SITE, address, ["weekly"])
    ses = handler.make_ses()
    failures = iter([True])

    class FailingOnce:
        def send_email(self, **kwargs: Any) -> Any:
            if next(failures, False):
                raise RuntimeError("SES throttled")
            return ses.send_email(**kwargs)

    refused = counters.not_exact("more pages than the counters keep")
    with (
        mock.patch.object(handler, "clock", return_value=datetime(2026, 11, 30, 9, 30, tzinfo=UTC)),
        mock.patch.object(handler, "make_ses", return_value=FailingOnce()),
        mock.patch.object(counters.CounterEngine, "breakdown", side_effect=refused),
    ):
        result = LocalFunction("reports", handler.handler).invoke({"source": "aws.events"})
    assert result == {"sent": 1}, result
    assert [s["status"] for s in store.sent(SITE)] == ["sent"]


def run_alert_schedule_scenario(pipeline: Pipeline) -> None:
    """The minute schedule (decision 0037) on a referrer minute: the index read, the site's
    rules and the site read, a drop rule's usual hours (hours), a new_referrer rule's sources
    (days and slots), the spike the realtime tier fired resolved (minutes; recorded, queued),
    and a site with nothing left taken off the index."""
    from alerts import schedule
    from alerts.rules import RuleStore

    rules = RuleStore(pipeline.ddb, pipeline.names["meta"])
    rules.add(SITE, "drop", None, "http://127.0.0.1:9/")
    rules.add(SITE, "new_referrer", None, "http://127.0.0.1:9/")
    rules.add(PUBLIC_SITE, "drop", None, "http://127.0.0.1:9/")
    rules.remove_all(PUBLIC_SITE)
    schedule.get_schedule.cache_clear()
    moment = datetime(2026, 11, 26, 0, 30, tzinfo=UTC).timestamp()  # a referrer minute
    schedule.get_schedule().clock = schedule.get_schedule().alerts.clock = lambda: moment
    result = LocalFunction("alert_schedule", schedule.handler).invoke({"source": "aws.scheduler"})
    assert result["unlisted"] == [PUBLIC_SITE] and result["errors"] == 0, result
    assert len(result["queued"]) == 1, result  # the spike resolved
    schedule.get_schedule.cache_clear()


def run_alerts_scenario(pipeline: Pipeline) -> None:
    """The delivery function takes the queued alert: its rule and the log read, the attempt
    logged, the failed message's visibility set for the backoff."""
    from alerts.handler import handler
    from core.aws import make_client
    from local.queue_poller import QueuePoller

    function = LocalFunction("alerts", handler)
    poller = QueuePoller(
        make_client("sqs"), os.environ["LIVEINSIGHT_ALERTS_QUEUE_URL"], function.invoke
    )
    assert poller.poll_once(wait_seconds=0) == 1


def run_compaction_scenario(pipeline: Pipeline) -> None:
    """The hourly compaction: a day's parts merged, an unreadable object quarantined, a day past
    the site's retention deleted with the quarantined object of that day."""
    from archive import layout
    from archive.handler import handler
    from archive.store import ArchiveStore

    store = ArchiveStore(pipeline.s3, pipeline.bucket, tempfile.mkdtemp(prefix="li-iam-"))

    def pageview(n: int, day: datetime) -> RawEvent:
        ts = int(day.timestamp() * 1000) + n
        return RawEvent(f"iam-{n}", SITE, ts, "pageview", f"v{n}", "UTC", page="/")

    # Given two parts of one day, an unreadable part beside a good one, and a day past the 24 months retention
    # with one of its objects already in quarantine
    for n in range(2):
        store.write_batch([pageview(n, datetime(2026, 1, 10, tzinfo=UTC))])
    store.write_batch([pageview(2, datetime(2026, 1, 11, tzinfo=UTC))])
    torn = layout.ObjectKey(SITE, "2026-01-11", "part-torn.parquet").key
    pipeline.s3.put_object(Bucket=store.bucket, Key=torn, Body=b"PAR1")
    store.write_batch([pageview(3, datetime(2023, 1, 5, tzinfo=UTC))])
    old = layout.ObjectKey(SITE, "2023-01-05", "part-old-torn.parquet").key
    pipeline.s3.put_object(Bucket=store.bucket, Key=layout.quarantine_key(old), Body=b"PAR1")
    # When the schedule runs the archive function
    function = LocalFunction("archive", handler, timeout_seconds=900)
    summary = function.invoke(
        {
            "version": "0",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": "2026-01-20T03:00:00Z",
            "detail": {},
        }
    )
    # Then every kind of call happened
    assert summary["quarantined"] == [layout.quarantine_key(torn)], summary
    assert summary["objects_expired"] >= 2 and summary["days_compacted"] >= 1, summary
    assert store.quarantined(SITE) == [layout.quarantine_key(torn)]


def run_admin_scenario(pipeline: Pipeline) -> None:
    """Sign-in (secrets from SSM), a failed and a good login, every admin change, a shared link
    read, sign-out."""
    from tests.integration.admin_client import Browser

    browser = Browser(pipeline)
    assert browser.login("not the password").status == 401
    assert browser.login(ADMIN_PASSWORD).status == 200
    assert browser.request("GET", "/api/admin/sites").status == 200
    created = browser.request("POST", "/api/admin/sites", json_body={"domain": "admin.example"})
    assert created.status == 201
    path = "/api/admin/sites/admin.example"
    assert browser.request("PATCH", path, json_body={"hostnames": ["admin.example"]}).status == 200
    umami_id = {"umami_id": "9d0c7f1e-3b4a-4c5d-8e6f-7a8b9c0d1e2f"}
    assert browser.request("PATCH", path, json_body=umami_id).status == 200
    assert browser.request("POST", f"{path}/goals", json_body={"goal": "Signup"}).status == 201
    share = browser.request("POST", f"{path}/shares").json()
    assert (
        browser.request("GET", f"/api/realtime?site_id=admin.example&auth={share['token']}").status
        == 200
    )
    assert browser.request("GET", "/api/realtime?site_id=admin.example").status == 200  # the admin
    assert browser.request("DELETE", f"{path}/shares/{share['id']}").status == 200
    assert browser.request("DELETE", path).status == 200
    run_imports_scenario(browser)
    assert browser.request("POST", "/api/auth/logout").status == 200


def run_imports_scenario(browser: Any) -> None:
    """A Plausible export uploaded (decision 0035: its tables and manifest written under
    imports/), the imports listed, a stats read with them, the import deleted."""
    from datetime import date
    from urllib.parse import urlencode

    from core.edge import ORIGIN_HEADER
    from local.front import LOCAL_ORIGIN_SECRET
    from tests.import_files import plausible_export

    export = plausible_export(date(2025, 1, 6), 3)  # long before the site's own stats
    base = f"/api/admin/sites/{SITE}/imports"
    headers = {
        "host": browser.host,
        "content-type": "application/octet-stream",
        "x-csrf-token": browser.csrf,
        "cookie": "; ".join(f"{k}={v}" for k, v in browser.jar.items()),
        "cloudfront-viewer-address": f"{browser.ip}:443",
        ORIGIN_HEADER: LOCAL_ORIGIN_SECRET,
    }
    query = urlencode({"filename": "plausible-export.zip"})
    made = browser.pipeline.query_fn.invoke(
        api_gateway_event("POST", f"{base}?{query}", headers, export.data, "127.0.0.1")
    )
    assert made["statusCode"] == 201, made
    made_id = json.loads(made["body"])["import"]["id"]
    listed = browser.request("GET", base).json()["imports"]
    assert [i["id"] for i in listed] == [made_id]
    stats = browser.request(
        "GET",
        f"/api/v1/stats/aggregate?site_id={SITE}&period=custom&date=2025-01-06,2025-01-08"
        "&metrics=visitors&with_imported=true",
    )
    assert stats.status == 200, stats.body
    visitors = sum(export.visitors[d]["visitors"] for d in export.days)
    assert stats.json()["results"]["visitors"]["value"] == visitors  # read from imports/
    assert browser.request("DELETE", f"{base}/{made_id}").status == 200
    run_umami_import_scenario(browser, headers)


def run_umami_import_scenario(browser: Any, headers: dict[str, str]) -> None:
    """An Umami export uploaded through the admin API (decision 0039): stored under imports/,
    its request notified by S3 to the archive function, which writes the events into the archive
    and rebuilds the days' counters; then its removal, asked and done the same way."""
    from datetime import date
    from urllib.parse import urlencode

    from archive.handler import handler
    from core.aws import make_client
    from local.async_invoke import sqs_destination
    from local.s3_notify import S3Notifications
    from tests.import_files import umami_export

    pipeline = browser.pipeline
    sqs = make_client("sqs")
    prefix = pipeline.names["events"]
    dlq = sqs.create_queue(QueueName=f"{prefix}-archive-dlq")["QueueUrl"]
    archive = LocalFunction("archive", handler, timeout_seconds=900)
    notify = S3Notifications(
        pipeline.s3, sqs, pipeline.bucket, f"{prefix}-s3n", archive, sqs_destination(sqs, dlq)
    )
    base = f"/api/admin/sites/{SITE}/imports"
    export = umami_export(date(2025, 2, 3), 3, SITE)  # long before the site's own stats
    query = urlencode({"filename": "website_event.csv"})
    made = browser.pipeline.query_fn.invoke(
        api_gateway_event("POST", f"{base}?{query}", headers, export.data, "127.0.0.1")
    )
    assert made["statusCode"] == 202, made
    assert notify.deliver() == 1
    (row,) = browser.request("GET", base).json()["imports"]
    assert row["status"] == "done", row
    assert browser.request("DELETE", f"{base}/{row['id']}").status == 202
    assert notify.deliver() == 1
    assert browser.request("GET", base).json()["imports"] == []
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []


# The scenario takes ~10 s and what it records is logical (tables, buckets and queues by role,
# not by a test's names): it runs once a module, and each test reads a copy of its record.
_SCENARIO: dict[str, set[Grant]] = {}


@pytest.fixture()
def recorded(
    aws_env: dict[str, str], recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> dict[str, set[Grant]]:
    if not _SCENARIO:
        _SCENARIO.update(record_scenario(aws_env, recorder, monkeypatch))
    return {function: set(grants) for function, grants in _SCENARIO.items()}


def record_scenario(
    aws_env: dict[str, str], recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> dict[str, set[Grant]]:
    # As in AWS, the query function gets the names of the sign-in secrets and reads them from SSM
    from core.aws import make_client
    from query_api.auth import hash_password

    ssm = make_client("ssm")
    values = dict(zip(PARAMETERS, (hash_password(ADMIN_PASSWORD), "k" * 64), strict=True))
    for name, value in values.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    names = list(PARAMETERS)
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH_PARAMETER", names[0])
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET_PARAMETER", names[1])
    # And, as without a custom domain, the name of the parameter holding the dashboard's origin
    from tests.integration.admin_client import ORIGIN

    ssm.put_parameter(Name=PUBLIC_URL_PARAMETER, Value=ORIGIN, Type="String", Overwrite=True)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", "")
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL_PARAMETER", PUBLIC_URL_PARAMETER)
    # And the alerts queue the realtime tier sends to (decision 0036)
    from local.queue_poller import create_alert_queues

    prefix = aws_env["meta"].rsplit("-", 1)[0]
    queue_url, _ = create_alert_queues(make_client("sqs"), prefix)
    monkeypatch.setenv("LIVEINSIGHT_ALERTS_QUEUE_URL", queue_url)
    from alerts import handler as alerts_handler

    # And email (decision 0038): the sender's domain verified in SES, the sender named; the
    # reports function reads the session key from SSM, as in AWS
    make_client("sesv2").create_email_identity(EmailIdentity=EMAIL_DOMAIN)
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", SENDER)
    monkeypatch.delenv("LIVEINSIGHT_SESSION_SECRET", raising=False)
    from reports import handler as reports_handler

    # (clients made in an earlier test would miss this test's recorder)
    for cached in (
        reports_handler.get_config,
        reports_handler.get_runner,
        reports_handler._parameter,
        reports_handler.make_ses,
        alerts_handler.get_ses,
    ):
        cached.cache_clear()
    alerts_handler.get_config.cache_clear()
    alerts_handler.get_clients.cache_clear()
    pipeline = Pipeline(aws_env)
    run_scenario(pipeline)
    logical = {physical: name for name, physical in aws_env.items()}
    logical[os.environ["LIVEINSIGHT_ARCHIVE_BUCKET"]] = "archive"
    logical[f"{prefix}-alerts"] = "alerts"
    grants: dict[str, set[Grant]] = {}
    for function, service, operation, body in recorder.calls:
        grants.setdefault(function, set()).update(
            grants_from_call(service, operation, body, logical)
        )
    return grants


def classify(resource: str) -> str:
    """A policy resource as "table:<logical>", "stream:<logical>", "queue:<name>", "logs:<fn>"."""
    source = tf.SCHEMA["event_source_mapping"]["source_table"]
    if re.fullmatch(r"stream:\w+", resource):  # already read (event_streams)
        return resource
    patterns = [
        (r'\$\{aws_dynamodb_table\.this\["(\w+)"\]\.arn\}', "table:{}"),
        (r"\$\{aws_dynamodb_table\.this\[local\.table_keys\.(\w+)\]\.arn\}", "table:{}"),
        (r'\$\{aws_dynamodb_table\.this\["(\w+)"\]\.stream_arn\}', "stream:{}"),
        (r"\$\{aws_dynamodb_table\.this\[local\.esm\.source_table\]\.stream_arn\}()", "stream:"),
        (r"\$\{aws_sqs_queue\.(\w+)\.arn\}", "queue:{}"),
        (r'\$\{aws_cloudwatch_log_group\.lambda\["(\w+)"\]\.arn\}:\*', "logs:{}"),
        (r"\$\{local\.secret_parameter_arns\.(\w+)\}", "param:{}"),
        (r"\$\{local\.(public_url)_parameter_arn\}", "param:{}"),
        (r"\$\{aws_s3_bucket\.(\w+)\.arn\}", "bucket:{}"),
        (r"\$\{aws_sesv2_email_identity\.(\w+)\[0\]\.arn\}", "identity:{}"),
    ]
    for pattern, shape in patterns:
        if m := re.fullmatch(pattern, resource):
            return shape.format(m.group(1)) if m.group(1) else shape + source
    raise AssertionError(f"unexpected resource in a policy: {resource!r}")


def event_streams() -> list[str]:
    """The streams the aggregator's mappings read and its role may read (lambda.tf's
    local.event_stream_arns), with the variables' defaults: the events table's, and the legacy
    events table's while it drains (decision 0040)."""
    assert tf.locals_()["event_stream_arns"] == (
        "${merge({events = aws_dynamodb_table.this[local.table_keys[local.esm.source_table]]"
        ".stream_arn}, {for table in aws_dynamodb_table.legacy_events : "
        '"legacy_events" => table.stream_arn})}'
    )
    assert tf.resource("aws_dynamodb_table.legacy_events")["count"] == (
        "${var.drain_legacy_events ? 1 : 0}"
    )
    drain = tf.variables()["drain_legacy_events"]["default"]
    return ["stream:events"] + (["stream:legacy_events"] if drain else [])


def resources_of(statement: dict[str, Any]) -> list[str]:
    if statement["resources"] == "${values(local.event_stream_arns)}":
        return event_streams()
    resources: list[str] = statement["resources"]
    return resources


def with_locals(text: str) -> str:
    """`${local.archive_prefix}*` as the policy reads it: `events/*`."""
    return re.sub(r"\$\{local\.(\w+)\}", lambda m: str(tf.locals_()[m.group(1)]), text)


def classify_object(resource: str) -> tuple[str, str] | None:
    """An archive object resource (`<bucket arn>/<prefix>*`) as ("bucket:<logical>", "<prefix>*")."""
    if m := re.fullmatch(r"\$\{aws_s3_bucket\.(\w+)\.arn\}/(.+)", resource):
        prefix = with_locals(m.group(2))
        # A named prefix, never the whole bucket: objects under it only
        assert prefix.endswith("/*") and "*" not in prefix[:-1], resource
        return "bucket:" + m.group(1), prefix
    return None


def policy_grants(function: str) -> set[Grant]:
    statements = tf.data(f"aws_iam_policy_document.{function}")["statement"]
    grants: set[Grant] = set()
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        partitions = leading_keys(statement)
        for action in statement["actions"]:
            assert "*" not in action, action
            for resource in resources_of(statement):
                if found := classify_object(resource):
                    assert partitions == [ANY_KEY], statement
                    grants.add((action, *found))
                    continue
                grants.update((action, classify(resource), key) for key in partitions)
    return grants


def leading_keys(statement: dict[str, Any]) -> list[str]:
    """The partitions a statement is limited to (the prefixes, for a listing), or [ANY_KEY] for a
    statement without a limit."""
    conditions = statement.get("condition", [])
    if not conditions:
        return [ANY_KEY]
    (condition,) = conditions
    if condition["variable"] == "s3:prefix":
        assert statement["actions"] == ["s3:ListBucket"], statement
        assert condition["test"] == "StringLike", condition
        prefixes = [with_locals(v) for v in condition["values"]]
        assert all(p.endswith("/*") and "*" not in p[:-1] for p in prefixes), prefixes
        return prefixes
    # ForAllValues: every key the request names must be listed. ForAnyValue would let a request
    # through that names one listed key, and a bare StringEquals is not meant for a multivalued key.
    # StringLike: keys by prefix (`SEEN#*`), matched as fnmatch patterns below.
    assert condition["test"] in ("ForAllValues:StringEquals", "ForAllValues:StringLike"), condition
    assert condition["variable"] == "dynamodb:LeadingKeys", condition
    values: list[str] = condition["values"]
    like = condition["test"].endswith("StringLike")
    assert values and all(v != ANY_KEY and (like or "*" not in v) for v in values), values
    assert not like or all(v.endswith("#*") and "*" not in v[:-1] for v in values), values
    return values


def normalised(needed: set[Grant], allowed: set[Grant]) -> set[Grant]:
    """Calls as the policy sees them: on a resource the policy grants without a partition limit,
    the call's partition does not matter."""
    patterns = {(a, r, k) for a, r, k in allowed if k.endswith(("#*", "/*"))}
    return {
        (action, resource, ANY_KEY)
        if (action, resource, ANY_KEY) in allowed
        else next(
            (
                (a, r, k)
                for a, r, k in patterns
                if (a, r) == (action, resource) and fnmatch.fnmatchcase(key, k)
            ),
            (action, resource, key),
        )
        for action, resource, key in needed
    }


def mapping_grants(function: str) -> set[Grant]:
    """What the event source mapping needs from the role of the function it invokes."""
    esm = tf.resource("aws_lambda_event_source_mapping.aggregator")
    # The mappings invoke the function through its tiers' aliases (decision 0010), a tier's on
    # each stream (decision 0040).
    assert esm["function_name"] == "${aws_lambda_alias.aggregator[each.value.tier].arn}"
    assert esm["event_source_arn"] == "${local.event_stream_arns[each.value.source]}"
    alias = tf.resource("aws_lambda_alias.aggregator")
    if alias["function_name"] != f'${{aws_lambda_function.this["{function}"].function_name}}':
        return set()
    queue = classify(esm["destination_config"][0]["on_failure"][0]["destination_arn"])
    streams = event_streams()
    reads = {(action, stream, ANY_KEY) for action in STREAM_READ for stream in streams}
    return reads | {("sqs:SendMessage", queue, ANY_KEY)}


def queue_mapping_grants(function: str) -> set[Grant]:
    """What an SQS event source mapping needs from the role of the function it invokes (the
    alerts queue's, terraform/alerts.tf): receiving, deleting, reading the queue's attributes."""
    esm = tf.resource("aws_lambda_event_source_mapping.alerts")
    if esm["function_name"] != f'${{aws_lambda_function.this["{function}"].arn}}':
        return set()
    queue = classify(esm["event_source_arn"])
    actions = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
    return {(action, queue, ANY_KEY) for action in actions}


def invoke_config_grants(function: str) -> set[Grant]:
    """What Lambda's asynchronous invocation needs from the role: sending a failed run's record
    to the on-failure destination (the archive function's, terraform/archive.tf)."""
    grants: set[Grant] = set()
    for address, body in tf.blocks("resource").items():
        if not address.startswith("aws_lambda_function_event_invoke_config."):
            continue
        if body["function_name"] != f'${{aws_lambda_function.this["{function}"].function_name}}':
            continue
        for destination in body["destination_config"][0]["on_failure"]:
            grants.add(("sqs:SendMessage", classify(destination["destination"]), ANY_KEY))
    return grants


def test_roles_and_policies_are_wired_one_per_function() -> None:
    functions = set(tf.locals_()["functions"])
    assert set(tf.locals_()["policies"]) == functions
    for name, policy in tf.locals_()["policies"].items():
        assert policy == f"${{data.aws_iam_policy_document.{name}.json}}"
    assert tf.resource("aws_iam_role_policy.lambda")["policy"] == "${local.policies[each.key]}"
    assert tf.resource("aws_lambda_function.this")["role"] == "${aws_iam_role.lambda[each.key].arn}"


@pytest.mark.parametrize(
    "function",
    ["ingest", "aggregator", "query", "archive", "alerts", "alert_schedule", "reports"],
)
def test_role_allows_exactly_the_calls_the_code_makes(
    function: str, recorded: dict[str, set[Grant]]
) -> None:
    # Given the calls the function made in the scenario, plus what its event source mapping needs
    calls = (
        recorded.get(function, set())
        | mapping_grants(function)
        | invoke_config_grants(function)
        | queue_mapping_grants(function)
    )
    assert calls, f"{function} made no call: the scenario did not drive it"
    # When its policy document is read (and the email policy, where it is attached)
    allowed = {g for g in policy_grants(function) if not g[0].startswith("logs:")}
    allowed |= email_grants(function)
    needed = normalised(calls, allowed)
    # Then it allows exactly those actions on exactly those resources (and partitions)
    assert allowed - needed == set(), "allowed but never called"
    assert needed - allowed == set(), "called but not allowed"


@pytest.mark.parametrize(
    "function",
    ["ingest", "aggregator", "query", "archive", "alerts", "alert_schedule", "reports"],
)
def test_role_writes_logs_only_to_its_own_log_group(function: str) -> None:
    logs = {g for g in policy_grants(function) if g[0].startswith("logs:")}
    assert logs == {
        ("logs:CreateLogStream", f"logs:{function}", ANY_KEY),
        ("logs:PutLogEvents", f"logs:{function}", ANY_KEY),
    }


def test_ingest_writes_only_the_salts_last_seen_times_and_resend_markers_in_meta(
    recorded: dict[str, set[Grant]],
) -> None:
    from ingest.sessions import SEEN_PREFIX

    seen = f"{SEEN_PREFIX}#*"
    marker = f"{keys.RESEND_MARKER_PREFIX}#*"
    umami = keys.umami_website_pk("*")
    # Given what ingest's policy allows on the meta table
    meta = {(a, k) for a, r, k in policy_grants("ingest") if r == "table:meta"}
    # Then it writes the salts', the last-seen and the resend markers' partitions and nothing
    # else there, and reads sites, Umami website ids, salts and last-seen times only
    writes = {(a, k) for a, k in meta if a not in ("dynamodb:GetItem", "dynamodb:Query")}
    assert writes == {
        ("dynamodb:PutItem", keys.SALT_PK),
        ("dynamodb:DeleteItem", keys.SALT_PK),
        ("dynamodb:UpdateItem", seen),
        ("dynamodb:PutItem", marker),
    }
    assert meta - writes == {
        ("dynamodb:GetItem", keys.SITE_PK),
        ("dynamodb:GetItem", umami),
        ("dynamodb:Query", keys.SALT_PK),
        ("dynamodb:GetItem", seen),
    }
    # And those are the writes it really makes: a new day's salt, an expired one deleted, a
    # visitor's last-seen time before midnight and after it
    made = {(a, k) for a, r, k in recorded["ingest"] if r == "table:meta"}
    assert {("dynamodb:PutItem", keys.SALT_PK), ("dynamodb:DeleteItem", keys.SALT_PK)} <= made
    assert {a for a, k in made if k.startswith(SEEN_PREFIX + "#")} == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    # And the event sent with a client id, and its resend, put the id's marker only
    assert {(a, k) for a, k in made if k.startswith(marker[:-1])} == {
        ("dynamodb:PutItem", keys.resend_marker_pk(SITE, "client-event-0001"))
    }
    # And an Umami website id is only ever read, by its key
    assert {(a, k) for a, k in made if k.startswith(umami[:-1])} == {
        ("dynamodb:GetItem", keys.umami_website_pk(UMAMI_ID))
    }
