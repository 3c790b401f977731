"""The settings page's Alerts section in Chromium against `liveinsight dev` (issue 23, decision
0036): a rule added in the page is listed as the admin API lists it, its webhook secret is shown
once, it is removed after a confirmation; the API's 400 for a bad webhook URL is shown in the
form, on the field; after a spike, the delivery log shows the webhook a capture server on
127.0.0.1 received."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP_UA, Stack, sign_in, wait_for

pytestmark = pytest.mark.e2e


class Capture:
    """A webhook receiver on 127.0.0.1 answering `status` to every POST."""

    def __init__(self, status: int) -> None:
        self.bodies: list[dict[str, Any]] = []
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                capture.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture()
def capture() -> Iterator[Capture]:
    receiver = Capture(204)
    yield receiver
    receiver.server.shutdown()


def sign_in_to_settings(stack: Stack, page: Any, site: str) -> None:
    sign_in(page, stack)
    page.goto(f"{stack.url}/?view=settings&site={site}")
    page.locator("#alerts-list li").first.wait_for()


def rules_of(stack: Stack, site: str) -> list[dict[str, Any]]:
    return list(stack.cli("alert", "list", "--site", site, "--json")["alerts"])


def pageview(stack: Stack, site: str, ip: str) -> None:
    request = urllib.request.Request(
        stack.url + "/api/event",
        data=json.dumps({"n": "pageview", "u": f"https://{site}/", "d": site}).encode(),
        headers={"content-type": "text/plain", "user-agent": DESKTOP_UA, "x-forwarded-for": ip},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def test_an_alert_added_in_the_settings_page_is_listed_shows_its_secret_once_and_is_removed(
    stack: Stack, page: Any
) -> None:
    site = "alerts-form.example"
    stack.cli("site", "add", site, "--json")
    sign_in_to_settings(stack, page, site)
    assert page.locator("#alerts-list").inner_text() == "No alerts yet."

    # When the admin adds a spike rule with the keyboard-reachable form
    page.select_option("#alert-kind", "spike")
    assert page.locator("#alert-goal").is_hidden()  # a spike has no goal and no window
    assert page.locator("#alert-window").is_hidden()
    page.get_by_label("More than (current visitors)").fill("50")
    page.get_by_label("Webhook URL (https)").fill("https://hooks.example.com/liveinsight")
    page.get_by_label("Cool-down").select_option("3600")
    page.get_by_role("button", name="Add alert").click()

    # Then its secret is shown, and the rule is listed as the API has it
    secret_box = page.get_by_test_id("new-alert-secret")
    wait_for(lambda: secret_box.inner_text().startswith("whsec_"))
    secret = secret_box.inner_text()
    (rule,) = rules_of(stack, site)
    assert (rule["kind"], rule["threshold"], rule["cooldown_seconds"]) == ("spike", 50, 3600)
    assert rule["webhook"]["url"] == "https://hooks.example.com/liveinsight"
    row = page.locator(f"#alerts-list [data-alert-id='{rule['id']}']")
    text = row.inner_text()
    assert "Current visitors above 50" in text
    assert "https://hooks.example.com/liveinsight" in text
    assert "cool-down 1 h" in text
    assert row.locator("[data-alert-state]").inner_text() == "Quiet"
    assert secret not in text

    # And only once: the page opened again lists the rule without it
    page.reload()
    row.wait_for()
    assert page.locator("#new-alert").is_hidden()
    assert secret not in page.content()

    # When a page goal rule is added: the form asks for the goal and the window
    stack.cli("goal", "add", "--site", site, "Visit /pricing", "--json")
    page.reload()
    row.wait_for()
    page.select_option("#alert-kind", "goal")
    page.get_by_label("Goal", exact=True).fill("Visit /pricing")
    page.get_by_label("At least (pageviews)").fill("3")
    page.get_by_label("Within (minutes)").fill("10")
    page.get_by_label("Webhook URL (https)").fill("https://hooks.example.com/goal")
    page.get_by_role("button", name="Add alert").click()
    # (in the list: the "Alert added" note above it names the rule too)
    listed = "Visit /pricing: 3+ pageviews within 10 minutes"
    page.locator("#alerts-list").get_by_text(listed, exact=True).wait_for()
    goal_rule = next(r for r in rules_of(stack, site) if r["kind"] == "goal")
    assert (goal_rule["goal"], goal_rule["threshold"], goal_rule["window_minutes"]) == (
        "Visit /pricing",
        3,
        10,
    )

    # When the spike rule is removed (the button asks once more on itself)
    remove = row.get_by_role("button", name="Remove alert: Current visitors above 50")
    remove.click()
    row.get_by_role("button", name="Confirm: Remove alert: Current visitors above 50").click()
    row.wait_for(state="detached")
    # Then the API has only the goal rule left
    assert [r["id"] for r in rules_of(stack, site)] == [goal_rule["id"]]


def test_the_alert_form_asks_for_what_each_kind_takes_and_emails_recipients(
    stack: Stack, page: Any
) -> None:
    site = "alerts-kinds.example"
    stack.cli("site", "add", site, "--json")
    stack.cli("goal", "add", "--site", site, "Signup", "--json")
    sign_in_to_settings(stack, page, site)
    visible = {
        "spike": ("alert-threshold",),
        "goal": ("alert-goal", "alert-threshold", "alert-window"),
        "event_goal": ("alert-goal", "alert-threshold", "alert-window"),
        "drop": ("alert-window",),
        "new_referrer": ("alert-threshold",),
    }
    for choice, fields in visible.items():
        page.select_option("#alert-kind", choice)
        shown = tuple(
            f
            for f in ("alert-goal", "alert-threshold", "alert-window")
            if page.locator(f"#{f}").is_visible()
        )
        assert shown == fields, choice

    def add(choice: str, fill: dict[str, str], listed: str) -> dict[str, Any]:
        before = {r["id"] for r in rules_of(stack, site)}
        page.select_option("#alert-kind", choice)
        for label, value in fill.items():
            page.get_by_label(label, exact=True).fill(value)
        page.get_by_label("Email recipients (comma-separated, up to 5)").fill(
            "ops@example.com, Oncall@Example.COM"
        )
        page.get_by_role("button", name="Add alert").click()
        page.locator("#alerts-list").get_by_text(listed, exact=True).wait_for()
        (made,) = [r for r in rules_of(stack, site) if r["id"] not in before]
        # No webhook, so no secret to show
        assert page.locator("#new-alert-secret-box").is_hidden()
        assert made["webhook"] is None
        assert made["emails"] == ["ops@example.com", "Oncall@example.com"]
        return made

    event = add(
        "event_goal",
        {"Goal": "Signup", "At least (events)": "5", "Within (minutes)": "30"},
        "Signup: 5+ events within 30 minutes",
    )
    assert (event["kind"], event["goal"], event["threshold"], event["window_minutes"]) == (
        "goal",
        "Signup",
        5,
        30,
    )
    drop = add(
        "drop",
        {"No pageviews for (minutes)": "45"},
        "No pageviews for 45 minutes (in usual hours)",
    )
    assert (drop["kind"], drop["threshold"], drop["window_minutes"]) == ("drop", None, 45)
    referrer = add(
        "new_referrer",
        {"Top source's visitors today, at least": "20"},
        "A new top source today (20+ visitors)",
    )
    assert (referrer["kind"], referrer["threshold"]) == ("new_referrer", 20)
    row = page.locator(f"#alerts-list [data-alert-id='{referrer['id']}']")
    assert "to ops@example.com, Oncall@example.com" in row.inner_text()


def test_a_bad_webhook_url_shows_the_apis_error_on_the_field_and_adds_nothing(
    stack: Stack, page: Any
) -> None:
    site = "alerts-bad-url.example"
    stack.cli("site", "add", site, "--json")
    sign_in_to_settings(stack, page, site)

    url = page.get_by_label("Webhook URL (https)")
    url.fill("http://hooks.example.com/plain-http")
    page.get_by_role("button", name="Add alert").click()

    error = page.get_by_test_id("alert-error")
    wait_for(lambda: error.inner_text() != "")
    assert error.inner_text() == "a webhook URL is https, except to localhost"
    assert error.get_attribute("role") == "alert"  # read out when it appears
    assert url.get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "alert-url"  # where to fix it
    assert page.locator("#new-alert").is_hidden()
    assert rules_of(stack, site) == []

    # Fixed, it goes through and the error goes
    url.fill("https://hooks.example.com/fixed")
    page.get_by_role("button", name="Add alert").click()
    page.get_by_test_id("new-alert-secret").wait_for()
    assert error.inner_text() == ""
    assert url.get_attribute("aria-invalid") is None
    assert len(rules_of(stack, site)) == 1


def test_the_delivery_log_shows_the_webhook_sent_after_a_spike(
    stack: Stack, page: Any, capture: Capture
) -> None:
    # A new site, no events yet: the realtime tier reads its rules on its first batch.
    site = "alerts-log.example"
    stack.cli("site", "add", site, "--json")
    sign_in_to_settings(stack, page, site)
    page.get_by_test_id("deliveries").get_by_text("No deliveries yet.").wait_for()

    page.get_by_label("More than (current visitors)").fill("2")
    page.get_by_label("Webhook URL (https)").fill(capture.url)
    page.get_by_label("Email recipients (comma-separated, up to 5)").fill("ops@example.com")
    page.get_by_label("Cool-down").select_option("0")
    page.get_by_role("button", name="Add alert").click()
    page.get_by_test_id("new-alert-secret").wait_for()
    (rule,) = rules_of(stack, site)

    # When three visitors come (more than 2 current visitors)
    for i in range(3):
        pageview(stack, site, f"198.51.100.{i + 1}")
    wait_for(lambda: capture.bodies, timeout=30)
    assert capture.bodies[0]["site"] == site

    # Then the refreshed log shows each channel's attempt, named after its rule
    refresh = page.get_by_role("button", name="Refresh")
    entries = page.locator(f"#deliveries tr[data-delivery^='{rule['id']}.']")

    def listed() -> bool:
        refresh.click()
        page.wait_for_timeout(300)
        return bool(entries.count() == 2)

    wait_for(listed, timeout=20, interval=0.5)
    hook = entries.and_(page.locator("[data-channel=webhook]")).locator("td").all_inner_texts()
    assert hook[1:] == ["Current visitors above 2", "Alert", "Webhook", "delivered", "HTTP 204"]
    mail = entries.and_(page.locator("[data-channel=email]")).locator("td").all_inner_texts()
    assert mail[1:5] == ["Current visitors above 2", "Alert", "Email", "delivered"]
    assert page.locator("#deliveries-status").inner_text() == "2 attempts listed."
    # And the rule reads as firing, with its last alert
    row = page.locator(f"#alerts-list [data-alert-id='{rule['id']}']")
    assert row.locator("[data-alert-state]").inner_text() == "Firing"
    assert "last alert " in row.inner_text()
