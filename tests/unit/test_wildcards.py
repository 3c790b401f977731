"""Filter wildcards: Plausible's `*` (any run of characters, `**` the same), matched in linear time
whatever the pattern, so no filter can hold a query Lambda."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query_api import parse
from query_api.errors import BadRequest


@contextmanager
def within_seconds(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging) if the block runs longer: a correctness bound, not a benchmark.
    Regex matching checks for signals, so the alarm interrupts a backtracking match too."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def matches(pattern: str, value: str) -> bool:
    (only,) = parse.parse_filters(f"event:page=={pattern}")
    return only.matches(value)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("/blog", "/blog", True),
        ("/blog", "/blog/", False),
        ("/blog*", "/blog", True),
        ("/blog*", "/blog/post/comments", True),
        ("/blog*", "/about", False),
        ("/blog/*", "/blog", False),
        ("*/post", "/blog/post", True),
        ("*/post", "/blog/post/2", False),
        ("/a*b*c", "/abc", True),
        ("/a*b*c", "/a-x-b-y-c", True),
        ("/a*b*c", "/a-x-c-y-b", False),
        ("/a*b*c", "/a-b-c-b", False),  # the last part is a suffix
        ("/a*b*c", "/a-c-b-c", True),  # a later `b` is found when the first is too early
        ("*", "", True),
        ("*", "/anything\nat all", True),  # any character, a newline too
        ("**", "/x/y", True),  # `**` is `*` twice: any run of characters
        ("/blog/**", "/blog/a/b", True),
        ("/blog/**", "/blo", False),
        ("/ab*ba", "/aba", False),  # prefix and suffix may not overlap
        ("/ab*ba", "/abba", True),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("a.c*", "abc", False),  # `.` is literal
        ("/[x]*", "/[x]y", True),  # so are regex metacharacters
        ("/(a+)+*", "/(a+)+b", True),
    ],
)
def test_wildcard_matches_like_plausible(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def regex_match(pattern: str, value: str) -> bool:
    """The former definition (each `*` a `.*`): right, but backtracking on many stars."""
    return bool(re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value, re.S))


@settings(max_examples=500)
@given(pattern=st.text("ab*/", max_size=8), value=st.text("ab/", max_size=10))
def test_wildcard_agrees_with_the_regex_it_replaces(pattern: str, value: str) -> None:
    assert parse.wildcard_match(pattern, value) == regex_match(pattern, value)


def test_a_negated_wildcard_filter_inverts_the_match() -> None:
    (negated,) = parse.parse_filters("event:page!=/blog*|/about")
    assert not negated.matches("/blog/x") and not negated.matches("/about")
    assert negated.matches("/pricing")


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        ("Visit /**********X", "Visit /" + "a" * 40),  # the demo site's hanging goal filter
        ("/" + "*a" * 200 + "X", "/" + "a" * 5000),
        ("/" + "*" * 1000 + "X", "/" + "a" * 5000),
        ("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", "a" * 20_000),
    ],
)
def test_hostile_wildcards_answer_at_once(pattern: str, value: str) -> None:
    (hostile,) = parse.parse_filters(f"event:page=={pattern}")
    with within_seconds(2):
        for _ in range(100):
            assert not hostile.matches(value)


def test_a_value_given_twice_is_one_value() -> None:
    (twice,) = parse.parse_filters("event:page==/a|/a")
    assert twice.values == ("/a",) and twice.single


def test_a_filter_holds_at_most_ten_wildcard_values() -> None:
    ten = "|".join(f"/p{i}*" for i in range(10))
    assert len(parse.parse_filters(f"event:page=={ten}|/exact")[0].values) == 11
    with pytest.raises(BadRequest, match="more than 10 values with a `\\*` wildcard"):
        parse.parse_filters(f"event:page=={ten}|/p10*")


def test_many_values_against_many_rows_answer_at_once() -> None:
    # as many values as the 2,000-character parameter holds, against a period's rows (at most
    # 300 values per dimension and day, a year of them)
    (many,) = parse.parse_filters("event:page==" + "|".join(f"/{i}" for i in range(400)))
    (wild,) = parse.parse_filters("event:page==" + "|".join(f"*/{i}*x*" for i in range(10)))
    rows = [f"/{i}/{'y' * 50}" for i in range(300 * 365)]
    with within_seconds(10):
        assert sum(map(many.matches, rows)) == 0
        assert sum(map(wild.matches, rows)) == 0
