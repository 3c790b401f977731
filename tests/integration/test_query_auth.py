"""Isolation: a key reads its own site only; a private site needs a key; errors are Plausible's."""

from __future__ import annotations

import pytest

from tests.integration.pipeline import Pipeline

ENDPOINTS = [
    "/api/v1/stats/realtime/visitors?site_id={site}",
    "/api/realtime?site_id={site}",
    "/api/realtime/card?site_id={site}",
]


@pytest.fixture()
def two_sites(aws_env: dict[str, str]) -> tuple[Pipeline, str, str]:
    pipeline = Pipeline(aws_env)
    key_a = pipeline.add_site("a.example")
    key_b = pipeline.add_site("b.example")
    pipeline.send({"n": "pageview", "u": "https://a.example/", "d": "a.example"})
    pipeline.pump()
    return pipeline, key_a, key_b


@pytest.mark.parametrize("path", ENDPOINTS)
def test_key_of_one_site_cannot_read_another(
    two_sites: tuple[Pipeline, str, str], path: str
) -> None:
    pipeline, key_a, key_b = two_sites
    assert pipeline.get(path.format(site="a.example"), key_a).status == 200
    denied = pipeline.get(path.format(site="a.example"), key_b)
    assert denied.status == 401
    assert "Invalid API key or site ID" in denied.json()["error"]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("key", [None, "li_made-up-key", "not-even-our-format", "Basic abc"])
def test_private_site_needs_a_valid_key(
    two_sites: tuple[Pipeline, str, str], path: str, key: str | None
) -> None:
    pipeline, _, _ = two_sites
    assert pipeline.get(path.format(site="a.example"), key).status == 401


def test_unknown_site_is_401_not_a_leak(two_sites: tuple[Pipeline, str, str]) -> None:
    pipeline, key_a, _ = two_sites
    assert pipeline.get("/api/realtime?site_id=nope.example", key_a).status == 401


def test_missing_site_id_is_a_400_with_a_message(two_sites: tuple[Pipeline, str, str]) -> None:
    pipeline, key_a, _ = two_sites
    response = pipeline.get("/api/realtime", key_a)
    assert response.status == 400
    assert "site_id" in response.json()["error"]


def test_public_site_is_readable_without_a_key_and_listed(aws_env: dict[str, str]) -> None:
    pipeline = Pipeline(aws_env)
    pipeline.add_site("open.example", public=True)
    pipeline.add_site("closed.example")
    assert pipeline.get("/api/realtime?site_id=open.example").status == 200
    assert pipeline.get("/api/v1/sites/public").json() == {"sites": [{"domain": "open.example"}]}
