"""Hot keys: how many events a second one site can send before a partition of the aggregates
table passes DynamoDB's per-partition limits (1,000 write units/s, 3,000 read units/s).

The real aggregator (both tiers, aggregator/processor.py, minutes.py, store.py) runs under moto
on one busy minute of a blog (EVENTS pageviews, ~3.3 a visit) delivered as a saturated event
source mapping delivers it: realtime batches of 100, rollup batches of 1,000. A meter at moto's
backend counts units as DynamoDB bills them (local/meter.py's rules: item size, doubled in a
transaction) per partition key. Units per event of each site-wide partition then give the rate
at which it reaches its limit: 1,000 / WCU per event, 3,000 / RCU per event. Per-visitor (visitor
states) and per-event (raw events) partitions grow with visitors, not with a site's rate.

A realtime refresh reads the last 30 minutes of minute items; its read units per viewer are
scaled from this minute's items (a dashboard refreshes every 5 s).

Left out: contention (several stream shards writing one minute part at once, retried on its
version), adaptive capacity (DynamoDB may split a hot partition whose keys it can split; these
share one partition key, so it cannot), the raw events table (one PutItem per event, keys spread
by event id), and reads by stats queries other than realtime.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
from datetime import UTC, datetime
from typing import Any

from local.meter import CapacityMeter

EVENTS = int(os.environ.get("BENCH_HOTKEY_EVENTS", "16000"))  # in one minute: parts fill twice
WRITE_LIMIT, READ_LIMIT = 1000.0, 3000.0
REFRESH_SECONDS, REALTIME_MINUTES = 5.0, 30
SITE = "blog.example"

_partition = threading.local()


def _pk_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    for value in (
        *args[:1],
        *(kwargs.get(k) for k in ("item_attrs", "key", "keys", "hash_key_dict")),
    ):
        if isinstance(value, dict):
            if "pk" in value:
                return str(value["pk"].get("S", value["pk"]))
            if "S" in value:
                return str(value["S"])
    return "?"


class PartitionMeter(CapacityMeter):
    """The capacity meter's units, kept per partition: usage keys are `<table>|<pk>`."""

    def install(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        super().install()
        for name in ("put_item", "update_item", "delete_item", "get_item", "query"):
            self._wrap(DynamoDBBackend, name, self._naming)

    def _naming(self, original: Any) -> Any:
        def call(backend: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            outer = getattr(_partition, "pk", None)
            if outer is None:  # the meter's own reads of an item's old size keep the caller's
                _partition.pk = _pk_of(args, kwargs)
            try:
                return original(backend, table_name, *args, **kwargs)
            finally:
                _partition.pk = outer

        return call

    def _write(self, table: str, units: float) -> None:
        super()._write(f"{table}|{getattr(_partition, 'pk', '?')}", units)

    def _read(self, table: str, units: float, items: int) -> None:
        super()._read(f"{table}|{getattr(_partition, 'pk', '?')}", units, items)


def partition_class(pk: str) -> str:
    """A partition key with the site and any visitor or event id named, not spelled."""
    pk = pk.replace(SITE, "<site>")
    if pk.startswith("V"):
        return re.sub(r"#<site>#.*$", "#<site>#<visitor>", pk)
    if pk.startswith("EV#"):
        return "EV#<site>#<visitor>"
    return pk


def _ts(event: Any) -> int:
    return int(event.ts)


def measure(events: int = EVENTS) -> dict[str, Any]:
    from bench.aggregation import blog_events
    from core.schema import load_schema
    from local.stack import MotoServer
    from tests.integration.pipeline import fresh_pipeline
    from tests.integration.test_flood import stream_record

    tiers = load_schema().tiers
    start = datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
    # A visit's later pageviews come 20-120 s on, mostly past the minute: ask for 3x the rate
    traffic = sorted(blog_events(random.Random(5), start, 59, 3 * events / 59, "hot"), key=_ts)
    records = [stream_record(e, n + 1) for n, e in enumerate(traffic[:events])]
    moto = MotoServer()
    endpoint = moto.start()
    meter = PartitionMeter()
    meter.install()
    try:
        # the functions' JSON logs, as CloudWatch would take them
        with (
            open(os.devnull, "w") as sink,
            contextlib.redirect_stdout(sink),
            fresh_pipeline(endpoint, f"bench-hot-{os.getpid()}") as pipeline,
        ):
            pipeline.add_site(SITE)
            table = pipeline.names["aggregates"]
            usage: dict[str, Any] = {}
            for tier in ("realtime", "rollup"):
                size = tiers[tier].esm.batch_size
                meter.reset()
                for first in range(0, len(records), size):
                    result = pipeline.tier_fns[tier].invoke(
                        {"Records": records[first : first + size]}
                    )
                    assert result == {"batchItemFailures": []}, result
                usage[tier] = meter.reset()
            # A realtime refresh's read of this minute (eventually consistent Query, as the reader)
            from core import keys

            minute = keys.minute_label(int(start.timestamp() * 1000))
            low, high = keys.counter_range(minute, minute)
            meter.reset()
            from core.aws import query_between

            # one Query per key the minute's parts are spread over (decision 0018)
            pks = keys.minute_pks(SITE)
            parts = [p for pk in pks for p in query_between(pipeline.ddb, table, pk, low, high)]
            read_units = meter.reset().read_units
            by_key = [read_units.get(f"{table}|{pk}", 0.0) for pk in pks]
    finally:
        meter.uninstall()
        moto.stop()
    return {
        "events": len(records),
        "table": table,
        "usage": usage,
        "minute_parts": len(parts),
        "minute_read_units": sum(by_key),
        "minute_read_units_hottest_key": max(by_key),
    }


def limits(measured: dict[str, Any]) -> list[dict[str, Any]]:
    """Per site-wide partition: units per event and the events/s at which it hits a limit."""
    events, table = measured["events"], measured["table"]
    per: dict[str, dict[str, float]] = {}
    for tier, usage in measured["usage"].items():
        for kind, units in (("wcu", usage.write_units), ("rcu", usage.read_units)):
            for key, value in units.items():
                name, _, pk = key.partition("|")
                if name != table:
                    continue
                cls = partition_class(pk)
                entry = per.setdefault(cls, {"wcu": 0.0, "rcu": 0.0, "keys": 0.0})
                entry[kind] += value / events
                entry.setdefault(f"tier:{tier}", 1.0)
    out = []
    for cls, entry in per.items():
        if "<visitor>" in cls or "<event>" in cls:
            continue  # spread by visitor or event: a site's rate does not heat one key
        write_rate = WRITE_LIMIT / entry["wcu"] if entry["wcu"] else float("inf")
        read_rate = READ_LIMIT / entry["rcu"] if entry["rcu"] else float("inf")
        out.append(
            {
                "partition": cls,
                "wcu_per_event": entry["wcu"],
                "rcu_per_event": entry["rcu"],
                "max_rate": min(write_rate, read_rate),
                "gives": "writes" if write_rate <= read_rate else "reads",
                "tiers": sorted(k[5:] for k in entry if k.startswith("tier:")),
            }
        )
    return sorted(out, key=lambda e: e["max_rate"])


def rows(events: int = EVENTS) -> list[dict[str, Any]]:
    measured = measure(events)
    ranked = limits(measured)
    first = ranked[0]
    # One viewer's realtime refresh reads 30 minutes of minute items; at rate r they hold r/rate0
    # times this minute's bytes (rate0: this minute's events a second).
    rate0 = measured["events"] / 60
    # (per partition key: a refresh's Queries of the keys the parts are spread over, 0018)
    refresh_per_event_rate = REALTIME_MINUTES * measured["minute_read_units_hottest_key"] / rate0
    viewer_rate = READ_LIMIT * REFRESH_SECONDS / refresh_per_event_rate
    note = (
        f"first to give way: {first['partition']} ({first['gives']}, "
        f"{first['wcu_per_event']:.3f} WCU + {first['rcu_per_event']:.3f} RCU per event, "
        f"{'/'.join(first['tiers'])} tier); real aggregator under moto, {measured['events']:,} "
        "events in one minute, saturated batches; leaves out contention between shards"
    )
    out = [
        {
            "figure": "hot keys: events/s one site takes before a partition passes 1,000 WCU/s or 3,000 RCU/s",
            "value": round(first["max_rate"]),
            "unit": "events/s",
            "goal": "≥ 10,000",
            "anchor": note,
        }
    ]
    for entry in ranked[:6]:
        out.append(
            {
                "figure": f"  … {entry['partition']}: events/s at its limit ({entry['gives']})",
                "value": round(entry["max_rate"]) if entry["max_rate"] != float("inf") else 0,
                "unit": "events/s",
                "goal": "",
                "anchor": f"{entry['wcu_per_event']:.3f} WCU, {entry['rcu_per_event']:.3f} RCU per event",
            }
        )
    out.append(
        {
            "figure": "  … events/s before one viewer's realtime refresh (every 5 s) passes 3,000 RCU/s",
            "value": round(viewer_rate),
            "unit": "events/s",
            "goal": "",
            "anchor": (
                f"a refresh reads 30 minutes of minute parts: {measured['minute_parts']} parts, "
                f"{measured['minute_read_units']:g} RCU for this minute at {rate0:.0f} events/s, "
                f"{measured['minute_read_units_hottest_key']:g} of them on its busiest key"
            ),
        }
    )
    return out


if __name__ == "__main__":
    import json

    measured = measure()
    print(json.dumps(limits(measured), indent=1, default=str))
    print({k: v for k, v in measured.items() if k != "usage"})
