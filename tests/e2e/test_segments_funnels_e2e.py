"""Funnels, saved segments and journeys in Chromium, against `liveinsight dev` (issue 19): the
admin builds a funnel in its dialog and the card's bars are /api/stats/funnel's; filters saved
as a segment come back, from the segments menu, as the same filters and the same numbers; the
journeys card lists /api/stats/journeys's paths.

The site gets the dashboard tests' traffic (tests/e2e/test_dashboard_e2e.py), under its own name,
on the same session's stack. Funnels and journeys are counted from the event archive, which
`liveinsight dev` keeps.
"""

from __future__ import annotations

import json
import urllib.error
from typing import Any

import pytest

from tests.e2e import test_dashboard_e2e
from tests.e2e.conftest import Stack, sign_in, wait_for
from tests.e2e.test_dashboard_e2e import (
    SCREENSHOTS,
    UAS,
    UPDATE_SCREENSHOTS,
    VISITS,
    Admin,
    Watched,
    api,
    counted,
    send,
    shows_metrics,
    site_params,
    until_equal,
)
from tests.e2e.test_filter_dialog_e2e import chips, dialog_open, filters_become, focused

pytestmark = pytest.mark.e2e

SITE = "segments-dash.example"
watched = test_dashboard_e2e.watched
DAY = {"period": "day"}


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> tuple[Admin, str]:
    """The site with the dashboard tests' visits, counted by the counters and the archive."""
    admin = Admin(stack)
    site_key = admin.add_site(SITE)
    pageviews = events = 0
    for n, (entry, referrer, country, more) in enumerate(VISITS):
        ip, ua = f"198.51.100.{n + 110}", UAS[n % len(UAS)]
        for path in [entry, *more]:
            body = {"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}
            if referrer and path == entry:
                body["r"] = referrer
            send(stack, body, ip, ua, cloudfront_viewer_country=country)
            pageviews += 1
        if n % 3 == 0:
            send(stack, {"n": "Signup", "u": f"https://{SITE}/pricing", "d": SITE}, ip, ua)
            events += 1
    counted(stack, SITE, site_key, pageviews, pageviews + events)
    # Two properties at once are the archive's: wait until it holds every event too
    archived = site_params(
        SITE,
        metrics="pageviews,events",
        compare="false",
        filters="visit:source!=none.invalid;event:page!=/none.invalid",
        **DAY,
    )

    def all_archived() -> bool:
        results = api(stack, "/api/stats/aggregate", archived, site_key)["results"]
        return bool(
            (results["pageviews"]["value"], results["events"]["value"])
            == (pageviews, pageviews + events)
        )

    wait_for(all_archived, timeout=30)
    return admin, site_key


def card_shot(page: Any, selector: str | None, name: str) -> None:
    """A card alone, or (no selector) the top of the page, where the segments menu opens."""
    if UPDATE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = str(SCREENSHOTS / f"{name}.png")
        if selector:
            page.locator(selector).screenshot(path=path)
        else:
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=path, clip={"x": 0, "y": 0, "width": 1280, "height": 520})


def refused(stack: Stack, route: str, params: dict[str, str], key: str) -> str:
    """The API's 400 message for these parameters."""
    with pytest.raises(urllib.error.HTTPError) as error:
        api(stack, route, params, key)
    assert error.value.code == 400
    return str(json.loads(error.value.read())["error"])


# ---- what the cards show ---------------------------------------------------------------------------

SHOWN_FUNNEL = """() => {
  const body = document.getElementById("funnel-body");
  if (body.getAttribute("aria-busy") === "true") return null;
  const notice = body.querySelector("[data-notice]");
  if (notice) return {notice: notice.textContent};
  const field = (li, name) => {
    const node = li.querySelector(`[data-field=${name}]`);
    return node ? Number(node.textContent.replace(/[%,]/g, "")) : null;
  };
  return {steps: [...body.querySelectorAll("li[data-step]")].map((li) => ({
    label: li.querySelector("span > span:last-child").textContent,
    visitors: field(li, "visitors"),
    conversion_rate: field(li, "conversion_rate"),
    dropoff: field(li, "dropoff"),
    dropoff_percentage: field(li, "dropoff_percentage"),
  }))};
}"""

SHOWN_JOURNEYS = """() => {
  const body = document.getElementById("journeys-body");
  if (body.getAttribute("aria-busy") === "true") return null;
  const notice = body.querySelector("[data-notice]");
  if (notice) return {notice: notice.textContent};
  const caption = body.querySelector("[data-testid=journeys-caption]");
  return {
    caption: caption ? caption.textContent : null,
    rows: [...body.querySelectorAll("tbody tr")].map(
      (tr) => [JSON.parse(tr.dataset.path), Number(tr.cells[1].textContent.replace(/,/g, ""))]),
  };
}"""


def expected_funnel(answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "steps": [
            {
                "label": s["label"],
                "visitors": s["visitors"],
                "conversion_rate": s["conversion_rate"],
                "dropoff": s["dropoff"] if i else None,
                "dropoff_percentage": s["dropoff_percentage"] if i else None,
            }
            for i, s in enumerate(answer["steps"])
        ]
    }


def shows_funnel(page: Any, stack: Stack, params: dict[str, str], key: str) -> dict[str, Any]:
    answer = api(stack, "/api/stats/funnel", params, key)
    until_equal(lambda: page.evaluate(SHOWN_FUNNEL), expected_funnel(answer))
    return dict(answer)


def shows_journeys(
    page: Any, stack: Stack, params: dict[str, str], key: str, caption: str
) -> list[Any]:
    answer = api(stack, "/api/stats/journeys", {**params, "limit": "10"}, key)
    rows = [[r["path"], r["visitors"]] for r in answer["results"]]
    assert rows, f"no journeys for {params}: the scenario should have some"
    until_equal(lambda: page.evaluate(SHOWN_JOURNEYS), {"caption": caption, "rows": rows})
    return rows


def step_values(page: Any) -> list[list[str]]:
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll("#funnel-steps li")].map((li) => [
                 li.querySelector("select").value, li.querySelector("input").value])"""
        )
    )


# ---- the test ------------------------------------------------------------------------------------


def test_admin_builds_a_funnel_saves_and_applies_a_segment_and_opens_journeys_as_the_api_says(
    stack: Stack, seeded: tuple[Admin, str], watched: Watched
) -> None:
    admin, key = seeded
    page = watched.page
    refusals: list[str] = []
    page.on("response", lambda r: refusals.append(r.url) if r.status == 400 else None)
    # Given the signed-in admin on the site's dashboard for today, which has no funnel yet
    sign_in(page, stack)
    page.goto(f"{stack.url}/?site={SITE}&period=day")
    until_equal(lambda: page.evaluate(SHOWN_FUNNEL), {"notice": "No funnels for this site yet."})

    # When "New funnel" is pressed, a modal opens on the name field, Tab staying inside it
    page.click("#new-funnel")
    assert page.evaluate("document.getElementById('funnel-dialog').open")
    assert focused(page) == "funnel-name"
    inside = "document.getElementById('funnel-dialog').contains(document.activeElement)"
    for _ in range(14):
        page.keyboard.press("Tab")
        assert page.evaluate(inside)
    # And three steps are written: two page paths and a custom event, reordered on the way
    page.fill("#funnel-name", "Home to signup")
    page.fill("[data-step-value='1']", "/pricing")
    page.click("#funnel-add-step")
    assert focused(page) == "INPUT" and step_values(page)[2] == ["page", ""]
    page.select_option("[data-step-kind='2']", "event")
    page.fill("[data-step-value='2']", "Signup")
    page.click("button[aria-label='Move step 3 up']")
    assert step_values(page) == [["page", "/"], ["event", "Signup"], ["page", "/pricing"]]
    assert page.inner_text("#funnel-steps-status") == "Step 3 moved to position 2."
    # And the keyboard followed the step: its "down" button is next, and moves it back
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert step_values(page) == [["page", "/"], ["page", "/pricing"], ["event", "Signup"]]
    # (a fourth step, added then removed: at most 8, at least 2)
    page.click("#funnel-add-step")
    page.click("button[aria-label='Remove step 4']")
    assert len(step_values(page)) == 3
    assert page.locator("button[aria-label^='Remove step']:disabled").count() == 0
    page.click("#funnel-save")
    # Then the funnel is stored as goals are written, and its bars are the funnel API's
    wait_for(lambda: not dialog_open(page))
    until_equal(lambda: focused(page), "funnel-pick")  # once it lists the new funnel
    (funnel,) = admin("GET", f"/api/admin/sites/{SITE}/funnels")["funnels"]
    assert [s["label"] for s in funnel["steps"]] == ["Visit /", "Visit /pricing", "Signup"]
    params = site_params(SITE, funnel_id=funnel["id"], **DAY)
    answer = shows_funnel(page, stack, params, key)
    # (the scenario's visits: six start on /, two of them go on to /pricing, one signs up)
    assert [s["visitors"] for s in answer["steps"]] == [6, 2, 1]
    card_shot(page, "#funnel-card", "funnel")

    # When a source filter is set, the funnel counts the filtered visits only
    not_google = "visit:source!=Google"
    page.goto(f"{stack.url}/?site={SITE}&period=day&filters={not_google}")
    shows_funnel(page, stack, {**params, "filters": not_google}, key)
    # And with a page filter too, the card says why the funnel API refuses it
    both = "visit:source!=Google;event:page==*blog*"
    page.goto(f"{stack.url}/?site={SITE}&period=day&filters={both.replace(';', '%3B')}")
    why = refused(stack, "/api/stats/funnel", {**params, "filters": both}, key)
    until_equal(lambda: page.evaluate(SHOWN_FUNNEL), {"notice": why})
    assert page.get_attribute("#funnel-body", "aria-live") == "polite"
    before = chips(page)
    assert before == ["Source is not Google", "Page contains blog"]

    # When the filters are saved as a segment from the segments menu
    page.click("#open-segments")
    assert page.get_attribute("#open-segments", "aria-expanded") == "true"
    page.locator("#segments-list li").first.wait_for()
    page.fill("#segment-name", "Blog readers not from Google")
    page.click("#segment-save")
    page.locator("#segments-list button[data-apply-segment]").wait_for()
    # Then the segment holds them as v2 filters, and the filter bar names it
    (segment,) = admin("GET", f"/api/admin/sites/{SITE}/segments")["segments"]
    assert segment["filters"] == [
        ["is_not", "visit:source", ["Google"]],
        ["contains", "event:page", ["blog"]],
    ]
    until_equal(
        lambda: page.inner_text("#segment-applied"), "Segment: Blog readers not from Google"
    )
    card_shot(page, None, "segments")

    # When the filters are cleared, then the segment is applied from the menu
    page.keyboard.press("Escape")
    assert focused(page) == "open-segments" and page.locator("#segments-menu").is_hidden()
    page.click("#clear-filters")
    until_equal(lambda: page.evaluate("new URLSearchParams(location.search).has('filters')"), False)
    page.click("#open-segments")
    page.click(f"#segments-list button[data-apply-segment='{segment['id']}']")
    # Then the same filters are back, named, with the same numbers as the API's for them
    filters_become(page, both)
    assert chips(page) == before
    assert page.inner_text("#segment-applied") == "Segment: Blog readers not from Google"
    assert page.locator("#segments-menu").is_hidden()
    shows_metrics(page, stack, site_params(SITE, filters=both, **DAY), key)
    until_equal(lambda: page.evaluate(SHOWN_FUNNEL), {"notice": why})
    # And once a filter changes, the name goes
    page.click("#filter-chips button[data-remove-filter='1']")
    filters_become(page, not_google)
    assert page.locator("#segment-applied").is_hidden()
    shows_funnel(page, stack, {**params, "filters": not_google}, key)

    # Given segments the dashboard's filters cannot say, made through the admin API
    country = "visit:country"
    cannot = {
        "DE or FR": (
            [["or", [["is", country, ["DE"]], ["is", country, ["FR"]]]]],
            "It uses “or”",
        ),
        "Not DE": ([["not", ["is", country, ["DE"]]]], "It uses “not”"),
        "Docs regex": ([["matches", "event:page", ["^/docs"]]], "It uses “matches”"),
        "Signed up": ([["has_done", ["is", "event:name", ["Signup"]]]], "It uses “has_done”"),
        "Any case": (
            [["contains", "visit:source", ["goo"], {"case_sensitive": False}]],
            "case-insensitive",
        ),
        "Star": ([["is", "event:page", ["/a*b"]]], "holds a “*”"),
        "Twice": (
            [["is", country, ["DE"]], ["is_not", country, ["FR"]]],
            "two conditions on Country",
        ),
    }
    made = {
        name: admin("POST", f"/api/admin/sites/{SITE}/segments", {"name": name, "filters": f})
        for name, (f, _) in cannot.items()
    }
    # (and one it can: a nested "and" is a list of filters, case-sensitive said outright)
    fine = admin(
        "POST",
        f"/api/admin/sites/{SITE}/segments",
        {"name": "DE", "filters": [["and", [["is", country, ["DE"], {"case_sensitive": True}]]]]},
    )
    page.click("#open-segments")
    page.locator(f"#segments-list li[data-segment='{fine['id']}']").wait_for()
    # Then each is listed, cannot be applied, and its note says why, and how v2 still takes it
    for name, (_, why) in cannot.items():
        row = page.locator(f"#segments-list li[data-segment='{made[name]['id']}']")
        assert row.locator("button[data-apply-segment]").is_disabled(), name
        assert why in row.inner_text(), (name, row.inner_text())
        assert f'["is", "segment", [{made[name]["id"]}]]' in row.inner_text()
    fine_row = page.locator(f"#segments-list li[data-segment='{fine['id']}']")
    assert fine_row.locator("button[data-apply-segment]").is_enabled()
    assert "Country is DE" in fine_row.inner_text()
    # And a wildcard filter other than "contains" cannot be saved as one: the menu says so
    page.keyboard.press("Escape")
    page.goto(f"{stack.url}/?site={SITE}&period=day&filters=event:page==/blog*")
    page.click("#open-segments")
    wait_for(lambda: "is a * pattern" in page.inner_text("#segment-error"))
    assert page.locator("#segment-save").is_disabled()
    # When the "or" segment is deleted from the menu (the button asks once more on itself)
    row = page.locator(f"#segments-list li[data-segment='{made['DE or FR']['id']}']")
    row.locator("button", has_text="Delete").click()
    row.locator("button", has_text="Confirm").click()
    row.wait_for(state="detached")
    ids = {s["id"] for s in admin("GET", f"/api/admin/sites/{SITE}/segments")["segments"]}
    assert made["DE or FR"]["id"] not in ids and segment["id"] in ids

    # When the journeys card is opened without filters, it shows the paths from the top entry page
    page.goto(f"{stack.url}/?site={SITE}&period=day")
    page.locator("#journeys-card").scroll_into_view_if_needed()
    top = api(
        stack,
        "/api/stats/breakdown",
        site_params(SITE, property="visit:entry_page", metrics="visitors", limit="1", **DAY),
        key,
    )["results"][0]["entry_page"]
    rows = shows_journeys(
        page,
        stack,
        site_params(SITE, entry=top, steps="3", **DAY),
        key,
        f"Paths from the entry page {top} (the period's top), up to 3 pages.",
    )
    assert [top, "/pricing"] in [path for path, _ in rows]
    card_shot(page, "#journeys-card", "journeys")
    # And to a typed exit page, two pages long
    page.select_option("#journeys-mode", "exit")
    page.select_option("#journeys-steps", "2")
    page.fill("#journeys-page", "/pricing")
    page.keyboard.press("Enter")
    shows_journeys(
        page,
        stack,
        site_params(SITE, exit="/pricing", steps="2", **DAY),
        key,
        "Paths to the exit page /pricing, up to 2 pages.",
    )
    # The only requests refused were the funnel's with a page filter (Chromium logs each one)
    assert refusals and all(
        "/api/stats/funnel?" in url and "event%3Apage" in url for url in refusals
    ), refusals
    logged = [e for e in watched.errors if "status of 400" in e]
    assert len(logged) == len(refusals)
    watched.errors[:] = [e for e in watched.errors if e not in logged]


def test_admin_attaches_and_detaches_an_umami_website_id_in_settings(
    stack: Stack, seeded: tuple[Admin, str], watched: Watched
) -> None:
    admin, _ = seeded
    path = f"/api/admin/sites/{SITE}"
    site = admin("GET", path)
    if "umami_derived_id" not in site:
        pytest.skip("this server's admin API has no Umami website ids (issue 21)")
    page = watched.page
    # Given the admin on the site's settings, where its derived Umami id is shown
    sign_in(page, stack)
    page.goto(f"{stack.url}/?view=settings&site={SITE}")
    until_equal(lambda: page.inner_text("[data-testid=umami-derived]"), site["umami_derived_id"])
    assert page.input_value("#umami-id") == ""
    # When an existing Umami website's id is attached (any spelling of a UUID)
    attached = "2FFBBD54-0D6D-4A6A-A4A4-7A4D2D1B9C3E"
    page.fill("#umami-id", attached)
    page.click("#umami-form button[type=submit]")
    # Then the site has it, and the field shows it as stored
    until_equal(lambda: admin("GET", path)["umami_id"], attached.lower())
    until_equal(lambda: page.input_value("#umami-id"), attached.lower())
    # When the field is emptied and saved, it is detached
    page.fill("#umami-id", "")
    page.click("#umami-form button[type=submit]")
    until_equal(lambda: admin("GET", path)["umami_id"], None)
    wait_for(lambda: "No Umami website id attached" in page.inner_text("#status"))
