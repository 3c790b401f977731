"""Drives the real handlers the way AWS does: API Gateway v2 events in, stream batches through."""

from __future__ import annotations

import json
import os
import tempfile
from base64 import b64decode
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import settings
from core.aws import make_client
from core.edge import ORIGIN_HEADER
from core.events import RawEvent
from core.schema import load_schema
from local import tables
from local.front import LOCAL_ORIGIN_SECRET, api_gateway_event
from local.poller import to_lambda_record
from local.runtime import LocalFunction

if TYPE_CHECKING:
    from archive.store import ArchiveStore

DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str
    base64: bool = False  # API Gateway's isBase64Encoded: a binary body (a ZIP)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def raw(self) -> bytes:
        return b64decode(self.body) if self.base64 else self.body.encode()


class Pipeline:
    def __init__(self, names: dict[str, str]) -> None:
        from aggregator.handler import handler as aggregator_handler
        from ingest.handler import handler as ingest_handler
        from query_api.handler import handler as query_handler

        self.names = names
        # The event archive's bucket (decision 0027): the environment's, as the handlers see it
        self.bucket = settings.load(settings.AggregatorSettings).archive_bucket
        self.s3 = make_client("s3")
        self.ddb = make_client("dynamodb")
        self.streams = make_client("dynamodbstreams")
        self.ingest_fn = LocalFunction("ingest", ingest_handler)
        self.query_fn = LocalFunction("query", query_handler)
        self.aggregator_fn = LocalFunction("aggregator", aggregator_handler)  # single tier
        self.tier_fns = {  # the aliases AWS's event source mappings invoke (decision 0010)
            tier: LocalFunction("aggregator", aggregator_handler, tier)
            for tier in load_schema().tiers
        }
        self._arn = tables.stream_arn(self.ddb, names["events"])
        shard = self.streams.describe_stream(StreamArn=self._arn)["StreamDescription"]["Shards"][0]
        self._iterator = self.streams.get_shard_iterator(
            StreamArn=self._arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]

    # ---- the edges ---------------------------------------------------------------------------

    def add_site(self, domain: str, public: bool = False, tz: str = "UTC") -> str:
        from core.sites import SiteStore

        sites = SiteStore(self.ddb, self.names["meta"], cache_seconds=0)
        sites.add(domain, tz=tz, public=public)
        return sites.create_key(domain)

    def send(
        self,
        body: Any,
        *,
        ip: str = "198.51.100.7",
        user_agent: str = DESKTOP_UA,
        content_type: str = "text/plain",
        raw: bytes | None = None,
        method: str = "POST",
        extra_headers: dict[str, str] | None = None,
    ) -> Response:
        payload = raw if raw is not None else json.dumps(body).encode()
        headers = {
            "content-type": content_type,
            "user-agent": user_agent,
            "x-forwarded-for": ip,
            "cloudfront-viewer-address": f"{ip}:443",  # as CloudFront sets it
            ORIGIN_HEADER: LOCAL_ORIGIN_SECRET,  # and the origin secret it adds (decision 0016)
            **(extra_headers or {}),
        }
        event = api_gateway_event(method, "/api/event", headers, payload, "127.0.0.1")
        result = self.ingest_fn.invoke(event)
        return Response(result["statusCode"], result.get("headers", {}), result.get("body", ""))

    def get(self, path: str, key: str | None = None) -> Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        event = api_gateway_event("GET", path, headers, b"", "127.0.0.1")
        result = self.query_fn.invoke(event)
        return Response(
            result["statusCode"],
            result.get("headers", {}),
            result.get("body", ""),
            bool(result.get("isBase64Encoded")),
        )

    def post(self, path: str, body: Any, key: str | None = None) -> Response:
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        event = api_gateway_event("POST", path, headers, json.dumps(body).encode(), "127.0.0.1")
        result = self.query_fn.invoke(event)
        return Response(result["statusCode"], result.get("headers", {}), result.get("body", ""))

    # ---- the stream --------------------------------------------------------------------------

    def read_stream(self) -> list[dict[str, Any]]:
        """Every new INSERT record, shaped as Lambda delivers them (a page holds at most 1,000)."""
        records: list[dict[str, Any]] = []
        while True:
            page = self.streams.get_records(ShardIterator=self._iterator, Limit=1000)
            self._iterator = page["NextShardIterator"]
            records += [
                to_lambda_record(r, self._arn)
                for r in page["Records"]
                if r["eventName"] == "INSERT"
            ]
            if len(page["Records"]) < 1000:  # moto answers all it has, up to the limit
                return records

    def aggregate(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = self.aggregator_fn.invoke({"Records": records})
        return result

    def pump(self) -> list[dict[str, Any]]:
        records = self.read_stream()
        if records:
            assert self.aggregate(records) == {"batchItemFailures": []}
        return records

    def realtime(self, site: str, key: str) -> dict[str, Any]:
        response = self.get(f"/api/realtime?site_id={site}", key)
        assert response.status == 200, response.body
        data: dict[str, Any] = response.json()
        return data

    def scan(self, logical: str) -> list[dict[str, Any]]:
        return tables.scan_all(self.ddb, self.names[logical])

    def archive(self, cache_dir: str | Path | None = None) -> ArchiveStore:
        """The event archive the rollup tier writes, read through its own local cache."""
        from archive.store import ArchiveStore

        return ArchiveStore(self.s3, self.bucket, cache_dir or tempfile.mkdtemp(prefix="li-t-"))

    def archived_events(self, site: str) -> list[RawEvent]:
        """Every archived event of the site, each id once (as readers see them)."""
        from archive.parquet import read_events

        store = self.archive()
        return read_events(store.local_files(site, "0000-01-01", "9999-12-31"))


@contextmanager
def fresh_pipeline(endpoint: str, prefix: str) -> Iterator[Pipeline]:
    """New tables under `prefix` and the environment pointing at them, restored afterwards.

    For code that needs several fresh sets in one test (hypothesis examples share the test's
    fixtures) or outside pytest (the bench campaign).
    """
    from local.stack import aws_environment
    from tests.conftest import _clear_composition_roots

    env = aws_environment(endpoint, prefix)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _clear_composition_roots()
    try:
        names = tables.table_names(prefix)
        tables.create_tables(make_client("dynamodb"), names, with_stream=True)
        tables.create_bucket(make_client("s3"), env["LIVEINSIGHT_ARCHIVE_BUCKET"])
        yield Pipeline(names)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _clear_composition_roots()
