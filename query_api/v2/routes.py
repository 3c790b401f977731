"""`POST /api/v2/query` and saved segments (issue 19)."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import OVERRIDES

router = APIRouter(dependency_overrides_provider=OVERRIDES)
