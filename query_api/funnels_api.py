"""Funnels and journeys: the admin routes and `GET /api/stats/funnel` (issue 19)."""

from __future__ import annotations

from fastapi import APIRouter

from query_api.deps import OVERRIDES

router = APIRouter(dependency_overrides_provider=OVERRIDES)
