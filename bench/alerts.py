"""Spike-to-webhook latency on the local stack (issue 23, decision 0036): `python -m bench --only
alerts`.

Each spike is a new site with one spike rule (more than 2 current visitors) made before its first
event, so the realtime tier's rules cache (60 s) reads it on the site's first batch. Three
visitors are posted to the front; the clock runs from the POST of the third (the crossing) to a
capture server on 127.0.0.1 receiving the signed webhook: ingest → the events table's stream →
the realtime tier's batch (1 s window) → the alerts queue → the delivery function's mapping (long
polls) → the POST.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SPIKES = 8
THRESHOLD = 2
SECRET = "whsec_bench-alerts-0123456789"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
ANCHOR = "Plausible checks for spikes every 15 minutes, serverless-website-analytics hourly"
TIMEOUT_SECONDS = 60.0


class Capture:
    """Webhooks received: (perf_counter at arrival, body, signature valid)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any], bool]] = []
        self.arrived = threading.Condition()
        capture = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                from alerts.deliver import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

                at = time.perf_counter()
                body = self.rfile.read(int(self.headers["content-length"]))
                valid = verify(
                    SECRET,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    body,
                    self.headers.get(SIGNATURE_HEADER, ""),
                    time.time(),
                )
                with capture.arrived:
                    capture.received.append((at, json.loads(body), valid))
                    capture.arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, site: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                for at, body, _ in self.received:
                    if body["site"] == site:
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no webhook for {site} within {timeout:g} s")
                self.arrived.wait(left)


@contextlib.contextmanager
def _functions_log_to(path: Path) -> Iterator[None]:
    """The functions' log lines into `path` (stdout is the bench table's)."""
    from core.observability import logger

    with path.open("a") as sink:
        handlers = [
            h
            for service in ("ingest", "aggregator", "query", "alerts", "local-sqs-esm")
            for h in logger(service)._logger.handlers
            if isinstance(h, logging.StreamHandler)
        ]
        streams = [h.setStream(sink) for h in handlers]
        console, sys.stdout = sys.stdout, sink  # EMF blobs are print()ed
        try:
            yield
        finally:
            sys.stdout = console
            for handler, stream in zip(handlers, streams, strict=True):
                if stream is not None:
                    handler.setStream(stream)


def _post(url: str, site: str, ip: str) -> None:
    body = {"n": "pageview", "u": f"https://{site}/", "d": site}
    request = urllib.request.Request(
        url + "/api/event",
        data=json.dumps(body).encode(),
        headers={"content-type": "text/plain", "user-agent": UA, "x-forwarded-for": ip},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202, response.status


def spike_latencies(url: str, meta: str, capture: Capture, spikes: int) -> list[float]:
    from alerts.rules import RuleStore
    from core.aws import make_client
    from core.sites import SiteStore

    client = make_client("dynamodb")
    sites, rules = SiteStore(client, meta), RuleStore(client, meta)
    latencies = []
    for k in range(spikes + 1):  # the first warms the functions up and is not counted
        site = f"spike{k}.alerts.bench.example"
        sites.add(site)
        rules.add(site, "spike", THRESHOLD, capture.url, SECRET, cooldown_seconds=0)
        for i in range(THRESHOLD):
            _post(url, site, f"198.51.100.{i + 1}")
        started = time.perf_counter()
        _post(url, site, f"198.51.100.{THRESHOLD + 1}")  # the crossing
        arrived = capture.wait_for(site, TIMEOUT_SECONDS)
        if k:
            latencies.append(arrived - started)
    time.sleep(2)  # a second webhook for a spike would have come by now
    return latencies


def rows(spikes: int = SPIKES) -> list[dict[str, Any]]:
    from local.stack import LocalStack, StackConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    capture = Capture()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-alerts-") as tmp,
            _functions_log_to(Path(tmp) / "functions.log"),
        ):
            stack = LocalStack(StackConfig(port=port, data_dir=Path(tmp), persist=False))
            stack.start()
            try:
                latencies = spike_latencies(stack.url, stack.names["meta"], capture, spikes)
            finally:
                stack.stop()
    finally:
        capture.server.shutdown()
    received = capture.received
    per_spike = len(received) / (spikes + 1)
    valid = sum(1 for _, _, ok in received if ok) / max(1, len(received))
    figure = "spike-to-webhook latency {} (crossing POST → signed webhook on 127.0.0.1)"
    return [
        {
            "figure": figure.format("p50"),
            "value": round(statistics.median(latencies), 2),
            "unit": "s",
            "goal": "",
            "anchor": ANCHOR,
        },
        {
            "figure": figure.format("p95"),
            "value": round(_percentile(latencies, 0.95), 2),
            "unit": "s",
            "goal": "≤ 10",
            "anchor": f"{len(latencies)} spikes after a warm-up",
        },
        {
            "figure": "webhooks received per spike (no cool-down)",
            "value": round(per_spike, 2),
            "unit": "",
            "goal": "1",
            "anchor": "",
        },
        {
            "figure": "webhooks with a valid signature",
            "value": round(valid, 2),
            "unit": "share",
            "goal": "1",
            "anchor": "",
        },
    ]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
