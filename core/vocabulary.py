"""The counter vocabulary, in one place: the counters' names and stored codes, the dimensions,
and which counters each kind of dimension keeps.

The writers (aggregator/fold.py, aggregator/minutes.py, core/keys.py) and the counters engine
(query_api/counters.py) import it; the oracle (tests/oracle.py) keeps its own list on purpose, so a
slip here shows up there.
"""

from __future__ import annotations

# ---- counters (attribute names as the code speaks them) ----------------------------------------
PAGEVIEWS = "pageviews"
EVENTS = "events"
VISITORS = "visitors"
VISITS = "visits"
BOUNCES = "bounces"
DURATION_MS = "duration_ms"
TIME_ON_PAGE_MS = "top_ms"  # summed time on page ...
TIME_ON_PAGE_N = "top_n"  # ... over this many pageviews followed by another event in the visit
SCROLL_SUM = "sd_sum"  # summed deepest scroll (%) of each visitor on a page, from engagement events
SCROLL_N = "sd_n"  # ... over this many (visitor, page) pairs
ARRIVALS = "arrivals"  # realtime minutes: unique visitors arrived per source

# A write is billed by the size of the whole item, and a dimension item holds each counter's name
# once per value: stored, a dimension's counter is `<code>|<value>` (decision 0013). Totals keep
# their names (no `|`: never confused with a code, `b` and `n` included).
STORED_CODES = {
    PAGEVIEWS: "p",
    VISITORS: "v",
    VISITS: "s",
    BOUNCES: "b",
    DURATION_MS: "d",
    TIME_ON_PAGE_MS: "t",
    TIME_ON_PAGE_N: "tn",
    SCROLL_SUM: "ss",
    SCROLL_N: "sn",
    EVENTS: "e",
    ARRIVALS: "a",
}

# ---- dimensions ----------------------------------------------------------------------------------
TOTALS = "_"  # the site's totals: the dimension of no property
# Session dimensions: taken from the first event of a session (Plausible's rule).
SESSION_DIMENSIONS = (
    "source",
    "referrer",
    "utm_medium",
    "utm_source",
    "utm_campaign",
    "utm_content",
    "utm_term",
    "country",
    "region",
    "city",
    "channel",
    "browser",
    "browser_version",
    "os",
    "os_version",
    "device",
)
ENTRY_PAGE = "entry_page"
EXIT_PAGE = "exit_page"
PAGE = "page"
HOSTNAME = "hostname"
NAME = "name"  # custom event names (goals)
PROP_PREFIX = "prop:"  # prop:<key> dimensions, value = prop value
PROP_KEYS = "prop_keys"  # which prop keys were sent: events per key, so the dashboard can list them

# ---- kinds of dimension, and the counters each keeps per value ----------------------------------
SESSION, GOAL, PROP = "session", "goal", "prop"  # the kinds that are no single dimension's name
KEPT: dict[str, frozenset[str]] = {
    TOTALS: frozenset({VISITORS, VISITS, PAGEVIEWS, EVENTS, BOUNCES, DURATION_MS}),
    SESSION: frozenset({VISITORS, VISITS, PAGEVIEWS, BOUNCES, DURATION_MS}),
    PAGE: frozenset({VISITORS, PAGEVIEWS, TIME_ON_PAGE_MS, TIME_ON_PAGE_N, SCROLL_SUM, SCROLL_N}),
    HOSTNAME: frozenset({VISITORS, PAGEVIEWS, EVENTS}),
    NAME: frozenset({VISITORS, EVENTS}),
    GOAL: frozenset({VISITORS, EVENTS}),  # read from the name and page dimensions
    PROP: frozenset({VISITORS, EVENTS, PAGEVIEWS}),
    PROP_KEYS: frozenset({EVENTS}),
}


def kind_of(dimension: str) -> str:
    """The kind of a stored dimension: its KEPT entry."""
    if dimension in SESSION_DIMENSIONS or dimension in (ENTRY_PAGE, EXIT_PAGE):
        return SESSION
    if dimension.startswith(PROP_PREFIX):
        return PROP
    return dimension
