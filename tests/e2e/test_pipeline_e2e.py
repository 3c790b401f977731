"""A real browser on another origin, our tracker, the local stack, the realtime API and dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack, wait_for

pytestmark = pytest.mark.e2e

SPA_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title>
<script defer data-domain="{domain}" data-include-localhost src="{stack}/js/script.js"></script>
<script defer src="spa.js"></script></head>
<body><h1 id="title">Home</h1>
<a id="to-pricing" href="/pricing">Pricing</a> <a id="to-about" href="/about">About</a></body></html>
"""
SPA_SCRIPT = """
document.addEventListener('click', function (e) {
  var a = e.target.closest('a'); if (!a) return;
  e.preventDefault(); history.pushState({}, '', a.getAttribute('href'));
  document.getElementById('title').textContent = a.textContent;
});
"""


def test_spa_navigation_in_chromium_shows_up_in_realtime_api_and_dashboard(
    stack: Stack, other_origin: tuple[str, Path], page: Any, tmp_path: Path
) -> None:
    # Given a site with our tracker on a page served from another origin
    site = stack.cli("site", "add", "spa.example", "--json")
    origin, root = other_origin
    (root / "index.html").write_text(SPA_PAGE.format(domain="spa.example", stack=stack.url))
    (root / "spa.js").write_text(SPA_SCRIPT)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/api/event") else None)

    # When a visitor loads it and navigates the SPA twice
    page.goto(f"{origin}/index.html")
    wait_for(lambda: len(sent) >= 1)
    page.click("#to-pricing")
    page.click("#to-about")
    wait_for(lambda: len(sent) >= 3)

    # Then the realtime API reports 1 current visitor and 3 pageviews
    # (totals and pages are separate reads: wait until both have seen the last commit)
    realtime = wait_for(
        lambda: (
            (r := stack.get_json("/api/realtime?site_id=spa.example", site["key"]))["pageviews"]
            == 3
            and len(r["top_pages"]) == 3
            and r
        )
    )
    assert realtime["current_visitors"] == 1
    assert {p["page"] for p in realtime["top_pages"]} == {"/index.html", "/pricing", "/about"}
    assert stack.get_json("/api/v1/stats/realtime/visitors?site_id=spa.example", site["key"]) == 1

    # And the dashboard shows them
    dashboard = page.context.new_page()
    errors: list[str] = []
    dashboard.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    dashboard.goto(f"{stack.url}/?site=spa.example#key={site['key']}")
    dashboard.wait_for_selector("[data-testid=current-visitors]")
    wait_for(lambda: dashboard.inner_text("[data-testid=pageviews-30m]") == "3")
    assert dashboard.inner_text("[data-testid=current-visitors]") == "1"
    assert "/pricing" in dashboard.inner_text("[data-testid=top-pages]")
    assert "key=" not in dashboard.url  # the key left the address bar
    assert errors == []
    dashboard.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)


def test_dashboard_updates_without_reload_when_traffic_arrives(stack: Stack, page: Any) -> None:
    site = stack.cli("site", "add", "live.example", "--json")
    page.goto(f"{stack.url}/?site=live.example#key={site['key']}")
    wait_for(lambda: page.inner_text("[data-testid=current-visitors]") == "0")
    import json
    import urllib.request

    request = urllib.request.Request(
        stack.url + "/api/event",
        data=json.dumps(
            {"n": "pageview", "u": "https://live.example/x", "d": "live.example"}
        ).encode(),
        headers={
            "content-type": "text/plain",
            "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
    wait_for(lambda: page.inner_text("[data-testid=current-visitors]") == "1", timeout=10)
    assert page.inner_text("[data-testid=pageviews-30m]") == "1"


def test_operations_commands_run_against_the_running_stack(stack: Stack) -> None:
    import json
    import urllib.request
    from datetime import UTC, datetime, timedelta

    site = stack.cli("site", "add", "ops.example", "--json")
    request = urllib.request.Request(
        stack.url + "/api/event",
        data=json.dumps(
            {"n": "pageview", "u": "https://ops.example/", "d": "ops.example"}
        ).encode(),
        headers={
            "content-type": "text/plain",
            "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        },
    )
    with urllib.request.urlopen(request, timeout=5):
        pass
    wait_for(
        lambda: stack.get_json("/api/realtime?site_id=ops.example", site["key"])["pageviews"] == 1
    )
    assert stack.cli("dlq", "replay") == {
        "messages": 0,
        "records": 0,
        "failed": [],
        "invocations": 0,
        "failed_invocations": [],
        "unrecognised": [],
    }
    today = datetime.now(UTC).date()
    reports: list[dict[str, Any]] = []

    def rebuilt() -> bool:
        # From the archive, which the rollup tier writes just after it counts: retried until the
        # event is there (a rebuild is idempotent)
        reports.append(
            stack.cli(
                "rebuild",
                "--site",
                "ops.example",
                "--from",
                today.isoformat(),
                "--to",
                (today + timedelta(days=1)).isoformat(),
            )
        )
        return bool(reports[-1]["events_read"] == 1)

    wait_for(rebuilt, timeout=30)
    report = reports[-1]
    assert report["items_written"] > 0 and report["poison"] == []
    assert stack.get_json("/api/realtime?site_id=ops.example", site["key"])["pageviews"] == 1


def test_revoked_key_stops_working_at_once(stack: Stack) -> None:
    import urllib.error

    site = stack.cli("site", "add", "keys.example", "--json")
    second = stack.cli("key", "create", "--site", "keys.example", "--json")["key"]
    listed = stack.cli("key", "list", "--site", "keys.example", "--json")["keys"]
    assert len(listed) == 2 and all(second not in k["id"] for k in listed)  # ids, never keys
    assert stack.get_json("/api/v1/stats/realtime/visitors?site_id=keys.example", second) == 0
    # When the first key is revoked by its id
    from hashlib import sha256

    first_id = sha256(site["key"].encode()).hexdigest()[:12]
    assert stack.cli("key", "revoke", "--site", "keys.example", "--key", first_id, "--json") == {
        "revoked": 1
    }
    # Then it is refused on the next request, and the other key still works
    with pytest.raises(urllib.error.HTTPError) as refused:
        stack.get_json("/api/v1/stats/realtime/visitors?site_id=keys.example", site["key"])
    assert refused.value.code == 401
    assert stack.get_json("/api/v1/stats/realtime/visitors?site_id=keys.example", second) == 0
