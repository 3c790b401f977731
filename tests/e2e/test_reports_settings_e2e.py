"""The settings page's Email reports section in Chromium against `liveinsight dev` (issue 23,
decision 0038): a recipient subscribed in the page, its weekly and monthly reports switched on and
off, removed, each step as the admin API then has it; a bad address shows the API's error."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Stack, wait_for
from tests.e2e.test_alerts_settings_e2e import sign_in_to_settings

pytestmark = pytest.mark.e2e


def subscriptions(stack: Stack, page: Any, site: str) -> list[dict[str, Any]]:
    """What the admin API has, read with the page's session."""
    response = page.request.get(f"{stack.url}/api/admin/sites/{site}/reports")
    assert response.ok, response.status
    return list(response.json()["subscriptions"])


def test_report_subscriptions_are_added_switched_and_removed_in_the_settings_page(
    stack: Stack, page: Any
) -> None:
    site = "reports-form.example"
    stack.cli("site", "add", site, "--json")
    sign_in_to_settings(stack, page, site)
    page.get_by_test_id("reports-list").get_by_text("Nobody gets reports yet.").wait_for()

    # When the admin subscribes an address to the weekly report
    page.get_by_label("Email address").fill("team@example.com")
    assert page.get_by_label("Weekly", exact=True).is_checked()
    page.get_by_role("button", name="Subscribe").click()
    row = page.locator("#reports-list [data-report-email='team@example.com']")
    row.wait_for()
    assert subscriptions(stack, page, site) == [{"email": "team@example.com", "kinds": ["weekly"]}]
    weekly = page.get_by_label("Weekly report to team@example.com")
    monthly = page.get_by_label("Monthly report to team@example.com")
    assert weekly.is_checked() and not monthly.is_checked()

    # And switches the monthly one on, then the weekly one off
    monthly.check()
    wait_for(lambda: subscriptions(stack, page, site)[0]["kinds"] == ["weekly", "monthly"])
    weekly.uncheck()
    wait_for(lambda: subscriptions(stack, page, site)[0]["kinds"] == ["monthly"])
    page.reload()
    row.wait_for()
    assert not weekly.is_checked() and monthly.is_checked()

    # When the address is removed (the button asks once more on itself)
    row.get_by_role("button", name="Remove team@example.com from the reports").click()
    row.get_by_role("button", name="Confirm: Remove team@example.com from the reports").click()
    row.wait_for(state="detached")
    assert subscriptions(stack, page, site) == []


def test_a_bad_report_address_shows_the_apis_error(stack: Stack, page: Any) -> None:
    site = "reports-bad.example"
    stack.cli("site", "add", site, "--json")
    sign_in_to_settings(stack, page, site)
    page.get_by_test_id("reports-list").get_by_text("Nobody gets reports yet.").wait_for()

    page.get_by_label("Email address").fill("not-an-address")
    page.get_by_role("button", name="Subscribe").click()
    error = page.get_by_test_id("report-error")
    wait_for(lambda: error.inner_text() != "")
    assert error.inner_text() == "'not-an-address' is not an email address (name@example.com)"
    assert error.get_attribute("role") == "alert"
    assert subscriptions(stack, page, site) == []


def test_a_switch_keeps_what_changed_elsewhere_since_the_page_was_drawn(
    stack: Stack, page: Any
) -> None:
    # The API replaces the whole list: a page writing back the list it drew would undo an
    # unsubscribe clicked in a mail (or another admin's change) made meanwhile.
    site = "reports-race.example"
    stack.cli("site", "add", site, "--json")
    sign_in_to_settings(stack, page, site)
    page.get_by_label("Email address").fill("a@example.com")
    page.get_by_role("button", name="Subscribe").click()
    page.locator("#reports-list [data-report-email='a@example.com']").wait_for()

    # Elsewhere: b@example.com subscribed, a@example.com's weekly report stopped
    csrf = page.evaluate("fetch('/api/auth/me').then(r => r.json()).then(b => b.csrf_token)")
    changed = page.request.put(
        f"{stack.url}/api/admin/sites/{site}/reports",
        data={
            "subscriptions": [
                {"email": "a@example.com", "kinds": ["monthly"]},
                {"email": "b@example.com", "kinds": ["weekly"]},
            ]
        },
        headers={"x-csrf-token": csrf, "origin": stack.url},
    )
    assert changed.ok, changed.text()

    # When the page, still showing a@example.com weekly only, switches its monthly report on
    page.get_by_label("Monthly report to a@example.com").check()
    # Then b@example.com is still there, and a@example.com's weekly report stays stopped
    wait_for(
        lambda: (
            subscriptions(stack, page, site)
            == [
                {"email": "a@example.com", "kinds": ["monthly"]},
                {"email": "b@example.com", "kinds": ["weekly"]},
            ]
        )
    )
    page.locator("#reports-list [data-report-email='b@example.com']").wait_for()
    assert not page.get_by_label("Weekly report to a@example.com").is_checked()
