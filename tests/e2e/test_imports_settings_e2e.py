"""The settings page's Imports section in Chromium against `liveinsight dev` (issue 21, decisions
0035 and 0039): a Plausible export uploaded in the page is listed with its days, and the same file
again changes nothing; an Umami export shows pending, then done as the page polls; the dashboard's
metric row then holds the files' numbers (the Plausible part behind the imported-data switch), and
deleting both in the page takes them out again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Stack, wait_for
from tests.e2e.test_alerts_settings_e2e import sign_in_to_settings
from tests.import_files import plausible_export, umami_export

pytestmark = pytest.mark.e2e

SITE = "imports-form.example"

# Every render of the imports list, as (kind and file, status) per row: a pending row the
# page draws and replaces between two of Playwright's looks is still seen.
RECORD_RENDERS = """() => {
  window.importRenders = [];
  const list = document.getElementById("imports-list");
  new MutationObserver(() => {
    window.importRenders.push([...list.querySelectorAll("li[data-import]")].map(
      (row) => [row.textContent.split(",")[0], row.dataset.importStatus]));
  }).observe(list, { childList: true });
}"""


def tiles(page: Any) -> tuple[str | None, str | None]:
    return (
        page.get_by_test_id("metric-visitors").get_attribute("data-value"),
        page.get_by_test_id("metric-pageviews").get_attribute("data-value"),
    )


def test_exports_uploaded_in_the_settings_page_show_their_numbers_once_and_go_when_deleted(
    stack: Stack, page: Any
) -> None:
    # Given a new site: its own stats begin today, so the imported days are the weeks before
    # (the stack's clock is real time; the site's zone is UTC)
    today = datetime.now(UTC).date()
    plausible = plausible_export(today - timedelta(days=29), 10)
    umami = umami_export(today - timedelta(days=40), 4, SITE)  # earlier days of their own
    stack.cli("site", "add", SITE, "--json")
    sign_in_to_settings(stack, page, SITE)
    rows = page.locator("#imports-list li[data-import]")
    status = page.locator("#status")
    page.get_by_test_id("imports-list").get_by_text("No imports yet.").wait_for()

    # When the admin uploads the Plausible export with the page's file input
    zip_file = {"name": "plausible-export.zip", "mimeType": "application/zip"}
    page.set_input_files("#import-file", {**zip_file, "buffer": plausible.data})
    page.get_by_role("button", name="Import", exact=True).click()
    # Then it is listed with its days
    row = page.locator("#imports-list li", has_text="plausible-export.zip")
    row.wait_for()
    days = f"{plausible.days[0]} to {plausible.days[-1]}"
    assert row.inner_text().startswith(f"Plausible: plausible-export.zip, {days}")
    assert row.get_attribute("data-import-status") == "done"
    assert status.inner_text() == f"plausible-export.zip imported: {days}."

    # When the same file is uploaded again: nothing changes, and it is listed once
    page.set_input_files("#import-file", {**zip_file, "buffer": plausible.data})
    page.get_by_role("button", name="Import", exact=True).click()
    wait_for(lambda: "nothing changed" in status.inner_text())
    assert status.inner_text() == "plausible-export.zip was imported before; nothing changed."
    assert rows.count() == 1

    # When the Umami export is uploaded: it shows pending, then done, without a reload
    page.evaluate(RECORD_RENDERS)
    csv_file = {"name": "website_event.csv", "mimeType": "text/csv", "buffer": umami.data}
    page.set_input_files("#import-file", csv_file)
    page.get_by_role("button", name="Import", exact=True).click()
    umami_row = page.locator("#imports-list li", has_text="website_event.csv")
    umami_row.wait_for()
    page.locator(
        "#imports-list li[data-import-status='done']", has_text="website_event.csv"
    ).wait_for(timeout=60_000)
    renders = page.evaluate("window.importRenders")
    statuses = [said for render in renders for name, said in render if name.startswith("Umami")]
    assert statuses[0] == "pending" and statuses[-1] == "done", renders
    umami_days = f"{min(umami.pageviews)} to {max(umami.pageviews)}"
    assert umami_row.inner_text().startswith(f"Umami: website_event.csv, {umami_days}")
    assert rows.count() == 2

    # Then the dashboard over those weeks holds the files' numbers: Umami's rows counted as
    # events of the site, Plausible's tables added with the imported-data note on
    first, last = min(umami.pageviews), plausible.days[-1]
    dashboard = f"{stack.url}/?site={SITE}&period=custom&from={first}&to={last}"
    from_umami = (sum(umami.visitors.values()), sum(umami.pageviews.values()))
    from_plausible = (
        sum(plausible.visitors[d]["visitors"] for d in plausible.days),
        sum(plausible.visitors[d]["pageviews"] for d in plausible.days),
    )
    both = tuple(str(u + p) for u, p in zip(from_umami, from_plausible, strict=True))
    page.goto(dashboard)
    page.get_by_test_id("metric-visitors").wait_for()
    assert tiles(page) == both
    note = page.get_by_test_id("imported-note")
    assert f"from {plausible.days[0]} to {plausible.days[-1]}" in note.inner_text()
    # and its switch leaves the Plausible part out
    note.get_by_role("button", name="Leave imported data out").click()
    wait_for(lambda: tiles(page) == tuple(str(n) for n in from_umami))
    page.get_by_role("button", name="Include imported data").click()
    wait_for(lambda: tiles(page) == both)

    # When both imports are deleted in the page (the Umami one in the background)
    page.goto(f"{stack.url}/?view=settings&site={SITE}")
    for name in ("plausible-export.zip", "website_event.csv"):
        label = f"Delete the import of {name}"
        page.get_by_role("button", name=label, exact=True).click()
        page.get_by_role("button", name=f"Confirm: {label}", exact=True).click()
        if name.endswith(".zip"):  # gone at once, and the page says so
            wait_for(
                lambda: status.inner_text() == "The import of plausible-export.zip was deleted."
            )
            wait_for(lambda: rows.count() == 1)  # the list is drawn after the message
    umami_row.wait_for(state="detached", timeout=60_000)
    page.get_by_test_id("imports-list").get_by_text("No imports yet.").wait_for()
    # Then the dashboard's numbers go back to the site's own: none on those days
    page.goto(dashboard)
    page.get_by_test_id("metric-visitors").wait_for()
    assert tiles(page) == ("0", "0")
    assert page.get_by_test_id("imported-note").count() == 0
