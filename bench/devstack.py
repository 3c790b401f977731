"""`liveinsight dev` in a subprocess, and a paced load generator that talks to it over loopback.

The stack runs in its own process, as a user runs it, so the generator's threads do not share its
interpreter. Every request goes to 127.0.0.1 only; every loop is bounded in count and time.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DevProcess:
    """`liveinsight dev` on a free port, with its data in `data_dir`."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = data_dir / "console.txt"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "local.cli", "--data-dir", str(data_dir), "dev"),
                *("--port", str(self.port), *args),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self.output.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while not self.healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"liveinsight dev did not start:\n{self.output.read_text()}")
            time.sleep(0.25)
        self.state = json.loads((data_dir / "stack.json").read_text())

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=1):
                return True
        except OSError:
            return False

    def add_site(self, domain: str) -> str:
        """A site in the running stack (through its moto endpoint), and a read key for it."""
        from core.aws import make_client
        from core.sites import SiteStore
        from local.stack import aws_environment

        os.environ.update(aws_environment(self.state["aws_endpoint"]))
        sites = SiteStore(make_client("dynamodb"), os.environ["LIVEINSIGHT_META_TABLE"])
        sites.add(domain)
        return sites.create_key(domain)

    def pageviews(self, site: str, key: str) -> int:
        request = urllib.request.Request(
            f"{self.url}/api/realtime?site_id={site}", headers={"authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(json.loads(response.read())["pageviews"])

    def terminate(self, timeout: float = 120) -> tuple[float, int]:
        """SIGTERM; seconds until it exited, and its exit code (-9: killed after `timeout`)."""
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = -9
        return time.perf_counter() - started, code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class LoadResult:
    sent: int = 0
    accepted: int = 0
    statuses: dict[int, int] = field(default_factory=dict)  # non-202 answers
    errors: int = 0  # connection failures and timeouts
    seconds: float = 0.0  # the run's planned length
    last_sent: float = 0.0  # seconds from the start to the last request's send

    @property
    def rate(self) -> float:
        """Events sent per second, over the planned length or as long as sending took."""
        span = max(self.seconds, self.last_sent)
        return self.sent / span if span else 0.0


def paced_load(
    url: str, site: str, rate: float, seconds: float, threads: int = 64, seed: int = 1
) -> LoadResult:
    """Pageviews to `site` at `rate` a second for `seconds`: event i is due at start + i/rate
    (open loop), sent by the first free thread over its kept-alive connection. Bounded: at most
    rate x seconds events, and nothing is sent after the end."""
    total = int(rate * seconds)
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(total))
    host, port = url.removeprefix("http://").split(":")
    start = time.monotonic() + 0.2
    end = start + seconds

    def sender(n: int) -> None:
        rnd = random.Random(seed * 1000 + n)
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            due = start + i / rate
            if due > end:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            with lock:
                result.last_sent = max(result.last_sent, time.monotonic() - start)
            body = json.dumps(
                {"n": "pageview", "u": f"https://{site}/p/{rnd.randrange(40)}", "d": site}
            )
            headers = {
                "content-type": "text/plain",
                "user-agent": UAS[i % len(UAS)],
                "x-forwarded-for": f"203.0.113.{rnd.randrange(250) + 1}",
            }
            status = 0
            try:
                connection.request("POST", "/api/event", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
            with lock:
                result.sent += 1
                if status == 202:
                    result.accepted += 1
                elif status:
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                else:
                    result.errors += 1
        connection.close()

    workers = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 60)
    result.seconds = seconds
    return result


class Probe:
    """Freshness under load: a probe pageview to a site of its own every `every` seconds, and a
    watcher that reads that site's realtime count; probe k is counted once the count reaches k
    (one stream, in order). Delays are seconds from POST to counted, to the watcher's 0.25 s."""

    def __init__(self, dev: DevProcess, site: str, key: str, every: float = 0.5) -> None:
        self.dev, self.site, self.key, self.every = dev, site, key, every
        self.sent_at: list[float] = []
        self.counted_at: list[float] = []
        self._base = dev.pageviews(site, key)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, daemon=True),
            threading.Thread(target=self._watch, daemon=True),
        ]

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._threads[0].join(10)
        deadline = time.monotonic() + 30  # the last probes: counted, or called lost
        while len(self.counted_at) < len(self.sent_at) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._done = True
        self._threads[1].join(10)

    def _send(self) -> None:
        while not self._stop.wait(self.every):
            request = urllib.request.Request(
                f"{self.dev.url}/api/event",
                data=json.dumps(
                    {"n": "pageview", "u": f"https://{self.site}/probe", "d": self.site}
                ).encode(),
                headers={"content-type": "text/plain", "user-agent": UAS[0]},
            )
            sent = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if response.status == 202:
                        self.sent_at.append(sent)
            except OSError:
                continue

    def _watch(self) -> None:
        self._done = False
        while not self._done:
            try:
                counted = self.dev.pageviews(self.site, self.key) - self._base
            except OSError:
                counted = len(self.counted_at)
            now = time.monotonic()
            while len(self.counted_at) < min(counted, len(self.sent_at)):
                self.counted_at.append(now)
            # 4 reads a second: each is a query invocation in the stack under test
            time.sleep(0.25)

    @property
    def delays(self) -> list[float]:
        return [c - s for s, c in zip(self.sent_at, self.counted_at, strict=False)]

    @property
    def lost(self) -> int:
        return len(self.sent_at) - len(self.counted_at)
