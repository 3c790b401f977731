"""Enrichment: page URL, referrer and source, user agent, device and country (docs/metrics.md)."""

from __future__ import annotations

import pytest

from ingest import enrich
from ingest.enrich import DIRECT, MalformedUrl, UnsupportedScheme
from tests.unit import samples

# ---- page URL ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hostname", "path"),
    [
        ("https://example.com/blog/post", "example.com", "/blog/post"),
        ("https://www.Example.COM/pricing", "example.com", "/pricing"),
        ("http://example.com.", "example.com", "/"),
        ("https://example.com", "example.com", "/"),
        ("https://example.com:8443/a?x=1&y=2", "example.com", "/a"),
        ("https://shop.example.com/cart#step-2", "shop.example.com", "/cart"),
        ("  https://example.com/padded  ", "example.com", "/padded"),
        ("HTTPS://example.com/upper-scheme", "example.com", "/upper-scheme"),
    ],
)
def test_page_url_gives_hostname_without_www_and_path_without_query_or_fragment(
    url: str, hostname: str, path: str
) -> None:
    page = enrich.parse_page_url(url)

    assert (page.hostname, page.path) == (hostname, path)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://example.com/#/settings", "/#/settings"),
        ("https://example.com/app#inbox", "/app#inbox"),
        ("https://example.com/app?tab=1#inbox", "/app#inbox"),
        ("https://example.com/app", "/app"),
        ("https://example.com/app#", "/app"),
    ],
)
def test_hash_mode_keeps_the_fragment_in_the_path(url: str, path: str) -> None:
    assert enrich.parse_page_url(url, hash_mode=True).path == path


def test_page_path_is_truncated_to_the_dimension_limit() -> None:
    page = enrich.parse_page_url("https://example.com/" + "a" * 5000)

    assert len(page.path) == enrich.MAX_DIMENSION_LENGTH
    assert page.path.startswith("/aaa")


def test_landing_page_query_gives_every_utm_field() -> None:
    url = (
        "https://example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
        "&utm_content=banner&utm_term=analytics&other=1"
    )

    page = enrich.parse_page_url(url)

    assert page.utm == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "utm_content": "banner",
        "utm_term": "analytics",
    }
    assert page.source_param == "newsletter"


@pytest.mark.parametrize(
    ("query", "source_param"),
    [
        ("", ""),
        ("?utm_source=newsletter", "newsletter"),
        ("?ref=producthunt", "producthunt"),
        ("?source=hn", "hn"),
        ("?source=hn&ref=producthunt", "producthunt"),
        ("?source=hn&ref=producthunt&utm_source=newsletter", "newsletter"),
        ("?utm_source=&ref=producthunt", "producthunt"),
        ("?utm_source=a&utm_source=b", "a"),
    ],
)
def test_source_param_prefers_utm_source_then_ref_then_source(
    query: str, source_param: str
) -> None:
    assert enrich.parse_page_url("https://example.com/" + query).source_param == source_param


def test_blank_utm_parameters_are_ignored() -> None:
    page = enrich.parse_page_url("https://example.com/?utm_source=&utm_medium=")

    assert page.utm == {}
    assert page.source_param == ""


@pytest.mark.parametrize(
    "url",
    [
        "file:///home/me/site/index.html",
        "ftp://example.com/file",
        "chrome-extension://abcdef/popup.html",
        "ws://example.com/socket",
    ],
)
def test_well_formed_url_with_a_non_http_scheme_is_unsupported(url: str) -> None:
    with pytest.raises(UnsupportedScheme):
        enrich.parse_page_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "blob:https://example.com/550e8400",
        "about:blank",
        "/relative/path",
        "",
        "https://",
        "https:///path-without-host",
        "http://[::1",
    ],
)
def test_url_that_no_browser_page_can_have_is_malformed(url: str) -> None:
    with pytest.raises(MalformedUrl):
        enrich.parse_page_url(url)


@pytest.mark.parametrize(
    ("host", "stripped"),
    [
        ("www.example.com", "example.com"),
        ("WWW.Example.Com.", "example.com"),
        ("www2.example.com", "www2.example.com"),
        ("wwwexample.com", "wwwexample.com"),
        ("blog.www.example.com", "blog.www.example.com"),
    ],
)
def test_strip_www_removes_only_a_leading_www_label(host: str, stripped: str) -> None:
    assert enrich.strip_www(host) == stripped


# ---- referrer and source -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referrer", "source", "cleaned"),
    [
        (None, DIRECT, ""),
        ("", DIRECT, ""),
        ("https://www.google.com/search?q=analytics", "Google", "https://www.google.com/search"),
        ("https://www.google.co.uk/", "Google", "https://www.google.co.uk/"),
        ("https://news.google.com/articles/x", "Google", "https://news.google.com/articles/x"),
        ("https://t.co/AbC123", "Twitter", "https://t.co/AbC123"),
        ("https://x.com/someone/status/1", "Twitter", "https://x.com/someone/status/1"),
        ("https://l.facebook.com/l.php?u=x", "Facebook", "https://l.facebook.com/l.php"),
        (
            "https://news.ycombinator.com/item?id=1",
            "Hacker News",
            "https://news.ycombinator.com/item",
        ),
        ("https://duckduckgo.com/", "DuckDuckGo", "https://duckduckgo.com/"),
        ("https://github.com/org/repo", "GitHub", "https://github.com/org/repo"),
        (
            "https://blog.unknown.org/post#comments",
            "blog.unknown.org",
            "https://blog.unknown.org/post",
        ),
        ("https://www.unknown.org/", "unknown.org", "https://www.unknown.org/"),
        ("android-app://com.google.android.gm/", DIRECT, ""),
        ("not a url", DIRECT, ""),
        ("http://[::1", DIRECT, ""),
    ],
)
def test_referrer_maps_to_a_known_source_and_loses_its_query_string(
    referrer: str | None, source: str, cleaned: str
) -> None:
    result = enrich.classify_referrer(referrer, "example.com", "")

    assert (result.source, result.referrer, result.spam) == (source, cleaned, False)


@pytest.mark.parametrize(
    "referrer",
    ["https://example.com/other-page", "https://www.example.com/", "http://EXAMPLE.com/x?y=1"],
)
def test_self_referral_is_not_a_source(referrer: str) -> None:
    result = enrich.classify_referrer(referrer, "example.com", "")

    assert (result.source, result.referrer) == (DIRECT, "")
    assert result.internal  # a link within the site: realtime counts no arrival


@pytest.mark.parametrize(
    ("referrer", "source_param"),
    [(None, ""), ("https://www.google.com/", ""), ("https://example.com/x", "newsletter")],
)
def test_no_referrer_an_outside_one_or_a_tagged_link_is_an_arrival(
    referrer: str | None, source_param: str
) -> None:
    assert not enrich.classify_referrer(referrer, "example.com", source_param).internal


def test_subdomain_of_the_site_is_a_referrer_not_a_self_referral() -> None:
    result = enrich.classify_referrer("https://docs.example.com/start", "example.com", "")

    assert result.source == "docs.example.com"


@pytest.mark.parametrize(
    ("source_param", "source"),
    [
        ("newsletter", "newsletter"),
        ("google.com", "Google"),
        ("Twitter.com", "Twitter"),
        ("producthunt.com", "Product Hunt"),
    ],
)
def test_source_param_wins_over_the_referrer(source_param: str, source: str) -> None:
    result = enrich.classify_referrer(
        "https://www.bing.com/search?q=x", "example.com", source_param
    )

    assert result.source == source
    assert result.referrer == "https://www.bing.com/search"


def test_source_param_without_referrer_is_still_the_source() -> None:
    result = enrich.classify_referrer(None, "example.com", "newsletter")

    assert (result.source, result.referrer) == ("newsletter", "")


@pytest.mark.parametrize(
    ("referrer", "spam"),
    [
        ("https://semalt.com/", True),
        ("http://www.semalt.com/crawler", True),
        ("https://ru.semalt.com/", True),
        ("https://darodar.com/?ref=1", True),
        ("https://notsemalt.com/", False),
        ("https://semalt.com.example.org/", False),
    ],
)
def test_known_spam_referrer_is_flagged(referrer: str, spam: bool) -> None:
    assert enrich.classify_referrer(referrer, "example.com", "").spam is spam


def test_spam_referrer_is_flagged_even_when_the_link_is_tagged() -> None:
    # Given a spam referrer on a landing page that carries ?utm_source=...
    result = enrich.classify_referrer("https://semalt.com/", "example.com", "newsletter")

    # Then the tag does not launder it: it is still spam
    assert result.spam is True


# ---- user agent ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "browser", "browser_version", "os", "os_version", "device"),
    [
        (samples.CHROME_WINDOWS, "Chrome", "124.0", "Windows", "10", "Desktop"),
        # Plausible's names (docs/compat.md §4; more agents in test_names.py)
        (samples.EDGE_WINDOWS, "Microsoft Edge", "124.0", "Windows", "10", "Desktop"),
        (samples.FIREFOX_MAC, "Firefox", "125.0", "Mac", "10.15", "Desktop"),
        (samples.SAFARI_IPHONE, "Safari", "17.4", "iOS", "17.4", "Mobile"),
        (samples.SAFARI_IPAD, "Safari", "17.4", "iPadOS", "17.4", "Tablet"),
        (samples.CHROME_ANDROID_PHONE, "Chrome", "124.0", "Android", "14", "Mobile"),
        (samples.CHROME_ANDROID_TABLET, "Chrome", "124.0", "Android", "13", "Tablet"),
    ],
)
def test_browser_user_agent_is_parsed_into_browser_os_and_device(
    user_agent: str, browser: str, browser_version: str, os: str, os_version: str, device: str
) -> None:
    info = enrich.parse_user_agent(user_agent)

    assert info == enrich.UserAgentInfo(
        browser=browser,
        browser_version=browser_version,
        os=os,
        os_version=os_version,
        device=device,
        is_bot=False,
    )


@pytest.mark.parametrize(
    "user_agent",
    [
        samples.GOOGLEBOT,
        samples.BINGBOT,
        samples.GPTBOT,
        samples.AHREFS,
        samples.HEADLESS_CHROME,
        samples.FACEBOOK_PREVIEW,
        samples.LIGHTHOUSE,
        samples.CURL,
        samples.PYTHON_REQUESTS,
        "Wget/1.21.4",
        "Go-http-client/2.0",
        "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
        "",
        "   ",
    ],
)
def test_bots_crawlers_headless_browsers_and_empty_agents_are_bots(user_agent: str) -> None:
    assert enrich.parse_user_agent(user_agent).is_bot is True


def test_unrecognised_user_agent_leaves_browser_and_os_empty_rather_than_other() -> None:
    info = enrich.parse_user_agent("SomethingNobodyKnows/1.0")

    assert (info.browser, info.browser_version, info.os, info.os_version) == ("", "", "", "")


# ---- device and country --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "device"),
    [
        (320, "Mobile"),
        (575, "Mobile"),
        (576, "Tablet"),
        (991, "Tablet"),
        (992, "Laptop"),
        (1439, "Laptop"),
        (1440, "Desktop"),
        (3840, "Desktop"),
    ],
)
def test_device_comes_from_screen_width_when_the_tracker_sends_one(width: int, device: str) -> None:
    assert enrich.device_from_screen(width, ua_device="Desktop") == device


@pytest.mark.parametrize("width", [None, 0, -1])
def test_device_falls_back_to_the_user_agent_without_a_screen_width(width: int | None) -> None:
    assert enrich.device_from_screen(width, ua_device="Tablet") == "Tablet"


@pytest.mark.parametrize(
    ("header", "country"),
    [
        ("DE", "DE"),
        ("us", "US"),
        (" fr ", "FR"),
        (None, ""),
        ("", ""),
        ("XX", ""),
        ("T1", ""),
        ("DEU", ""),
        ("1A", ""),
    ],
)
def test_country_comes_from_the_viewer_country_header(header: str | None, country: str) -> None:
    assert enrich.country_from_header(header) == country


def test_a_huge_user_agent_is_parsed_from_its_head_and_cached_once() -> None:
    # Given two 10 KB user agents that differ only past the parsed head
    head = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36 "
    head += "x" * enrich.MAX_PARSED_USER_AGENT
    first, second = head + "a" * 10_000, head + "b" * 10_000
    enrich._parse_user_agent.cache_clear()
    # When both are parsed
    infos = {enrich.parse_user_agent(first), enrich.parse_user_agent(second)}
    # Then they are one entry of the cache, keyed by a bounded string, and still a browser
    assert enrich._parse_user_agent.cache_info().currsize == 1
    assert len(infos) == 1 and infos.pop().browser == "Chrome"
