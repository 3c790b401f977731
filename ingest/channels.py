"""The acquisition channel of a visit (`visit:channel`), derived at ingest from the landing page's
source, `utm_medium`, `utm_source`, `utm_campaign` and click id, the way Plausible groups them
(GA4's default channel groups, in Plausible's order of rules; docs/compat.md §5).

Only the channel is stored: the click id's value is never read, only which parameter was there.

Where we differ from Plausible, and why:
- The 15 channels docs/compat.md lists: Plausible's "Paid Video" and "Organic Video" are "Video";
  its "Paid Other", "Mobile Push Notifications" and "AI Assistants" are not channels here, so
  such a visit falls through to Referral (it has a source) or Direct.
- Google's `gbraid` and `wbraid` (its click ids where `gclid` cannot be set) count as `gclid`;
  TikTok's `ttclid`, set on ad clicks only, makes TikTok Paid Social. `fbclid` does not make a
  visit paid: Facebook adds it to organic links too (Plausible ignores it as well).
- The source categories are a trimmed table (SOURCE_CATEGORIES below) of the sources people
  meet, not GA4's ~800-row list: a source it lacks is a Referral.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

DIRECT = "Direct"
ORGANIC_SEARCH, PAID_SEARCH = "Organic Search", "Paid Search"
ORGANIC_SOCIAL, PAID_SOCIAL = "Organic Social", "Paid Social"
ORGANIC_SHOPPING, PAID_SHOPPING = "Organic Shopping", "Paid Shopping"
EMAIL, REFERRAL, DISPLAY, VIDEO = "Email", "Referral", "Display", "Video"
AFFILIATES, AUDIO, SMS, CROSS_NETWORK = "Affiliates", "Audio", "SMS", "Cross-network"
CHANNELS = (
    DIRECT,
    ORGANIC_SEARCH,
    PAID_SEARCH,
    ORGANIC_SOCIAL,
    PAID_SOCIAL,
    EMAIL,
    REFERRAL,
    DISPLAY,
    VIDEO,
    AFFILIATES,
    AUDIO,
    SMS,
    ORGANIC_SHOPPING,
    PAID_SHOPPING,
    CROSS_NETWORK,
)

# Query parameters ad networks add to a landing page's URL on a click (ingest notes which one
# was there, never its value). The first found in this order is the visit's.
CLICK_IDS = (
    "gclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "ttclid",
    "fbclid",
    "twclid",
    "li_fat_id",
    "dclid",
    "yclid",
)
_GOOGLE_CLICK_IDS = frozenset({"gclid", "gbraid", "wbraid"})

SEARCH, SOCIAL, VIDEO_SITE, SHOPPING, EMAIL_SITE = "search", "social", "video", "shopping", "email"
# Lower-cased source (our names from ingest/enrich.py, the spellings utm_source takes, and a
# few hosts our names leave as they are) → category.
SOURCE_CATEGORIES: dict[str, str] = {
    **dict.fromkeys(
        (
            "google",
            "bing",
            "duckduckgo",
            "yahoo",
            "yahoo!",
            "yandex",
            "baidu",
            "ecosia",
            "ecosia.org",
            "brave",
            "qwant",
            "qwant.com",
            "startpage",
            "startpage.com",
            "sogou",
            "naver",
            "seznam",
            "seznam.cz",
            "ask",
            "aol",
            "msn",
            "so.com",
            "360.cn",
            "daum",
            "kagi",
            "kagi.com",
            "lens.google.com",
            "google-play",
        ),
        SEARCH,
    ),
    **dict.fromkeys(
        (
            "facebook",
            "fb",
            "instagram",
            "ig",
            "twitter",
            "x",
            "x (twitter)",
            "t.co",
            "linkedin",
            "lnkd.in",
            "reddit",
            "pinterest",
            "tiktok",
            "tiktok.com",
            "snapchat",
            "threads",
            "threads.net",
            "mastodon",
            "bluesky",
            "tumblr",
            "quora",
            "discord",
            "slack",
            "telegram",
            "whatsapp",
            "vk",
            "vkontakte",
            "weibo",
            "line",
            "medium.com",
            "hacker news",
            "github",
            "producthunt",
            "product hunt",
            "stackoverflow",
            "stackoverflow.com",
            "microsoft teams",
        ),
        SOCIAL,
    ),
    **dict.fromkeys(
        (
            "youtube",
            "vimeo",
            "vimeo.com",
            "twitch",
            "twitch.tv",
            "dailymotion",
            "dailymotion.com",
            "netflix",
            "hulu",
            "disneyplus",
        ),
        VIDEO_SITE,
    ),
    **dict.fromkeys(
        (
            "amazon",
            "amazon.com",
            "ebay",
            "ebay.com",
            "etsy",
            "etsy.com",
            "shopify",
            "apps.shopify.com",
            "walmart",
            "walmart.com",
            "alibaba",
            "aliexpress",
            "temu.com",
            "google shopping",
            "igshopping",
        ),
        SHOPPING,
    ),
    **dict.fromkeys(
        ("gmail", "mail.google.com", "outlook.live.com", "mail.yahoo.com", "email"),
        EMAIL_SITE,
    ),
}

# utm_source values that say an ad was clicked, whatever the medium.
PAID_SOURCES = frozenset(
    {
        "adwords",
        "googleads",
        "google_ads",
        "google-ads",
        "bing_ads",
        "microsoft_ads",
        "facebook_ad",
        "facebook_ads",
        "fb_ad",
        "fb_ads",
        "ig_ad",
        "ig_ads",
        "yt-ads",
        "yt_ads",
        "youtube_ads",
        "tiktok_ads",
        "twitter_ads",
        "x_ads",
        "linkedin_ads",
        "reddit_ads",
        "pinterest_ads",
        "snapchat_ads",
    }
)

_PAID_MEDIUM = re.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
_SHOPPING_CAMPAIGN = re.compile(r"^(.*(([^a-df-z]|^)shop|shopping).*)$")
_DISPLAY_MEDIA = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_SOCIAL_MEDIA = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
_EMAIL_TAGS = ("email", "e-mail", "e_mail", "e mail", "newsletter")
_REFERRAL_MEDIA = frozenset({"referral", "app", "link"})


@dataclass(frozen=True)
class _Visit:
    source: str  # lower-cased, "" for none
    medium: str
    tagged: str  # utm_source
    campaign: str
    click_id: str

    @property
    def category(self) -> str:
        return SOURCE_CATEGORIES.get(self.source, "")

    @property
    def paid_medium(self) -> bool:
        return bool(_PAID_MEDIUM.match(self.medium))

    @property
    def paid(self) -> bool:
        return self.paid_medium or self.tagged in PAID_SOURCES

    @property
    def shopping(self) -> bool:
        return self.category == SHOPPING or bool(_SHOPPING_CAMPAIGN.match(self.campaign))

    @property
    def ad_click(self) -> bool:
        """Google's and Microsoft's auto-tagged ad clicks (Plausible's rule: the click id alone
        is not enough, the visit must come from the search engine too); TikTok's."""
        return (
            (self.source == "google" and self.click_id in _GOOGLE_CLICK_IDS)
            or (self.source == "bing" and self.click_id == "msclkid")
            or (self.source in ("tiktok", "tiktok.com") and self.click_id == "ttclid")
        )


# In order: the first rule that holds names the channel (Plausible's order).
_RULES: tuple[tuple[Callable[[_Visit], bool], str], ...] = (
    (lambda v: "cross-network" in v.campaign, CROSS_NETWORK),
    (lambda v: v.shopping and v.paid_medium, PAID_SHOPPING),
    (lambda v: v.category == SEARCH and (v.paid or v.ad_click), PAID_SEARCH),
    (lambda v: v.category == SOCIAL and (v.paid or v.ad_click), PAID_SOCIAL),
    (lambda v: v.category == VIDEO_SITE and v.paid, VIDEO),
    (lambda v: v.medium in _DISPLAY_MEDIA, DISPLAY),
    (lambda v: v.shopping, ORGANIC_SHOPPING),
    (lambda v: v.category == SOCIAL or v.medium in _SOCIAL_MEDIA, ORGANIC_SOCIAL),
    (lambda v: v.category == VIDEO_SITE or "video" in v.medium, VIDEO),
    (lambda v: v.category == SEARCH, ORGANIC_SEARCH),
    (
        lambda v: (
            v.category == EMAIL_SITE or any(t in v.tagged or t in v.medium for t in _EMAIL_TAGS)
        ),
        EMAIL,
    ),
    (lambda v: v.medium == "affiliate", AFFILIATES),
    (lambda v: v.medium == "audio", AUDIO),
    (lambda v: v.tagged == "sms" or v.medium == "sms", SMS),
    (lambda v: v.medium in _REFERRAL_MEDIA or bool(v.source), REFERRAL),
)


def channel(
    source: str, utm_medium: str, utm_source: str, utm_campaign: str, click_id: str = ""
) -> str:
    """The channel of a visit whose first event has these values; `source` as ingest names it
    ("Direct / None" or "" for none), `click_id` the click id parameter's name, if any."""
    visit = _Visit(
        "" if source == "Direct / None" else source.lower(),
        utm_medium.lower(),
        utm_source.lower(),
        utm_campaign.lower(),
        click_id,
    )
    return next((name for holds, name in _RULES if holds(visit)), DIRECT)


def click_id_of(url: str) -> str:
    """The name of the first click id parameter in a page URL's query, "" if none."""
    try:
        query = parse_qs(urlsplit(url.strip()).query, keep_blank_values=True)
    except ValueError:
        return ""
    return next((c for c in CLICK_IDS if c in query), "")
