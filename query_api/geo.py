"""Display names of the location dimensions: a country's and a region's English name from their
ISO codes (query_api/data/geo_names.json, generated from pycountry by scripts/geo_names.py),
a city's as CloudFront names it (stored so). The codes stay what is stored, filtered and
exported; names are what the dashboard shows and v2's `visit:*_name` dimensions answer.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "geo_names.json"
# v2's name dimensions → the stored dimension they name
NAMED = {
    "visit:country_name": "visit:country",
    "visit:region_name": "visit:region",
    "visit:city_name": "visit:city",
}


@lru_cache(maxsize=1)
def _table() -> dict[str, dict[str, str]]:
    table: dict[str, dict[str, str]] = json.loads(TABLE.read_text(encoding="utf-8"))
    return table


def country_name(code: str) -> str:
    """ "Germany" for "DE"; the code itself when it is none we know."""
    return _table()["countries"].get(code, code)


def region_name(code: str) -> str:
    """ "Bavaria" for "DE-BY"; the code itself when it is none we know."""
    return _table()["regions"].get(code, code)


def names_of(short: str) -> dict[str, str]:
    """Every code of `country` or `region` → its name."""
    return _table()["countries" if short == "country" else "regions"]


def display(dimension: str, value: str) -> str:
    """A stored value as people read it, for a dimension by its short name (`country`) or as
    the API spells it (`visit:country`, `visit:country_name`); other values as they are."""
    short = NAMED.get(dimension, dimension).removeprefix("visit:")
    if short == "country":
        return country_name(value)
    if short == "region":
        return region_name(value)
    return value
