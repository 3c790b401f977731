"""A paged Query or Scan is asked again from each page's LastEvaluatedKey until a page has none."""

from __future__ import annotations

from typing import Any

from core.aws import paged


def test_every_page_is_read_from_where_the_last_one_stopped() -> None:
    pages = [
        {"Items": [{"n": 1}, {"n": 2}], "LastEvaluatedKey": {"k": "2"}},
        {"Items": [], "LastEvaluatedKey": {"k": "2b"}},  # an empty page need not be the last
        {"Items": [{"n": 3}]},
    ]
    requests: list[dict[str, Any]] = []

    def call(**request: Any) -> dict[str, Any]:
        requests.append(request)
        return pages[len(requests) - 1]

    assert list(paged(call, TableName="t", Limit=2)) == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert requests == [
        {"TableName": "t", "Limit": 2},
        {"TableName": "t", "Limit": 2, "ExclusiveStartKey": {"k": "2"}},
        {"TableName": "t", "Limit": 2, "ExclusiveStartKey": {"k": "2b"}},
    ]
