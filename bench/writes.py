"""Write units per pageview on the aggregates table, by tier and by kind of item (decision 0025).

`python -m bench.writes [rate ...]` (default 0.4 and 4 pageviews/s) runs the real aggregator
handler, both tiers, under moto on a small blog's traffic with the tracker's event mix (an
engagement event as each page is left, and outbound, download and custom events at the bill's
rates, bench/bill.py's `Shape`), delivered as Lambda delivers a table's stream on SHARDS shards:
a record goes to the shard its partition key hashes to (as local/poller.py does: the visitor,
decision 0040; `--by-event` prices the events table keyed by event id before), each shard batches on
its own window (realtime 1 s, rollup 300 s, core/schema.json) and has an instance of its own
(its own warm stores: full minute parts, pending folds, the slot turn). Time is simulated, so
two hours take minutes.

The capacity meter (local/meter.py) counts units as DynamoDB bills them, by kind of item
(`core.keys.item_kind`), with each write's billed size. The rollup tier runs for whole fold
cycles (an instance folds a bucket once it left `fold_at_slots` slots there, decision 0015),
the realtime tier for REALTIME_SECONDS of the same traffic (its cost per event does not change
with the length of the run).

Read units are counted by the kind of item asked for (found or not). Left out: the raw event's
own write (1 unit), contention between shards (the shards' batches run one after another here: no
conditional write fails).
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aggregator.store import FOLD_AT_SLOTS
from local.meter import CapacityMeter

SHARDS = 4
REALTIME_SECONDS = float(os.environ.get("BENCH_WRITES_REALTIME_SECONDS", "1200"))
ROLLUP_FOLD_CYCLES = int(os.environ.get("BENCH_WRITES_FOLD_CYCLES", "2"))
START = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
# A realtime instance's age at the run's first batch: warm, past the 16 minutes in which a new
# instance still reads the parts of decision 0018's legacy layout (aggregator/minutes.py). A new
# instance (a deploy, Lambda recycling one every few hours) reads them for its first 16 minutes.
INSTANCE_AGE_SECONDS = 3600.0


@dataclass
class TierWrites:
    pageviews: int
    events: int
    units: dict[str, float]  # kind of item → write units
    sizes: dict[str, list[int]]  # kind of item → billed size of each write, bytes
    reads: dict[str, float] = field(default_factory=dict)  # kind of item → read units

    def per_pageview(self, kind: str | None = None) -> float:
        return self._per_pageview(self.units, kind)

    def reads_per_pageview(self, kind: str | None = None) -> float:
        return self._per_pageview(self.reads, kind)

    def _per_pageview(self, by_kind: dict[str, float], kind: str | None) -> float:
        """Units a pageview: of one kind of item, or of all (kind None)."""
        total = sum(by_kind.values()) if kind is None else by_kind.get(kind, 0.0)
        return total / max(1, self.pageviews)


def tracker_mix(rate: float, seconds: float, seed: int) -> list[Any]:
    """Raw events of a small blog at `rate` pageviews/s (bench.aggregation.blog_events: visits of
    1-7 pageviews, 400 pages, 40 referrers) with what the tracker sends beside each pageview: an
    engagement event when the page is left (before the next pageview, or 5-60 s after the last),
    and outbound, download and custom events at the bill's rates while on the page."""
    from bench.aggregation import blog_events
    from bench.bill import Shape

    shape = Shape()
    rnd = random.Random(seed)
    pageviews = blog_events(rnd, START, seconds, rate, f"w{seed}x")
    by_visitor: dict[str, list[Any]] = defaultdict(list)
    for event in pageviews:
        by_visitor[event.visitor_id].append(event)
    # What a click or an engagement keeps of its pageview: the page, the visitor's attributes
    on_page = {"referrer": "", "source": "Direct / None", "internal": True, "utm_source": ""}
    on_page |= {"utm_medium": "", "utm_campaign": ""}
    clicks = (
        (shape.outbound_per_pageview, "Outbound Link: Click", "url", "https://elsewhere.example/x"),
        (shape.download_per_pageview, "File Download", "url", "https://blog.example/f.pdf"),
        (shape.custom_per_pageview, "Signup", "plan", "pro"),
    )
    events = list(pageviews)
    for visits in by_visitor.values():
        for n, pageview in enumerate(visits):
            if n + 1 < len(visits):
                left = visits[n + 1].ts - 200
            else:
                left = pageview.ts + rnd.randint(5_000, 60_000)
            for k, (chance, name, prop, value) in enumerate(clicks):
                if rnd.random() < chance:
                    events.append(
                        replace(
                            pageview,
                            event_id=f"{pageview.event_id}-c{k}",
                            ts=pageview.ts + (left - pageview.ts) // 2,
                            name=name,
                            props={prop: value},
                            **on_page,
                        )
                    )
            if rnd.random() < shape.engagement_per_pageview:
                events.append(
                    replace(
                        pageview,
                        event_id=f"{pageview.event_id}-e",
                        ts=left,
                        name="engagement",
                        scroll_depth=rnd.randrange(101),
                        engaged_ms=max(0, left - pageview.ts),
                        **on_page,
                    )
                )
    end = (START + timedelta(seconds=seconds)).timestamp() * 1000
    return sorted((e for e in events if e.ts < end), key=lambda e: (e.ts, e.event_id))


def shard_of(event: Any, shards: int, by_event: bool = False) -> int:
    """The emulated stream shard of a raw event, as local/poller.py hashes its partition key: the
    visitor's (decision 0040), so a visitor's events share one. `by_event`: the key before 0040,
    the event's own, which spread a visitor's events over the shards (a what-if now)."""
    from core import keys
    from core.schema import load_schema
    from local.poller import partition_shard

    partition = (
        keys.legacy_event_pk(event.site, event.event_id)
        if by_event
        else keys.event_pk(event.site, event.visitor_id)
    )
    hash_key = load_schema().tables["events"].hash_key
    return partition_shard(hash_key, {"S": partition}, shards)


def batches(
    events: list[Any],
    records: list[dict[str, Any]],
    shards: int,
    window: float,
    size: int,
    by_event: bool = False,
) -> list[tuple[int, int, list[dict[str, Any]]]]:
    """(close time ms, shard, records) of every batch an event source mapping with this window
    and batch size delivers, in the order they close: a shard's batch opens with its first record
    and closes `window` seconds later or when it holds `size` records."""
    out: list[tuple[int, int, list[dict[str, Any]]]] = []
    open_: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    for event, record in zip(events, records, strict=True):
        shard = shard_of(event, shards, by_event)
        if shard in open_ and event.ts >= open_[shard][0]:
            out.append((open_[shard][0], shard, open_.pop(shard)[1]))
        opened = open_.setdefault(shard, (event.ts + int(window * 1000), []))
        opened[1].append(record)
        if len(opened[1]) >= size:
            out.append((event.ts, shard, open_.pop(shard)[1]))
    out += [(close, shard, recs) for shard, (close, recs) in open_.items()]
    return sorted(out, key=lambda b: (b[0], b[1]))


@contextlib.contextmanager
def instances_per_shard() -> Iterator[dict[str, Any]]:
    """Each shard's batches go to an instance of their own, with its own warm stores, as Lambda
    gives each shard: set `current["shard"]`, and the run's time `current["now"]` (epoch
    seconds), before an invocation."""
    import aggregator.handler as handler

    current: dict[str, Any] = {"shard": 0, "now": START.timestamp()}
    originals = handler.get_store, handler.get_minute_store
    stores: dict[tuple[int, str], Any] = {}
    minute_stores: dict[int, Any] = {}

    def get_store(tier: str = "") -> Any:
        key = (current["shard"], tier)
        if key not in stores:
            stores[key] = originals[0].__wrapped__(tier)
        return stores[key]

    def get_minute_store() -> Any:
        if current["shard"] not in minute_stores:
            # On the run's clock, started INSTANCE_AGE_SECONDS before its first batch
            now = current["now"]
            current["now"] = now - INSTANCE_AGE_SECONDS
            minute_stores[current["shard"]] = handler.new_minute_store(lambda: current["now"])
            current["now"] = now
        return minute_stores[current["shard"]]

    handler.get_store, handler.get_minute_store = get_store, get_minute_store  # type: ignore[assignment]
    try:
        yield current
    finally:
        handler.get_store, handler.get_minute_store = originals  # type: ignore[assignment]


@dataclass(frozen=True)
class Variant:
    """What the run delivers: the default is the tracker's mix on SHARDS shards by visitor."""

    shards: int = SHARDS
    by_event: bool = False  # what-if: events keyed by their id (before 0040), spread over shards
    engagement: bool = True  # False: the mix without engagement events

    def __str__(self) -> str:
        return ", ".join(
            [f"{self.shards} shard{'s' if self.shards > 1 else ''}"]
            + (["events spread by their own key (before 0040)"] if self.by_event else [])
            + ([] if self.engagement else ["no engagement events"])
        )


def measure(
    rate: float,
    endpoint: str,
    variant: Variant = Variant(),
    fold_cycles: int | None = None,
) -> dict[str, TierWrites]:
    from core.keys import item_kind
    from core.schema import load_schema
    from tests.integration.pipeline import fresh_pipeline
    from tests.integration.test_flood import stream_record

    tiers = load_schema().tiers
    rollup, realtime = tiers["rollup"].esm, tiers["realtime"].esm
    cycles = ROLLUP_FOLD_CYCLES if fold_cycles is None else fold_cycles
    seconds = cycles * FOLD_AT_SLOTS * rollup.maximum_batching_window_in_seconds
    events = tracker_mix(rate, seconds, seed=int(rate * 10) + 1)
    if not variant.engagement:
        events = [e for e in events if not e.is_engagement]
    records = [stream_record(e, n + 1) for n, e in enumerate(events)]
    meter = CapacityMeter(kind_of=item_kind)
    meter.install()
    out: dict[str, TierWrites] = {}
    try:
        with (
            fresh_pipeline(endpoint, f"bench-writes-{rate:g}-{os.getpid()}") as pipeline,
            instances_per_shard() as current,
        ):
            pipeline.add_site("blog.example")
            table = pipeline.names["aggregates"]
            for tier, esm, until in (
                ("realtime", realtime, START.timestamp() * 1000 + REALTIME_SECONDS * 1000),
                ("rollup", rollup, float("inf")),
            ):
                metered = [(e, r) for e, r in zip(events, records, strict=True) if e.ts < until]
                chosen = [e for e, _ in metered]
                meter.reset()
                for close, shard, batch in batches(
                    chosen,
                    [r for _, r in metered],
                    variant.shards,
                    esm.maximum_batching_window_in_seconds,
                    esm.batch_size,
                    variant.by_event,
                ):
                    current["shard"], current["now"] = shard, close / 1000
                    result = pipeline.tier_fns[tier].invoke({"Records": batch})
                    assert result == {"batchItemFailures": []}, result
                usage = meter.reset()
                out[tier] = TierWrites(
                    pageviews=sum(1 for e in chosen if e.is_pageview),
                    events=len(chosen),
                    units={k: u for (t, k), u in usage.kind_units.items() if t == table},
                    sizes={k: s for (t, k), s in usage.kind_sizes.items() if t == table},
                    reads={k: u for (t, k), u in usage.kind_read_units.items() if t == table},
                )
    finally:
        meter.uninstall()
    return out


def table(rate: float, measured: dict[str, TierWrites], variant: Variant = Variant()) -> str:
    lines = [
        f"### {rate:g} pageviews/s, {variant}",
        "",
        "| tier | item | WCU / pageview | writes / pageview | billed size, median / p90 (bytes) "
        "| RRU / pageview |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    total = read_total = 0.0
    for tier, writes in measured.items():
        kinds = set(writes.units) | set(writes.reads)
        for kind in sorted(kinds, key=lambda k: (-writes.units.get(k, 0.0), k)):
            sizes = sorted(writes.sizes.get(kind, []))
            size = (
                f"{statistics.median(sizes):,.0f} / {sizes[int(0.9 * (len(sizes) - 1))]:,}"
                if sizes
                else "-"
            )
            lines.append(
                f"| {tier} | {kind} | {writes.per_pageview(kind):.2f} | "
                f"{len(sizes) / writes.pageviews:.2f} | {size} | "
                f"{writes.reads_per_pageview(kind):.2f} |"
            )
        lines.append(
            f"| {tier} | **all** ({writes.pageviews:,} pageviews, {writes.events:,} events) | "
            f"**{writes.per_pageview():.2f}** | | | **{writes.reads_per_pageview():.2f}** |"
        )
        total += writes.per_pageview()
        read_total += writes.reads_per_pageview()
    lines.append(f"| both | **aggregates table** | **{total:.2f}** | | | **{read_total:.2f}** |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """`python -m bench.writes [--shards N] [--by-event] [--no-engagement] [rate ...]`"""
    from local.stack import MotoServer

    args = list(argv)
    shards = int(args.pop(args.index("--shards") + 1)) if "--shards" in args else SHARDS
    variant = Variant(shards, "--by-event" in args, "--no-engagement" not in args)
    rates = [float(a) for a in args if not a.startswith("--")] or [0.4, 4.0]
    moto = MotoServer()
    endpoint = moto.start()
    # The functions' JSON lines (every event's, at DEBUG) are not what this measures.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        try:
            for rate in rates:
                measured = measure(rate, endpoint, variant)
                print(table(rate, measured, variant), end="\n\n", file=sys.__stdout__)
                sys.__stdout__.flush()
        finally:
            moto.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
