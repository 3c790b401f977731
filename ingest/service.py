"""The ingest service: an HTTP request in, an HTTP response out, events stored in between.

Kept apart from the Lambda handler so that the same function is driven by tests, by the local
stack (through the handler) and by API Gateway.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from core.observability import COUNT, logger, metrics
from core.sites import SiteStore
from ingest import enrich
from ingest.payload import InvalidPayload, parse_body
from ingest.pipeline import Accepted, Client, Dropped, accept
from ingest.store import EventStore
from ingest.visitor import SaltStore

log = logger("ingest")
metric = metrics("ingest")

CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-max-age": "86400",
}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    source_ip: str
    request_id: str = ""


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestDeps:
    sites: SiteStore
    salts: SaltStore
    events: EventStore
    max_body_bytes: int
    max_batch_events: int
    trust_forwarded_for: bool


def handle(request: HttpRequest, deps: IngestDeps, now: datetime) -> HttpResponse:
    if request.method == "OPTIONS":
        allowed = request.headers.get("access-control-request-headers", "content-type")
        return HttpResponse(204, "", {**CORS_HEADERS, "access-control-allow-headers": allowed})
    if request.method != "POST":
        return _error(405, {"request": ["use POST"]})
    if len(request.body) > deps.max_body_bytes:
        return _error(400, {"request": [f"body must be at most {deps.max_body_bytes} bytes"]})
    try:
        payloads = parse_body(request.body, deps.max_batch_events)
    except InvalidPayload as exc:
        metric.add_metric(name="EventsInvalid", unit=COUNT, value=1)
        log.info("invalid event", extra={"errors": exc.errors})
        return _error(400, exc.errors)
    user_agent = request.headers.get("user-agent", "")
    client = Client(
        ip=_client_ip(request, deps.trust_forwarded_for),
        user_agent=user_agent,
        country=enrich.country_from_header(request.headers.get("cloudfront-viewer-country")),
        correlation_id=request.request_id,
    )
    salts = deps.salts.salts(now)
    try:
        outcomes = [o for p in payloads for o in accept(p, client, now, salts, deps.sites.get)]
    except enrich.MalformedUrl as exc:
        return _error(400, {"url": [f"must be an http(s) URL ({exc})"]})
    accepted = duplicates = 0
    drop_reasons: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, Dropped):
            drop_reasons.append(outcome.reason.value)
            metric.add_metric(name=f"EventsDropped_{outcome.reason.value}", unit=COUNT, value=1)
            continue
        assert isinstance(outcome, Accepted)
        if deps.events.put(outcome.event):
            accepted += 1
        else:
            duplicates += 1
    metric.add_metric(name="EventsAccepted", unit=COUNT, value=accepted)
    if duplicates:
        metric.add_metric(name="EventsDuplicate", unit=COUNT, value=duplicates)
    log.info(
        "events ingested",
        extra={"accepted": accepted, "duplicates": duplicates, "dropped": drop_reasons},
    )
    headers = {**CORS_HEADERS, "content-type": "text/plain"}
    if drop_reasons:
        headers["x-liveinsight-dropped"] = ",".join(sorted(set(drop_reasons)))
        if len(drop_reasons) == len(outcomes):
            headers["x-plausible-dropped"] = "1"
    return HttpResponse(202, "ok", headers)


def _client_ip(request: HttpRequest, trust_forwarded_for: bool) -> str:
    """The viewer's address: CloudFront's header, else (if trusted) X-Forwarded-For, else the peer."""
    viewer = _address(request.headers.get("cloudfront-viewer-address", ""), with_port=True)
    if viewer:
        return viewer
    if trust_forwarded_for:
        for candidate in request.headers.get("x-forwarded-for", "").split(","):
            if address := _address(candidate, with_port=False):
                return address
    return request.source_ip


def _address(text: str, with_port: bool) -> str:
    """A normalised IP address from "1.2.3.4", "1.2.3.4:443", "2001:db8::1:443" or "[::1]:443"."""
    text = text.strip()
    if with_port and ":" in text:
        text = text.rsplit(":", 1)[0]  # CloudFront-Viewer-Address always ends with the port
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        return ""


def _error(status: int, errors: dict[str, list[str]]) -> HttpResponse:
    return HttpResponse(
        status,
        json.dumps({"errors": errors}),
        {**CORS_HEADERS, "content-type": "application/json"},
    )
