"""A Plausible export imported with `liveinsight import` shows in the dashboard with the file's
numbers and a note naming its days; the note's switch leaves them out (decision 0035)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Stack, wait_for
from tests.import_files import plausible_export

SITE = "imports-e2e.example"


def test_an_imported_plausible_export_shows_its_numbers_in_the_dashboard(
    stack: Stack, page: Any, tmp_path: Path
) -> None:
    key = stack.cli("site", "add", SITE, "--json")["key"]
    # Days before the site exists (its own stats begin when it is added), whatever today is
    first = datetime.now(UTC).date() - timedelta(days=35)
    export = plausible_export(first, 5)
    path = tmp_path / "plausible-export.zip"
    path.write_bytes(export.data)
    made = stack.cli("import", "--site", SITE, str(path), "--json")
    assert made["import"]["ranges"] == [[export.days[0], export.days[-1]]]
    visitors = sum(export.visitors[d]["visitors"] for d in export.days)
    pageviews = sum(export.visitors[d]["pageviews"] for d in export.days)

    page.goto(
        f"{stack.url}/?site={SITE}&period=custom&from={export.days[0]}&to={export.days[-1]}"
        f"#key={key}"
    )
    tile = page.get_by_test_id("metric-visitors")
    tile.wait_for()
    assert tile.get_attribute("data-value") == str(visitors)
    assert page.get_by_test_id("metric-pageviews").get_attribute("data-value") == str(pageviews)
    note = page.get_by_test_id("imported-note")
    assert f"from {export.days[0]} to {export.days[-1]}" in note.inner_text()
    page.locator("[data-imported-note]").wait_for()  # the graph says so too

    # The note's switch leaves them out, and brings them back
    note.get_by_role("button", name="Leave imported data out").click()
    wait_for(lambda: tile.get_attribute("data-value") == "0")
    page.get_by_role("button", name="Include imported data").click()
    wait_for(lambda: tile.get_attribute("data-value") == str(visitors))
