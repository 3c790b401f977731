"""`liveinsight alert add|list|remove` on the tables the environment names, as RUNBOOK.md uses
the CLI: the store and the admin API read what it saves, a listing never shows a secret, bad rules
exit 2 saying why; removing the site removes its rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alerts.rules import RuleStore
from core.aws import make_client
from tests.integration.cli_run import run

SITE = "alert-cli.example"
HOOK = "http://127.0.0.1:9/hook"
SECRET = "whsec_cli-secret-0123456789"


@pytest.fixture()
def site(aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> str:
    assert run(capsys, tmp_path, "site", "add", SITE, "--json")[0] == 0
    assert run(capsys, tmp_path, "goal", "add", "--site", SITE, "Visit /signup")[0] == 0
    return SITE


def test_alert_rules_added_listed_without_secrets_and_removed_from_the_cli(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a spike rule with the owner's secret, and a goal rule with a generated one
    code, out, err = run(
        capsys, tmp_path, "alert", "add", "--site", site, "--kind", "spike", "--threshold", "50",
        "--webhook", HOOK, "--format", "slack", "--secret", SECRET, "--cooldown-seconds", "600",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    spike: dict[str, Any] = json.loads(out)["alerts"][0]
    assert (spike["kind"], spike["threshold"], spike["cooldown_seconds"]) == ("spike", 50, 600)
    assert spike["webhook"] == {"url": HOOK, "format": "slack", "secret": SECRET}
    code, out, err = run(
        capsys, tmp_path, "alert", "add", "--site", site, "--kind", "goal", "--goal",
        "Visit /signup", "--threshold", "3", "--window-minutes", "15", "--webhook", HOOK,
    )  # fmt: skip
    assert code == 0, err
    generated = out.splitlines()[-1].rsplit(" ", 1)[-1]
    assert "Visit /signup ≥ 3 in 15 min" in out and generated.startswith("whsec_")
    # Then the store holds both as given, with their secrets
    # (listed by creation second, then id: two rules made in one second come in either order)
    listed_rules = RuleStore(make_client("dynamodb"), aws_env["meta"]).list(site, consistent=True)
    stored = sorted(listed_rules, key=lambda r: r.kind, reverse=True)
    assert [(r.kind, r.goal, r.window_minutes, r.target.secret) for r in stored] == [
        ("spike", "", 5, SECRET),
        ("goal", "Visit /signup", 15, generated),
    ]
    # And a listing shows them, never a secret
    code, out, _ = run(capsys, tmp_path, "alert", "list", "--site", site, "--json")
    listed = json.loads(out)
    assert [a["id"] for a in listed["alerts"]] == [r.id for r in listed_rules]
    assert SECRET not in out and generated not in out and "secret" not in out
    code, out, _ = run(capsys, tmp_path, "alert", "list", "--site", site)
    assert f"{stored[0].id}\tspike\tcurrent visitors > 50\tslack {HOOK}\n" in out
    assert SECRET not in out and generated not in out
    # When one is removed, it is gone
    code, out, _ = run(capsys, tmp_path, "alert", "remove", "--site", site, stored[0].id, "--json")
    assert code == 0 and json.loads(out) == {"removed": stored[0].id}
    code, out, _ = run(capsys, tmp_path, "alert", "list", "--site", site, "--json")
    assert [a["id"] for a in json.loads(out)["alerts"]] == [stored[1].id]


def test_an_alert_rule_emails_recipients_instead_of_or_with_a_webhook(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a rule with two recipients and no webhook (one repeated, its domain in capitals)
    code, out, err = run(
        capsys, tmp_path, "alert", "add", "--site", site, "--kind", "spike", "--threshold", "9",
        "--email", "ops@Example.COM", "--email", " dev+alerts@b.example ",
        "--email", "ops@example.com", "--json",
    )  # fmt: skip
    assert code == 0, err
    shown = json.loads(out)["alerts"][0]
    # Then it is stored and shown with its recipients, normalised, and no webhook
    assert shown["webhook"] is None
    assert shown["emails"] == ["ops@example.com", "dev+alerts@b.example"]
    rule = RuleStore(make_client("dynamodb"), aws_env["meta"]).get(site, shown["id"])
    assert rule is not None and not rule.target.webhook and rule.target.secret == ""
    assert rule.target.emails == ("ops@example.com", "dev+alerts@b.example")
    # And a rule may have both: the secret still shown once
    code, out, err = run(
        capsys, tmp_path, "alert", "add", "--site", site, "--kind", "spike", "--threshold", "9",
        "--email", "ops@example.com", "--webhook", HOOK, "--secret", SECRET,
    )  # fmt: skip
    assert code == 0, err
    assert f"json {HOOK}, email ops@example.com" in out and SECRET in out
    code, out, _ = run(capsys, tmp_path, "alert", "list", "--site", site)
    assert "current visitors > 9\temail ops@example.com, email dev+alerts@b.example" in out
    assert SECRET not in out


def test_removing_a_site_removes_its_alert_rules(
    site: str, aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a site with a rule, and another site with one
    rules = RuleStore(make_client("dynamodb"), aws_env["meta"])
    assert run(capsys, tmp_path, "site", "add", "other.example")[0] == 0
    rules.add(site, "spike", 5, HOOK, SECRET)
    kept = rules.add("other.example", "spike", 5, HOOK, SECRET)
    # When the site is removed (its events are refused from now on)
    assert run(capsys, tmp_path, "site", "remove", site)[0] == 0
    # Then its rules are gone (no evaluation, no webhook), the other site's stay
    assert rules.list(site, consistent=True) == []
    assert [r.id for r in rules.list("other.example", consistent=True)] == [kept.id]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--kind", "spike", "--threshold", "0", "--webhook", HOOK), "threshold"),
        (("add", "--kind", "spike", "--threshold", "5", "--webhook", "http://203.0.113.9/"), "https"),
        (("add", "--kind", "spike", "--threshold", "5", "--webhook", HOOK, "--secret", "short"), "secret"),
        (("add", "--kind", "spike", "--threshold", "5", "--webhook", HOOK, "--cooldown-seconds", "-1"), "cool-down"),
        (("add", "--kind", "spike", "--threshold", "5", "--webhook", HOOK, "--goal", "Visit /a"), "spike"),
        (("add", "--kind", "goal", "--threshold", "5", "--webhook", HOOK), "names a goal"),
        (("add", "--kind", "goal", "--goal", "Signup", "--threshold", "5", "--webhook", HOOK), "not one of the site's goals"),
        (("add", "--kind", "spike", "--webhook", HOOK), "has a threshold"),
        (("add", "--kind", "drop", "--threshold", "3", "--webhook", HOOK), "no threshold"),
        (("add", "--kind", "drop", "--window-minutes", "181", "--webhook", HOOK), "1 to 180"),
        (("add", "--kind", "new_referrer", "--window-minutes", "5", "--webhook", HOOK), "no window"),
        (("add", "--kind", "goal", "--goal", "Visit /other", "--threshold", "5", "--webhook", HOOK), "not one of the site's goals"),
        (("add", "--kind", "goal", "--goal", "Visit /signup", "--threshold", "5", "--window-minutes", "61", "--webhook", HOOK), "window"),
        (("add", "--kind", "flood", "--threshold", "5", "--webhook", HOOK), "invalid choice"),
        (("add", "--kind", "spike", "--threshold", "many", "--webhook", HOOK), "invalid int"),
        (("add", "--kind", "spike", "--threshold", "5"), "a webhook, to email recipients"),
        (("add", "--kind", "spike", "--threshold", "5", "--email", "not-an-address"), "not an email address"),
        (("add", "--kind", "spike", "--threshold", "5", "--email", "a@b.example", "--secret", SECRET), "needs a webhook URL"),
        (("add", "--kind", "spike", "--threshold", "5", *[f"--email=o{i}@b.example" for i in range(6)]), "at most 5"),
        (("remove", "0123456789ab"), "no alert rule"),
        (("remove", "x" * 2000), "12 hex digits"),
    ],
)  # fmt: skip
def test_a_bad_alert_command_exits_2_saying_why(
    site: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    code, out, err = run(capsys, tmp_path, "alert", args[0], "--site", site, *args[1:])
    assert code == 2
    assert message in err and out == ""


def test_an_alert_command_for_an_unknown_site_exits_2(
    aws_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(capsys, tmp_path, "alert", "list", "--site", "nobody.example", "--json")
    assert code == 2 and "nobody.example" in json.loads(err)["error"]
