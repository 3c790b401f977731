"""The ingest service: an HTTP request in, an HTTP response out, events stored in between.

Two wire formats (docs/compat.md): Plausible's events API on /api/event, answered 202, and Umami's
collect API on /api/send and /api/batch, answered 200 with JSON. Both become EventPayloads and go
through the one pipeline (`accept`) and the one store.

Kept apart from the Lambda handler so that the same function is driven by tests, by the local
stack (through the handler) and by API Gateway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core import edge
from core.observability import logger, metric_buffer, trace
from core.sites import Site, SiteStore
from ingest import enrich, geo, umami
from ingest.payload import InvalidPayload, parse_body
from ingest.pipeline import Client, ContinueSession, Dropped, DropReason, Outcome, accept
from ingest.sessions import SessionLinks
from ingest.store import EventStore
from ingest.visitor import Salts, SaltStore, visitor_id

log = logger("ingest")
metric = metric_buffer("ingest")  # flushed by the handler, at most once a minute

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
    # Digests of the origin secrets CloudFront adds: only then are CloudFront-* headers believed.
    origin_digests: tuple[bytes, ...] = ()
    # Sessions over midnight decided here, in arrival order (ingest/sessions.py); None: by the
    # aggregator from the previous id, which depends on the order records reach it.
    sessions: SessionLinks | None = None


UMAMI_SEND = "/api/send"
UMAMI_BATCH = "/api/batch"


def handle(request: HttpRequest, deps: IngestDeps, now: datetime) -> HttpResponse:
    """POST /api/event (Plausible's format and ours), /api/send and /api/batch (Umami's)."""
    umami_path = request.path in (UMAMI_SEND, UMAMI_BATCH)
    if request.method == "OPTIONS":
        # Umami's tracker sends application/json and x-umami-cache: a preflighted request.
        allowed = request.headers.get("access-control-request-headers", "content-type")
        return HttpResponse(204, "", {**CORS_HEADERS, "access-control-allow-headers": allowed})
    if request.method != "POST":
        return (
            _umami_error("use POST", 405) if umami_path else _error(405, {"request": ["use POST"]})
        )
    if len(request.body) > deps.max_body_bytes:
        message = f"body must be at most {deps.max_body_bytes} bytes"
        return _umami_error(message) if umami_path else _error(400, {"request": [message]})
    if request.path == UMAMI_SEND:
        return _umami_send(request, deps, now)
    if request.path == UMAMI_BATCH:
        return _umami_batch(request, deps, now)
    return _plausible(request, deps, now)


def _plausible(request: HttpRequest, deps: IngestDeps, now: datetime) -> HttpResponse:
    try:
        payloads = parse_body(request.body, deps.max_batch_events)
    except InvalidPayload as exc:
        return _invalid(exc, _error(400, exc.errors))
    client = _client(request, deps)
    salts = deps.salts.salts(now)
    try:
        outcomes = [
            o
            for p in payloads
            for o in accept(p, client, now, salts, deps.sites.get, _continuing(deps))
        ]
    except enrich.MalformedUrl as exc:
        return _error(400, {"url": [f"must be an http(s) URL ({exc})"]})
    drop_reasons = _record(outcomes, deps)
    headers = {**CORS_HEADERS, "content-type": "text/plain"}
    if len(drop_reasons) == len(outcomes):
        # Plausible's header, and nothing more: why an event was dropped goes to the metrics and
        # the log only, since a reason such as unknown_site would tell anyone which domains are
        # registered (docs/compat.md §1).
        headers["x-plausible-dropped"] = "1"
    return HttpResponse(202, "ok", headers)


def _umami_send(request: HttpRequest, deps: IngestDeps, now: datetime) -> HttpResponse:
    try:
        call = umami.parse_send(request.body)
        status, body = _umami_call(call, _client(request, deps), deps, deps.salts.salts(now), now)
    except InvalidPayload as exc:
        return _invalid(exc, _umami_error(umami.error_message(exc)))
    return HttpResponse(status, body, {**CORS_HEADERS, "content-type": "application/json"})


def _umami_batch(request: HttpRequest, deps: IngestDeps, now: datetime) -> HttpResponse:
    """Each call is answered as /api/send would; the batch lists the calls that failed."""
    try:
        calls = umami.parse_batch(request.body, deps.max_batch_events)
    except InvalidPayload as exc:
        return _invalid(exc, _umami_error(umami.error_message(exc)))
    client = _client(request, deps)
    salts = deps.salts.salts(now)
    errors: list[dict[str, Any]] = []
    for index, data in enumerate(calls):
        try:
            status, body = _umami_call(umami.parse_call(data), client, deps, salts, now)
        except InvalidPayload as exc:
            status, body = 400, umami.error_body(umami.error_message(exc))
        if status != 200:
            errors.append({"index": index, "response": json.loads(body)})
    return HttpResponse(
        200,
        umami.batch_body(len(calls), errors),
        {**CORS_HEADERS, "content-type": "application/json"},
    )


def _umami_call(
    call: umami.UmamiCall, client: Client, deps: IngestDeps, salts: Salts, now: datetime
) -> tuple[int, str]:
    """(status, body) of one Umami call. Raises InvalidPayload for a bad event."""
    site = _umami_site(call, deps.sites)
    if site is None:  # Umami looks the website up before anything else, bots included
        _record([Dropped(DropReason.UNKNOWN_SITE)], deps)
        return 400, umami.error_body(umami.WEBSITE_NOT_FOUND)
    session = visitor_id(salts.current, site.domain, client.ip, client.user_agent)
    if call.kind == umami.IDENTIFY:
        return 200, umami.ok_body(session, now)  # a person's id and data: never stored
    payload = umami.to_event(call, site.domain)
    try:
        outcomes = accept(payload, client, now, salts, deps.sites.get, _continuing(deps))
    except enrich.MalformedUrl as exc:
        raise InvalidPayload({"url": [f"must be an http(s) URL ({exc})"]}) from exc
    drop_reasons = _record(outcomes, deps)
    if DropReason.BOT in drop_reasons:
        return 200, umami.BOT_BODY
    if DropReason.UNKNOWN_SITE in drop_reasons:
        return 400, umami.error_body(umami.WEBSITE_NOT_FOUND)
    return 200, umami.ok_body(session, now)


def _umami_site(call: umami.UmamiCall, sites: SiteStore) -> Site | None:
    """The site a call's website names: a domain; a UUID its hostname (or a parent) derives to,
    computed without a read; else a UUID's lookup item, attached or derived, which is how a
    snippet's existing id and @umami/node's calls (no hostname) are found (docs/compat.md §7)."""
    site = next((s for d in umami.candidate_domains(call) if (s := sites.get(d))), None)
    if site is None and (website := umami.website_uuid(call)):
        site = sites.site_for_umami_id(website)
    return site


def _continuing(deps: IngestDeps) -> ContinueSession | None:
    return deps.sessions.visitor_for if deps.sessions else None


def _client(request: HttpRequest, deps: IngestDeps) -> Client:
    viewer = edge.viewer(
        request.headers, request.source_ip, deps.origin_digests, deps.trust_forwarded_for
    )
    country = enrich.country_from_header(viewer.country)
    return Client(
        ip=viewer.ip,
        user_agent=request.headers.get("user-agent", ""),
        country=country,
        region=geo.region_from_header(country, viewer.region),
        city=geo.city_from_header(country, viewer.city),
        correlation_id=request.request_id,
    )


def _record(outcomes: list[Outcome], deps: IngestDeps) -> list[str]:
    """Store the accepted events (one conditional PutItem each, ingest/store.py); the drop reasons
    of the rest."""
    accepted = duplicates = 0
    drop_reasons: list[str] = []
    for outcome in outcomes:
        if isinstance(outcome, Dropped):
            drop_reasons.append(outcome.reason.value)
            continue
        if deps.events.put(outcome.event, client_id=outcome.client_id):
            accepted += 1
        else:
            duplicates += 1
    metric.add_metric(name="EventsAccepted", value=accepted)
    if duplicates:
        metric.add_metric(name="EventsDuplicate", value=duplicates)
    if drop_reasons:  # one metric, not one per reason: the reasons are in the line below
        metric.add_metric(name="EventsDropped", value=len(drop_reasons))
    # A drop or a resend is always worth its line; a plain accept only for a traced request.
    say = log.info if drop_reasons or duplicates else trace(log, log.get_correlation_id())
    say(
        "events ingested",
        extra={"accepted": accepted, "duplicates": duplicates, "dropped": drop_reasons},
    )
    return drop_reasons


def _invalid(exc: InvalidPayload, response: HttpResponse) -> HttpResponse:
    metric.add_metric(name="EventsInvalid", value=1)
    log.info("invalid event", extra={"errors": exc.errors})
    return response


def _umami_error(message: str, status: int = 400) -> HttpResponse:
    return HttpResponse(
        status,
        umami.error_body(message, status),
        {**CORS_HEADERS, "content-type": "application/json"},
    )


def _error(status: int, errors: dict[str, list[str]]) -> HttpResponse:
    return HttpResponse(
        status,
        json.dumps({"errors": errors}),
        {**CORS_HEADERS, "content-type": "application/json"},
    )
