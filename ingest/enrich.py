"""Pure enrichment of an incoming event: URL, referrer and source, UTM, user agent, device.

Definitions follow docs/metrics.md (Plausible's): hostname without `www.`, path without the
query string (fragment only in hash mode), source from `utm_source`/`ref`/`source` or the
referrer's domain mapped to a known name, self-referrals not a source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from ua_parser import OS, BasicResolver, Parser, UserAgent, load_lazy_builtins
from ua_parser.lazy import DeviceMatcher

from core import names

DIRECT = "Direct / None"
UTM_FIELDS = ("utm_medium", "utm_source", "utm_campaign", "utm_content", "utm_term")
MAX_DIMENSION_LENGTH = 2000


class UnsupportedScheme(ValueError):
    """A well-formed URL whose scheme is not http(s), e.g. a page opened from file://."""


class MalformedUrl(ValueError):
    """Not a URL at all, or a scheme no browser page can have (javascript:, data:)."""


# Schemes that only an attacker or a broken client sends as a page URL: reject as invalid input.
_HOSTILE_SCHEMES = frozenset({"javascript", "data", "vbscript", "blob", "about"})


@dataclass(frozen=True)
class PageUrl:
    hostname: str
    path: str
    utm: dict[str, str]
    source_param: str  # utm_source, ref or source query parameter, if any


def strip_www(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def parse_page_url(url: str, hash_mode: bool = False) -> PageUrl:
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise MalformedUrl(str(exc)) from exc
    scheme = parts.scheme.lower()
    if scheme in _HOSTILE_SCHEMES or not scheme:
        raise MalformedUrl(f"scheme {scheme or '(none)'!r} is not a page URL")
    if scheme not in {"http", "https"}:
        raise UnsupportedScheme(scheme)
    if not parts.hostname:
        raise MalformedUrl("URL has no host")
    path = parts.path or "/"
    if hash_mode and parts.fragment:
        path = f"{path}#{parts.fragment}"
    query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=False).items() if v}
    utm = {f: query[f][:MAX_DIMENSION_LENGTH] for f in UTM_FIELDS if f in query}
    source_param = query.get("utm_source") or query.get("ref") or query.get("source") or ""
    return PageUrl(
        hostname=strip_www(parts.hostname),
        path=path[:MAX_DIMENSION_LENGTH],
        utm=utm,
        source_param=source_param[:MAX_DIMENSION_LENGTH],
    )


# Referrer domains → the names people know. Matched on the registrable part of the host, so
# `www.google.co.uk` and `news.google.com` are both Google. Order matters only for overlaps.
_KNOWN_SOURCES: tuple[tuple[str, str], ...] = (
    (r"(^|\.)google\.[a-z.]+$", "Google"),
    (r"(^|\.)bing\.com$", "Bing"),
    (r"(^|\.)duckduckgo\.com$", "DuckDuckGo"),
    (r"(^|\.)yahoo\.[a-z.]+$", "Yahoo!"),
    (r"(^|\.)yandex\.[a-z.]+$", "Yandex"),
    (r"(^|\.)baidu\.com$", "Baidu"),
    (r"(^|\.)ecosia\.org$", "Ecosia"),
    (r"(^|\.)search\.brave\.com$", "Brave"),
    (r"(^|\.)(twitter\.com|t\.co|x\.com)$", "Twitter"),
    (r"(^|\.)(facebook\.com|fb\.com|fb\.me)$", "Facebook"),
    (r"(^|\.)(linkedin\.com|lnkd\.in)$", "LinkedIn"),
    (r"(^|\.)reddit\.com$", "Reddit"),
    (r"(^|\.)(youtube\.com|youtu\.be)$", "YouTube"),
    (r"(^|\.)instagram\.com$", "Instagram"),
    (r"(^|\.)pinterest\.[a-z.]+$", "Pinterest"),
    (r"(^|\.)news\.ycombinator\.com$", "Hacker News"),
    (r"(^|\.)github\.com$", "GitHub"),
    (r"(^|\.)producthunt\.com$", "Product Hunt"),
    (r"(^|\.)(chatgpt\.com|chat\.openai\.com)$", "ChatGPT"),
    (r"(^|\.)perplexity\.ai$", "Perplexity"),
    (r"(^|\.)mastodon\.social$", "Mastodon"),
    (r"(^|\.)bsky\.app$", "Bluesky"),
)
_KNOWN_SOURCE_RES = tuple((re.compile(p), name) for p, name in _KNOWN_SOURCES)

# Known referrer spam domains; events carrying them are dropped.
SPAM_REFERRERS = frozenset(
    {"semalt.com", "buttons-for-website.com", "darodar.com", "best-seo-offer.com", "7makemoney.com"}
)


@dataclass(frozen=True)
class Referrer:
    source: str
    referrer: str  # full referrer URL, query string and fragment stripped; "" if none
    spam: bool = False
    internal: bool = False  # a link from the site itself: the visitor did not arrive just now


def classify_referrer(referrer: str | None, page_host: str, source_param: str) -> Referrer:
    cleaned, host = "", ""
    if referrer:
        try:
            parts = urlsplit(referrer.strip())
            if parts.scheme in {"http", "https"} and parts.hostname:
                host = strip_www(parts.hostname)
                cleaned = f"{parts.scheme}://{parts.netloc}{parts.path}"[:MAX_DIMENSION_LENGTH]
        except ValueError:
            pass
    internal = bool(host) and host == page_host
    if internal:
        cleaned, host = "", ""  # a self-referral is not a source
    spam = bool(host) and any(host == s or host.endswith("." + s) for s in SPAM_REFERRERS)
    if source_param:
        # A tagged link does not launder a spam referrer: it is still dropped.
        source = _known_name(source_param.lower()) or source_param
        return Referrer(source=source, referrer=cleaned, spam=spam)  # a tagged link: an arrival
    if not host:
        return Referrer(source=DIRECT, referrer="", internal=internal)
    return Referrer(source=_known_name(host) or host, referrer=cleaned, spam=spam)


def _known_name(host: str) -> str | None:
    for pattern, name in _KNOWN_SOURCE_RES:
        if pattern.search(host):
            return name
    return None


# ---- user agent -------------------------------------------------------------------------------

_BOT_RE = re.compile(
    r"(?<!cu)bot\b|bot/|crawl|spider|slurp|headless|phantomjs|lighthouse|pingdom|uptime|monitor|"
    r"curl/|wget/|python-|httpx|go-http-client|java/|okhttp|axios|node-fetch|scrapy|"
    r"facebookexternalhit|preview|prerender|selenium|puppeteer|playwright",
    re.IGNORECASE,
)
_TABLET_RE = re.compile(r"ipad|tablet|kindle|silk|playbook|(android(?!.*mobile))", re.IGNORECASE)
_MOBILE_RE = re.compile(r"mobi|iphone|ipod|android.*mobile|windows phone|opera mini", re.IGNORECASE)


@dataclass(frozen=True)
class UserAgentInfo:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str  # Mobile | Tablet | Desktop, from the user agent
    is_bot: bool


@dataclass(frozen=True)
class _UserAgentParser:
    parser: Parser
    spider_matchers: tuple[DeviceMatcher, ...]  # the device matchers that can answer "Spider"


@lru_cache(maxsize=1)
def _parser() -> _UserAgentParser:
    # Lazy builtins compile each regex on first use, and a domain's matchers are tried in order
    # until one matches. A browser matches none of the 633 device matchers, so parsing its device
    # compiled all of them (~50 ms of a cold start). Only "Spider" is read from the device domain,
    # and only a few matchers name it: the full device parse runs when one of those matches.
    matchers = load_lazy_builtins()
    spiders = tuple(m for m in matchers[2] if isinstance(m, DeviceMatcher) and "Spider" in m.family)
    return _UserAgentParser(Parser(BasicResolver(matchers)), spiders)


def _is_spider(user_agent: str) -> bool:
    """Whether ua-parser's device family is "Spider", compiling the device regexes only when a
    "Spider" matcher matches. A matcher that does not name "Spider" can still answer it through a
    captured group ($1), but then the user agent contains "spider", which _BOT_RE catches."""
    parsed = _parser()
    if not any(m(user_agent) for m in parsed.spider_matchers):
        return False
    device = parsed.parser.parse_device(user_agent)
    return device is not None and device.family == "Spider"


# Real user agents stay well under this; a longer header is cut before parsing, so the cache
# below holds at most ~4 MB and no regex runs over a 10 KB header. (The visitor hash still takes
# the whole header: it is hashed, never kept.)
MAX_PARSED_USER_AGENT = 1024


def parse_user_agent(user_agent: str) -> UserAgentInfo:
    return _parse_user_agent(user_agent[:MAX_PARSED_USER_AGENT])


@lru_cache(maxsize=4096)
def _parse_user_agent(user_agent: str) -> UserAgentInfo:
    parser = _parser().parser
    ua = parser.parse_user_agent(user_agent) or UserAgent()
    os_ = parser.parse_os(user_agent) or OS()
    is_bot = not user_agent.strip() or bool(_BOT_RE.search(user_agent)) or _is_spider(user_agent)
    browser_version = f"{ua.major}.{ua.minor}" if ua.major and ua.minor else (ua.major or "")
    os_version = f"{os_.major}.{os_.minor}" if os_.major and os_.minor else (os_.major or "")
    # Plausible's names (core/names.py): mobile variants folded into their browser, Mac, ...
    browser = names.browser_name(ua.family) if ua.family != "Other" else ""
    if browser == names.MOBILE_APP:
        browser_version = ""  # an app's version is not a browser's (Plausible gives none)
    ipad = "ipad" in user_agent.lower()
    os_name = names.os_name(os_.family, os_.major or "", ipad) if os_.family != "Other" else ""
    if _TABLET_RE.search(user_agent):
        device = "Tablet"
    elif _MOBILE_RE.search(user_agent):
        device = "Mobile"
    else:
        device = "Desktop"
    return UserAgentInfo(
        browser=browser,
        browser_version=browser_version if browser else "",
        os=os_name,
        os_version=os_version if os_name else "",
        device=device,
        is_bot=is_bot,
    )


def device_from_screen(width: int | None, ua_device: str) -> str:
    """Plausible's screen-size classes when the tracker sent a width; else the UA's class."""
    if width is None or width <= 0:
        return ua_device
    if width < 576:
        return "Mobile"
    if width < 992:
        return "Tablet"
    if width < 1440:
        return "Laptop"
    return "Desktop"


def country_from_header(value: str | None) -> str:
    value = (value or "").strip().upper()
    return value if re.fullmatch(r"[A-Z]{2}", value) and value not in {"XX", "T1"} else ""
