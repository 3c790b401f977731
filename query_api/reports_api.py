"""Email reports' routes (decision 0038).

Admin (session and CSRF as every admin route): `GET /api/admin/sites/{domain}/reports` (the
site's subscriptions and the latest reports sent) and `PUT` (replace the subscriptions).

Public (no session: the link in the mail is the credential): `GET /api/reports/unsubscribe`
shows a page that confirms, `POST` to the same URL unsubscribes — what the page's button and a
mail client's one-click button (RFC 8058: `List-Unsubscribe=One-Click` in the body) send. A GET
never unsubscribes: mail scanners open links. A link whose token does not match its site,
address and kind gets a 403; a malformed one a 400.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from core import settings
from core.aws import make_client
from core.mail import MAX_ADDRESS_LENGTH, MailError, normal_address
from query_api.admin import Domain, _domain, admin_router, site_errors
from query_api.auth import SecretSource
from query_api.deps import OVERRIDES, Deps, QueryDeps
from query_api.errors import BadRequest, ErrorOut, Forbidden, Unavailable
from reports import unsubscribe
from reports.schedule import KINDS
from reports.store import MAX_RECIPIENTS, ReportError, ReportStore, validate

report_routes = admin_router()
public_routes = APIRouter(dependency_overrides_provider=OVERRIDES, tags=["reports"])

Kind = Literal["weekly", "monthly"]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=MAX_ADDRESS_LENGTH)
    kinds: list[Kind] = Field(max_length=len(KINDS))


class ReportsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscriptions: list[SubscriptionIn] = Field(max_length=MAX_RECIPIENTS)


class ReportsOut(BaseModel):
    subscriptions: list[dict[str, Any]]
    sent: list[dict[str, Any]]


def store_of(d: QueryDeps) -> ReportStore:
    client, table = d.sites.meta
    return ReportStore(client, table)


def _out(store: ReportStore, site: str) -> ReportsOut:
    return ReportsOut(
        subscriptions=[s.out() for s in store.subscriptions(site, consistent=True)],
        sent=store.sent(site),
    )


@report_routes.get("/sites/{domain}/reports", response_model=ReportsOut)
def get_reports(domain: Domain, d: Deps) -> ReportsOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    return _out(store_of(d), site.domain)


@report_routes.put("/sites/{domain}/reports", response_model=ReportsOut)
def put_reports(domain: Domain, body: ReportsIn, d: Deps) -> ReportsOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    try:
        subs = validate((s.email, s.kinds) for s in body.subscriptions)
    except ReportError as exc:
        raise BadRequest(str(exc)) from None
    store = store_of(d)
    store.replace(site.domain, subs)
    return _out(store, site.domain)


# ---- the signed link ---------------------------------------------------------------------------


def link_key() -> bytes:
    # Read per request, not cached: a click on a link is rare, and an instance's cache would
    # outlive a rotated key. (The sign-in's SecretSource, without its cache in play.)
    found = SecretSource(settings.load(settings.QuerySettings), lambda: make_client("ssm")).get()
    if found is None:
        raise Unavailable("unsubscribing is unavailable; try again later")
    return unsubscribe.link_key(found.session_secret)


# Other routes' models put ErrorOut in the document's schemas; named here for JSON errors of an
# HTML route (a `model` would be documented as the route's text/html).
ERROR_SCHEMA = f"#/components/schemas/{ErrorOut.__name__}"
LINK_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "An HTML page", "content": {"text/html": {}}},
    # Errors are JSON, as everywhere, although the page itself is HTML
    400: {
        "description": "A malformed link",
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}},
    },
    403: {
        "description": "A link whose token does not match",
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA}}},
    },
}
SiteParam = Annotated[str, Query(min_length=1, max_length=253)]
EmailParam = Annotated[str, Query(min_length=3, max_length=MAX_ADDRESS_LENGTH)]
TokenParam = Annotated[str, Query(min_length=1, max_length=100)]


def _checked(site: str, email: str, kind: str, token: str) -> str:
    try:
        address = normal_address(email)
    except MailError as exc:
        raise BadRequest(str(exc)) from None
    if not unsubscribe.valid(link_key(), site, address, kind, token):
        raise Forbidden("this unsubscribe link is not valid: it was changed, or is not ours")
    return address


def _page(site: str, address: str, kind: str, token: str, done: bool) -> HTMLResponse:
    from reports.content import environment

    action = unsubscribe.link("", link_key(), site, address, kind)
    html = (
        environment()
        .get_template("unsubscribe.html")
        .render(site=site, email=address, kind=kind, done=done, action=action)
    )
    return HTMLResponse(html, headers={"cache-control": "no-store"})


@public_routes.get(unsubscribe.PATH, response_class=HTMLResponse, responses=LINK_ERRORS)
def confirm_unsubscribe(
    site: SiteParam, email: EmailParam, kind: Kind, token: TokenParam
) -> HTMLResponse:
    address = _checked(site, email, kind, token)
    return _page(site, address, kind, token, done=False)


@public_routes.post(unsubscribe.PATH, response_class=HTMLResponse, responses=LINK_ERRORS)
def do_unsubscribe(
    site: SiteParam, email: EmailParam, kind: Kind, token: TokenParam, d: Deps
) -> HTMLResponse:
    address = _checked(site, email, kind, token)
    store_of(d).unsubscribe(site, address, kind)  # done already: the same answer
    return _page(site, address, kind, token, done=True)
