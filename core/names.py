"""Browser and OS names as Plausible reports them (docs/compat.md §4), in one table each.

Ingest parses a user agent with ua-parser (uap-core's families: "Chrome Mobile", "Mobile Safari",
"Mac OS X", "Linux", ...); Plausible parses it with UAInspector, which names things as Matomo's
device detector does ("Mac", "GNU/Linux", "Samsung Browser", ...), and then folds mobile
variants into their browser (Plausible's `Ingestion.Event.browser_name`: "Mobile Safari" is
Safari, "Chrome Mobile" and "Chrome Mobile iOS" are Chrome, an embedded web view or an in-app
browser is "Mobile App"). The tables below take a ua-parser family to that name; a family
without an entry is already the same in both (Chrome, Firefox, Safari, Opera, Windows, Android,
iOS, Chrome OS, Ubuntu, ...).

The same tables rename what was stored before ingest used them (decision 0034: counters and
archived events are mapped on read, not rewritten), so every mapping must be idempotent: no
Plausible name is itself a key that maps elsewhere. `renamed_browser` and `renamed_os` are that
read; `SQL` spells it for DuckDB and Trino. Pure and cheap to import (no parser here): the
query Lambda imports it too.
"""

from __future__ import annotations

from collections.abc import Mapping

BROWSER, OS = "browser", "os"
MOBILE_APP = "Mobile App"

# ua-parser family -> Plausible's browser name. Where each comes from:
#  fold    Plausible folds the mobile variant into its browser (Ingestion.Event.browser_name)
#  app     Plausible names web views and in-app browsers "Mobile App" (UAInspector's client type
#          "mobile app", and its "Chrome Webview"), with no version
#  matomo  the same browser under Matomo's (UAInspector's) name
BROWSERS: Mapping[str, str] = {
    "Chrome Mobile": "Chrome",  # fold
    "Chrome Mobile iOS": "Chrome",  # fold
    "Mobile Safari": "Safari",  # fold
    # matomo+fold: an iOS web view (no "Version/", no "Safari/") is Matomo's Mobile Safari
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",  # fold
    "Firefox iOS": "Firefox",  # fold (Matomo: "Firefox Mobile iOS")
    "Firefox Beta": "Firefox",  # matomo: one Firefox whatever the channel
    "Firefox Alpha": "Firefox",  # matomo
    "Opera Mobile": "Opera",  # fold
    "Opera Mini": "Opera",  # fold (Matomo's "Opera Mini iOS" too)
    "Edge": "Microsoft Edge",  # matomo
    "Edge Mobile": "Microsoft Edge",  # matomo: Edge on Android, iOS, Windows Phone
    "Samsung Internet": "Samsung Browser",  # matomo
    "DuckDuckGo": "DuckDuckGo Privacy Browser",  # matomo: the desktop browser
    "DuckDuckGo Mobile": "DuckDuckGo Privacy Browser",  # matomo
    "IE": "Internet Explorer",  # matomo
    "Android": "Android Browser",  # matomo: the pre-Chrome stock browser
    "MiuiBrowser": "MIUI Browser",  # matomo
    "Amazon Silk": "Mobile Silk",  # matomo
    "Whale": "Whale Browser",  # matomo
    "QQ Browser Mobile": "QQ Browser",  # matomo
    "AVG": "AVG Secure Browser",  # matomo
    "360 Secure Browser": "360 Browser",  # matomo
    "Hola Browser": "hola! Browser",  # matomo
    "Mypal Browser": "Mypal",  # matomo
    "Qt Web Engine": "QtWebEngine",  # matomo
    "Seznam prohlížeč": "Seznam Browser",  # matomo
    "Steam GameOverlay": "Steam In-Game Overlay",  # matomo
    "Chrome Mobile WebView": MOBILE_APP,  # app (Android "; wv)" web views)
    "Facebook": MOBILE_APP,  # app
    "Facebook Messenger": MOBILE_APP,  # app
    "Instagram": MOBILE_APP,  # app
    "LINE": MOBILE_APP,  # app
    "Twitter": MOBILE_APP,  # app
    "Telegram": MOBILE_APP,  # app
    "KakaoTalk": MOBILE_APP,  # app
    "WeChat Browser": MOBILE_APP,  # app
    "Weibo": MOBILE_APP,  # app
    "TikTok": MOBILE_APP,  # app
    "Snapchat": MOBILE_APP,  # app
    "Pinterest": MOBILE_APP,  # app
}

# ua-parser family -> Plausible's OS name (Matomo's names; Plausible reports the name, not
# Matomo's family, so Ubuntu and Fedora stay themselves). iPadOS is decided at ingest from
# the user agent (`os_name`): a stored "iOS" cannot say it was an iPad, so it stays iOS.
OSES: Mapping[str, str] = {
    "Mac OS X": "Mac",  # matomo
    "Mac OS": "Mac",  # matomo
    "Linux": "GNU/Linux",  # matomo
    "ATV OS X": "tvOS",  # matomo
    "WatchOS": "watchOS",  # matomo
    "Symbian^3 Anna": "Symbian^3",  # matomo
    "Symbian^3 Belle": "Symbian^3",  # matomo
}

IOS, IPADOS = "iOS", "iPadOS"
FIRST_IPADOS = 13  # iPadOS was iOS before its 13th version (Matomo reports iOS for those)

TABLES: Mapping[str, Mapping[str, str]] = {BROWSER: BROWSERS, OS: OSES}


def renamed_browser(name: str) -> str:
    """Plausible's name for a browser name, whether stored before the renaming or after."""
    return BROWSERS.get(name, name)


def renamed_os(name: str) -> str:
    """Plausible's name for an OS name, whether stored before the renaming or after."""
    return OSES.get(name, name)


def renamed(dimension: str, value: str) -> str:
    """A stored value of a dimension as it reads now (only browser and os are renamed)."""
    table = TABLES.get(dimension)
    return table.get(value, value) if table else value


def stored_names(dimension: str, value: str) -> frozenset[str]:
    """Every stored value that reads as `value`: the name itself and its old names."""
    table = TABLES.get(dimension, {})
    return frozenset({value, *(old for old, new in table.items() if new == value)})


def os_name(family: str, major: str, ipad: bool) -> str:
    """Plausible's OS name at ingest: iOS on an iPad from version 13 is iPadOS."""
    if family == IOS and ipad and major.isdigit() and int(major) >= FIRST_IPADOS:
        return IPADOS
    return renamed_os(family)


def browser_name(family: str) -> str:
    return renamed_browser(family)


def sql(dimension: str, column: str) -> str:
    """The column's values as they read now, as a SQL expression (DuckDB and Trino alike); the
    names are constants of this module, quoted here, never user input."""
    table = TABLES[dimension]
    whens = " ".join(f"WHEN {_quoted(old)} THEN {_quoted(new)}" for old, new in table.items())
    return f"CASE {column} {whens} ELSE {column} END"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
