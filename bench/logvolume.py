"""CloudWatch Logs bytes per pageview, by kind of line (issue 20, decision 0021).

Pageviews, each followed by its engagement event (the tracker sends one when the page is left),
go through the real ingest handler one request per invocation, and their stream records through
both aggregator tiers batched as their event source mappings batch them at a small site's steady
rate: realtime 1-2 records a batch (a 1 s window at ~0.8 events/s), rollup `rollup_batch` records.
What the handlers print is captured as CloudWatch receives it (Powertools' JSON lines and EMF
blobs, all on stdout). Lambda's own platform lines and the API's access log lines are not printed
by our code: they are modelled, per invocation and per request, from what terraform/ configures,
as the bill reads it (bench/terraform_facts.py: the functions' effective log level, whether
Lambda writes platform lines, the access log's bytes if there is one; bench/bill.py: the lines).

CloudWatch also counts 26 bytes of overhead per log event against PutLogEvents' batch limit; the
figures here are the lines' own bytes.
"""

from __future__ import annotations

import io
import json
import logging
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TERRAFORM = Path(__file__).resolve().parent.parent / "terraform"
SERVICES = ("ingest", "aggregator", "query")
SITE = "logvolume.example"
PAGE = f"https://{SITE}/pricing"


@dataclass
class LogVolume:
    pageviews: int
    invocations: Counter[str] = field(default_factory=Counter)  # ingest, realtime, rollup
    bytes: Counter[str] = field(default_factory=Counter)  # by kind of line
    lines: Counter[str] = field(default_factory=Counter)
    levels: Counter[str] = field(default_factory=Counter)  # function lines' bytes by level

    def add(self, kind: str, line: str, level: str = "") -> None:
        self.add_sized(kind, len(line.encode()), level)

    def add_sized(self, kind: str, size: int, level: str = "") -> None:
        self.bytes[kind] += size
        self.lines[kind] += 1
        if level:
            self.levels[level] += size

    def per_pageview(self) -> dict[str, float]:
        return {kind: size / self.pageviews for kind, size in self.bytes.most_common()}

    def total_per_pageview(self) -> float:
        return sum(self.bytes.values()) / self.pageviews

    def table(self) -> str:
        rows = [
            f"{size / self.pageviews:8.1f} B/pv {self.lines[kind] / self.pageviews:6.3f} lines/pv  {kind}"
            for kind, size in self.bytes.most_common()
        ]
        rows.append(f"{self.total_per_pageview():8.1f} B/pv  total")
        return "\n".join(rows)


# ---- the run ----------------------------------------------------------------------------------


@contextmanager
def captured(level: str) -> Iterator[io.StringIO]:
    """Everything the functions print, in order: their loggers' lines and the EMF blobs."""
    from core.observability import logger

    stream = io.StringIO()
    saved: list[tuple[Any, logging.StreamHandler[Any], Any, int]] = []
    for service in SERVICES:
        powertools = logger(service)
        for handler in powertools._logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                saved.append(
                    (powertools, handler, handler.setStream(stream), powertools._logger.level)
                )
        powertools._logger.setLevel(level)
    try:
        with redirect_stdout(stream):
            yield stream
    finally:
        for powertools, handler, previous, previous_level in saved:
            handler.setStream(previous)
            powertools._logger.setLevel(previous_level)


@contextmanager
def _clocked(buffer: Any, clock: list[float]) -> Iterator[None]:
    if buffer is None:
        yield
        return
    saved, buffer.clock = buffer.clock, lambda: clock[0]
    buffer.flush()  # counts of earlier runs in this process are not this run's
    try:
        yield
    finally:
        buffer.clock = saved


def measure(
    pipeline: Any,
    pageviews: int = 200,
    *,
    rollup_batch: int | None = None,
    pageviews_per_second: float = 0.4,
    level: str | None = None,
    seed: int = 20,
    terraform: Path = TERRAFORM,
) -> LogVolume:
    """Bytes per pageview by kind of line, at `level` (default: the level Terraform gives ingest).

    Requests arrive at `pageviews_per_second` (two a pageview) on a simulated clock: ingest's
    metric buffer flushes by it (what it holds at the end is flushed too, as the next minute
    would)."""
    from bench import bill, terraform_facts
    from core import observability
    from core.schema import load_schema

    facts = terraform_facts.read(terraform)

    if rollup_batch is None:  # what the rollup tier's window gathers at this rate
        rollup = load_schema().tiers["rollup"].esm
        window = rollup.maximum_batching_window_in_seconds * 2 * pageviews_per_second
        rollup_batch = max(1, min(rollup.batch_size, round(window)))
    rnd = random.Random(seed)
    buffer = getattr(observability, "metric_buffer", None)
    ingest_metrics = buffer("ingest") if buffer else None
    clock = [0.0]
    pipeline.add_site(SITE)
    volume = LogVolume(pageviews)
    realtime, rollup = pipeline.tier_fns["realtime"], pipeline.tier_fns["rollup"]
    counts = {fn: fn.invocations for fn in (pipeline.ingest_fn, realtime, rollup)}
    pending: list[dict[str, Any]] = []
    level = level or facts.functions["ingest"].log_level
    with captured(level) as stream, _clocked(ingest_metrics, clock):
        for i in range(pageviews):
            ip = f"10.{i // 250 % 250}.{i % 250}.{rnd.randrange(1, 250)}"
            for body in (
                {"n": "pageview", "u": PAGE, "d": SITE},
                {"n": "engagement", "u": PAGE, "d": SITE, "sd": 64, "e": 11800},
            ):
                assert pipeline.send(body, ip=ip).status == 202
                clock[0] += 0.5 / pageviews_per_second
            records = pipeline.read_stream()
            while records:  # the realtime tier's 1 s window holds one or two records
                size = rnd.choice((1, 2))
                assert realtime.invoke({"Records": records[:size]}) == {"batchItemFailures": []}
                pending += records[:size]
                records = records[size:]
            while len(pending) >= rollup_batch or (pending and i == pageviews - 1):
                batch, pending = pending[:rollup_batch], pending[rollup_batch:]
                assert rollup.invoke({"Records": batch}) == {"batchItemFailures": []}
        if ingest_metrics is not None:
            ingest_metrics.flush()
    for fn, name in ((pipeline.ingest_fn, "ingest"), (realtime, "realtime"), (rollup, "rollup")):
        volume.invocations[name] = fn.invocations - counts[fn]
    _classify(volume, stream.getvalue())
    for name, calls in volume.invocations.items():
        platform = bill.platform_lines(facts, "ingest" if name == "ingest" else "aggregator")
        for _ in range(calls):
            for line in platform:
                volume.add(f"platform {name}", line)
    access = facts.route("/api/event").access_log_bytes
    for _ in range(volume.invocations["ingest"] if access else 0):
        volume.add_sized("API access log", access)
    return volume


def _classify(volume: LogVolume, text: str) -> None:
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            volume.add("plain text", line, "TEXT")
            continue
        if "_aws" in record:
            names = [m["Name"] for d in record["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
            volume.add(f"EMF {record.get('service', '?')} ({len(names)} metrics)", line)
            continue
        tier = f"/{record['tier']}" if record.get("tier") else ""
        level = record.get("level", "?")
        volume.add(f"{record.get('service')}{tier} {level} {record.get('message')!r}", line, level)


def metric_names(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The distinct custom metrics (name and dimension values) in captured EMF blobs."""
    found = set()
    for line in text.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                values = tuple((d, str(record[d])) for d in dimensions)
                for metric in directive["Metrics"]:
                    found.add((metric["Name"], values))
    return found


def main() -> None:  # `python -m bench.logvolume`
    from local.stack import MotoServer
    from tests.integration.pipeline import fresh_pipeline

    server = MotoServer()
    endpoint = server.start()
    try:
        with fresh_pipeline(endpoint, "logvolume") as pipeline:
            volume = measure(pipeline)
        print(volume.table())
    finally:
        server.stop()


if __name__ == "__main__":
    main()
