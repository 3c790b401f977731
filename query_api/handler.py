"""Lambda entry point for the query API: API Gateway HTTP API (v2) → Mangum → FastAPI."""

from __future__ import annotations

from core.coldstart import imports_without_gc

with imports_without_gc():  # cold start: see core/coldstart.py
    from typing import Any

    from aws_lambda_powertools.logging import correlation_paths
    from mangum import Mangum

    from core.observability import logger
    from query_api.app import app

log = logger("query")
_asgi = Mangum(app, lifespan="off", api_gateway_base_path="/")


@log.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = _asgi(event, context)
    return response
