"""Lambda entry point for POST /api/event (API Gateway HTTP API, payload v2)."""

from __future__ import annotations

from core.coldstart import imports_without_gc

with imports_without_gc():  # cold start: see core/coldstart.py
    import base64
    from datetime import UTC, datetime
    from functools import lru_cache
    from typing import Any

    from aws_lambda_powertools.logging import correlation_paths

    from core import settings
    from core.aws import make_client
    from core.observability import logger, metric_buffer
    from core.schema import load_schema
    from core.sites import SiteStore
    from ingest.service import HttpRequest, IngestDeps, handle
    from ingest.sessions import SessionLinks
    from ingest.store import EventStore
    from ingest.visitor import SaltStore

log = logger("ingest")
metric = metric_buffer("ingest")


@lru_cache(maxsize=1)
def get_deps() -> IngestDeps:
    config = settings.load(settings.IngestSettings)
    client = make_client("dynamodb")
    return IngestDeps(
        sites=SiteStore(client, config.meta_table),
        salts=SaltStore(client, config.meta_table),
        events=EventStore(
            client,
            config.events_table,
            load_schema().retention.raw_event_ttl_seconds,
            config.meta_table,
        ),
        max_body_bytes=config.max_body_bytes,
        max_batch_events=config.max_batch_events,
        trust_forwarded_for=config.trust_forwarded_for,
        origin_digests=config.origin_digests,
        sessions=SessionLinks(client, config.meta_table),
    )


def now() -> datetime:
    """The receive time of a request (tests of day boundaries replace it)."""
    return datetime.now(UTC)


@log.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    http = event.get("requestContext", {}).get("http", {})
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    request = HttpRequest(
        method=http.get("method", "GET"),
        path=http.get("path", event.get("rawPath", "/")),
        headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
        body=raw,
        source_ip=http.get("sourceIp", ""),
        request_id=event.get("requestContext", {}).get("requestId", ""),
    )
    response = handle(request, get_deps(), now())
    # One EMF blob a minute per warm instance, not one a request (decision 0021); responses by
    # status are Lambda's and the front door's own free metrics.
    metric.flush_if_due()
    return {"statusCode": response.status, "headers": response.headers, "body": response.body}
