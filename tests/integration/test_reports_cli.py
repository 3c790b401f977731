"""`liveinsight report subscribe|unsubscribe|list|send` on the tables the environment names, as
RUNBOOK.md uses the CLI (decision 0038): the store and the admin API read what it saves, `send`
puts the due report in SES (moto's outbox) once, bad input exits 2 saying why; removing the site
removes its subscriptions and sent markers. The clock is `--now`, never today's date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.aws import make_client
from local import outbox
from reports.store import ReportStore, reports_pk
from tests.integration.cli_run import run

SITE = "report-cli.example"
TZ = "America/New_York"
WEEK_DUE = "2025-03-17T09:30"  # a Monday, site time: the week of 10 March is due
MONTH_DUE = "2025-04-01T08:30"  # the 1st: March is due
SENDER = "reports@liveinsight.test"


@pytest.fixture()
def site(
    aws_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    # As a deployment: SES's sender verified, the session key and the origin in the environment
    make_client("sesv2").create_email_identity(EmailIdentity="liveinsight.test")
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", SENDER)
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", "s" * 48)
    monkeypatch.setenv("LIVEINSIGHT_PUBLIC_URL", "https://stats.example.org")
    assert run(capsys, tmp_path, "site", "add", SITE, "--tz", TZ)[0] == 0
    return SITE


def inbox(address: str) -> list[outbox.OutboxMail]:
    return [m for m in outbox.sent() if m.to == address]


def test_subscriptions_made_listed_and_removed_from_the_cli(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given two subscribers: one to both reports (the default), one to the monthly only
    code, out, err = run(
        capsys, tmp_path, "report", "subscribe", "--site", site, "--email", "Owner@Example.COM",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["subscriptions"] == [
        {"email": "Owner@example.com", "kinds": ["weekly", "monthly"]}
    ]
    code, out, err = run(
        capsys, tmp_path, "report", "subscribe", "--site", site, "--email", "cfo@example.com",
        "--kind", "monthly",
    )  # fmt: skip
    assert code == 0, err
    # Then the store holds them as the admin API would read them
    stored = ReportStore(make_client("dynamodb"), aws_env["meta"]).subscriptions(site, True)
    assert [s.out() for s in stored] == [
        {"email": "Owner@example.com", "kinds": ["weekly", "monthly"]},
        {"email": "cfo@example.com", "kinds": ["monthly"]},
    ]
    code, out, _ = run(capsys, tmp_path, "report", "list", "--site", site)
    assert out == "Owner@example.com\tweekly, monthly\ncfo@example.com\tmonthly\n"
    # When the owner stops the weekly one, and the CFO everything
    code, out, err = run(
        capsys, tmp_path, "report", "unsubscribe", "--site", site, "--email", "Owner@example.com",
        "--kind", "weekly",
    )  # fmt: skip
    assert code == 0, err
    args = ("report", "unsubscribe", "--site", site, "--email", "cfo@example.com")
    assert run(capsys, tmp_path, *args)[0] == 0
    # Then the listing says so
    code, out, _ = run(capsys, tmp_path, "report", "list", "--site", site, "--json")
    assert json.loads(out) == {
        "site": site,
        "subscriptions": [{"email": "Owner@example.com", "kinds": ["monthly"]}],
        "sent": [],
    }


def test_send_puts_the_due_report_in_ses_once(
    site: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a weekly subscriber and a monthly one
    for address, kind in (("weekly@example.com", "weekly"), ("monthly@example.com", "monthly")):
        args = ("report", "subscribe", "--site", site, "--email", address, "--kind", kind)
        assert run(capsys, tmp_path, *args)[0] == 0
    before = len(outbox.sent())
    # When `send` runs on a Monday morning, site time
    code, out, err = run(
        capsys, tmp_path, "report", "send", "--site", site, "--now", WEEK_DUE, "--json"
    )
    # Then the weekly report went to its subscriber by SES, and nothing else
    assert code == 0, err
    assert json.loads(out)["sent"][0] | {"message_id": ""} == {
        "site": site,
        "kind": "weekly",
        "period": "2025-03-10",
        "email": "weekly@example.com",
        "message_id": "",
    }
    assert len(outbox.sent()) == before + 1
    (mail,) = inbox("weekly@example.com")
    assert mail.subject == f"{site}: your weekly report, 10 Mar to 16 Mar 2025"
    unsubscribe = mail.headers["List-Unsubscribe"]
    assert unsubscribe.startswith("<https://stats.example.org/api/reports/unsubscribe?")
    assert inbox("monthly@example.com") == []
    # And running it again sends nothing (once per period and recipient), and says so
    code, out, _ = run(capsys, tmp_path, "report", "send", "--site", site, "--now", WEEK_DUE)
    assert code == 0 and out == f"nothing to send for {site} (sent already, or none due)\n"
    assert len(outbox.sent()) == before + 1
    # And the listing shows the report sent
    code, out, _ = run(capsys, tmp_path, "report", "list", "--site", site)
    assert "sent\tweekly\t2025-03-10\tweekly@example.com\n" in out


def test_send_with_a_kind_sends_its_last_period_to_one_subscriber_even_when_not_due(
    site: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given two monthly subscribers
    for address in ("a@example.com", "b@example.com"):
        args = ("report", "subscribe", "--site", site, "--email", address, "--kind", "monthly")
        assert run(capsys, tmp_path, *args)[0] == 0
    # When March's report is asked for one of them on the 3rd of April (its day has passed)
    code, out, err = run(
        capsys, tmp_path, "report", "send", "--site", site, "--kind", "monthly",
        "--email", "b@example.com", "--now", "2025-04-03T15:00-04:00",
    )  # fmt: skip
    # Then only that one gets it
    assert code == 0, err
    assert out == "sent\tmonthly\t2025-03\tb@example.com\n"
    (mail,) = inbox("b@example.com")
    assert mail.subject == f"{site}: your monthly report, March 2025"
    assert inbox("a@example.com") == []
    # And without --kind on that day nothing is due
    code, out, _ = run(
        capsys, tmp_path, "report", "send", "--site", site, "--now", "2025-04-03T15:00"
    )
    assert code == 0 and "nothing to send" in out


def test_a_failed_send_exits_1_saying_why_and_the_next_run_sends_it(
    site: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a subscriber, and a sender SES has no verified identity for
    args = ("report", "subscribe", "--site", site, "--email", "c@example.com", "--kind", "weekly")
    assert run(capsys, tmp_path, *args)[0] == 0
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", "reports@unverified.example")
    # When `send` runs while the report is due
    send = ("report", "send", "--site", site, "--now", WEEK_DUE)
    code, out, err = run(capsys, tmp_path, *send)
    # Then it exits 1 naming the recipient and SES's refusal; nothing was sent or marked
    assert code == 1 and out == ""
    assert err.startswith("liveinsight: not sent: c@example.com: ") and "unverified" in err
    assert inbox("c@example.com") == []
    # And once the sender is right, the same run sends it
    monkeypatch.setenv("LIVEINSIGHT_EMAIL_FROM", SENDER)
    code, out, err = run(capsys, tmp_path, *send)
    assert code == 0 and out == "sent\tweekly\t2025-03-10\tc@example.com\n", err


def test_removing_a_site_removes_its_subscriptions_and_sent_markers(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a site with a subscriber who had a report, and another site with a subscriber
    args = ("report", "subscribe", "--site", site, "--email", "d@example.com")
    assert run(capsys, tmp_path, *args)[0] == 0
    assert run(capsys, tmp_path, "report", "send", "--site", site, "--now", WEEK_DUE)[0] == 0
    assert run(capsys, tmp_path, "site", "add", "other.example")[0] == 0
    args = ("report", "subscribe", "--site", "other.example", "--email", "d@example.com")
    assert run(capsys, tmp_path, *args)[0] == 0
    ddb = make_client("dynamodb")

    def partition(domain: str) -> list[str]:
        items = ddb.query(
            TableName=aws_env["meta"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": reports_pk(domain)}},
            ConsistentRead=True,
        )["Items"]
        return sorted(i["sk"]["S"] for i in items)

    assert partition(site) == ["sent#weekly#2025-03-10#d@example.com", "sub#d@example.com"]
    # When the site is removed
    assert run(capsys, tmp_path, "site", "remove", site)[0] == 0
    # Then its whole REPORTS# partition is gone (no report for a site that is gone); the other
    # site's subscriber stays
    assert partition(site) == []
    assert partition("other.example") == ["sub#d@example.com"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("subscribe", "--email", "not-an-address"), "not an email address"),
        (("subscribe", "--email", "a@example.com", "--kind", "daily"), "invalid choice"),
        (("subscribe",), "--email"),
        (("unsubscribe", "--email", "nobody@example.com"), "gets no weekly or monthly report"),
        (("unsubscribe", "--email", "a\r\nBcc: x@example.com"), "not an email address"),
        (("send", "--now", "next monday"), "not an ISO time"),
        (("send", "--kind", "weekly", "--email", "nobody@example.com"), "gets no report"),
        (("send", "--kind", "yearly"), "invalid choice"),
    ],
)
def test_a_bad_report_command_exits_2_saying_why(
    site: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    before = len(outbox.sent())
    code, out, err = run(capsys, tmp_path, "report", args[0], "--site", site, *args[1:])
    assert code == 2
    assert message in err and out == ""
    assert len(outbox.sent()) == before


def test_eleven_subscribers_are_one_too_many(
    site: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for n in range(10):
        args = ("report", "subscribe", "--site", site, "--email", f"r{n}@example.com")
        assert run(capsys, tmp_path, *args)[0] == 0
    one_more = ("report", "subscribe", "--site", site, "--email", "r10@example.com", "--json")
    code, out, err = run(capsys, tmp_path, *one_more)
    assert code == 2 and out == "" and "at most 10" in json.loads(err)["error"]


def test_a_report_command_for_an_unknown_site_exits_2(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, tmp_path, "report", "list", "--site", "nobody.example", "--json")
    assert code == 2 and "nobody.example" in json.loads(err)["error"]
