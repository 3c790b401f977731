"""Demo traffic: realistic visits sent over HTTP to the local front, like real browsers would.

Visitors are told apart by a fake address in X-Forwarded-For (TEST-NET ranges, never contacted)
and a user agent. The generator stops by itself after `max_events` so a long `make dev` cannot
grow moto's in-memory stream without bound.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any

USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
PAGES = (
    "/",
    "/pricing",
    "/blog",
    "/blog/realtime-analytics",
    "/blog/privacy-by-design",
    "/docs",
    "/docs/install",
    "/about",
)
REFERRERS = (
    None,
    None,
    "https://www.google.com/",
    "https://news.ycombinator.com/",
    "https://duckduckgo.com/",
    "https://t.co/abc",
    "https://github.com/",
)
WIDTHS = (390, 414, 820, 1280, 1440, 1920)
# (country, CloudFront-Viewer-Country-Region, CloudFront-Viewer-City), as CloudFront sends them
LOCATIONS = (
    ("US", "CA", "San Francisco"),
    ("US", "NY", "New York"),
    ("DE", "BY", "Munich"),
    ("DE", "BE", "Berlin"),
    ("FR", "IDF", "Paris"),
    ("GB", "ENG", "London"),
    ("IN", "MH", "Mumbai"),
    ("BR", "SP", "Sao Paulo"),
    ("JP", "13", "Tokyo"),
    ("NL", "NH", "Amsterdam"),
)
# Landing page queries beside none: a newsletter, a Google ad (auto-tagged), a paid social post
CAMPAIGNS = (
    "?utm_source=newsletter&utm_medium=email",
    "?gclid=demo",
    "?utm_source=facebook&utm_medium=paid_social",
)


@dataclass
class _Visitor:
    ip: str
    user_agent: str
    width: int
    location: tuple[str, str, str]
    page: str
    views_left: int


class DemoTraffic:
    def __init__(
        self,
        base_url: str,
        domain: str,
        rate_per_second: float = 1.5,
        max_events: int = 20_000,
        seed: int | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/api/event"
        self._domain = domain
        self._rate = rate_per_second
        self._max_events = max_events
        self._random = random.Random(seed)
        self._visitors: list[_Visitor] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set() and self.sent < self._max_events:
            with contextlib.suppress(OSError):  # the front is shutting down
                self.step()
            self._stop.wait(self._random.expovariate(self._rate))

    def step(self) -> None:
        rnd = self._random
        if not self._visitors or rnd.random() < 0.3:
            visitor = _Visitor(
                ip=f"203.0.113.{rnd.randint(1, 254)}"
                if rnd.random() < 0.5
                else f"198.51.100.{rnd.randint(1, 254)}",
                user_agent=rnd.choice(USER_AGENTS),
                width=rnd.choice(WIDTHS),
                location=rnd.choice(LOCATIONS),
                page=rnd.choice(PAGES),
                views_left=rnd.choice((1, 1, 2, 3, 5)),
            )
            self._visitors.append(visitor)
            referrer = rnd.choice(REFERRERS)
            query = rnd.choice(CAMPAIGNS) if rnd.random() < 0.15 else ""
            self._send(visitor, "pageview", visitor.page + query, referrer)
        else:
            visitor = rnd.choice(self._visitors)
            if rnd.random() < 0.1:
                self._send(
                    visitor,
                    "Signup",
                    visitor.page,
                    None,
                    props={"plan": rnd.choice(("free", "pro"))},
                )
            else:
                visitor.page = rnd.choice(PAGES)
                self._send(visitor, "pageview", visitor.page, f"https://{self._domain}/")
            visitor.views_left -= 1
            if visitor.views_left <= 0:
                self._visitors.remove(visitor)

    def _send(
        self,
        visitor: _Visitor,
        name: str,
        path: str,
        referrer: str | None,
        props: dict[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "n": name,
            "u": f"https://{self._domain}{path}",
            "d": self._domain,
            "r": referrer,
            "w": visitor.width,
        }
        if props:
            body["p"] = props
        request = urllib.request.Request(
            self._url,
            data=json.dumps(body).encode(),
            headers={
                "content-type": "text/plain",
                "user-agent": visitor.user_agent,
                "x-forwarded-for": visitor.ip,
                "cloudfront-viewer-country": visitor.location[0],
                "cloudfront-viewer-country-region": visitor.location[1],
                "cloudfront-viewer-city": visitor.location[2],
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
        self.sent += 1
