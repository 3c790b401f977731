"""A browser that reaches the query API through CloudFront: every request carries the origin
secret CloudFront adds, so its CloudFront-Viewer-Address is believed (decision 0016).

Tests using it set ORIGIN_ENVIRONMENT, as Terraform sets the functions' environment.
"""

from __future__ import annotations

from typing import Any

from core.edge import ORIGIN_HEADER, origin_digest
from tests.integration.admin_client import Browser, Reply

ORIGIN_SECRET = "integration-test-origin-secret-" + "o" * 24
ORIGIN_ENVIRONMENT = {"LIVEINSIGHT_ORIGIN_SECRET_SHA256": origin_digest(ORIGIN_SECRET)}


class EdgeBrowser(Browser):
    def request(self, method: str, path: str, **kwargs: Any) -> Reply:
        kwargs["headers"] = {ORIGIN_HEADER: ORIGIN_SECRET, **(kwargs.get("headers") or {})}
        return super().request(method, path, **kwargs)
