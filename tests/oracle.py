"""The oracle: every counter the aggregator keeps, recomputed straight from a list of raw events.

Written to be obviously correct rather than fast: sort, group, count. It shares no code with the
aggregator beyond the raw event model and the bucket labels, so a bug in the fold's incremental
bookkeeping cannot hide in both. Definitions (docs/metrics.md, decision records 0003 and 0005):

- a session is a visitor's non-engagement events with no gap over 30 minutes; an engagement event
  belongs to the session whose span (plus 30 minutes) contains it, and only feeds time on page;
- a session contributes visits, bounces and duration to the hour, day and month where it starts,
  for the totals and for its session dimensions (first event's source, UTM, device, …, entry and
  exit page); minutes carry no visits;
- pageviews count in the bucket they happen in, by page and by the session's dimensions;
- a visitor is unique per bucket and per (bucket, dimension value): event dimensions (page,
  hostname, event name, prop values) in the event's bucket, session dimensions in the session's start bucket;
- the minute (realtime) has one cell and knows no sessions: events, pageviews, pageviews by page,
  custom events by name (`events|<name>`),
  unique visitor ids (each event's own id, today's salt), and per source the unique visitor ids
  that arrived from it (`arrivals|<source>`: a pageview that is not a self-referral);
- current visitors: one per visitor id, in the minute of its latest non-engagement event;
- scroll depth: per page and bucket, each visitor's deepest scroll among the engagement events of
  its visits, summed with a count of (visitor, page) pairs;
- an event after midnight whose previous-day visitor id has a session open continues it;
- prop keys (decision 0017): a day or month counts the keys its key list admitted under their own
  names; every other key's counts are added up under `prop:(other)` (by value) and its events
  under `prop_keys|(other)`. Which keys a list admits depends on arrival order, so the lists are
  read from the store (`compute(events, admitted)`), and `admission_problems` checks that each is
  what first come allows: keys sent there, as many as the bound and the byte budget let in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

from core.events import RawEvent
from core.keys import TOTALS, Granularity, bucket_label, minute_label

GAP_MS = 30 * 60 * 1000
ALL = (Granularity.MINUTE, Granularity.HOUR, Granularity.DAY, Granularity.MONTH)
SESSIONS = (Granularity.HOUR, Granularity.DAY, Granularity.MONTH)
DIMENSIONAL = (Granularity.DAY, Granularity.MONTH)
SESSION_DIMS = (
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

Cell = tuple[str, Granularity, str, str]  # (site, granularity, dimension, bucket)
Counters = dict[Cell, dict[str, int]]
KeyLists = Mapping[tuple[str, Granularity, str], Collection[str]]  # (site, gran, bucket) → keys
OTHER = "(other)"
KEY_BYTES = 16 * 1024  # a key list's budget of key text, besides its count


def attribute_visitors(events: list[RawEvent]) -> dict[str, str]:
    """event id → the visitor id it is counted under (yesterday's while a session is open)."""
    owner: dict[str, str] = {}
    last_seen: dict[tuple[str, str], int] = {}
    for event in sorted(events, key=lambda e: (e.ts, e.event_id)):
        visitor = event.visitor_id
        previous = (event.site, event.previous_visitor_id or "")
        if (
            event.previous_visitor_id
            and previous in last_seen
            and event.ts - last_seen[previous] <= GAP_MS
        ):
            visitor = event.previous_visitor_id
        owner[event.event_id] = visitor
        if not event.is_engagement:
            last_seen[(event.site, visitor)] = event.ts
    return owner


def sessions_of(events: list[RawEvent]) -> list[tuple[list[RawEvent], list[RawEvent]]]:
    """One visitor's sessions: (counted events, engagement events), each sorted."""
    counted = sorted((e for e in events if not e.is_engagement), key=lambda e: (e.ts, e.event_id))
    engagement = sorted((e for e in events if e.is_engagement), key=lambda e: (e.ts, e.event_id))
    groups: list[list[RawEvent]] = []
    for event in counted:
        if groups and event.ts - groups[-1][-1].ts <= GAP_MS:
            groups[-1].append(event)
        else:
            groups.append([event])
    return [
        (group, [e for e in engagement if group[0].ts <= e.ts <= group[-1].ts + GAP_MS])
        for group in groups
    ]


def compute(events: Iterable[RawEvent], admitted: KeyLists | None = None) -> Counters:
    """Every counter; with `admitted`, prop keys outside a day's or month's list (none, for a
    bucket without one) count under "(other)"."""
    events = list({e.event_id: e for e in events}.values())  # each accepted event once
    counters: Counters = defaultdict(lambda: defaultdict(int))
    uniques: dict[Cell, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    owner = attribute_visitors(events)
    by_visitor: dict[tuple[str, str], list[RawEvent]] = defaultdict(list)
    for event in events:
        by_visitor[(event.site, owner[event.event_id])].append(event)

    for event in events:
        _event_counts(event, counters)
    _minute_counts(events, counters)
    for (site, visitor), visitor_events in by_visitor.items():
        _visitor_counts(site, visitor, visitor_events, counters, uniques)
    for cell, by_value in uniques.items():
        for value, visitors in by_value.items():
            counters[cell]["visitors" if cell[2] == TOTALS else f"visitors|{value}"] += len(
                visitors
            )
    if admitted is not None:
        counters = _bounded_keys(counters, admitted)
    return {
        cell: {a: v for a, v in attrs.items() if v}
        for cell, attrs in counters.items()
        if any(attrs.values())
    }


def _bounded_keys(counters: Counters, admitted: KeyLists) -> Counters:
    """Refused keys' cells added into `prop:(other)`, their events into `prop_keys|(other)`."""

    def refused(site: str, gran: Granularity, bucket: str, key: str) -> bool:
        return key != OTHER and key not in admitted.get((site, gran, bucket), ())

    out: Counters = defaultdict(lambda: defaultdict(int))
    for (site, gran, dim, bucket), attrs in counters.items():
        if dim.startswith("prop:") and refused(site, gran, bucket, dim.removeprefix("prop:")):
            dim = "prop:" + OTHER
        for name, count in attrs.items():
            if dim == "prop_keys" and refused(site, gran, bucket, name.partition("|")[2]):
                name = "events|" + OTHER
            out[(site, gran, dim, bucket)][name] += count
    return out


def admission_problems(events: Iterable[RawEvent], admitted: KeyLists, limit: int) -> list[str]:
    """What is wrong with the key lists, first come being any order: a list must hold only keys
    sent in its day or month, and refuse one only when full (`limit` keys) or when that key's
    text would pass the budget."""
    sent: dict[tuple[str, Granularity, str], set[str]] = defaultdict(set)
    for event in events:
        if not event.is_engagement:
            for gran in DIMENSIONAL:
                sent[(event.site, gran, bucket_label(gran, event.ts, event.tz))].update(
                    key for key in event.props if key != OTHER
                )
    problems = []
    for bucket in sorted(set(sent) | set(admitted), key=str):
        keys, kept = sent.get(bucket, set()), set(admitted.get(bucket, ()))
        size = sum(len(k.encode()) for k in kept)
        if kept - keys:
            problems.append(f"{bucket}: admitted keys never sent there: {sorted(kept - keys)}")
        if len(kept) > limit or size > KEY_BYTES:
            problems.append(f"{bucket}: {len(kept)} keys, {size} bytes admitted")
        for key in sorted(keys - kept):
            if len(kept) < limit and size + len(key.encode()) <= KEY_BYTES:
                problems.append(f"{bucket}: {key!r} refused while the list had room")
    return problems


def _event_counts(event: RawEvent, counters: Counters) -> None:
    """Counts that need no sessions."""
    if event.is_engagement:
        return
    site, tz = event.site, event.tz
    for gran in ALL:
        cell = counters[(site, gran, TOTALS, bucket_label(gran, event.ts, tz))]
        cell["events"] += 1
        cell["pageviews"] += int(event.is_pageview)
    if event.is_pageview:
        minute = bucket_label(Granularity.MINUTE, event.ts, tz)
        counters[(site, Granularity.MINUTE, TOTALS, minute)][f"pageviews|{event.page}"] += 1
    else:
        minute = bucket_label(Granularity.MINUTE, event.ts, tz)
        counters[(site, Granularity.MINUTE, TOTALS, minute)][f"events|{event.name}"] += 1
    for gran in DIMENSIONAL:
        bucket = bucket_label(gran, event.ts, tz)
        if event.is_pageview:
            counters[(site, gran, "page", bucket)][f"pageviews|{event.page}"] += 1
        else:
            counters[(site, gran, "name", bucket)][f"events|{event.name}"] += 1
        if event.hostname:
            hostname = counters[(site, gran, "hostname", bucket)]
            hostname[f"events|{event.hostname}"] += 1
            hostname[f"pageviews|{event.hostname}"] += int(event.is_pageview)
        for key, value in event.props.items():
            prop = counters[(site, gran, f"prop:{key}", bucket)]
            prop[f"events|{value}"] += 1
            prop[f"pageviews|{value}"] += int(event.is_pageview)
            counters[(site, gran, "prop_keys", bucket)][f"events|{key}"] += 1


Uniques = dict[Cell, dict[str, set[str]]]


def _minute_counts(events: list[RawEvent], counters: Counters) -> None:
    """Realtime's minutes: unique visitor ids, arrivals by source, current visitors."""
    seen: dict[Cell, set[str]] = defaultdict(set)
    arrived: dict[tuple[Cell, str], set[str]] = defaultdict(set)
    latest: dict[tuple[str, str], int] = {}
    for event in events:
        if event.is_engagement:
            continue
        cell = (event.site, Granularity.MINUTE, TOTALS, minute_label(event.ts))
        seen[cell].add(event.visitor_id)
        if event.is_pageview and not event.internal:
            arrived[(cell, event.source)].add(event.visitor_id)
        key = (event.site, event.visitor_id)
        latest[key] = max(latest.get(key, event.ts), event.ts)
    for cell, visitors in seen.items():
        counters[cell]["visitors"] += len(visitors)
    for (cell, source), visitors in arrived.items():
        counters[cell][f"arrivals|{source}"] += len(visitors)
    for (site, _), ts in latest.items():
        counters[(site, Granularity.MINUTE, TOTALS, minute_label(ts))]["current"] += 1


def _visitor_counts(
    site: str, visitor: str, events: list[RawEvent], counters: Counters, uniques: Uniques
) -> None:
    tz = min(events, key=lambda e: (e.ts, e.event_id)).tz
    for session, engagement in sessions_of(events):
        _session_counts(site, visitor, tz, session, engagement, counters, uniques)
    _scroll_depth(site, tz, events, counters)


def _scroll_depth(site: str, tz: str, events: list[RawEvent], counters: Counters) -> None:
    """Per page and bucket, the visitor's deepest scroll among its visits' engagement events."""
    deepest: dict[tuple[Granularity, str, str], int] = {}
    for _, engagement in sessions_of(events):
        for event in engagement:
            depth = max(0, min(event.scroll_depth or 0, 100))
            for gran in DIMENSIONAL:
                key = (gran, event.page, bucket_label(gran, event.ts, tz))
                deepest[key] = max(deepest.get(key, 0), depth)
    for (gran, page, bucket), depth in deepest.items():
        cell = counters[(site, gran, "page", bucket)]
        cell[f"sd_sum|{page}"] += depth
        cell[f"sd_n|{page}"] += 1


def _session_counts(
    site: str,
    visitor: str,
    tz: str,
    session: list[RawEvent],
    engagement: list[RawEvent],
    counters: Counters,
    uniques: Uniques,
) -> None:
    first = session[0]
    pageviews = [e for e in session if e.is_pageview]
    interactive = any(not e.is_pageview and e.interactive for e in session)
    bounce = int(len(pageviews) == 1 and not interactive)
    duration = session[-1].ts - first.ts
    values = [(d, getattr(first, d)) for d in SESSION_DIMS if getattr(first, d)]
    if pageviews:
        values += [("entry_page", pageviews[0].page), ("exit_page", pageviews[-1].page)]
    for gran in SESSIONS:
        cell = counters[(site, gran, TOTALS, bucket_label(gran, first.ts, tz))]
        cell["visits"] += 1
        cell["bounces"] += bounce
        cell["duration_ms"] += duration
    for gran in DIMENSIONAL:
        start = bucket_label(gran, first.ts, tz)
        for dim, value in values:
            cell = counters[(site, gran, dim, start)]
            cell[f"visits|{value}"] += 1
            cell[f"bounces|{value}"] += bounce
            cell[f"duration_ms|{value}"] += duration
            uniques[(site, gran, dim, start)][value].add(visitor)
    for event in session:
        _session_event_counts(site, visitor, tz, event, first, values, counters, uniques)
    _time_on_page(site, tz, session + engagement, counters)


def _session_event_counts(
    site: str,
    visitor: str,
    tz: str,
    event: RawEvent,
    first: RawEvent,
    values: list[tuple[str, str]],
    counters: Counters,
    uniques: Uniques,
) -> None:
    """One counted event of a session: uniques where it happens, pageviews by session values."""
    for gran in SESSIONS:
        uniques[(site, gran, TOTALS, bucket_label(gran, event.ts, tz))][""].add(visitor)
    for gran in DIMENSIONAL:
        bucket = bucket_label(gran, event.ts, tz)
        if event.hostname:
            uniques[(site, gran, "hostname", bucket)][event.hostname].add(visitor)
        for key, value in event.props.items():
            uniques[(site, gran, f"prop:{key}", bucket)][value].add(visitor)
        if not event.is_pageview:
            uniques[(site, gran, "name", bucket)][event.name].add(visitor)
            continue
        uniques[(site, gran, "page", bucket)][event.page].add(visitor)
        for dim, value in values:
            counters[(site, gran, dim, bucket)][f"pageviews|{value}"] += 1


def _time_on_page(site: str, tz: str, events: list[RawEvent], counters: Counters) -> None:
    timeline = sorted(events, key=lambda e: (e.ts, e.event_id))
    for index, event in enumerate(timeline[:-1]):
        if not event.is_pageview:
            continue
        for gran in DIMENSIONAL:
            cell = counters[(site, gran, "page", bucket_label(gran, event.ts, tz))]
            cell[f"top_ms|{event.page}"] += timeline[index + 1].ts - event.ts
            cell[f"top_n|{event.page}"] += 1
