"""`POST /api/v2/query` through the real query handler on the stats-world traffic: the counters'
fast path and the archive's v2 engine give the same rows for every question both can answer; the
route says which answered; a saved segment is its filters; bad bodies get Plausible's 400s; a
deployment without an archive says why it cannot answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from core.sites import SiteStore
from query_api import counters
from query_api.reader import CounterReader
from query_api.v2 import fast
from query_api.v2 import parse as v2parse
from query_api.v2.engine import V2ArchiveEngine
from query_api.v2.model import V2Query
from tests.integration.stats_world import FIRST, LAST, NOW, SITE, World, world  # noqa: F401

RANGE = [FIRST.isoformat(), LAST.isoformat()]
ANSWERED_FROM = "x-liveinsight-answered-from"

# questions the counters keep: no dimension, one property (filtered by itself), one time
# dimension; v1's metrics; is / is_not / contains filters
COUNTER_SHAPES: list[dict[str, Any]] = [
    {"metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]},
    {"metrics": ["visitors", "pageviews", "events", "views_per_visit"]},
    {"metrics": ["visitors", "visits", "bounce_rate"], "dimensions": ["visit:source"]},
    {"metrics": ["visitors", "pageviews"], "dimensions": ["event:page"]},
    {
        "metrics": ["visitors", "pageviews"],
        "dimensions": ["event:page"],
        "filters": [["contains", "event:page", ["o"]]],
    },
    {
        "metrics": ["visitors", "visits"],
        "dimensions": ["visit:browser"],
        "filters": [["is_not", "visit:browser", ["Chrome"]]],
    },
    {"metrics": ["visitors", "pageviews", "visits"], "dimensions": ["time:day"]},
    {"metrics": ["visitors", "events"], "dimensions": ["event:goal"]},
    {"metrics": ["visitors"], "dimensions": ["visit:browser"], "order_by": [["visitors", "asc"]]},
    {
        "metrics": ["pageviews"],
        "dimensions": ["event:page"],
        "pagination": {"limit": 2, "offset": 1},
    },
]


def sites_of(world: World) -> SiteStore:  # noqa: F811
    return SiteStore(world.pipeline.ddb, world.pipeline.names["meta"], cache_seconds=0)


@pytest.fixture(scope="module")
def engines(world: World) -> Iterator[tuple[counters.CounterEngine, V2ArchiveEngine]]:  # noqa: F811
    site = sites_of(world).require(SITE)
    reader = CounterReader(world.pipeline.ddb, world.pipeline.names["aggregates"])
    store = world.pipeline.archive()
    files = store.local_files(SITE, "2026-10-27", "2026-11-08")
    assert files, "the rollup tier should have archived the traffic"
    yield counters.CounterEngine(reader, site), V2ArchiveEngine(site, files)


def parsed(world: World, body: dict[str, Any]) -> V2Query:  # noqa: F811
    site = sites_of(world).require(SITE)
    return v2parse.parse_query(
        {"site_id": SITE, "date_range": RANGE, **body}, site, NOW, lambda _: None
    )


@pytest.mark.parametrize("body", COUNTER_SHAPES, ids=lambda b: ",".join(b.get("dimensions", [])))
def test_the_counters_and_the_archive_give_the_same_rows(
    world: World,  # noqa: F811
    engines: tuple[counters.CounterEngine, V2ArchiveEngine],
    body: dict[str, Any],
) -> None:
    query = parsed(world, body)
    fast_answer = fast.counters_result(engines[0], query)
    assert fast_answer is not None, "a question the counters keep"
    assert fast_answer.rows, "the traffic should give rows"
    assert engines[1].run(query) == fast_answer


def post(world: World, body: dict[str, Any]) -> Any:  # noqa: F811
    return world.pipeline.post("/api/v2/query", {"site_id": SITE, **body}, world.key)


def test_the_route_says_which_path_answered(world: World) -> None:  # noqa: F811
    simple = post(world, {"metrics": ["visitors"], "date_range": RANGE})
    assert simple.status == 200, simple.body
    assert simple.headers[ANSWERED_FROM] == "counters"
    crossed = post(
        world,
        {
            "metrics": ["visitors", "pageviews"],
            "date_range": RANGE,
            "dimensions": ["visit:source", "event:page"],
            "filters": [["is_not", "visit:country", ["XX"]]],
        },
    )
    assert crossed.status == 200, crossed.body
    assert crossed.headers[ANSWERED_FROM] == "archive"
    document = crossed.json()
    assert document["results"], "two dimensions crossed should give rows"
    assert all(len(r["dimensions"]) == 2 and len(r["metrics"]) == 2 for r in document["results"])
    assert document["meta"]["answered_from"] == "archive"


def test_a_saved_segment_is_its_filters(world: World) -> None:  # noqa: F811
    from core.segments import SegmentStore

    client, table = sites_of(world).meta
    filters = [["is_not", "visit:browser", ["Chrome"]], ["contains", "event:page", ["o"]]]
    segment = SegmentStore(client, table).add(SITE, "Not Germany, o pages", filters)
    asked = {
        "metrics": ["visitors", "pageviews"],
        "date_range": RANGE,
        "dimensions": ["event:page"],
    }
    inline = post(world, {**asked, "filters": filters})
    saved = post(world, {**asked, "filters": [["is", "segment", [segment.id]]]})
    assert inline.status == saved.status == 200, (inline.body, saved.body)
    assert saved.json()["results"] == inline.json()["results"]
    assert inline.json()["results"], "the segment should keep some pages"
    unknown = post(world, {**asked, "filters": [["is", "segment", [segment.id + 100]]]})
    assert unknown.status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": ["visitors"]},  # no date_range
        {"metrics": ["nonsense"], "date_range": "7d"},
        {"metrics": "visitors", "date_range": "7d"},
        {"metrics": ["visitors"], "date_range": "7d", "dimensions": ["event:nonsense"]},
        {"metrics": ["visitors"], "date_range": "7d", "filters": [["is", "visit:source"]]},
        {"metrics": ["visitors"], "date_range": "7d", "pagination": {"limit": 10_001}},
        {"metrics": ["bounce_rate"], "date_range": "7d", "dimensions": ["event:goal"]},
        {
            "metrics": ["visitors"],
            "date_range": "7d",
            "filters": [["matches", "event:page", ["("]]],
        },
    ],
)
def test_bad_questions_get_a_400_with_a_message(world: World, body: dict[str, Any]) -> None:  # noqa: F811
    reply = post(world, body)
    assert reply.status == 400, reply.body
    assert isinstance(reply.json()["error"], str) and reply.json()["error"]


def test_a_body_that_is_not_json_gets_a_400(world: World) -> None:  # noqa: F811
    from local.front import api_gateway_event

    headers = {"content-type": "application/json", "authorization": f"Bearer {world.key}"}
    event = api_gateway_event("POST", "/api/v2/query", headers, b"{not json", "127.0.0.1")
    assert world.pipeline.query_fn.invoke(event)["statusCode"] == 400


def test_only_the_sites_own_credentials_read_it(world: World) -> None:  # noqa: F811
    """Isolation (DESIGN.md invariant 6) for the route whose site is named in its body, which
    tests/integration/test_isolation.py (query-string routes) cannot enumerate."""
    body = {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}
    other_key = world.pipeline.add_site(f"other-{id(world)}.example")
    assert world.pipeline.post("/api/v2/query", body, world.key).status == 200
    assert world.pipeline.post("/api/v2/query", body, other_key).status == 401
    assert world.pipeline.post("/api/v2/query", body, "li_nope").status == 401
    assert world.pipeline.post("/api/v2/query", body).status == 401
    shared = sites_of(world).create_share(f"other-{id(world)}.example")[0]
    assert world.pipeline.post(f"/api/v2/query?auth={shared}", body).status == 401


@pytest.mark.usefixtures("without_archive")
def test_without_an_archive_what_needs_it_says_so(world: World) -> None:  # noqa: F811
    reply = post(
        world,
        {
            "metrics": ["visitors"],
            "date_range": RANGE,
            "dimensions": ["visit:source", "event:page"],
        },
    )
    assert reply.status == 400
    assert "archive" in reply.json()["error"]
    assert post(world, {"metrics": ["visitors"], "date_range": RANGE}).status == 200
