"""The ingest pipeline: accept(payload, client, now, salts, find_site) -> [Accepted | Dropped]."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from core.events import RawEvent
from core.sites import Site
from ingest import enrich
from ingest.payload import EventPayload
from ingest.pipeline import Accepted, Client, Dropped, DropReason, Outcome, accept
from ingest.visitor import Salts, visitor_id
from tests.unit import samples

NOW = datetime(2026, 3, 29, 12, 0, 0, 123_000, tzinfo=UTC)
NOW_MS = 1774785600123
SALTS = Salts(current=b"c" * 32, previous=b"p" * 32)
SITES = {
    "example.com": Site("example.com", tz="Europe/Berlin"),
    "other.org": Site("other.org", tz="America/New_York"),
}
IP = "203.0.113.7"
HUMAN = Client(ip=IP, user_agent=samples.CHROME_WINDOWS, country="DE", correlation_id="req-1")


def run(
    payload: EventPayload,
    client: Client = HUMAN,
    salts: Salts = SALTS,
    sites: dict[str, Site] = SITES,
) -> list[Outcome]:
    return accept(payload, client, NOW, salts, sites.get)


def accepted_one(payload: EventPayload, client: Client = HUMAN, salts: Salts = SALTS) -> RawEvent:
    outcomes = run(payload, client, salts)
    assert len(outcomes) == 1 and isinstance(outcomes[0], Accepted), outcomes
    return outcomes[0].event


def pageview(url: str = "https://example.com/", **fields: Any) -> EventPayload:
    return EventPayload(name="pageview", url=url, **fields)


# ---- accepted events -----------------------------------------------------------------------------


def test_accepted_pageview_is_filled_from_the_enrichment() -> None:
    # Given a pageview from a campaign link, referred by Hacker News
    payload = pageview(
        "https://www.example.com/blog?utm_source=hn&utm_medium=social&utm_campaign=launch",
        referrer="https://news.ycombinator.com/item?id=1",
        screen_width=1280,
        client_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
    )

    # When it is accepted
    event = accepted_one(payload)

    # Then the event carries the enriched dimensions, the site's time zone and the server time
    assert event == RawEvent(
        event_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
        site="example.com",
        ts=NOW_MS,
        name="pageview",
        visitor_id=visitor_id(SALTS.current, "example.com", IP, samples.CHROME_WINDOWS),
        tz="Europe/Berlin",
        previous_visitor_id=visitor_id(SALTS.previous, "example.com", IP, samples.CHROME_WINDOWS),
        hostname="example.com",
        page="/blog",
        referrer="https://news.ycombinator.com/item",
        source="hn",
        utm_medium="social",
        utm_source="hn",
        utm_campaign="launch",
        country="DE",
        channel="Organic Social",  # utm_medium=social
        browser="Chrome",
        browser_version="124.0",
        os="Windows",
        os_version="10",
        device="Laptop",
        correlation_id="req-1",
    )


def test_accepted_custom_event_keeps_props_revenue_and_tracker_extras() -> None:
    payload = EventPayload(
        name="Purchase",
        url="https://example.com/checkout",
        props={"plan": "pro"},
        revenue_amount="12.50",
        revenue_currency="EUR",
        interactive=False,
        scroll_depth=80,
        engaged_ms=4000,
    )

    event = accepted_one(payload)

    assert (event.name, event.props, event.interactive) == ("Purchase", {"plan": "pro"}, False)
    assert (event.revenue_amount, event.revenue_currency) == ("12.50", "EUR")
    assert (event.scroll_depth, event.engaged_ms) == (80, 4000)


def test_hash_mode_page_keeps_the_fragment() -> None:
    event = accepted_one(pageview("https://example.com/app#/settings", hash_mode=True))

    assert event.page == "/app#/settings"


def test_device_comes_from_the_user_agent_without_a_screen_width() -> None:
    event = accepted_one(pageview(), client=Client(ip=IP, user_agent=samples.SAFARI_IPHONE))

    assert event.device == "Mobile"


def test_event_without_client_id_gets_a_fresh_random_id() -> None:
    first, second = accepted_one(pageview()), accepted_one(pageview())

    assert first.event_id != second.event_id
    assert len(first.event_id) == 32 and int(first.event_id, 16) >= 0


# ---- drops ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_agent",
    [samples.GOOGLEBOT, samples.HEADLESS_CHROME, samples.GPTBOT, samples.CURL, ""],
)
def test_drops_event_when_user_agent_is_bot(user_agent: str) -> None:
    outcomes = run(pageview(), client=Client(ip=IP, user_agent=user_agent))

    assert outcomes == [Dropped(DropReason.BOT)]


def test_drops_bot_before_looking_at_the_url_or_the_site() -> None:
    def no_lookup(domain: str) -> Site | None:
        raise AssertionError("a bot must not cost a site lookup")

    outcomes = accept(
        pageview("file:///x.html"), Client(IP, samples.GOOGLEBOT), NOW, SALTS, no_lookup
    )

    assert outcomes == [Dropped(DropReason.BOT)]


def test_drops_event_when_site_is_unknown() -> None:
    assert run(pageview("https://unknown.net/")) == [
        Dropped(DropReason.UNKNOWN_SITE, "unknown.net")
    ]


@pytest.mark.parametrize(
    "url",
    ["file:///home/me/example.com/index.html", "ftp://example.com/", "chrome-extension://x/y"],
)
def test_drops_event_when_url_is_not_http(url: str) -> None:
    assert run(pageview(url)) == [Dropped(DropReason.INVALID_URL)]


@pytest.mark.parametrize(
    ("referrer", "source_param"),
    [("https://semalt.com/", ""), ("https://www.darodar.com/x", "?utm_source=newsletter")],
)
def test_drops_event_when_referrer_is_spam(referrer: str, source_param: str) -> None:
    outcomes = run(pageview("https://example.com/" + source_param, referrer=referrer))

    assert outcomes == [Dropped(DropReason.SPAM_REFERRER, "example.com")]


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,hi", "not a url", "https://"]
)
def test_malformed_url_is_an_error_not_a_drop(url: str) -> None:
    with pytest.raises(enrich.MalformedUrl):
        run(pageview(url))


@pytest.mark.parametrize(
    "url", ["https://evil.example/", "https://notexample.com/", "https://example.com.evil.org/"]
)
def test_drops_event_when_hostname_is_not_allowed(url: str) -> None:
    # Given a site that accepts events from example.com (and its subdomains) only
    sites = {"example.com": Site("example.com", hostnames=("example.com",))}

    # When an event declares the site from a page elsewhere
    outcomes = run(pageview(url, domain="example.com"), sites=sites)

    # Then it is dropped, naming the site
    assert outcomes == [Dropped(DropReason.HOSTNAME_NOT_ALLOWED, "example.com")]


@pytest.mark.parametrize(
    "url", ["https://example.com/", "https://blog.example.com/x", "https://EXAMPLE.com./"]
)
def test_accepts_allowed_hostname_and_its_subdomains(url: str) -> None:
    sites = {"example.com": Site("example.com", hostnames=("shop.test", "example.com"))}

    outcomes = run(pageview(url, domain="example.com"), sites=sites)

    assert [type(o) for o in outcomes] == [Accepted]


def test_site_without_allowed_hostnames_accepts_any_hostname() -> None:
    event = accepted_one(pageview("https://anything.example.net/", domain="example.com"))

    assert event.hostname == "anything.example.net"


@pytest.mark.parametrize(
    ("declared", "url"),
    [
        ("İ" * 500, "https://example.com/"),  # 1,000 bytes, 1,500 once lowercased
        ("bücher.de", "https://example.com/"),
        ("example.com\x00", "https://example.com/"),
        ("exa mple.com", "https://example.com/"),
        ("a" * 254, "https://example.com/"),
        (None, "https://" + "İ" * 600 + "/"),  # the page's own host, as the URL gives it
        (None, "https://[::1]/"),
    ],
)
def test_drops_event_when_domain_is_not_valid_without_looking_it_up(
    declared: str | None, url: str
) -> None:
    def no_lookup(domain: str) -> Site | None:
        raise AssertionError(f"an invalid domain must not cost a site lookup: {domain!r}")

    outcomes = accept(pageview(url, domain=declared), HUMAN, NOW, SALTS, no_lookup)

    assert outcomes == [Dropped(DropReason.INVALID_DOMAIN)]


def test_invalid_domain_among_several_drops_only_that_one() -> None:
    outcomes = run(pageview(domain="example.com,exa mple.com,other.org"))

    assert [o.event.site if isinstance(o, Accepted) else o for o in outcomes] == [
        "example.com",
        Dropped(DropReason.INVALID_DOMAIN),
        "other.org",
    ]


def test_drop_reasons_are_a_closed_set() -> None:
    assert {r.value for r in DropReason} == {
        "bot",
        "unknown_site",
        "invalid_domain",
        "invalid_url",
        "spam_referrer",
        "hostname_not_allowed",
    }


# ---- several sites -------------------------------------------------------------------------------


def test_event_for_several_domains_is_accepted_once_per_site() -> None:
    outcomes = run(pageview(domain="example.com,other.org"))

    events = [o.event for o in outcomes if isinstance(o, Accepted)]
    assert [(e.site, e.tz) for e in events] == [
        ("example.com", "Europe/Berlin"),
        ("other.org", "America/New_York"),
    ]
    assert events[0].visitor_id != events[1].visitor_id


def test_declared_domain_wins_over_the_page_host() -> None:
    event = accepted_one(pageview("https://staging.example.net/x", domain="www.example.com"))

    assert (event.site, event.hostname) == ("example.com", "staging.example.net")


@pytest.mark.parametrize(
    ("declared", "sites"),
    [
        ("example.com, www.example.com ,EXAMPLE.com", ["example.com"]),
        ("example.com,,other.org,", ["example.com", "other.org"]),
        (" , ", ["example.com"]),  # nothing usable: the page's own host
    ],
)
def test_declared_domains_are_normalised_and_deduplicated(declared: str, sites: list[str]) -> None:
    outcomes = run(pageview(domain=declared))

    assert [o.event.site for o in outcomes if isinstance(o, Accepted)] == sites


def test_unknown_site_among_several_drops_only_that_site() -> None:
    outcomes = run(pageview(domain="example.com,unknown.net"))

    assert isinstance(outcomes[0], Accepted) and outcomes[0].event.site == "example.com"
    assert outcomes[1] == Dropped(DropReason.UNKNOWN_SITE, "unknown.net")


def test_at_most_ten_declared_domains_are_served() -> None:
    declared = ",".join(f"site{i}.com" for i in range(25))

    outcomes = run(pageview(domain=declared))

    assert outcomes == [Dropped(DropReason.UNKNOWN_SITE, f"site{i}.com") for i in range(10)]


# ---- the visitor id ------------------------------------------------------------------------------


def test_same_person_is_the_same_visitor_within_a_day() -> None:
    assert (
        accepted_one(pageview()).visitor_id
        == accepted_one(pageview("https://example.com/b")).visitor_id
    )


@pytest.mark.parametrize(
    ("client", "salts"),
    [
        (Client("203.0.113.8", samples.CHROME_WINDOWS), SALTS),
        (Client(IP, samples.FIREFOX_MAC), SALTS),
        (HUMAN, Salts(current=b"n" * 32, previous=SALTS.current)),
    ],
    ids=["other-ip", "other-user-agent", "next-day-salt"],
)
def test_visitor_id_changes_with_ip_user_agent_and_salt(client: Client, salts: Salts) -> None:
    assert (
        accepted_one(pageview(), client=client, salts=salts).visitor_id
        != accepted_one(pageview()).visitor_id
    )


def test_yesterday_salt_gives_the_previous_visitor_id_that_continues_a_session() -> None:
    # Given the salts rotated at midnight
    before = accepted_one(pageview(), salts=Salts(current=b"y" * 32, previous=None))
    after = accepted_one(pageview(), salts=Salts(current=b"t" * 32, previous=b"y" * 32))

    # Then today's event names yesterday's id as its previous one
    assert before.previous_visitor_id is None
    assert after.previous_visitor_id == before.visitor_id != after.visitor_id


# ---- privacy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client",
    [
        Client("203.0.113.7", samples.CHROME_WINDOWS, "DE"),
        Client("2001:db8:85a3::8a2e:370:7334", samples.SAFARI_IPHONE, "US"),
        Client("198.51.100.23", samples.FIREFOX_MAC),
    ],
)
def test_no_raw_ip_or_user_agent_anywhere_in_the_event(client: Client) -> None:
    # Given an event with every optional field filled
    payload = pageview(
        "https://example.com/a?utm_source=x&utm_medium=y&utm_campaign=z&utm_content=c&utm_term=t",
        referrer="https://www.google.com/",
        props={"plan": "pro"},
        revenue_amount="1",
        revenue_currency="EUR",
        screen_width=400,
        scroll_depth=10,
        engaged_ms=5,
        client_id="abcdefgh1234",
    )

    # When it is accepted
    event = accepted_one(payload, client=client)

    # Then neither the IP nor the user agent (nor its product token) is in any stored value
    stored = [str(v) for v in dataclasses.asdict(event).values()]
    stored += [json.dumps(event.props), json.dumps(event.to_item(ttl=1))]
    product_token = client.user_agent.split(" (")[0]
    for value in stored:
        assert client.ip not in value
        assert client.user_agent not in value
        assert product_token not in value
    assert not {"ip", "user_agent", "ua"} & {f.name for f in dataclasses.fields(RawEvent)}
