"""Umami imports through the admin API (decision 0039): the upload is stored and answered 202
`pending`; S3 notifies the request to the archive function (emulated on moto:
local/s3_notify.py), which imports it as the CLI does; the list says `done` and the v1 API answers
the file's numbers, over the current month too (`period=month`, its month counter live). The
same file twice changes nothing, a removal asked through the API takes them out again, a bad
file ends `failed` with its reason, and a later rebuild of the whole month counts them once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local.async_invoke import sqs_destination
from local.runtime import LocalFunction
from local.s3_notify import S3Notifications
from tests.import_files import umami_export
from tests.integration.admin_client import Browser
from tests.integration.pipeline import Pipeline
from tests.integration.test_imports import (  # noqa: F401 - the fixture
    NOW,
    SITE,
    UMAMI_FIRST,
    site,
    upload,
    v1,
)

IMPORTS = f"/api/admin/sites/{SITE}/imports"
METRICS = "metrics=visitors,pageviews,events"


@pytest.fixture()
def notify(pipeline: Pipeline) -> Iterator[S3Notifications]:
    """The archive bucket's notification of import requests to the archive function."""
    from archive.handler import handler
    from core.aws import make_client

    sqs = make_client("sqs")
    prefix = pipeline.names["events"]
    dlq = sqs.create_queue(QueueName=f"{prefix}-archive-dlq")["QueueUrl"]
    function = LocalFunction("archive", handler, timeout_seconds=300)
    notifications = S3Notifications(
        pipeline.s3, sqs, pipeline.bucket, f"{prefix}-s3n", function, sqs_destination(sqs, dlq)
    )
    notifications.dlq = dlq  # type: ignore[attr-defined]
    yield notifications
    pipeline.s3.put_bucket_notification_configuration(
        Bucket=pipeline.bucket, NotificationConfiguration={}
    )


def month(pipeline: Pipeline, key: str, path: str, params: str) -> Any:
    """The v1 API over the current month (the query API's clock: March 2026)."""
    reply = pipeline.get(f"/api/v1/stats/{path}?site_id={SITE}&period=month&{params}", key)
    assert reply.status == 200, reply.body
    return reply.json()


def listed(browser: Browser) -> list[dict[str, Any]]:
    reply = browser.request("GET", IMPORTS)
    assert reply.status == 200, reply.body
    rows: list[dict[str, Any]] = reply.json()["imports"]
    return rows


def totals(results: dict[str, Any]) -> dict[str, int]:
    return {name: value["value"] for name, value in results.items()}


def test_an_umami_export_uploaded_in_the_settings_is_imported_by_the_archive_function(
    site: tuple[Pipeline, str],  # noqa: F811
    browser: Browser,
    notify: S3Notifications,
) -> None:
    pipeline, key = site
    export = umami_export(UMAMI_FIRST, 4, SITE)  # March 5..8; native stats from March 14
    native = totals(v1(pipeline, key, "aggregate", METRICS)["results"])
    native_month = totals(month(pipeline, key, "aggregate", METRICS)["results"])
    assert native_month == native and native["visitors"] == 2
    file = {
        "visitors": sum(export.visitors.values()),
        "pageviews": sum(export.pageviews.values()),
        "events": sum(export.pageviews.values()) + sum(export.events.values()),
    }
    assert browser.login().status == 200

    # When the admin uploads it as the settings page does
    reply = upload(browser, export.data, "website_event.csv")
    # Then it is taken for later: 202, pending, listed so, and nothing counted yet
    assert reply.status == 202, reply.body
    made = reply.json()["import"]
    assert made["status"] == "pending" and made["kind"] == "umami"
    assert [(i["id"], i["status"]) for i in listed(browser)] == [(made["id"], "pending")]
    assert totals(v1(pipeline, key, "aggregate", METRICS)["results"]) == native

    # When S3 notifies the archive function of the request
    assert notify.deliver() == 1
    # Then the import is done, with the days of the file
    (row,) = listed(browser)
    assert row["id"] == made["id"] and row["status"] == "done", row
    assert row["days"] == sorted(export.pageviews)
    # and the v1 API answers the file's numbers beside the native ones
    want = {m: native[m] + file[m] for m in file}
    assert totals(v1(pipeline, key, "aggregate", METRICS)["results"]) == want
    # over the current month too, whose month counter is the live one
    assert totals(month(pipeline, key, "aggregate", METRICS)["results"]) == want
    pages = month(pipeline, key, "breakdown", "property=event:page&metrics=pageviews")
    got = {r["page"]: r["pageviews"] for r in pages["results"]}
    assert got == {
        "/": export.pages["/"] + 1,
        "/blog": export.pages["/blog"],
        "/pricing": 1,
    }
    sources = month(pipeline, key, "breakdown", "property=visit:source")["results"]
    assert {r["source"]: r["visitors"] for r in sources} == {
        "Google": export.sources["Google"] + 1,
        "Direct / None": export.sources["Direct / None"] + 1,
    }
    series = v1(pipeline, key, "timeseries", "metrics=pageviews")["results"]
    by_day = {r["date"]: r["pageviews"] for r in series}
    assert all(by_day[day] == views for day, views in export.pageviews.items())

    # When the same file is uploaded again
    again = upload(browser, export.data, "website_event.csv")
    # Then it is that import, done, and nothing is asked or added
    assert again.status == 200 and again.json()["new"] is False, again.body
    assert again.json()["import"]["id"] == made["id"]
    assert notify.deliver() == 0
    assert totals(month(pipeline, key, "aggregate", METRICS)["results"]) == want

    # When it is deleted through the admin API
    gone = browser.request("DELETE", f"{IMPORTS}/{made['id']}")
    assert gone.status == 202 and gone.json()["status"] == "removing", gone.body
    assert [i["status"] for i in listed(browser)] == ["removing"]
    assert notify.deliver() == 1
    # Then its numbers go, over the range and the month, and so does the import
    assert listed(browser) == []
    assert totals(v1(pipeline, key, "aggregate", METRICS)["results"]) == native
    assert totals(month(pipeline, key, "aggregate", METRICS)["results"]) == native_month
    assert not any(e.event_id.startswith("umami-") for e in pipeline.archived_events(SITE))
    assert pipeline.s3.list_objects_v2(Bucket=pipeline.bucket, Prefix="imports/")["KeyCount"] == 0
    # and nothing was dead-lettered
    from core.aws import make_client

    dead = make_client("sqs").receive_message(QueueUrl=notify.dlq)  # type: ignore[attr-defined]
    assert dead.get("Messages", []) == []


def test_a_bad_umami_file_ends_failed_with_its_reason_and_can_be_deleted(
    site: tuple[Pipeline, str],  # noqa: F811
    browser: Browser,
    notify: S3Notifications,
) -> None:
    pipeline, key = site
    before = totals(month(pipeline, key, "aggregate", METRICS)["results"])
    assert browser.login().status == 200
    # A file that is not Umami's at all is refused at once
    said = upload(browser, b"session,when\nabc,today\n", "website_event.csv", kind="umami")
    assert said.status == 400 and "website_event" in said.json()["error"], said.body
    # A file whose header is right but whose rows are not is taken, then fails with the reason
    bad = b"session_id,created_at,url_path,event_type\nabc,yesterday,/,1\n"
    reply = upload(browser, bad, "website_event.csv")
    assert reply.status == 202, reply.body
    assert notify.deliver() == 1
    (row,) = listed(browser)
    assert row["status"] == "failed", row
    assert "created_at 'yesterday' is not a date and time" in row["message"]
    assert totals(month(pipeline, key, "aggregate", METRICS)["results"]) == before
    # and the failed import is deleted at once: there is nothing of it to take out
    gone = browser.request("DELETE", f"{IMPORTS}/{row['id']}")
    assert gone.status == 200, gone.body
    assert listed(browser) == []


def test_a_pending_import_cannot_be_deleted_until_it_is_done(
    site: tuple[Pipeline, str],  # noqa: F811
    browser: Browser,
    notify: S3Notifications,
) -> None:
    assert browser.login().status == 200
    made = upload(browser, umami_export(UMAMI_FIRST, 2, SITE).data, "website_event.csv")
    assert made.status == 202
    import_id = made.json()["import"]["id"]
    gone = browser.request("DELETE", f"{IMPORTS}/{import_id}")
    assert gone.status == 409 and "still being imported" in gone.json()["error"]
    # The same file again while it is pending: the same import, not asked twice
    again = upload(browser, umami_export(UMAMI_FIRST, 2, SITE).data, "website_event.csv")
    assert again.status == 202 and again.json()["import"]["id"] == import_id
    assert again.json()["new"] is False
    assert notify.deliver() == 1
    assert [i["status"] for i in listed(browser)] == ["done"]


def test_a_later_rebuild_of_the_whole_month_counts_the_imported_days_once(
    site: tuple[Pipeline, str],  # noqa: F811
    browser: Browser,
    notify: S3Notifications,
) -> None:
    """The current month's imported share sits beside its live counter; when the month is
    rebuilt whole from the archive (after it ends), the base holds them and the share goes."""
    from aggregator.rebuild import rebuild

    pipeline, key = site
    export = umami_export(UMAMI_FIRST, 4, SITE)
    assert browser.login().status == 200
    assert upload(browser, export.data, "website_event.csv").status == 202
    assert notify.deliver() == 1
    imported = totals(month(pipeline, key, "aggregate", METRICS)["results"])
    assert imported["pageviews"] == 2 + sum(export.pageviews.values())

    # When March is rebuilt whole from the archive, after it ended
    rebuild(
        pipeline.ddb,
        "",
        pipeline.names["aggregates"],
        SITE,
        "UTC",
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
        datetime(2026, 4, 2, tzinfo=UTC),
        3600,
        archive=pipeline.archive(),
    )
    # Then the month answers the same numbers, not the imported days twice
    assert totals(month(pipeline, key, "aggregate", METRICS)["results"]) == imported
    shares = [item for item in pipeline.scan("aggregates") if item["sk"]["S"].endswith("#imported")]
    assert shares == []
    assert NOW.month == 3  # the query API's clock: March is the current month
