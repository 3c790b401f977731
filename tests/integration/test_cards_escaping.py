"""Cards render event text as text and exports never hand a spreadsheet a formula; the sites
card lists what the caller may see, with current visitors (at the real clock)."""

from __future__ import annotations

import csv
import io
import re

from markupsafe import escape

from tests.integration.pipeline import Pipeline


def test_event_text_is_escaped_and_csv_cells_never_run_as_formulas(aws_env: dict[str, str]) -> None:
    pipeline = Pipeline(aws_env)
    key = pipeline.add_site("xss.example")
    hostile = '"><img src=x onerror=alert(1)><script>alert(1)</script>'
    body = {
        "n": "Signup",
        "u": "https://xss.example/<script>alert(1)</script>",
        "d": "xss.example",
        "r": "javascript:alert(1)",
        "p": {"note": hostile, "sum": '=HYPERLINK("http://evil")'},
    }
    assert pipeline.send(body).status == 202
    assert pipeline.send({**body, "n": "pageview"}).status == 202
    pipeline.pump()
    for prop in ("page", "prop:note", "prop:sum", "referrer", "source"):
        response = pipeline.get(
            f"/api/cards/breakdown?site_id=xss.example&period=day&property={prop}", key
        )
        assert response.status == 200
        assert "<script>" not in response.body and "<img" not in response.body
    note = pipeline.get(
        "/api/cards/breakdown?site_id=xss.example&period=day&property=prop:note", key
    )
    assert str(escape(hostile)) in note.body  # shown, as text
    exported = pipeline.get(
        "/api/cards/breakdown.csv?site_id=xss.example&period=day&property=prop:sum", key
    )
    (row,) = list(csv.DictReader(io.StringIO(exported.body)))
    assert row["sum"] == '\'=HYPERLINK("http://evil")'


def test_sites_card_lists_public_sites_with_current_visitors(aws_env: dict[str, str]) -> None:
    pipeline = Pipeline(aws_env)
    pipeline.add_site("open.example", public=True)
    pipeline.add_site("closed.example")
    assert (
        pipeline.send({"n": "pageview", "u": "https://open.example/", "d": "open.example"}).status
        == 202
    )
    pipeline.pump()
    fragment = pipeline.get("/api/cards/sites").body
    assert 'data-site="open.example"' in fragment and "closed.example" not in fragment
    current = re.search(r'data-testid="site-current">.*?data-value="(\d+)"', fragment, re.S)
    assert current and current.group(1) == "1"
