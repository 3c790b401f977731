"""A browser-like client of the query handler: API Gateway v2 events in, cookies kept as a browser
keeps them (Set-Cookie → the next request's Cookie), and the sign-in's CSRF token remembered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from core.edge import ORIGIN_HEADER
from local.front import LOCAL_ORIGIN_SECRET, api_gateway_event
from tests.integration.pipeline import Pipeline

PASSWORD = "correct horse battery staple"
SECRET = "test-session-secret-" + "s" * 32
HOST = "127.0.0.1:8000"
ORIGIN = f"http://{HOST}"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Browser:
    pipeline: Pipeline
    ip: str = "198.51.100.7"
    host: str = HOST
    jar: dict[str, str] = field(default_factory=dict)
    csrf: str = ""

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        with_csrf: bool = True,
    ) -> Reply:
        sent = {
            "host": self.host,
            "cloudfront-viewer-address": f"{self.ip}:443",
            ORIGIN_HEADER: LOCAL_ORIGIN_SECRET,  # CloudFront's origin secret (decision 0016)
        }
        body = b""
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["content-type"] = "application/json"
        elif form is not None:
            body = urlencode(form).encode()
            sent["content-type"] = "application/x-www-form-urlencoded"
        if self.jar:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if with_csrf and self.csrf and method not in ("GET", "HEAD"):
            sent["x-csrf-token"] = self.csrf
        sent.update(headers or {})
        event = api_gateway_event(method, path, sent, body, "127.0.0.1")
        result = self.pipeline.query_fn.invoke(event)
        reply = Reply(
            result["statusCode"],
            {k.lower(): v for k, v in (result.get("headers") or {}).items()},
            result.get("body", ""),
            list(result.get("cookies") or []),
        )
        for cookie in reply.cookies:
            name, _, rest = cookie.partition("=")
            value, _, attributes = rest.partition(";")
            if "max-age=0" in attributes.lower().replace(" ", "") or not value.strip('"'):
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
        return reply

    def login(self, password: str = PASSWORD) -> Reply:
        reply = self.request("POST", "/api/auth/login", json_body={"password": password})
        if reply.status == 200:
            self.csrf = reply.json()["csrf_token"]
        return reply
