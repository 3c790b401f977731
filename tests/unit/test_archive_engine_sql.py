"""The archive engine's SQL: Trino (Athena) parses it, user values only ever travel as
parameters, and values with quotes, LIKE wildcards, backslashes and unicode match exactly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from core.sites import Site
from query_api import parse
from query_api.archive_engine import (
    ArchiveEngine,
    Ask,
    Source,
    counters_for,
    like_pattern,
    sql_for,
    units_of,
)
from tests.unit.archive_traffic import SITE, random_events, write_with_duplicates

SPAN = parse.DateRange(date(2026, 10, 25), date(2026, 11, 2))
ALL = "visitors,visits,pageviews,events,bounce_rate,visit_duration"
HOSTILE = "x' OR '1'='1\\; DROP TABLE events --"  # `\\;` is a `;` inside a value
QUESTIONS = [
    ("visit:source==Google;visit:country==US", "event:page", "visitors,pageviews,bounce_rate"),
    ("event:page==/blog*;visit:source!=Google", "visit:source", ALL),
    ("event:props:plan==pro", "event:props:plan", "visitors,events"),
    ("visit:entry_page==/a|/b", "event:goal", "visitors,events,conversion_rate"),
    ("event:page==/blog", None, "visitors,pageviews,time_on_page,scroll_depth"),
    ("event:page==/blog", "event:page", "visitors,pageviews,time_on_page,scroll_depth"),
    (f"visit:source=={HOSTILE}", "event:hostname", ALL),
]


def ask_for(filters: str, prop: str | None, metrics: str, interval: str = "") -> Ask:
    parsed = parse.parse_property(prop) if prop else None
    return Ask(
        parse.parse_filters(filters),
        parsed,
        counters_for(metrics.split(",")),
        units_of(SPAN, interval),
    )


@pytest.mark.parametrize(("filters", "prop", "metrics"), QUESTIONS)
@pytest.mark.parametrize("interval", ["", "day", "hour"])
def test_the_statement_parses_as_trino(
    filters: str, prop: str | None, metrics: str, interval: str
) -> None:
    site = Site(SITE, tz="Europe/Berlin", goals=("Signup", "Visit /pricing"))
    source = Source("trino", site=SITE, first_day="2026-10-24", last_day="2026-11-03")
    text, params = sql_for(site, ask_for(filters, prop, metrics, interval), source, span=SPAN)
    tree = sqlglot.parse_one(text, read="trino")
    assert tree.find(exp.Select) is not None
    assert text.count("?") == len(params)
    assert "read_parquet" not in text and "MATERIALIZED" not in text
    # and DuckDB's own text is the same statement but for the source and the hints
    duck, _ = sql_for(site, ask_for(filters, prop, metrics, interval), Source("duckdb", ("f",)))
    sqlglot.parse_one(duck.replace("MATERIALIZED ", ""), read="duckdb")


def test_filter_values_never_appear_in_the_statement_text() -> None:
    site = Site(SITE, tz="Europe/Berlin")
    for dialect in ("duckdb", "trino"):
        source = Source(dialect, files=("a.parquet",), site=SITE, first_day="a", last_day="b")
        text, params = sql_for(
            site, ask_for(f"visit:source=={HOSTILE};event:page==/it's*", "event:page", ALL), source
        )
        value = HOSTILE.replace("\\;", ";")
        assert value not in text and "DROP" not in text and "it's" not in text
        assert value in params and like_pattern("/it's*") in params


@pytest.mark.parametrize(
    ("pattern", "like"),
    [
        ("/blog*", "/blog%"),
        ("/100%*", "/100\\%%"),
        ("*_x", "%\\_x"),
        ("/a\\b*", "/a\\\\b%"),
        ("**/ü**", "%/ü%"),
    ],
)
def test_wildcards_become_escaped_like_patterns(pattern: str, like: str) -> None:
    assert like_pattern(pattern) == like


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_with_duplicates(random_events(9, count=500), tmp_path_factory.mktemp("q"), 9)


def pageviews(files: list[Path], filters: str) -> int:
    site = Site(SITE, tz="Europe/Berlin")
    query = parse.Query(site, SPAN, parse.parse_filters(filters), ("pageviews",))
    return int(ArchiveEngine(site, files).aggregate(query)["pageviews"]["value"] or 0)


@pytest.mark.parametrize(
    ("filters", "same_as"),
    [
        # `%` and `_` are themselves, never LIKE's wildcards
        ("event:page==/100%*", "event:page==/100%"),
        ("event:page==*_x", "event:page==/blog_x"),
        ("event:page==/a\\b*", "event:page==/a\\b"),
        ("event:page==*'s", "event:page==/it's"),
        ("event:page==/ü*", "event:page==/ü/ñ"),
        ("visit:source==news 'daily'*", "visit:source==news 'daily'"),
        ("visit:source==50%*", "visit:source==50%_off"),
    ],
)
def test_values_with_quotes_wildcards_backslashes_and_unicode_match_exactly(
    files: list[Path], filters: str, same_as: str
) -> None:
    assert pageviews(files, filters) == pageviews(files, same_as) > 0


def test_a_hostile_value_matches_nothing_and_breaks_nothing(files: list[Path]) -> None:
    assert pageviews(files, f"visit:source=={HOSTILE}") == 0
    assert pageviews(files, f"visit:source!={HOSTILE}") == pageviews(files, "")
    assert pageviews(files, "event:page==%") == 0 and pageviews(files, "event:page==_") == 0
