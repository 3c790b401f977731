"""visit:channel from real landing pages: the source ingest names, the landing URL's utm tags and
click ids, through the real enrichment (ingest/channels.py, Plausible's rules)."""

from __future__ import annotations

import pytest

from ingest import channels, enrich

CASES = [
    # (landing URL, referrer, channel)
    ("https://example.com/", "https://www.google.com/", "Organic Search"),
    ("https://example.com/?gclid=Cj0KCQ", "https://www.google.com/", "Paid Search"),
    ("https://example.com/?gbraid=0AAAAA", "https://www.google.de/", "Paid Search"),
    ("https://example.com/?msclkid=abc", "https://www.bing.com/", "Paid Search"),
    # a click id without its search engine is not enough (Plausible's rule)
    ("https://example.com/?gclid=Cj0KCQ", None, "Direct"),
    ("https://example.com/?utm_source=google&utm_medium=cpc", None, "Paid Search"),
    ("https://example.com/", "https://duckduckgo.com/", "Organic Search"),
    ("https://example.com/", "https://m.facebook.com/", "Organic Social"),
    # Facebook adds fbclid to organic links too: still organic
    ("https://example.com/?fbclid=IwAR", "https://l.facebook.com/", "Organic Social"),
    ("https://example.com/?utm_source=facebook&utm_medium=paid_social", None, "Paid Social"),
    ("https://example.com/?utm_source=facebook&utm_medium=cpc", None, "Paid Social"),
    ("https://example.com/?ttclid=E.C.P", "https://www.tiktok.com/", "Paid Social"),
    ("https://example.com/", "https://t.co/xyz", "Organic Social"),
    ("https://example.com/", "https://news.ycombinator.com/item?id=1", "Organic Social"),
    ("https://example.com/?utm_source=newsletter&utm_medium=email", None, "Email"),
    ("https://example.com/?utm_source=weekly-newsletter", None, "Email"),
    ("https://example.com/?utm_source=partner&utm_medium=display", None, "Display"),
    ("https://example.com/?utm_source=partner&utm_medium=banner", None, "Display"),
    ("https://example.com/?utm_source=blog&utm_medium=affiliate", None, "Affiliates"),
    ("https://example.com/?utm_source=spotify&utm_medium=audio", None, "Audio"),
    ("https://example.com/?utm_source=sms", None, "SMS"),
    ("https://example.com/?utm_source=twilio&utm_medium=sms", None, "SMS"),
    ("https://example.com/", "https://www.amazon.com/", "Organic Shopping"),
    ("https://example.com/?utm_campaign=summer-shop", None, "Organic Shopping"),
    ("https://example.com/?utm_source=amazon&utm_medium=cpc", None, "Paid Shopping"),
    ("https://example.com/?utm_campaign=pmax-cross-network", None, "Cross-network"),
    ("https://example.com/", "https://www.youtube.com/watch?v=1", "Video"),
    ("https://example.com/?utm_source=youtube&utm_medium=cpv", None, "Video"),
    ("https://example.com/?utm_source=spring&utm_medium=video", None, "Video"),
    ("https://example.com/", "https://blog.someone.example/post", "Referral"),
    ("https://example.com/?utm_medium=referral", None, "Referral"),
    ("https://example.com/", None, "Direct"),
    # a link from the site itself is no source
    ("https://example.com/b", "https://example.com/a", "Direct"),
]


@pytest.mark.parametrize(("url", "referrer", "expected"), CASES)
def test_a_landing_page_gets_plausibles_channel(
    url: str, referrer: str | None, expected: str
) -> None:
    page = enrich.parse_page_url(url)
    ref = enrich.classify_referrer(referrer, page.hostname, page.source_param)
    got = channels.channel(
        ref.source,
        page.utm.get("utm_medium", ""),
        page.utm.get("utm_source", ""),
        page.utm.get("utm_campaign", ""),
        channels.click_id_of(url),
    )
    assert got == expected


def test_every_channel_is_one_of_the_fifteen() -> None:
    assert {expected for *_, expected in CASES} <= set(channels.CHANNELS)
    assert len(channels.CHANNELS) == 15


def test_a_click_id_is_noted_by_name_never_by_value() -> None:
    assert channels.click_id_of("https://example.com/?a=1&gclid=SECRET-VALUE") == "gclid"
    assert channels.click_id_of("https://example.com/?gclidx=1") == ""
    assert channels.click_id_of("http://[bad") == ""
