"""Shared fixtures: a real moto server on 127.0.0.1, tables made from core/schema.json and the
event archive's bucket."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

os.environ.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LiveInsight")

_prefixes = itertools.count()

# `make test-dates` sets this to run the suite at another date: every wall-clock read in the test
# process (time.time, datetime.now, moto's server thread) starts there and keeps ticking, while
# monotonic time is left alone. Unit and integration tests start no subprocess, so this covers them.
TEST_NOW = "LIVEINSIGHT_TEST_NOW"


def _share_botocore_data() -> None:
    """One botocore data loader for every session the tests make.

    core.aws.make_client starts a new botocore session per client, as each cold start does, and a
    new session parses endpoints.json (1.2 MB) and the service's model again: ~50-100 ms a client,
    and the tests make thousands (every test's tables, every handler's "cold start"). The files
    are botocore's read-only data, already shared by the clients of one session; shared by all
    sessions a client costs ~10 ms. The clients themselves (config, endpoint, events, hooks the
    tests register) are still made new each time.
    """
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()

    def register_shared_loader(self: Any) -> None:
        self._components.lazy_register_component("data_loader", lambda: loader)

    session_class: Any = botocore.session.Session  # a private hook: botocore's stubs omit it
    session_class._register_data_loader = register_shared_loader


_share_botocore_data()


def pytest_configure(config: pytest.Config) -> None:
    moved_to = os.environ.get(TEST_NOW)
    if moved_to:
        import time_machine

        time_machine.travel(datetime.fromisoformat(moved_to), tick=True).start()


def pytest_report_header(config: pytest.Config) -> str | None:
    moved_to = os.environ.get(TEST_NOW)
    return (
        f"wall clock moved to {moved_to} (now {datetime.now(UTC).isoformat()})"
        if moved_to
        else None
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from local.stack import MotoServer

    server = MotoServer()
    endpoint = server.start()
    yield endpoint
    server.stop()


@pytest.fixture()
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A fresh set of tables and an archive bucket (unique prefix) and the environment the
    handlers read."""
    from local import tables
    from local.stack import aws_environment

    prefix = f"t{next(_prefixes)}-{os.getpid()}"
    env = aws_environment(moto_endpoint, prefix)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _clear_composition_roots()
    from core.aws import make_client

    names = tables.table_names(prefix)
    tables.create_tables(make_client("dynamodb"), names, with_stream=True)
    tables.create_bucket(make_client("s3"), env["LIVEINSIGHT_ARCHIVE_BUCKET"])
    yield names
    _clear_composition_roots()


def _clear_composition_roots() -> None:
    """Each Lambda builds its clients once per cold start; a test is a cold start."""
    import aggregator.handler
    import archive.handler
    import ingest.handler
    import query_api.deps

    ingest.handler.get_deps.cache_clear()
    aggregator.handler.get_client.cache_clear()
    aggregator.handler.get_store.cache_clear()
    aggregator.handler.get_minute_store.cache_clear()
    aggregator.handler.get_config.cache_clear()
    aggregator.handler.get_archive.cache_clear()
    aggregator.handler.get_alerts.cache_clear()
    archive.handler.get_config.cache_clear()
    archive.handler.get_store.cache_clear()
    archive.handler.get_sites.cache_clear()
    query_api.deps.get_deps.cache_clear()


@pytest.fixture()
def json_logs() -> Iterator[Any]:
    """Every line the Lambdas log during the test, parsed, exactly as Powertools formats it."""
    import io
    import json
    import logging

    from core.observability import logger

    stream = io.StringIO()
    attached = []
    for service in ("ingest", "aggregator", "query", "archive"):
        powertools = logger(service)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(powertools.registered_formatter)
        powertools._logger.addHandler(handler)
        attached.append((powertools, handler))
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line]
    for powertools, handler in attached:
        powertools._logger.removeHandler(handler)
