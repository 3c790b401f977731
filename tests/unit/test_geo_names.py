"""The names table the query function ships (query_api/data/geo_names.json) is pycountry's, as
scripts/geo_names.py makes it; the dashboard and v2 name codes from it."""

from __future__ import annotations

import json

from query_api import geo
from scripts import geo_names


def test_the_shipped_names_table_equals_pycountrys() -> None:
    # regenerate with `.venv/bin/python -m scripts.geo_names` when pycountry is upgraded
    assert json.loads(geo.TABLE.read_text(encoding="utf-8")) == geo_names.names()


def test_codes_are_named_in_english() -> None:
    assert geo.display("country", "DE") == "Germany"
    assert geo.display("visit:country_name", "TW") == "Taiwan"
    assert geo.display("region", "DE-BY") == "Bavaria"  # pycountry's own name is "Bayern"
    assert geo.display("visit:region", "IT-RM") == "Rome"
    assert geo.display("city", "Munich") == "Munich"  # cities are stored by name


def test_an_unknown_code_is_shown_as_it_is() -> None:
    assert geo.display("region", "XX-99") == "XX-99"
    assert geo.display("country", "") == ""
