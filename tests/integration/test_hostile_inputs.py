"""Hostile requests against every public route: never a 5xx, and nothing stored from a refused one.

The routes are the tracker endpoints (Plausible's /api/event, Umami's /api/send and /api/batch)
and every operation of the query API's OpenAPI document (test_every_public_route_is_attacked
keeps the list whole), each request sent as API Gateway builds it through the real handlers.
The events, aggregates and meta tables are scanned before and after each request; a refused one
(4xx, a tracker's 202 with `x-plausible-dropped`, Umami's bot answer) must leave them as they were.
Failed sign-ins are the one thing a refused request stores on purpose (the rate limit's counters).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from core.sites import MAX_CACHED_SITES
from local.front import INGEST_PATHS, api_gateway_event
from tests.integration.admin_client import ORIGIN, PASSWORD, SECRET, Browser
from tests.integration.pipeline import DESKTOP_UA, Pipeline, Response

SITE = "hostile.example"
PUBLIC = "open.example"
NOW = datetime(2026, 11, 7, 12, 0, tzinfo=UTC)
GOOD = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
CSV_INJECTION = "=cmd|' /C calc'!A0"
NON_LATIN_1 = "Ωμέγα"


@dataclass(frozen=True)
class Case:
    id: str
    route: str  # the route attacked, as the OpenAPI document names it: "GET /api/realtime"
    path: str  # what is sent: the path, percent-encoded, and its query string
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # True: must store nothing, whatever it answers; None: judged by its answer (a refusal)
    stores_nothing: bool | None = None
    status: int | None = None  # the answer's status, where only one is right
    signed_in: bool = False  # with the admin's session cookie and CSRF token
    stored_on_purpose: tuple[str, ...] = ()  # meta pk prefixes a refusal may write
    method: str = ""  # the wrong method for the route, if that is the attack

    @property
    def sent_method(self) -> str:
        return self.method or self.route.split(" ", 1)[0]


@dataclass
class World:
    pipeline: Pipeline
    key: str
    admin: Browser


def _case(route: str, path: str, case_id: str, **kwargs: Any) -> Case:
    return Case(case_id, route, path, **kwargs)


def _q(value: str) -> str:
    return quote(value, safe="")


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---- the tracker endpoints --------------------------------------------------------------------

EVENT = "POST /api/event"


def _event(case_id: str, body: bytes, **kwargs: Any) -> Case:
    return _case(EVENT, "/api/event", case_id, body=body, **kwargs)


def _event_with(case_id: str, refused: bool | None = True, **fields: Any) -> Case:
    return _event(case_id, _json({**GOOD, **fields}), stores_nothing=refused)


PLAUSIBLE: list[Case] = [
    # oversized bodies
    _event("body-70kb-of-props", _json({**GOOD, "p": {"k": "x" * 70_000}}), status=400),
    _event("body-1mb", b"a" * (1024 * 1024), status=400),
    _event("body-just-over-64kb", b"{" + b" " * (64 * 1024) + b"}", status=400),
    # wrong content types
    _event(
        "form-encoded",
        b"n=pageview&u=https%3A%2F%2Fhostile.example%2F",
        headers={"content-type": "application/x-www-form-urlencoded"},
        status=400,
    ),
    _event(
        "multipart",
        b'--x\r\nContent-Disposition: form-data; name="n"\r\n\r\npageview\r\n--x--',
        headers={"content-type": "multipart/form-data; boundary=x"},
        status=400,
    ),
    _event(
        "png-bytes", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), headers={"content-type": "image/png"}
    ),
    _event("xml", b"<event><n>pageview</n></event>", headers={"content-type": "application/xml"}),
    _event(
        "json-as-octet-stream", _json(GOOD), headers={"content-type": "application/octet-stream"}
    ),
    # invalid JSON
    _event("empty-body", b"", status=400),
    _event("truncated-json", b'{"n":"pageview","u":"https://hostile.example/"', status=400),
    _event("single-quotes", b"{'n': 'pageview'}", status=400),
    _event("nan-name", b'{"n":NaN,"u":"https://hostile.example/"}', status=400),
    _event(
        "infinity-width",
        b'{"n":"pageview","u":"https://hostile.example/","w":Infinity}',
        status=400,
    ),
    _event("bom-prefixed", b"\xef\xbb\xbf" + _json(GOOD), status=400),
    _event("trailing-garbage", _json(GOOD) + b"}}}", status=400),
    _event(
        "nul-between-tokens", b'{"n":"pageview",\x00"u":"https://hostile.example/"}', status=400
    ),
    _event("not-utf8", b"\xff\xfe\x00garbage", status=400),
    _event("overlong-utf8", b'{"n":"\xc0\xaf","u":"https://hostile.example/"}', status=400),
    _event(
        "lone-surrogate-url", rb'{"n":"pageview","u":"https://hostile.example/\ud800"}', status=400
    ),
    _event("lone-surrogate-name", rb'{"n":"\udfff","u":"https://hostile.example/"}', status=400),
    _event(
        "lone-surrogate-prop-key",
        rb'{"n":"x","u":"https://hostile.example/","p":{"\udc00":"v"}}',
        status=400,
    ),
    _event("empty-object", b"{}", status=400),
    _event("empty-array", b"[]", status=400),
    _event("null", b"null", status=400),
    _event("a-number", b"1e999999", status=400),
    _event(
        "5000-digit-integer",
        b'{"n":"pageview","u":"https://hostile.example/","w":' + b"9" * 5000 + b"}",
        status=400,
    ),
    # deeply nested JSON
    _event("nested-arrays", b"[" * 60_000, status=400),
    _event("nested-objects", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, status=400),
    _event(
        "nested-props",
        _json({**GOOD, "p": json.loads('{"a":' * 500 + "1" + "}" * 500)}),
        status=400,
    ),
    _event("nested-props-string", _json({**GOOD, "p": "[" * 100_000}), status=400),
    _event("nested-batch", _json([[GOOD]]), status=400),
    # the engagement an SPA pageview carries (`l`, decision 0041): a refusal, or the pageview alone
    _event_with("left-a-string", l="https://hostile.example/"),
    _event_with("left-an-array", l=[{"u": f"https://{SITE}/", "sd": 1, "e": 1}]),
    _event_with("left-nested", l=json.loads('{"u":' * 500 + "1" + "}" * 500), refused=None),
    _event_with("left-other-origin", l={"u": "https://elsewhere.example/", "e": 1}, refused=None),
    _event_with("left-bad-values", l={"u": {"x": 1}, "sd": "deep", "e": -5}, refused=None),
    _event_with("left-javascript-url", l={"u": "javascript:alert(1)", "e": 1}, refused=None),
    # unicode and otherwise invalid domains
    _event_with("domain-500-dotted-capital-i", d="İ" * 500),
    _event_with("domain-300-dotted-capital-i", d="İ" * 300),
    _event_with("domain-unicode", d="bücher.de"),
    _event_with("domain-cjk", d="例え.jp"),
    _event_with("domain-emoji", d="💥.com"),
    _event_with("domain-rtl-override", d="\u202eelpmaxe.com"),
    _event_with("domain-zero-width-space", d="hostile\u200b.example"),
    _event_with(
        "domain-fullwidth", d="".join(chr(0xFEE0 + ord(c)) for c in "hostile") + ".example"
    ),
    _event_with("domain-nul", d=SITE + "\x00"),
    _event_with("domain-crlf", d=SITE + "\r\nx-injected: 1"),
    _event_with("domain-254-chars", d="a" * 254),
    _event_with("domain-label-64", d="a" * 64 + ".example"),
    _event_with("domain-star", d="*." + SITE),
    _event_with("domain-path-traversal", d="../../etc/passwd"),
    _event_with("domain-percent-ff", d="%ff.example"),
    _event_with("domain-1000-commas", refused=None, d="," * 1000),  # the page host
    _event_with("domain-ten-invalid-and-the-site", d=",".join(["İ" * 90] * 10 + [SITE])),
    _event_with("domain-punycode-unknown", d="xn--bcher-kva.de"),
    _event_with("domain-unknown", d="unknown.example"),
    _event_with("page-host-1000-dotted-capital-i", d=None, u="https://" + "İ" * 990 + "/"),
    _event_with("page-host-ipv6", d=None, u="https://[::1]/"),
    _event_with("page-host-percent", d=None, u="https://%ff.example/"),
    _event_with("page-host-overlong", d=None, u="https://" + "a" * 1900 + ".example/"),
    # huge and overflowing numbers
    _event_with("width-10-to-the-309", w=10**309),
    _event_with("width-negative", w=-1),
    _event_with("width-fraction", refused=None, w=1.5),
    _event_with("scroll-10-to-the-40", n="engagement", sd=10**40),
    _event_with("engaged-negative", n="engagement", e=-1),
    _event_with("engaged-string", n="engagement", e="Infinity"),
    _event_with("revenue-nan", n="Buy", **{"$": {"currency": "EUR", "amount": "NaN"}}),
    _event_with("revenue-infinity", n="Buy", **{"$": {"currency": "EUR", "amount": "-Infinity"}}),
    _event_with(
        "revenue-huge-exponent",
        refused=None,
        n="Buy",
        **{"$": {"currency": "EUR", "amount": "1e999999999"}},
    ),
    _event_with(
        "revenue-40-digits", refused=None, n="Buy", **{"$": {"currency": "EUR", "amount": 10**40}}
    ),
    _event_with("revenue-currency-crlf", n="Buy", **{"$": {"currency": "EU\r\n", "amount": "1"}}),
    # CRLF, NUL and control characters in values
    _event_with("name-crlf", refused=None, n="pageview\r\nSet-Cookie: a=b"),
    _event_with("name-nul", refused=None, n="sign\x00up"),
    _event_with("name-121-chars", n="x" * 121),
    _event_with("url-crlf", refused=None, u=f"https://{SITE}/\r\nSet-Cookie: a=b"),
    _event_with("url-encoded-crlf", refused=None, u=f"https://{SITE}/%0d%0aSet-Cookie:%20a=b"),
    _event_with("url-nul", refused=None, u=f"https://{SITE}/a\x00b"),
    _event_with("referrer-crlf", refused=None, r="https://ref.example/\r\nx"),
    _event_with(
        "props-crlf-and-nul", refused=None, n="Signup", p={"k\r\n": "v\r\n", "\x00": "\x00"}
    ),
    _event_with("props-key-301-bytes", p={"k" * 301: "v"}),
    _event_with("props-value-2001-bytes", p={"k": "v" * 2001}),
    _event_with("props-31", p={f"k{i}": i for i in range(31)}),
    _event_with("props-csv-injection", refused=None, n="Signup", p={CSV_INJECTION: "=1+1"}),
    # invalid UTF-8 in percent-encodings
    _event_with("url-percent-ff", refused=None, u=f"https://{SITE}/%ff%fe"),
    _event_with("url-percent-overlong-slash", refused=None, u=f"https://{SITE}/%c0%af"),
    _event_with("url-percent-surrogate", refused=None, u=f"https://{SITE}/?utm_source=%ed%a0%80"),
    _event_with("referrer-percent-ff", refused=None, r="https://ref.example/%ff"),
    # URLs: hostile schemes, long ones
    _event_with("url-javascript", u="javascript:alert(1)"),
    _event_with("url-data", u="data:text/html,<script>alert(1)</script>"),
    _event_with("url-file", u="file:///etc/passwd"),
    _event_with("url-no-host", u="https://"),
    _event_with("url-bad-ipv6", u="https://[::1/"),
    _event_with("url-2001-bytes", u=f"https://{SITE}/" + "a" * 1990),
    _event_with(
        "url-2000-bytes-of-dotted-capital-i", refused=None, u=f"https://{SITE}/" + "İ" * 980
    ),
    # batches
    _event("batch-of-51", _json([GOOD] * 51), status=400),
    _event(
        "batch-50-events-10-unknown-domains-each",
        _json(
            [
                {**GOOD, "d": ",".join(f"s{i}-{j}.flood.example" for j in range(10))}
                for i in range(50)
            ]
        ),
        stores_nothing=True,
    ),
    _event(
        "batch-50-events-10-invalid-domains-each",
        _json([{**GOOD, "d": ",".join(["İ" * 99] * 10)} for _ in range(50)]),
        stores_nothing=True,
    ),
    _event("batch-with-one-bad-event", _json([GOOD, {"n": "pageview"}]), status=400),
    # methods and headers
    _case(EVENT, "/api/event", "get", method="GET", status=405, stores_nothing=True),
    _case(
        "OPTIONS /api/event",
        "/api/event",
        "options-10kb-request-headers",
        headers={"access-control-request-headers": "x" * 10_000},
        stores_nothing=True,
    ),
    _event("user-agent-10kb", _json(GOOD), headers={"user-agent": "Mozilla/5.0 " + "x" * 10_000}),
    _event("user-agent-empty", _json(GOOD), headers={"user-agent": ""}, stores_nothing=True),
    _event(
        "forwarded-for-garbage",
        _json(GOOD),
        headers={"x-forwarded-for": "not-an-ip, ::::, 999.1.1.1"},
    ),
    _event(
        "viewer-address-garbage", _json(GOOD), headers={"cloudfront-viewer-address": "[[::1]]:x"}
    ),
    _event("viewer-country-garbage", _json(GOOD), headers={"cloudfront-viewer-country": "X\tX"}),
]
SEND = "POST /api/send"
BATCH = "POST /api/batch"


def _umami(case_id: str, refused: bool | None = True, kind: str = "event", **payload: Any) -> Case:
    call = {"type": kind, "payload": {"website": SITE, "hostname": SITE, "url": "/", **payload}}
    return _case(SEND, "/api/send", case_id, body=_json(call), stores_nothing=refused)


UMAMI: list[Case] = [
    _case(SEND, "/api/send", "send-not-json", body=b"{", status=400),
    _case(SEND, "/api/send", "send-null", body=b"null", status=400),
    _case(SEND, "/api/send", "send-nested", body=b"[" * 60_000, status=400),
    _case(SEND, "/api/send", "send-over-64kb", body=b" " * 70_000, status=400),
    _case(
        SEND,
        "/api/send",
        "send-lone-surrogate",
        body=rb'{"type":"event","payload":{"website":"\ud800"}}',
        status=400,
    ),
    _case(
        SEND,
        "/api/send",
        "send-payload-a-list",
        body=_json({"type": "event", "payload": []}),
        status=400,
    ),
    _case(
        SEND,
        "/api/send",
        "send-type-unknown",
        body=_json({"type": "x", "payload": {"website": SITE}}),
        status=400,
    ),
    _case(SEND, "/api/send", "send-get", method="GET", status=405, stores_nothing=True),
    _umami("website-253-dotted-capital-i", website="İ" * 253),
    _umami("website-254-chars", website="a" * 254),
    _umami("website-unicode", website="bücher.de"),
    _umami("website-nul", website=SITE + "\x00"),
    _umami("website-crlf-stripped", refused=None, website=SITE + "\r\n"),
    _umami("website-crlf-inside", website=SITE + "\r\nx-injected: 1"),
    _umami("website-star", website="*"),
    _umami("website-path-traversal", website="../../etc/passwd"),
    _umami("website-a-number", website=42),
    _umami("website-unknown", website="unknown.example"),
    _umami("website-unknown-uuid", website="2ffbbd54-0d6d-5a6a-a4a4-7a4d2d1b9c3e"),
    _umami("website-uuid-urn", website="urn:uuid:2ffbbd54-0d6d-5a6a-a4a4-7a4d2d1b9c3e"),
    _umami("hostname-dotted-capital-i", hostname="İ" * 100),
    _umami("hostname-300-chars", hostname="a" * 300),
    _umami("hostname-bad-ipv6", hostname="[::1"),
    _umami("hostname-crlf-stripped", refused=None, hostname=SITE + "\r\n"),
    _umami("hostname-crlf-inside", hostname=SITE + "\r\nx-injected: 1"),
    _umami("url-javascript", url="javascript:alert(1)"),
    _umami("url-protocol-relative", refused=None, url="//evil.example/x"),
    _umami("url-percent-ff", refused=None, url="/%ff%fe"),
    _umami("url-3000-bytes", url="/" + "a" * 3000),
    _umami("url-a-number", url=1e308),
    _umami("title-percent-ff", refused=None, title="%ff%fe%"),
    _umami("title-1000-percents", refused=None, title="%" * 400),
    _umami("title-overlong", title="x" * 600),
    _umami("screen-huge", refused=None, screen="99999999x1"),
    _umami("screen-exponent", refused=None, screen="1e9x1"),
    _umami("data-nested-50", name="x", data=json.loads('{"a":' * 50 + "1" + "}" * 50)),
    _umami("data-31-keys", name="x", data={f"k{i}": i for i in range(31)}),
    _umami("data-huge-array", name="x", data={"k": list(range(5000))}),
    _umami("data-csv-injection", refused=None, name="x", data={CSV_INJECTION: "1"}),
    _umami("name-121-chars", name="x" * 121),
    _umami("identify-with-personal-data", kind="identify", id="u-1", data={"email": "a@b.c"}),
    _case(BATCH, "/api/batch", "batch-empty", body=b"[]", status=400),
    _case(BATCH, "/api/batch", "batch-an-object", body=b"{}", status=400),
    _case(
        BATCH,
        "/api/batch",
        "batch-of-51",
        body=_json([{"type": "event", "payload": {"website": SITE}}] * 51),
        status=400,
    ),
    _case(BATCH, "/api/batch", "batch-of-numbers", body=_json([1, 2, 3]), stores_nothing=True),
    _case(
        BATCH,
        "/api/batch",
        "batch-50-invalid-websites",
        body=_json([{"type": "event", "payload": {"website": "İ" * 253, "url": "/"}}] * 50),
        stores_nothing=True,
    ),
    _case(
        BATCH,
        "/api/batch",
        "batch-50-unknown-websites",
        body=_json(
            [
                {"type": "event", "payload": {"website": f"w{i}.flood.example", "url": "/"}}
                for i in range(50)
            ]
        ),
        stores_nothing=True,
    ),
    _case(BATCH, "/api/batch", "batch-nested", body=b"[" * 60_000, status=400),
    _case(
        BATCH,
        "/api/batch",
        "batch-lone-surrogate",
        body=rb'[{"type":"event","payload":{"website":"a\udfff"}}]',
        status=400,
    ),
]


# ---- the query API --------------------------------------------------------------------------------

STATS_ROUTES = {
    "/api/v1/stats/aggregate": "",
    "/api/v1/stats/timeseries": "",
    "/api/v1/stats/breakdown": "&property=event:page",
    "/api/stats/aggregate": "",
    "/api/stats/timeseries": "",
    "/api/stats/breakdown": "&property=page",
    "/api/cards/metrics": "",
    "/api/cards/graph": "",
    "/api/cards/breakdown": "&property=page",
    "/api/cards/props": "",
    "/api/cards/breakdown.csv": "&property=page",
    "/api/cards/export.zip": "",
    "/api/stats/funnel": "&funnel_id=0123456789ab",
    "/api/stats/journeys": "&entry=/",
}
REALTIME_ROUTES = (
    "/api/v1/stats/realtime/visitors",
    "/api/realtime",
    "/api/realtime/card",
    "/api/stats/funnels",
    "/api/stats/segments",
)
STARS_AND_AS = "*" * 10 + "a" * 40
# (id, query string after site_id and the route's own parameters)
STATS_VARIANTS: list[tuple[str, str]] = [
    ("filter-prop-key-1900", f"&filters={_q('event:props:' + 'k' * 1_900 + '==x')}"),
    ("period-bogus", "&period=bogus"),
    ("period-empty", "&period="),
    ("period-7d-at-0001-01-03", "&period=7d&date=0001-01-03"),
    ("period-day-at-9999-12-31", "&period=day&date=9999-12-31"),
    ("period-30d-at-0001-01-01", "&period=30d&date=0001-01-01"),
    ("period-12mo-at-9999-12-31", "&period=12mo&date=9999-12-31"),
    ("period-month-at-0001-01-01", "&period=month&date=0001-01-01"),
    ("custom-0001-to-9999", "&period=custom&date=0001-01-01,9999-12-31"),
    ("custom-reversed", "&period=custom&date=2026-11-07,2026-11-01"),
    ("date-february-30", "&period=day&date=2026-02-30"),
    ("date-year-5-digits", "&period=day&date=99999-01-01"),
    ("filter-10-stars-40-as", f"&filters={_q('event:page==' + STARS_AND_AS)}"),
    ("filter-many-stars", f"&filters={_q('event:page==' + '*' * 200)}"),
    ("filter-regex-like", f"&filters={_q('event:page==/(a+)+$|^.*(x|y)*$')}"),
    (
        "filter-500-or-values",
        f"&filters={_q('event:page==' + '|'.join(f'/p{i}' for i in range(500)))}",
    ),
    (
        "filter-500-wildcard-or-values",
        f"&filters={_q('event:page==' + '|'.join(f'*{i}*a*' for i in range(500)))}",
    ),
    ("filter-100-ands", f"&filters={_q(';'.join(['visit:source==Google'] * 100))}"),
    ("filter-crlf", "&filters=" + _q("event:page==/a\r\nSet-Cookie: x=y")),
    ("filter-nul", f"&filters={_q('event:page==/a' + chr(0))}"),
    ("filter-invalid-utf8", "&filters=event:page%3D%3D%2F%ff%fe"),
    ("filter-unknown-property", f"&filters={_q('event:nope==x')}"),
    ("filter-long-prop-name", f"&filters={_q('event:props:' + 'x' * 5000 + '==1')}"),
    ("metrics-500", f"&metrics={','.join(['visitors'] * 500)}"),
    ("metrics-unknown", "&metrics=__class__"),
    ("site-id-500-dotted-capital-i", ""),  # site_id replaced below
    ("site-id-200-dotted-capital-i", ""),
    ("long-url-100kb", f"&filters={_q('event:page==/' + 'a' * 100_000)}"),
]
BREAKDOWN_VARIANTS: list[tuple[str, str]] = [
    ("property-csv-injection", f"&property={_q('event:props:' + CSV_INJECTION)}"),
    ("property-non-latin-1", f"&property={_q('event:props:' + NON_LATIN_1)}"),
    ("property-unknown", "&property=visit:nope"),
    ("property-long", f"&property={_q('visit:' + 'x' * 10_000)}"),
    ("property-prop-key-1900", f"&property={_q('event:props:' + 'k' * 1_900)}"),
    ("limit-zero", "&limit=0"),
    ("limit-negative", "&limit=-1"),
    ("limit-10-to-the-40", f"&limit={10**40}"),
    ("page-10-to-the-40", f"&page={10**40}"),
    ("limit-not-a-number", "&limit=abc"),
]


def _query_cases() -> list[Case]:
    cases: list[Case] = []
    for route, own in STATS_ROUTES.items():
        for variant, query in STATS_VARIANTS:
            site = SITE
            if variant == "site-id-500-dotted-capital-i":
                site = "İ" * 500
            elif variant == "site-id-200-dotted-capital-i":
                site = "İ" * 200
            path = f"{route}?site_id={_q(site)}{own}{query}"
            cases.append(Case(f"{route}-{variant}", f"GET {route}", path, stores_nothing=True))
        if "breakdown" in route:
            for variant, query in BREAKDOWN_VARIANTS:
                if "property" in variant:
                    path = f"{route}?site_id={SITE}{query}"
                else:
                    path = f"{route}?site_id={SITE}{own}{query}"
                cases.append(Case(f"{route}-{variant}", f"GET {route}", path, stores_nothing=True))
    for route in REALTIME_ROUTES:
        for variant, site in [
            ("site-id-500-dotted-capital-i", "İ" * 500),
            ("site-id-200-dotted-capital-i", "İ" * 200),
            ("site-id-uppercase-www", "WWW." + SITE.upper()),
            ("site-id-nul", SITE + "\x00"),
            ("site-id-crlf", SITE + "\r\n"),
            ("site-id-star", "*"),
            ("site-id-unknown", "unknown.example"),
        ]:
            cases.append(
                Case(
                    f"{route}-{variant}",
                    f"GET {route}",
                    f"{route}?site_id={_q(site)}",
                    stores_nothing=True,
                )
            )
        cases.append(
            Case(
                f"{route}-site-id-invalid-utf8",
                f"GET {route}",
                f"{route}?site_id=%ff%fe.example",
                stores_nothing=True,
            )
        )
        cases.append(Case(f"{route}-no-site-id", f"GET {route}", route, stores_nothing=True))
        cases.append(
            Case(
                f"{route}-share-token-10kb",
                f"GET {route}",
                f"{route}?site_id={SITE}&auth={'x' * 10_000}",
                stores_nothing=True,
            )
        )
    return cases


SIGN_IN = "POST /api/auth/login"
LOGIN_COUNTERS = ("LOGIN#",)


def _login(case_id: str, body: bytes, content_type: str = "application/json") -> Case:
    # A refused sign-in may count a failure (the rate limit's counters): nothing else.
    return _case(
        SIGN_IN,
        "/api/auth/login",
        case_id,
        body=body,
        headers={"content-type": content_type},
        stores_nothing=True,
        stored_on_purpose=LOGIN_COUNTERS,
    )


AUTH: list[Case] = [
    _login("login-not-json", b"{"),
    _login("login-nested", b"[" * 60_000),
    _login("login-password-a-number", _json({"password": 123})),
    _login("login-password-10kb", _json({"password": "x" * 10_000})),
    _login("login-extra-fields", _json({"password": "x", "admin": True, "__proto__": {}})),
    _login("login-lone-surrogate", rb'{"password":"\ud800"}'),
    _login("login-form-nul", b"password=%00", "application/x-www-form-urlencoded"),
    _login("login-form-invalid-utf8", b"password=%ff%fe", "application/x-www-form-urlencoded"),
    _login(
        "login-form-crlf", b"password=a%0d%0aSet-Cookie:%20x", "application/x-www-form-urlencoded"
    ),
    _login("login-text-plain", _json({"password": "x"}), "text/plain"),
    _login("login-wrong-password", _json({"password": "wrong"})),
    _login("login-1mb", b"a" * (1024 * 1024)),
    _case(
        "GET /api/auth/me", "/api/auth/me", "me-without-a-session", stores_nothing=True, status=401
    ),
    _case(
        "GET /api/auth/me",
        "/api/auth/me",
        "me-garbage-cookie",
        headers={"cookie": "li_session=" + "x" * 4000},
        stores_nothing=True,
    ),
    _case(
        "GET /api/auth/me",
        "/api/auth/me",
        "me-cookie-crlf",
        headers={"cookie": "li_session=a\tb; x=%00"},
        stores_nothing=True,
    ),
    _case(
        "POST /api/auth/logout", "/api/auth/logout", "logout-without-a-session", stores_nothing=True
    ),
    _case(
        "POST /api/auth/logout",
        "/api/auth/logout",
        "logout-garbage-cookie",
        headers={"cookie": "li_session=%ff%fe"},
        stores_nothing=True,
    ),
]

ADMIN_ROUTES = [
    ("GET", "/api/admin/sites"),
    ("POST", "/api/admin/sites"),
    ("GET", "/api/admin/sites/{domain}"),
    ("PATCH", "/api/admin/sites/{domain}"),
    ("DELETE", "/api/admin/sites/{domain}"),
    ("GET", "/api/admin/sites/{domain}/keys"),
    ("POST", "/api/admin/sites/{domain}/keys"),
    ("DELETE", "/api/admin/sites/{domain}/keys/{key_id}"),
    ("GET", "/api/admin/sites/{domain}/goals"),
    ("POST", "/api/admin/sites/{domain}/goals"),
    ("DELETE", "/api/admin/sites/{domain}/goals"),
    ("GET", "/api/admin/sites/{domain}/shares"),
    ("POST", "/api/admin/sites/{domain}/shares"),
    ("DELETE", "/api/admin/sites/{domain}/shares/{share_id}"),
    ("GET", "/api/admin/sites/{domain}/export"),
    ("GET", "/api/admin/sites/{domain}/segments"),
    ("POST", "/api/admin/sites/{domain}/segments"),
    ("GET", "/api/admin/sites/{domain}/segments/{segment_id}"),
    ("PATCH", "/api/admin/sites/{domain}/segments/{segment_id}"),
    ("DELETE", "/api/admin/sites/{domain}/segments/{segment_id}"),
    ("GET", "/api/admin/sites/{domain}/funnels"),
    ("POST", "/api/admin/sites/{domain}/funnels"),
    ("GET", "/api/admin/sites/{domain}/funnels/{funnel_id}"),
    ("DELETE", "/api/admin/sites/{domain}/funnels/{funnel_id}"),
    ("POST", "/api/admin/sites/{domain}/imports"),
    ("GET", "/api/admin/sites/{domain}/imports"),
    ("DELETE", "/api/admin/sites/{domain}/imports/{import_id}"),
    ("GET", "/api/admin/sites/{domain}/alerts"),
    ("POST", "/api/admin/sites/{domain}/alerts"),
    ("GET", "/api/admin/sites/{domain}/alerts/deliveries"),
    ("DELETE", "/api/admin/sites/{domain}/alerts/{rule_id}"),
    ("GET", "/api/admin/sites/{domain}/reports"),
    ("PUT", "/api/admin/sites/{domain}/reports"),
]
ADMIN_BODIES = {
    "PUT /api/admin/sites/{domain}/reports": _json(
        {"subscriptions": [{"email": "a@example.com", "kinds": ["weekly"]}]}
    ),
    "POST /api/admin/sites/{domain}/imports": b"date,visitors\n2026-01-01,1\n",
    "POST /api/admin/sites": _json({"domain": "new.example"}),
    "PATCH /api/admin/sites/{domain}": _json({"public": True}),
    "POST /api/admin/sites/{domain}/goals": _json({"goal": "Signup"}),
    "POST /api/admin/sites/{domain}/shares": _json({"label": "x"}),
    "POST /api/admin/sites/{domain}/segments": _json(
        {"name": "x", "filters": [["is", "visit:source", ["x"]]]}
    ),
    "PATCH /api/admin/sites/{domain}/segments/{segment_id}": _json({"name": "y"}),
    "POST /api/admin/sites/{domain}/funnels": _json({"name": "x", "steps": ["Visit /", "Signup"]}),
    "POST /api/admin/sites/{domain}/alerts": _json(
        {"kind": "spike", "threshold": 5, "webhook": {"url": "http://127.0.0.1:9/hook"}}
    ),
}
HOSTILE_DOMAINS = {
    "site": SITE,
    "500-dotted-capital-i": _q("İ" * 500),
    "invalid-utf8": "%ff%fe.example",
    "nul": "a%00.example",
    "traversal": "..%2F..%2Fetc",
}


def _admin_cases() -> list[Case]:
    cases: list[Case] = []
    for method, template in ADMIN_ROUTES:
        route = f"{method} {template}"
        for name, domain in HOSTILE_DOMAINS.items():
            if "{domain}" not in template and name != "site":
                continue
            path = template.replace("{domain}", domain).replace("{key_id}", "all")
            path = path.replace("{share_id}", "all").replace("{segment_id}", "1")
            path = path.replace("{funnel_id}", "0123456789ab").replace("{rule_id}", "0123456789ab")
            path = path.replace("{import_id}", "0123456789abcdef")
            if template.endswith("/goals") and method == "DELETE":
                path += "?goal=Signup"
            if template.endswith("/export"):
                path += "?from=2026-01-01&to=2026-01-02"
            body = ADMIN_BODIES.get(f"{method} {template}", b"")
            headers = {"content-type": "application/json"} if body else {}
            for auth, extra in [
                ("no-session", {}),
                ("forged-session", {"cookie": "li_session=forged.forged.forged"}),
            ]:
                cases.append(
                    Case(
                        f"{method}-{template}-{name}-{auth}",
                        route,
                        path,
                        body=body,
                        headers={**headers, **extra},
                        stores_nothing=True,
                    )
                )
    return cases


def _signed_in(
    case_id: str, method: str, template: str, path: str, body: Any, **kwargs: Any
) -> Case:
    return Case(
        case_id,
        f"{method} {template}",
        path,
        body=_json(body),
        headers={"content-type": "application/json"},
        signed_in=True,
        stores_nothing=True,
        **kwargs,
    )


SITES = "/api/admin/sites"
ONE_SITE = "/api/admin/sites/{domain}"
SIGNED_IN: list[Case] = [
    _signed_in("add-domain-500-dotted-capital-i", "POST", SITES, SITES, {"domain": "İ" * 500}),
    _signed_in("add-domain-200-dotted-capital-i", "POST", SITES, SITES, {"domain": "İ" * 200}),
    _signed_in("add-domain-unicode", "POST", SITES, SITES, {"domain": "bücher.de"}),
    _signed_in("add-domain-254-chars", "POST", SITES, SITES, {"domain": "a" * 254}),
    _signed_in("add-domain-nul", "POST", SITES, SITES, {"domain": "a\x00.example"}),
    _signed_in("add-domain-a-list", "POST", SITES, SITES, {"domain": ["a.example"]}),
    _signed_in(
        "add-tz-traversal", "POST", SITES, SITES, {"domain": "tz.example", "tz": "../../etc/passwd"}
    ),
    _signed_in("add-tz-nul", "POST", SITES, SITES, {"domain": "tz.example", "tz": "UTC\x00"}),
    _signed_in(
        "add-hostname-dotted-capital-i",
        "POST",
        SITES,
        SITES,
        {"domain": "h.example", "hostnames": ["İ" * 200]},
    ),
    _signed_in(
        "add-hostname-crlf",
        "POST",
        SITES,
        SITES,
        {"domain": "h.example", "hostnames": ["a.example\r\nx-injected: 1"]},
    ),
    _signed_in("add-goal-nul", "POST", SITES, SITES, {"domain": "g.example", "goals": ["a\x00"]}),
    _signed_in(
        "add-101-goals",
        "POST",
        SITES,
        SITES,
        {"domain": "g.example", "goals": [f"g{i}" for i in range(101)]},
    ),
    _signed_in("add-existing-site", "POST", SITES, SITES, {"domain": SITE}),
    _signed_in("patch-tz-bogus", "PATCH", ONE_SITE, f"{SITES}/{SITE}", {"tz": "Mars/Olympus_Mons"}),
    _signed_in(
        "patch-unknown-site", "PATCH", ONE_SITE, f"{SITES}/unknown.example", {"public": True}
    ),
    _signed_in(
        "patch-extra-field", "PATCH", ONE_SITE, f"{SITES}/{SITE}", {"domain": "other.example"}
    ),
    _signed_in(
        "patch-domain-500-dotted-capital-i",
        "PATCH",
        ONE_SITE,
        f"{SITES}/{_q('İ' * 500)}",
        {"public": True},
    ),
    _signed_in(
        "goal-crlf", "POST", ONE_SITE + "/goals", f"{SITES}/{SITE}/goals", {"goal": "Visit /a\r\nb"}
    ),
    _signed_in(
        "goal-star", "POST", ONE_SITE + "/goals", f"{SITES}/{SITE}/goals", {"goal": "Visit /a*"}
    ),
    _signed_in(
        "share-label-nul",
        "POST",
        ONE_SITE + "/shares",
        f"{SITES}/{SITE}/shares",
        {"label": "a\x00"},
    ),
    _signed_in(
        "share-label-long",
        "POST",
        ONE_SITE + "/shares",
        f"{SITES}/{SITE}/shares",
        {"label": "x" * 101},
    ),
    Case(
        "post-without-csrf",
        "POST /api/admin/sites",
        SITES,
        body=_json({"domain": "csrf.example"}),
        headers={"content-type": "application/json", "x-csrf-token": "forged"},
        signed_in=True,
        stores_nothing=True,
        status=403,
    ),
    Case(
        "post-from-another-origin",
        "POST /api/admin/sites",
        SITES,
        body=_json({"domain": "csrf.example"}),
        headers={"content-type": "application/json", "origin": "https://evil.example"},
        signed_in=True,
        stores_nothing=True,
        status=403,
    ),
]

SEGMENTS, FUNNELS = ONE_SITE + "/segments", ONE_SITE + "/funnels"
ONE_SEGMENT = SEGMENTS + "/{segment_id}"
DEEP = '["not",' * 2_000 + '["is","visit:source",["x"]]' + "]" * 2_000  # JSON text
SIGNED_IN += (
    [
        _signed_in(f"segment-{name}", "POST", SEGMENTS, f"{SITES}/{SITE}/segments", body)
        for name, body in [
            ("filters-a-string", {"name": "x", "filters": "visit:source==x"}),
            ("filters-empty", {"name": "x", "filters": []}),
            ("filters-unknown-dimension", {"name": "x", "filters": [["is", "visit:x", ["a"]]]}),
            ("filters-names-a-segment", {"name": "x", "filters": [["is", "segment", [1]]]}),
            ("filters-9kb", {"name": "x", "filters": [["is", "visit:source", ["a" * 9000]]]}),
            ("name-nul", {"name": "a\x00", "filters": [["is", "visit:source", ["a"]]]}),
            ("name-empty", {"name": "", "filters": [["is", "visit:source", ["a"]]]}),
            ("name-a-list", {"name": ["a"], "filters": [["is", "visit:source", ["a"]]]}),
            ("extra-field", {"name": "a", "filters": [["is", "visit:source", ["a"]]], "id": 7}),
        ]
    ]
    + [
        Case(
            "segment-filters-2000-deep",
            f"POST {SEGMENTS}",
            f"{SITES}/{SITE}/segments",
            body=('{"name":"x","filters":[' + DEEP + "]}").encode(),
            headers={"content-type": "application/json"},
            signed_in=True,
            stores_nothing=True,
        )
    ]
    + [
        _signed_in(f"segment-patch-{name}", "PATCH", ONE_SEGMENT, f"{SITES}/{SITE}/segments/{i}", b)
        for name, i, b in [
            ("unknown-id", "7", {"name": "x"}),
            ("id-zero", "0", {"name": "x"}),
            ("id-10-to-the-40", str(10**40), {"name": "x"}),
            ("id-not-a-number", "abc", {"name": "x"}),
        ]
    ]
    + [
        _signed_in(f"funnel-{name}", "POST", FUNNELS, f"{SITES}/{SITE}/funnels", body)
        for name, body in [
            ("one-step", {"name": "x", "steps": ["Visit /"]}),
            ("nine-steps", {"name": "x", "steps": [f"Visit /{i}" for i in range(9)]}),
            ("step-nul", {"name": "x", "steps": ["Visit /a\x00", "Signup"]}),
            ("step-crlf", {"name": "x", "steps": ["Visit /a\r\nb", "Signup"]}),
            ("step-eleven-stars", {"name": "x", "steps": ["Visit /" + "*a" * 11, "Signup"]}),
            ("steps-a-string", {"name": "x", "steps": "Visit /"}),
            ("name-500", {"name": "x" * 500, "steps": ["Visit /", "Signup"]}),
        ]
    ]
)

ALERTS = ONE_SITE + "/alerts"
HOOK = {"url": "https://a.example/"}
SIGNED_IN += [
    _signed_in(f"alert-{name}", "POST", ALERTS, f"{SITES}/{SITE}/alerts", body)
    for name, body in [
        ("kind-unknown", {"kind": "drop", "threshold": 1, "webhook": HOOK}),
        ("threshold-zero", {"kind": "spike", "threshold": 0, "webhook": HOOK}),
        ("url-javascript", {"kind": "spike", "threshold": 1, "webhook": {"url": "javascript:x"}}),
        ("url-file", {"kind": "spike", "threshold": 1, "webhook": {"url": "file:///etc/passwd"}}),
        (
            "url-crlf",
            {"kind": "spike", "threshold": 1, "webhook": {"url": "https://a.example/\r\nx: y"}},
        ),
        (
            "url-10kb",
            {"kind": "spike", "threshold": 1, "webhook": {"url": "https://a/" + "a" * 10_000}},
        ),
        (
            "goal-wildcard",
            {"kind": "goal", "goal": "Visit /a*", "threshold": 1, "webhook": HOOK},
        ),
        ("goal-blank", {"kind": "goal", "goal": " ", "threshold": 1, "webhook": HOOK}),
        ("drop-threshold", {"kind": "drop", "threshold": 1, "webhook": HOOK}),
        ("referrer-window", {"kind": "new_referrer", "window_minutes": 5, "webhook": HOOK}),
        ("no-target", {"kind": "spike", "threshold": 1}),
        ("emails-bad", {"kind": "spike", "threshold": 1, "emails": ["a@b", "x" * 300]}),
        ("emails-six", {"kind": "drop", "emails": [f"a{i}@b.example" for i in range(6)]}),
        ("webhook-a-string", {"kind": "spike", "threshold": 1, "webhook": "https://a.example/"}),
        ("extra-field", {"kind": "spike", "threshold": 1, "webhook": HOOK, "x": 1}),
    ]
]

V2 = "POST /api/v2/query"


def _v2(case_id: str, body: bytes, **kwargs: Any) -> Case:
    headers = {"content-type": "application/json", "authorization": "Bearer {key}"}
    headers = kwargs.pop("headers", headers)
    return Case(f"v2-{case_id}", V2, "/api/v2/query", body=body, headers=headers, **kwargs)


V2_OK: dict[str, Any] = {"site_id": SITE, "metrics": ["visitors"], "date_range": "7d"}
SIGNED_IN += [
    _v2("not-json", b"{not json", stores_nothing=True, status=400),
    _v2("empty", b"", stores_nothing=True, status=400),
    _v2("a-list", _json([V2_OK]), stores_nothing=True, status=400),
    _v2("site-id-a-number", _json({**V2_OK, "site_id": 7}), stores_nothing=True, status=400),
    _v2("site-id-500", _json({**V2_OK, "site_id": "İ" * 500}), stores_nothing=True),
    _v2("site-id-unknown", _json({**V2_OK, "site_id": "x.example"}), stores_nothing=True),
    _v2("metrics-10k", _json({**V2_OK, "metrics": ["visitors"] * 10_000}), stores_nothing=True),
    _v2("metrics-nul", _json({**V2_OK, "metrics": ["visitors\x00"]}), stores_nothing=True),
    _v2("range-year-0", _json({**V2_OK, "date_range": ["0000-01-01", "0000-01-02"]})),
    _v2("range-0001-9999", _json({**V2_OK, "date_range": ["0001-01-01", "9999-12-31"]})),
    _v2("range-datetimes-bogus", _json({**V2_OK, "date_range": ["2026-01-01T99:00:00Z", "x"]})),
    _v2("dimensions-100", _json({**V2_OK, "dimensions": ["visit:source"] * 100})),
    _v2("filters-2000-deep", (_json(V2_OK)[:-1].decode() + ',"filters":[' + DEEP + "]}").encode()),
    _v2(
        "filters-10k-values",
        _json({**V2_OK, "filters": [["is", "event:page", [f"/{i}" for i in range(10_000)]]]}),
    ),
    _v2(
        "matches-catastrophic",
        _json({**V2_OK, "filters": [["matches", "event:page", ["(a*)*b" + "a" * 900]]]}),
    ),
    _v2("matches-invalid", _json({**V2_OK, "filters": [["matches", "event:page", ["(["]]]})),
    _v2(
        "contains-sql-quote",
        _json({**V2_OK, "filters": [["contains", "event:page", ["'; DROP TABLE x;--"]]]}),
    ),
    _v2("segment-unknown", _json({**V2_OK, "filters": [["is", "segment", [10**40]]]})),
    _v2("limit-10-to-the-40", _json({**V2_OK, "pagination": {"limit": 10**40}})),
    _v2("offset-negative", _json({**V2_OK, "pagination": {"offset": -1}})),
    _v2("order-by-unknown", _json({**V2_OK, "order_by": [["nope", "sideways"]]})),
    _v2("include-garbage", _json({**V2_OK, "include": {"x": True}})),
    _v2("props-key-5kb", _json({**V2_OK, "dimensions": ["event:props:" + "k" * 5000]})),
    _v2("no-key", _json(V2_OK), headers={"content-type": "application/json"}, status=401),
]

EXPORT = "/api/admin/sites/{domain}/export"
SIGNED_IN += [
    Case(
        f"export-{name}",
        f"GET {EXPORT}",
        f"{SITES}/{SITE}/export?{query}",
        signed_in=True,
        stores_nothing=True,
    )
    for name, query in [
        ("format-traversal", "from=2026-01-01&to=2026-01-01&format=..%2F..%2Fetc%2Fpasswd"),
        ("format-nul", "from=2026-01-01&to=2026-01-01&format=csv%00"),
        ("from-invalid-utf8", "from=%ff%fe&to=2026-01-01"),
        ("to-before-from", "from=2026-01-02&to=2026-01-01"),
        ("ten-years", "from=2016-01-01&to=2026-01-01"),
        ("year-zero", "from=0000-01-01&to=0000-01-02"),
        ("february-30", "from=2026-02-30&to=2026-03-01"),
        ("no-range", "format=csv"),
        ("sql-quote", "from=2026-01-01'%3B--&to=2026-01-01"),
    ]
]

IMPORTS = "/api/admin/sites/{domain}/imports"
SIGNED_IN += [
    Case(
        f"import-{name}",
        f"{method} {IMPORTS}{suffix}",
        f"{SITES}/{SITE}/imports{path}",
        body=body,
        signed_in=True,
        stores_nothing=True,
    )
    for name, method, suffix, path, body in [
        ("binary-garbage", "POST", "", "?filename=x.csv", b"\x00\xff" * 500),
        ("zip-garbage", "POST", "", "?filename=x.zip", b"PK\x03\x04" + b"\xff" * 300),
        ("filename-traversal", "POST", "", "?filename=..%2F..%2Fetc%2Fpasswd", b"date\n"),
        ("filename-5kb", "POST", "", "?filename=" + "a" * 5000, b"date\n"),
        ("kind-garbage", "POST", "", "?filename=x.csv&kind=evil", b"date\n"),
        (
            "invalid-utf8",
            "POST",
            "",
            "?filename=imported_visitors_20260101_20260101.csv",
            b"date,visitors\n\xff\xfe,1\n",
        ),
        (
            "counts-huge",
            "POST",
            "",
            "?filename=imported_visitors_20260101_20260101.csv",
            b"date,visitors\n2026-01-01," + b"9" * 400 + b"\n",
        ),
        (
            "umami-bad-time",
            "POST",
            "",
            "?filename=e.csv&kind=umami",
            b"session_id,created_at,url_path,event_type\ns,%00,/,1\n",
        ),
        ("id-traversal", "DELETE", "/{import_id}", "/..%2F..%2Fmanifest", b""),
        ("id-unknown", "DELETE", "/{import_id}", "/0123456789abcdef", b""),
    ]
]

# Email reports' signed links (decision 0038): no session; a forged or broken link stores nothing.
_UNSUB = "/api/reports/unsubscribe"
_LINK = f"{_UNSUB}?site={SITE}&email=a%40example.com&kind=weekly&token="
UNSUBSCRIBE: list[Case] = [
    Case(f"unsubscribe-{method.lower()}-{name}", f"{method} {_UNSUB}", path, stores_nothing=True)
    for method in ("GET", "POST")
    for name, path in {
        "no-params": _UNSUB,
        "forged-token": _LINK + "A" * 43,
        "long-token": _LINK + "A" * 5000,
        "invalid-utf8": _UNSUB + "?site=%ff&email=%fe&kind=weekly&token=x",
        "nul-address": f"{_UNSUB}?site={SITE}&email=a%00%40example.com&kind=weekly&token=x",
        "bad-kind": f"{_UNSUB}?site={SITE}&email=a%40example.com&kind=daily&token=x",
        "crlf-address": f"{_UNSUB}?site={SITE}&email=a%0d%0aBcc%3a%40example.com&kind=weekly&token=x",
    }.items()
]

OTHER: list[Case] = [
    Case(
        "health-invalid-utf8-query", "GET /api/health", "/api/health?%ff=%fe", stores_nothing=True
    ),
    Case("openapi", "GET /api/openapi.json", "/api/openapi.json", stores_nothing=True, status=200),
    Case(
        "public-sites-invalid-utf8-query",
        "GET /api/v1/sites/public",
        "/api/v1/sites/public?x=%ff",
        stores_nothing=True,
    ),
    Case(
        "public-sites-post",
        "GET /api/v1/sites/public",
        "/api/v1/sites/public",
        body=b"x",
        stores_nothing=True,
        method="POST",
        status=405,
    ),
    Case(
        "cards-sites-garbage-cookie",
        "GET /api/cards/sites",
        "/api/cards/sites",
        headers={"cookie": "li_session=" + "x" * 4000},
        stores_nothing=True,
    ),
    Case(
        "cards-sites-long-query",
        "GET /api/cards/sites",
        "/api/cards/sites?" + "a=b&" * 5000,
        stores_nothing=True,
    ),
    Case("unknown-route", "GET /api/nope", "/api/nope", stores_nothing=True, status=404),
    Case("traversal-route", "GET /api/nope", "/api/..%2F..%2Fetc%2Fpasswd", stores_nothing=True),
    Case("nul-in-path", "GET /api/nope", "/api/realtime%00", stores_nothing=True),
    Case("long-path", "GET /api/nope", "/api/" + "a" * 10_000, stores_nothing=True),
    Case(
        "stats-delete",
        "GET /api/v1/stats/aggregate",
        f"/api/v1/stats/aggregate?site_id={SITE}",
        stores_nothing=True,
        status=405,
        method="DELETE",
    ),
    Case(
        "bearer-10kb",
        "GET /api/v1/stats/aggregate",
        f"/api/v1/stats/aggregate?site_id={SITE}",
        headers={"authorization": "Bearer " + "x" * 10_000},
        stores_nothing=True,
        status=401,
    ),
    Case(
        "basic-auth",
        "GET /api/v1/stats/aggregate",
        f"/api/v1/stats/aggregate?site_id={SITE}",
        headers={"authorization": "Basic YWRtaW46YWRtaW4="},
        stores_nothing=True,
        status=401,
    ),
    Case(
        "bearer-nul",
        "GET /api/v1/stats/aggregate",
        f"/api/v1/stats/aggregate?site_id={SITE}",
        headers={"authorization": "Bearer li_\x00"},
        stores_nothing=True,
        status=401,
    ),
]

CASES: list[Case] = [
    *PLAUSIBLE,
    *UMAMI,
    *_query_cases(),
    *AUTH,
    *_admin_cases(),
    *SIGNED_IN,
    *OTHER,
    *UNSUBSCRIBE,
]


# ---- the world they are sent to ------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_world(moto_endpoint: str) -> Iterator[World]:
    """A site with traffic (hostile-looking props included) counted, a public site, and the admin
    signed in; the ingest and query clocks fixed."""
    import ingest.handler
    import query_api.deps
    from query_api.app import app
    from query_api.auth import hash_password
    from tests.integration.pipeline import fresh_pipeline

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH", hash_password(PASSWORD))
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", SECRET)
    monkeypatch.setattr(ingest.handler, "now", lambda: NOW)
    with fresh_pipeline(moto_endpoint, f"hostile-{os.getpid()}") as pipeline:
        app.dependency_overrides[query_api.deps.clock] = lambda: NOW
        try:
            key = pipeline.add_site(SITE)
            pipeline.add_site(PUBLIC, public=True)
            for body in [
                GOOD,
                {**GOOD, "u": f"https://{SITE}/pricing?utm_source=news"},
                {"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": {CSV_INJECTION: "=1+1"}},
                {"n": "Signup", "u": f"https://{SITE}/", "d": SITE, "p": {NON_LATIN_1: "ü"}},
            ]:
                assert pipeline.send(body).status == 202
            pipeline.pump()
            admin = Browser(pipeline)
            assert admin.login().status == 200
            enforce_key_limits(ingest.handler.get_deps().sites._client)
            enforce_key_limits(query_api.deps.get_deps().sites._client)
            yield World(pipeline, key, admin)
        finally:
            app.dependency_overrides.pop(query_api.deps.clock, None)
            monkeypatch.undo()


# DynamoDB refuses a key attribute past these sizes (a ValidationException: a 500 for us); moto
# does not check them, so a key that a normalisation grew would pass here and fail in AWS.
MAX_KEY_BYTES = {"pk": 2048, "sk": 1024}


class KeyTooLong(Exception):
    pass


def enforce_key_limits(client: Any) -> None:
    """Make `client` refuse keys as DynamoDB does, before the call leaves."""

    def check(params: dict[str, Any], **_: Any) -> None:
        keyed = [params.get("Key"), params.get("Item"), params.get("ExclusiveStartKey")]
        values = params.get("ExpressionAttributeValues") or {}
        keyed.append({"pk": values.get(":pk"), "sk": values.get(":sk")})
        for item in keyed:
            for name, limit in MAX_KEY_BYTES.items():
                value = (item or {}).get(name) or {}
                if len(value.get("S", "").encode("utf-8", "surrogatepass")) > limit:
                    raise KeyTooLong(f"{name} over {limit} bytes")

    client.meta.events.register("provide-client-params.dynamodb.*", check)


def send(world: World, case: Case) -> Response:
    """The case as API Gateway delivers it; an exception out of a handler is Lambda's 500."""
    method = case.sent_method
    headers = {
        "host": "127.0.0.1:8000",
        "user-agent": DESKTOP_UA,
        "content-type": "text/plain",
        "cloudfront-viewer-address": "198.51.100.9:443",
    }
    if not case.route.startswith(("POST /api/event", "POST /api/send", "POST /api/batch")):
        headers.pop("content-type")
        if case.route.startswith("GET /api/") and "authorization" not in case.headers:
            headers["authorization"] = f"Bearer {world.key}"
    if "authorization" in case.headers and "{key}" in case.headers["authorization"]:
        case = replace(case, headers={**case.headers, "authorization": f"Bearer {world.key}"})
    if case.signed_in and case.route != V2:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in world.admin.jar.items())
        headers["x-csrf-token"] = world.admin.csrf
        headers["origin"] = ORIGIN
    headers.update(case.headers)
    event = api_gateway_event(method, case.path, headers, case.body, "127.0.0.1")
    path = event["rawPath"]
    function = world.pipeline.ingest_fn if path in INGEST_PATHS else world.pipeline.query_fn
    try:
        result = function.invoke(event)
    except Exception as exc:  # what Lambda answers for an unhandled error: a 500
        return Response(500, {}, f"{type(exc).__name__}: {exc}")
    return Response(
        result["statusCode"],
        {k.lower(): v for k, v in (result.get("headers") or {}).items()},
        result.get("body") or "",
        bool(result.get("isBase64Encoded")),
    )


def snapshot(world: World, stored_on_purpose: tuple[str, ...] = ()) -> dict[str, list[Any]]:
    tables: dict[str, list[Any]] = {}
    for logical in ("events", "aggregates", "meta"):
        items = world.pipeline.scan(logical)
        if logical == "meta":
            items = [i for i in items if not i["pk"]["S"].startswith(stored_on_purpose or ("\0",))]
        tables[logical] = sorted(items, key=lambda i: json.dumps(i, sort_keys=True, default=str))
    return tables


def refused(case: Case, response: Response) -> bool:
    """Whether the answer says that nothing was taken in."""
    if response.status >= 400 or response.status == 204:
        return True
    if response.headers.get("x-plausible-dropped") == "1":
        return True
    if case.route == SEND and response.body == json.dumps({"beep": "boop"}):
        return True
    if case.route == BATCH and response.status == 200:
        return bool(json.loads(response.body)["processed"] == 0)
    return False


# ---- the tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request_gets_no_5xx_and_a_refused_one_stores_nothing(
    hostile_world: World, case: Case
) -> None:
    world = hostile_world
    before = snapshot(world, case.stored_on_purpose)

    response = send(world, case)

    assert response.status < 500, response.body[:500]
    if case.status is not None:
        assert response.status == case.status, response.body[:500]
    if case.stores_nothing or refused(case, response):
        assert snapshot(world, case.stored_on_purpose) == before
    if (
        case.stores_nothing
        and case.route in (EVENT, SEND, BATCH)
        and case.id != "identify-with-personal-data"
    ):
        assert refused(case, response), (response.status, response.headers, response.body[:300])
    if case.route == "GET /api/cards/breakdown.csv" and response.status == 200:
        # A spreadsheet must not run a cell: none starts as a formula does
        rows = csv.reader(io.StringIO(response.raw.decode()))
        assert not [cell for row in rows for cell in row if cell.startswith(("=", "+", "@"))]


def test_the_corpus_holds_at_least_200_requests() -> None:
    assert len(CASES) >= 200


def test_every_public_route_is_attacked() -> None:
    from query_api.app import app

    routes = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    routes |= {EVENT, SEND, BATCH}
    attacked = {c.route for c in CASES}
    assert routes - attacked == set()


def test_a_flood_of_domains_in_one_body_leaves_the_site_cache_bounded(
    hostile_world: World,
) -> None:
    # Given the ingest instance's site store
    from ingest.handler import get_deps

    # When bodies of 50 events, each naming 10 distinct unknown domains, keep arriving
    for round_ in range(MAX_CACHED_SITES // 500 + 1):
        body = [
            {**GOOD, "d": ",".join(f"r{round_}-{i}-{j}.flood.example" for j in range(10))}
            for i in range(50)
        ]
        response = send(hostile_world, _event("flood", _json(body)))
        assert response.status == 202 and response.headers["x-plausible-dropped"] == "1"

    # Then the instance keeps at most its bound of sites in memory
    assert 0 < len(get_deps().sites._cache) <= MAX_CACHED_SITES


@pytest.mark.parametrize(
    ("site_id", "status"),
    [
        ("İ" * 200, 400),  # 400 bytes as sent, 600 once lowercased: never looked up
        ("bücher.de", 400),
        ("hostile.example\x00", 400),
        ("WWW.HOSTILE.EXAMPLE", 200),  # any spelling of the site's domain names it
        ("unknown.example", 401),  # a valid domain of no site: the key's error, as Plausible's
    ],
)
def test_site_id_is_read_as_a_domain_after_normalising(
    hostile_world: World, site_id: str, status: int
) -> None:
    response = send(
        hostile_world,
        Case("site-id", "GET /api/realtime", f"/api/realtime?site_id={_q(site_id)}"),
    )
    assert response.status == status, response.body
    if status == 400:
        assert response.json() == {"error": "site_id: must be a site's domain"}
