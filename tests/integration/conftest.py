"""Fixtures for sign-in tests: the query Lambda with an admin password, and a browser for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from tests.conftest import _clear_composition_roots
from tests.integration.admin_client import PASSWORD, SECRET, Browser
from tests.integration.pipeline import Pipeline


@cache
def password_hash() -> str:
    from query_api.auth import hash_password

    return hash_password(PASSWORD)  # once per run: each hash costs ~0.1 s on purpose


@pytest.fixture()
def sign_in_env(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The tables of `aws_env`, and the admin password and session secret the query API reads."""
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH", password_hash())
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", SECRET)
    return aws_env


@pytest.fixture()
def pipeline(sign_in_env: dict[str, str]) -> Pipeline:
    return Pipeline(sign_in_env)


@pytest.fixture()
def browser(pipeline: Pipeline) -> Browser:
    return Browser(pipeline)


@pytest.fixture()
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[datetime], None]]:
    """Set the query API's clock (its `clock` dependency) for the rest of the test."""
    from query_api.app import app
    from query_api.deps import clock

    def set_to(moment: datetime) -> None:
        monkeypatch.setitem(app.dependency_overrides, clock, lambda: moment)

    yield set_to


@pytest.fixture()
def fold_at(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Set how many slots an instance leaves in a bucket before it folds them (decision 0015)."""

    def configure(slots: int) -> None:
        monkeypatch.setenv("LIVEINSIGHT_FOLD_AT_SLOTS", str(slots))
        _clear_composition_roots()

    return configure


from tests.integration.stats_world import world  # noqa: E402, F401 - a shared module fixture


@pytest.fixture()
def stream(aws_env: dict[str, str]) -> dict[str, Any]:
    """The events table's stream, with a dead-letter queue: for event source mapping tests."""
    from core.aws import make_client
    from local import tables

    ddb = make_client("dynamodb")
    sqs = make_client("sqs")
    queue = sqs.create_queue(QueueName=f"{aws_env['events']}-dlq")["QueueUrl"]
    return {
        "ddb": ddb,
        "sqs": sqs,
        "queue": queue,
        "table": aws_env["events"],
        "arn": tables.stream_arn(ddb, aws_env["events"]),
    }


@pytest.fixture()
def without_archive() -> Iterator[None]:
    """The query function as deployed without an event archive: the counters alone answer, and
    what they refuse is the caller's 400 (decision 0031)."""
    from query_api.app import app
    from query_api.deps import deps, get_deps

    app.dependency_overrides[deps] = lambda: replace(get_deps(), archive=None)
    yield
    del app.dependency_overrides[deps]
