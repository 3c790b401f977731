"""Visits written at compaction (archive/visits.py, decision 0032): the archive engine's visits
path gives the events path's answers and the stats oracle's, on the stats-world traffic and on
seeded random traffic with visits over midnight in Berlin (a DST change day among them), copies
of events in two objects, compaction run twice or day by day in any order; a range with a day
not compacted is answered from events; retention deletes the visits objects too."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from archive import layout
from archive.compact import compact_all, compact_day
from archive.store import ArchiveStore
from core.aws import make_client
from core.events import RawEvent
from core.sites import Site
from query_api import parse
from query_api.archive_engine import ArchiveEngine
from query_api.metrics import Number, compute
from tests.faults import stored_events
from tests.integration.stats_world import FIRST, LAST, SITE, TZ, World
from tests.stats_oracle import Cond, MultiOracle

# Questions whose shape the visits files answer: session filters, no breakdown, a session
# property or the page, visit and page metrics.
METRICS = "visitors,visits,pageviews,events,bounce_rate,visit_duration,views_per_visit"
QUESTIONS: list[tuple[str, str | None]] = [
    ("", None),
    ("visit:source==Google", None),
    ("visit:source==Google;visit:country==US", "event:page"),
    ("visit:source==Google;visit:browser==Chrome|Firefox", None),
    ("visit:source!=Google", "event:page"),
    ("visit:country!=DE;visit:device==Desktop", "visit:entry_page"),
    ("visit:entry_page==/blog*", "visit:source"),
    ("visit:exit_page!=/", "visit:country"),
    ("", "visit:exit_page"),
    ("", "event:page"),
    ("visit:utm_source==news", "visit:browser"),
]


def page_metrics(prop: str | None) -> str:
    # a page breakdown: Plausible's metrics of a page (visits and duration of entering visits)
    return "visitors,pageviews,bounce_rate,visits,visit_duration" if prop else METRICS


def answers(engine: ArchiveEngine, site: Site, first: date, last: date) -> dict[str, object]:
    """Every question's answer (totals, a day series, breakdowns), and whether visits gave it."""
    out: dict[str, object] = {}
    used = []
    for filters, prop in QUESTIONS:
        metrics = page_metrics(prop)
        query = make_query(site, filters, metrics, first, last)
        if prop is None:
            out[f"{filters}"] = engine.aggregate(query)
            used.append(engine.answered_by_visits)
            out[f"{filters} by day"] = engine.timeseries(query, "day")
        else:
            parsed = parse.parse_property(prop)
            out[f"{filters} by {prop}"] = engine.breakdown(query, parsed, limit=1000)
        used.append(engine.answered_by_visits)
    out["visits path"] = all(used)
    return out


def make_query(site: Site, filters: str, metrics: str, first: date, last: date) -> parse.Query:
    parsed = parse.parse_filters(filters)
    prop_metrics = tuple(metrics.split(","))
    return parse.Query(site, parse.DateRange(first, last), parsed, prop_metrics)


def expect(cell: dict[str, int], metrics: str) -> dict[str, Number]:
    return {m: compute(m, cell) for m in metrics.split(",")}


def conds(filters: str) -> tuple[Cond, ...]:
    return tuple(Cond(f.prop.name, f.values, f.negated) for f in parse.parse_filters(filters))


def oracle_mismatches(
    engine: ArchiveEngine, oracle: MultiOracle, site: Site, first: date, last: date
) -> list[str]:
    problems = []
    for filters, prop in QUESTIONS:
        metrics = page_metrics(prop).replace(",views_per_visit", "")
        query = make_query(site, filters, metrics, first, last)
        if prop is None:
            got: object = {m: v["value"] for m, v in engine.aggregate(query).items()}
            want: object = expect(oracle.answer(first, last, conds(filters)).get("", {}), metrics)
        else:
            parsed = parse.parse_property(prop)
            rows, _ = engine.breakdown(query, parsed, limit=1000)
            got = {r[parsed.key]: {m: r[m] for m in metrics.split(",")} for r in rows}
            want = {
                v: expect(c, metrics)
                for v, c in oracle.answer(first, last, conds(filters), prop).items()
            }
        if not engine.answered_by_visits:
            problems.append(f"{filters} by {prop}: not answered from visits")
        if got != want:
            problems.append(f"{filters} by {prop}: visits {got}, oracle {want}")
    return problems


@pytest.fixture()
def store(aws_env: dict[str, str], tmp_path: Path) -> ArchiveStore:
    from core import settings

    bucket = settings.load(settings.AggregatorSettings).archive_bucket
    return ArchiveStore(make_client("s3"), bucket, tmp_path / "cache")


def write_bisected(store: ArchiveStore, events: list[RawEvent], seed: int) -> None:
    """As the rollup tier under bisects: each batch's halves, then the batch (copies of every
    event in two objects)."""
    rnd = random.Random(seed)
    ordered = sorted(events, key=lambda e: (e.ts, e.event_id))
    position = 0
    while position < len(ordered):
        size = rnd.randint(5, 60)
        batch = ordered[position : position + size]
        position += size
        store.write_batch(batch[: len(batch) // 2])
        store.write_batch(batch[len(batch) // 2 :])
        store.write_batch(batch)


# ---- the stats world -----------------------------------------------------------------------------


def test_visits_path_equals_the_oracle_and_the_events_path_on_the_stats_world(
    world: World, store: ArchiveStore
) -> None:
    events = stored_events(world.pipeline.ddb, world.pipeline.names)
    write_bisected(store, events, seed=1)
    compact_all(store, {SITE: (120, TZ)}, datetime(2026, 11, 20, tzinfo=UTC))
    first, last = (FIRST - timedelta(days=1)).isoformat(), (LAST + timedelta(days=1)).isoformat()
    files = store.local_files(SITE, first, last)
    site = Site(SITE, tz=TZ)
    by_visits = ArchiveEngine(site, files)
    assert oracle_mismatches(by_visits, MultiOracle(events, TZ), site, FIRST, LAST) == []
    got = answers(ArchiveEngine(site, files), site, FIRST, LAST)
    want = answers(ArchiveEngine(site, files, visits=False), site, FIRST, LAST)
    assert got.pop("visits path") is True
    assert want.pop("visits path") is False
    assert got == want


# ---- random traffic over midnight in Berlin, a DST day among the days ----------------------------

BERLIN = "Europe/Berlin"
R_SITE = "random.example"
R_FIRST, R_LAST = date(2026, 3, 27), date(2026, 3, 31)  # 2026-03-29: 02:00 -> 03:00


def random_traffic(seed: int) -> list[RawEvent]:
    """Visitors whose visits cluster around local midnight (many go on past it, some with gaps
    just under and just over 30 minutes), with pageviews, custom events (some not interactive)
    and engagement events."""
    rnd = random.Random(seed)
    zone = ZoneInfo(BERLIN)
    out: list[RawEvent] = []
    n = 0
    for day in range(-1, 7):
        midnight = datetime.combine(R_FIRST + timedelta(days=day), datetime.min.time(), zone)
        base = int(midnight.timestamp() * 1000)
        for _ in range(25):
            visitor = (
                f"{rnd.getrandbits(64):016x}" if rnd.random() < 0.8 else f"v-{rnd.randint(0, 40)}"
            )
            ts = base + rnd.randint(-90, 60) * 60_000
            values = {
                "source": rnd.choice(["Google", "Bing", "Direct / None", ""]),
                "country": rnd.choice(["US", "DE", "FR"]),
                "browser": rnd.choice(["Chrome", "Firefox", "Safari"]),
                "device": rnd.choice(["Desktop", "Mobile"]),
                "utm_source": rnd.choice(["", "news"]),
            }
            for _ in range(rnd.randint(1, 6)):
                n += 1
                kind = rnd.random()
                name = "pageview" if kind < 0.7 else ("engagement" if kind < 0.85 else "Signup")
                out.append(
                    RawEvent(
                        event_id=f"e{n:05d}",
                        site=R_SITE,
                        ts=ts,
                        name=name,
                        visitor_id=visitor,
                        tz=BERLIN,
                        page=rnd.choice(["/", "/blog", "/blog/a", "/pricing"]),
                        interactive=rnd.random() < 0.7,
                        scroll_depth=rnd.randint(0, 100) if name == "engagement" else None,
                        **values,
                    )
                )
                # mostly close together, sometimes around the 30-minute split
                ts += rnd.choice([20_000, 400_000, 1_799_000, 1_800_000, 1_801_000])
    return out


def random_answers(store: ArchiveStore, visits: bool = True) -> dict[str, object]:
    site = Site(R_SITE, tz=BERLIN)
    first = (R_FIRST - timedelta(days=1)).isoformat()
    last = (R_LAST + timedelta(days=1)).isoformat()
    engine = ArchiveEngine(site, store.local_files(R_SITE, first, last), visits=visits)
    return answers(engine, site, R_FIRST, R_LAST)


@pytest.mark.parametrize("seed", range(3))
def test_visits_over_midnight_and_a_dst_day_equal_the_events_path_and_the_oracle(
    store: ArchiveStore, seed: int
) -> None:
    events = random_traffic(seed)
    write_bisected(store, events, seed)
    now = datetime(2026, 4, 20, tzinfo=UTC)
    compact_all(store, {R_SITE: (120, BERLIN)}, now)
    got = random_answers(store)
    want = random_answers(store, visits=False)
    assert got.pop("visits path") is True
    want.pop("visits path")
    assert got == want
    site = Site(R_SITE, tz=BERLIN)
    first = (R_FIRST - timedelta(days=1)).isoformat()
    last = (R_LAST + timedelta(days=1)).isoformat()
    engine = ArchiveEngine(site, store.local_files(R_SITE, first, last))
    oracle = MultiOracle(events, BERLIN)
    assert oracle_mismatches(engine, oracle, site, R_FIRST, R_LAST) == []
    # and run again: nothing to do, the same objects and answers
    keys = sorted(e["Key"] for e in store.listing(layout.site_prefix(R_SITE)))
    report = compact_all(store, {R_SITE: (120, BERLIN)}, now)
    assert (report.days_compacted, report.visits_written, report.visits_deleted) == (0, 0, 0)
    assert sorted(e["Key"] for e in store.listing(layout.site_prefix(R_SITE))) == keys
    assert random_answers(store) == {**got, "visits path": True}


def after(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_days_not_compacted_are_computed_beside_the_visits_files(store: ArchiveStore) -> None:
    events = random_traffic(7)
    last_night = after(datetime(2026, 3, 31, 20, tzinfo=UTC))  # 22:00 in Berlin, R_LAST
    morning = after(datetime(2026, 4, 1, 3, tzinfo=UTC))
    today = [e for e in events if last_night <= e.ts < morning]
    events = [e for e in events if e.ts < morning]
    write_bisected(store, [e for e in events if e.ts < last_night], 7)
    compact_all(store, {R_SITE: (120, BERLIN)}, datetime(2026, 4, 20, tzinfo=UTC))
    # the last evening and the next day arrive as parts, not compacted yet (today), and a late
    # batch repeats events of a compacted day (copies in a part and in the compact object)
    for start in range(0, len(today), 10):  # a rollup window's batches
        store.write_batch(today[start : start + 10])
    store.write_batch([e for e in events if e.ts < last_night][-6:])
    assert any(not s for s in visit_sidecars(store))
    got = random_answers(store)
    assert got.pop("visits path") is True
    want = random_answers(store, visits=False)
    want.pop("visits path")
    assert got == want
    site = Site(R_SITE, tz=BERLIN)
    first = (R_FIRST - timedelta(days=1)).isoformat()
    last = (R_LAST + timedelta(days=1)).isoformat()
    engine = ArchiveEngine(site, store.local_files(R_SITE, first, last))
    assert oracle_mismatches(engine, MultiOracle(events, BERLIN), site, R_FIRST, R_LAST) == []


def test_a_range_mostly_not_compacted_is_answered_from_events(store: ArchiveStore) -> None:
    events = random_traffic(9)
    write_bisected(store, events, 9)
    # only the first two days compacted: most files have no visits
    for day in sorted({obj.key.day for obj in store.objects(R_SITE)})[:2]:
        compact_day(store, R_SITE, day)
    got = random_answers(store)
    assert got.pop("visits path") is False
    want = random_answers(store, visits=False)
    want.pop("visits path")
    assert got == want


def visit_sidecars(store: ArchiveStore) -> list[bool]:
    from archive.visits import sidecar_path

    first = (R_FIRST - timedelta(days=1)).isoformat()
    last = (R_LAST + timedelta(days=1)).isoformat()
    return [sidecar_path(f).exists() for f in store.local_files(R_SITE, first, last)]


def test_days_compacted_in_any_order_give_the_same_answers(store: ArchiveStore) -> None:
    events = random_traffic(11)
    write_bisected(store, events, 11)
    days = sorted({obj.key.day for obj in store.objects(R_SITE)}, reverse=True)
    for day in days:  # each day before the one it continues from
        compact_day(store, R_SITE, day)
    got = random_answers(store)
    assert got.pop("visits path") is True
    want = random_answers(store, visits=False)
    want.pop("visits path")
    assert got == want


def test_a_day_of_one_object_gets_its_visits_and_stale_ones_go(store: ArchiveStore) -> None:
    events = [
        e
        for e in random_traffic(3)
        if e.ts < int(datetime(2026, 3, 27, 12, tzinfo=UTC).timestamp() * 1000)
    ]
    store.write_batch(events)  # one part object a day: nothing to merge
    now = datetime(2026, 4, 20, tzinfo=UTC)
    report = compact_all(store, {R_SITE: (120, BERLIN)}, now)
    day_count = len({obj.key.day for obj in store.objects(R_SITE)})
    assert (report.days_compacted, report.visits_written) == (0, day_count)
    # a late part for one day: merged, and the visits of the part merged away deleted
    store.write_batch([e for e in random_traffic(4) if e.name == "pageview"][:2])
    compact_all(store, {R_SITE: (120, BERLIN)}, now)
    visits = store.visit_objects(R_SITE)
    objects = store.objects(R_SITE)
    assert sorted(parts.events_name for parts, _ in visits.values()) == sorted(
        obj.key.name for obj in objects
    )


def test_retention_deletes_the_visits_objects_of_expired_days(store: ArchiveStore) -> None:
    write_bisected(store, random_traffic(5), 5)
    compact_all(store, {R_SITE: (120, BERLIN)}, datetime(2026, 4, 20, tzinfo=UTC))
    assert store.visit_objects(R_SITE)
    # a month's retention, two months on: every day expired
    report = compact_all(store, {R_SITE: (1, BERLIN)}, datetime(2026, 6, 1, tzinfo=UTC))
    assert report.objects_expired > 0
    assert store.visit_objects(R_SITE) == {}
    assert list(store.listing(layout.site_prefix(R_SITE))) == []


def test_a_file_written_before_visitor_keys_gets_the_same_visits(tmp_path: Path) -> None:
    import duckdb

    from archive.parquet import write_events
    from archive.visits import write_visits

    with_key = tmp_path / "keyed.parquet"
    write_events(
        [e for e in random_traffic(2) if e.ts < after(datetime(2026, 3, 27, 12, tzinfo=UTC))],
        with_key,
    )
    without = tmp_path / "old.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT * EXCLUDE (visitor_key) FROM read_parquet('{with_key}')) TO '{without}'"
    )
    rows = []
    for source in (with_key, without):
        target = tmp_path / f"{source.stem}.visits.parquet"
        assert write_visits([source], "2026-03-27", target) > 0
        rows.append(con.execute(f"SELECT * FROM read_parquet('{target}') ORDER BY ALL").fetchall())
    assert rows[0] == rows[1]
