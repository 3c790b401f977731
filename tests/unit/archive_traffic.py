"""Raw events for the archive engine's tests, made directly (no pipeline): visitors with
sessions over midnight, a DST night and a month end, every dimension, engagement events, events
stored with a previous-day visitor id, and values that need quoting."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from archive.parquet import write_events
from core.events import RawEvent

SITE = "archive.example"
START = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # Berlin's DST night, then a month end
PAGES = ("/", "/pricing", "/blog", "/blog/a", "/blog_x", "/100%", "/it's", "/ü/ñ", "/a\\b")
SOURCES = ("Google", "Direct / None", "Twitter", "news 'daily'", "50%_off")
COUNTRIES = ("DE", "US", "FR", "")
GAPS_S = (1, 20, 300, 1799, 1801, 3600, 7200, 30000)


def random_events(
    seed: int, count: int = 400, visitors: int = 12, tz: str = "Europe/Berlin"
) -> list[RawEvent]:
    rnd = random.Random(seed)
    clocks: dict[int, int] = {}
    profiles = {
        v: {
            "country": rnd.choice(COUNTRIES),
            "browser": rnd.choice(("Chrome", "Firefox", "Safari")),
            "device": rnd.choice(("Desktop", "Mobile")),
        }
        for v in range(visitors)
    }
    now = int(START.timestamp() * 1000)
    events = []
    for n in range(count):
        v = rnd.randrange(visitors)
        at = max(now + 1, clocks.get(v, now) + 1000 * rnd.choice(GAPS_S))
        now = at if rnd.random() < 0.5 else now + 1
        at = max(at, now)
        clocks[v] = at
        kind = rnd.choices(("pageview", "custom", "quiet", "engagement"), (10, 2, 1, 3))[0]
        props = {}
        if rnd.random() < 0.3:
            props["plan"] = rnd.choice(("free", "pro", "it's", ""))
        day = datetime.fromtimestamp(at / 1000, UTC).strftime("%m%d")
        heir = rnd.random() < 0.15
        events.append(
            RawEvent(
                event_id=f"e{seed}-{n:05d}",
                site=SITE,
                ts=at,
                name={"pageview": "pageview", "engagement": "engagement"}.get(
                    kind, rnd.choice(("Signup", "Download"))
                ),
                visitor_id=f"v{v}-{day}" if heir else f"v{v}",
                previous_visitor_id=f"v{v}" if heir else None,
                tz=tz,
                hostname=rnd.choice((SITE, "www2." + SITE, "")),
                page=rnd.choice(PAGES),
                source=rnd.choice(SOURCES),
                referrer=rnd.choice(("", "https://google.com/", "https://t.co/x")),
                utm_source=rnd.choice(("", "", "news")),
                interactive=kind != "quiet",
                props=props,
                scroll_depth=rnd.randrange(0, 120) if kind == "engagement" else None,
                engaged_ms=3000 if kind == "engagement" else None,
                country=profiles[v]["country"],
                browser=profiles[v]["browser"],
                device=profiles[v]["device"],
            )
        )
    return events


def write_with_duplicates(
    events: Sequence[RawEvent], directory: Path, seed: int, files: int = 4
) -> list[Path]:
    """The events in several files, in no order, some of them in two files (a retried or
    bisected batch written twice)."""
    rnd = random.Random(seed)
    parts: list[list[RawEvent]] = [[] for _ in range(files)]
    for event in events:
        chosen = rnd.sample(range(files), 2 if files > 1 and rnd.random() < 0.25 else 1)
        for index in chosen:
            parts[index].append(event)
    paths = []
    for index, part in enumerate(parts):
        path = directory / f"part-{seed}-{index}.parquet"
        write_events(part, path)
        paths.append(path)
    return paths
