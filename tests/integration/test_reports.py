"""Email reports and alert emails (issue 23, decision 0038): the real ingest, aggregator, query,
reports and alerts handlers under moto, SES included (its sent messages read from moto's
backend, as the local outbox reads them). The clock is injected everywhere: the traffic is in
February and March 2025, in New York (the DST change of 9 March inside the data)."""

from __future__ import annotations

import email
import email.policy
import itertools
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from unittest import mock

import pytest

from local import outbox
from tests.conftest import _clear_composition_roots
from tests.integration.admin_client import Browser
from tests.integration.pipeline import Pipeline

SITE = "reports.example"
TZ = "America/New_York"
SENDER = "reports@liveinsight.test"
GOAL = "Visit /signup"
WEEK_DUE = datetime(2025, 3, 17, 13, 30, tzinfo=UTC)  # Monday 09:30 EDT
MONTH_DUE = datetime(2025, 4, 1, 12, 30, tzinfo=UTC)  # Tuesday 1 April, 08:30 EDT
METRICS = "visitors,visits,pageviews,bounce_rate,visit_duration"
_ids = itertools.count()


def inbox(address: str) -> list[EmailMessage]:
    """What moto's SES sent to `address` (through the local outbox's reader)."""
    found = []
    for mail in outbox.sent():
        if mail.to == address:
            parsed = email.message_from_string(
                "".join(f"{k}: {v}\n" for k, v in mail.headers.items() if k != "Content-Type")
                + "\n",
                policy=email.policy.default,
            )
            assert isinstance(parsed, EmailMessage)
            parsed.set_content(mail.text)
            parsed["X-Html"] = "present" if mail.html else "missing"
            found.append(parsed)
    return found


@dataclass
class World:
    pipeline: Pipeline
    key: str
    admin: Browser

    def stats(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode({"site_id": SITE, **params})
        response = self.pipeline.get(f"{path}?{query}", self.key)
        assert response.status == 200, response.body
        return response.json()

    def run_schedule(self, now: datetime) -> dict[str, Any]:
        from local.runtime import LocalFunction
        from reports import handler

        with mock.patch.object(handler, "clock", return_value=now):
            result: dict[str, Any] = LocalFunction("reports", handler.handler).invoke(
                {"source": "aws.scheduler"}
            )
        return result


def traffic(pipeline: Pipeline) -> None:
    """Visitors every day from 1 February to 31 March 2025, local afternoons, several sources and
    pages, some converting on /signup, some bouncing."""
    import ingest.handler

    sources = ["https://www.google.com/", "https://news.ycombinator.com/", "", "https://duck.com/"]
    pages = ["/", "/pricing", "/blog/a", "/docs"]
    day = date(2025, 2, 1)
    n = 0
    while day <= date(2025, 3, 31):
        for v in range(day.toordinal() % 4 + 1):
            n += 1
            ip = f"198.51.{n // 250}.{n % 250 + 1}"
            start = datetime(day.year, day.month, day.day, 19, 0, tzinfo=UTC) + timedelta(
                minutes=7 * v
            )
            path = [pages[(n + i) % len(pages)] for i in range(n % 3 + 1)]
            if n % 5 == 0:
                path.append("/signup")
            for i, page in enumerate(path):
                body = {"n": "pageview", "u": f"https://{SITE}{page}", "d": SITE}
                if i == 0 and sources[n % 4]:
                    body["r"] = sources[n % 4]
                at = start + timedelta(seconds=40 * i)
                with mock.patch.object(ingest.handler, "now", return_value=at):
                    assert pipeline.send(body, ip=ip).status == 202
        day += timedelta(days=1)
    pipeline.pump()


@pytest.fixture(scope="module")
def seeded(moto_endpoint: str) -> Iterator[tuple[Pipeline, str]]:
    from tests.integration.pipeline import fresh_pipeline

    with fresh_pipeline(moto_endpoint, f"reports-{next(_ids)}") as pipeline:
        from core.sites import SiteStore

        key = pipeline.add_site(SITE, tz=TZ)
        SiteStore(pipeline.ddb, pipeline.names["meta"], cache_seconds=0).update(SITE, goals=[GOAL])
        traffic(pipeline)
        yield pipeline, key


@pytest.fixture()
def world(
    seeded: tuple[Pipeline, str],
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    set_clock: Any,
) -> Iterator[World]:
    from core.aws import make_client
    from local.stack import aws_environment
    from reports import handler
    from tests.integration.admin_client import SECRET
    from tests.integration.conftest import password_hash

    pipeline, key = seeded
    prefix = pipeline.names["meta"].rsplit("-", 1)[0]
    for name, value in aws_environment(moto_endpoint, prefix).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH", password_hash())
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", SECRET)
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", SENDER)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", "https://stats.example.org")
    make_client("sesv2").create_email_identity(EmailIdentity="liveinsight.test")
    _clear_composition_roots()
    handler.get_config.cache_clear()
    handler.get_runner.cache_clear()
    handler._parameter.cache_clear()
    set_clock(WEEK_DUE)
    admin = Browser(pipeline)
    assert admin.login().status == 200
    yield World(pipeline, key, admin)
    _clear_composition_roots()
    handler.get_config.cache_clear()
    handler.get_runner.cache_clear()


def subscribe(world: World, *subs: dict[str, Any]) -> None:
    reply = world.admin.request(
        "PUT", f"/api/admin/sites/{SITE}/reports", json_body={"subscriptions": list(subs)}
    )
    assert reply.status == 200, reply.body


def address(name: str) -> str:
    return f"{name}-{next(_ids)}@example.com"


# ---- the numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "now", "first", "last"),
    [
        ("weekly", WEEK_DUE, "2025-03-10", "2025-03-16"),
        ("monthly", MONTH_DUE, "2025-03-01", "2025-03-31"),
    ],
)
def test_a_reports_numbers_equal_the_stats_apis_for_the_same_period(
    world: World, set_clock: Any, kind: str, now: datetime, first: str, last: str
) -> None:
    from core.sites import SiteStore
    from reports import handler
    from reports.schedule import due

    # Given the site's report due now, for the period the stats API is asked about by date
    period = due(kind, now, TZ)
    assert period is not None and (str(period.first), str(period.last)) == (first, last)
    to = address("numbers")
    subscribe(world, {"email": to, "kinds": [kind]})  # signed in at WEEK_DUE
    set_clock(now)
    site = SiteStore(world.pipeline.ddb, world.pipeline.names["meta"], cache_seconds=0).get(SITE)
    assert site is not None
    # When the report is built
    report = handler.build(site, period, now).numbers()
    # Then every number is the stats API's for those dates, the change against the period before
    dates = {"period": "custom", "date": f"{first},{last}"}
    stats = world.stats(
        "/api/v1/stats/aggregate", metrics=METRICS, compare="previous_period", **dates
    )["results"]
    assert report["aggregate"] == {
        m: {"value": stats[m]["value"], "change": stats[m].get("change")}
        for m in METRICS.split(",")
    }
    assert report["aggregate"]["visitors"]["value"] > 0
    assert report["aggregate"]["visitors"]["change"] is not None
    for name, prop, metrics in (
        ("sources", "visit:source", "visitors"),
        ("pages", "event:page", "visitors,pageviews"),
        ("goals", "event:goal", "visitors,events"),
    ):
        rows = world.stats(
            "/api/v1/stats/breakdown", property=prop, metrics=metrics, limit="5", **dates
        )["results"]
        assert report[name] == rows, name
        assert rows, name
    # And the mail sent on schedule says the same
    assert world.run_schedule(now)["sent"] >= 1
    (sent,) = inbox(to)
    text = sent.get_content()
    assert f"{stats['pageviews']['value']:,}" in text
    assert SITE in sent["Subject"] and kind in sent["Subject"]
    assert sent["X-Html"] == "present"
    assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for row in report["pages"]:
        assert f"{row['page']}: {row['visitors']:,} visitors" in text


# ---- once per period ---------------------------------------------------------------------------


def test_the_schedule_sends_one_report_per_period_even_when_run_twice(world: World) -> None:
    to = address("twice")
    subscribe(world, {"email": to, "kinds": ["weekly"]})
    # Given the run before 08:00 local on Monday: nothing due yet
    world.run_schedule(WEEK_DUE - timedelta(hours=2))  # 05:30 EDT
    assert inbox(to) == []
    # When the schedule runs at 09:30, again at once, and at 10:30
    world.run_schedule(WEEK_DUE)
    world.run_schedule(WEEK_DUE)
    world.run_schedule(WEEK_DUE + timedelta(hours=1))
    # Then one report of that week went out
    assert len(inbox(to)) == 1
    # And on Tuesday nothing more; the next Monday the next week's
    world.run_schedule(WEEK_DUE + timedelta(days=1))
    assert len(inbox(to)) == 1
    world.run_schedule(WEEK_DUE + timedelta(days=7))
    assert len(inbox(to)) == 2
    listed = world.admin.request("GET", f"/api/admin/sites/{SITE}/reports").json()
    periods = [s["period"] for s in listed["sent"] if s["email"] == to]
    assert periods == ["2025-03-17", "2025-03-10"]


def test_of_two_runs_claiming_the_same_report_one_sends_it(world: World) -> None:
    from reports.store import ReportStore

    store = ReportStore(world.pipeline.ddb, world.pipeline.names["meta"])
    to = address("claim")
    now = int(WEEK_DUE.timestamp())
    assert store.claim(SITE, "weekly", "2025-03-10", to, now)
    assert not store.claim(SITE, "weekly", "2025-03-10", to, now)
    # A claim left `sending` by a run that died is taken over after STALE_SECONDS, not before
    assert not store.claim(SITE, "weekly", "2025-03-10", to, now + 60)
    assert store.claim(SITE, "weekly", "2025-03-10", to, now + 3600)
    store.mark_sent(SITE, "weekly", "2025-03-10", to, now + 3600, "m-1")
    assert not store.claim(SITE, "weekly", "2025-03-10", to, now + 7200)


def test_a_failed_send_is_tried_again_by_the_next_run(world: World) -> None:
    from reports import handler

    to = address("retry")
    subscribe(world, {"email": to, "kinds": ["weekly"]})
    with mock.patch.object(handler, "make_ses") as ses:
        ses.return_value.send_email.side_effect = OSError("SES timed out")
        assert world.run_schedule(WEEK_DUE)["sent"] == 0
    assert inbox(to) == []
    world.run_schedule(WEEK_DUE + timedelta(hours=1))
    assert len(inbox(to)) == 1


# ---- unsubscribe -------------------------------------------------------------------------------


def _link(message: EmailMessage) -> str:
    url = str(message["List-Unsubscribe"]).strip("<>")
    parts = urllib.parse.urlsplit(url)
    assert parts.netloc == "stats.example.org"
    return f"{parts.path}?{parts.query}"


def _anonymous(world: World, method: str, path: str, body: bytes = b"") -> Any:
    """A request without a session, as a mail client or a browser that never signed in."""
    from local.front import api_gateway_event
    from tests.integration.pipeline import Response

    headers = {"content-type": "application/x-www-form-urlencoded"} if body else {}
    event = api_gateway_event(method, path, headers, body, "127.0.0.1")
    result = world.pipeline.query_fn.invoke(event)
    return Response(result["statusCode"], result.get("headers", {}), result.get("body", ""))


def test_unsubscribing_by_the_signed_link_stops_the_next_report(world: World) -> None:
    leaving, staying = address("leaving"), address("staying")
    subscribe(
        world,
        {"email": leaving, "kinds": ["weekly", "monthly"]},
        {"email": staying, "kinds": ["weekly"]},
    )
    world.run_schedule(WEEK_DUE)
    (report,) = inbox(leaving)
    link = _link(report)
    # When the link is opened (no session): a page that asks, and nothing changes yet
    page = _anonymous(world, "GET", link)
    assert page.status == 200 and "Unsubscribe?" in page.body and leaving in page.body
    # And the one-click POST (RFC 8058) unsubscribes
    done = _anonymous(world, "POST", link, b"List-Unsubscribe=One-Click")
    assert done.status == 200 and "Unsubscribed" in done.body
    assert _anonymous(world, "POST", link, b"List-Unsubscribe=One-Click").status == 200
    # Then next Monday's report goes to the other recipient only
    world.run_schedule(WEEK_DUE + timedelta(days=7))
    assert len(inbox(leaving)) == 1
    assert len(inbox(staying)) == 2
    # And the monthly one still comes (the link named the weekly report)
    listed = world.admin.request("GET", f"/api/admin/sites/{SITE}/reports").json()
    assert {"email": leaving, "kinds": ["monthly"]} in listed["subscriptions"]


def test_a_tampered_unsubscribe_link_gets_a_clear_4xx(world: World) -> None:
    victim, attacker = address("victim"), address("attacker")
    subscribe(
        world, {"email": victim, "kinds": ["weekly"]}, {"email": attacker, "kinds": ["weekly"]}
    )
    world.run_schedule(WEEK_DUE)
    (mine,) = inbox(attacker)
    link = _link(mine)
    forged = link.replace(
        urllib.parse.quote(attacker, safe=""), urllib.parse.quote(victim, safe="")
    )
    assert forged != link
    for method in ("GET", "POST"):
        reply = _anonymous(world, method, forged, b"List-Unsubscribe=One-Click")
        assert reply.status == 403, reply.body
        assert "not valid" in reply.json()["error"]
    assert _anonymous(world, "GET", link.replace("kind=weekly", "kind=daily")).status == 400
    assert _anonymous(world, "GET", link.replace("email=", "email=x")).status == 403
    assert _anonymous(world, "GET", "/api/reports/unsubscribe").status == 400
    # And the victim is still subscribed
    world.run_schedule(WEEK_DUE + timedelta(days=7))
    assert len(inbox(victim)) == 2


def test_bad_subscription_input_gets_a_400(world: World) -> None:
    path = f"/api/admin/sites/{SITE}/reports"
    bad = [
        {"subscriptions": [{"email": "not an address", "kinds": ["weekly"]}]},
        {"subscriptions": [{"email": "a@example.com", "kinds": ["daily"]}]},
        {"subscriptions": [{"email": f"a{i}@example.com", "kinds": ["weekly"]} for i in range(11)]},
        {"subscriptions": [{"email": "a@example.com"}]},
        {"subscriptions": [], "extra": 1},
    ]
    for body in bad:
        reply = world.admin.request("PUT", path, json_body=body)
        assert reply.status == 400, (body, reply.body)
    assert (
        world.admin.request(
            "PUT", "/api/admin/sites/nobody.example/reports", json_body={"subscriptions": []}
        ).status
        == 404
    )


# ---- the local outbox --------------------------------------------------------------------------


def test_the_local_outbox_page_lists_the_mail_and_shows_a_report(
    world: World, tmp_path: Any
) -> None:
    import html
    import urllib.request

    from local.front import Front

    to = address("outbox")
    subscribe(world, {"email": to, "kinds": ["weekly"]})
    world.run_schedule(WEEK_DUE)
    # Given the local front with the outbox, as the stack starts it
    front = Front(
        "127.0.0.1",
        0,
        world.pipeline.ingest_fn,
        world.pipeline.query_fn,
        tmp_path,
        tmp_path / "script.js",
        outbox=outbox.serve,
    )
    front.start()
    try:
        base = f"http://127.0.0.1:{front.port}"
        # When the outbox page is opened
        with urllib.request.urlopen(f"{base}/_local/outbox") as reply:
            page = html.unescape(reply.read().decode())
            assert "script-src" not in reply.headers["content-security-policy"]
        # Then the report is listed, and its page is the report's HTML
        assert to in page and f"{SITE}: your weekly report" in page
        (mail,) = [m for m in outbox.sent() if m.to == to]
        with urllib.request.urlopen(f"{base}/_local/outbox/{mail.id}") as reply:
            assert "Top pages" in reply.read().decode()
    finally:
        front.stop()
    # And the query function (what AWS deploys) has no such page
    assert _anonymous(world, "GET", "/_local/outbox").status == 404
