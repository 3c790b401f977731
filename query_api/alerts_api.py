"""Alert rules' admin routes (issue 23, decisions 0036 and 0037): `/api/admin/sites/{domain}/alerts`
(list, create, delete) and `/alerts/deliveries` (the webhook delivery log, newest first). A new
rule's webhook secret is in the creation's answer only. The JSON shapes of each kind are in
decision 0036 ("Admin API")."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts.deliver import MAX_LOGGED, DeliveryLog
from alerts.rules import (
    MAX_EMAIL_LENGTH,
    MAX_EMAILS,
    MAX_SECRET_LENGTH,
    MAX_THRESHOLD,
    MAX_URL_LENGTH,
    AlertError,
    RuleNotFound,
    RuleStore,
)
from query_api.admin import Domain, _domain, admin_router, site_errors
from query_api.deps import Deps, QueryDeps
from query_api.errors import BadRequest, NotFound

alert_routes = admin_router()
RuleId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    secret: str | None = Field(default=None, max_length=MAX_SECRET_LENGTH)
    format: Literal["json", "slack"] = "json"


class AlertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["spike", "goal", "drop", "new_referrer"]
    # spike and goal: required; drop: none; new_referrer: today's top source's fewest visitors
    threshold: int | None = Field(default=None, ge=1, le=MAX_THRESHOLD)
    goal: str | None = Field(default=None, max_length=300)
    window_minutes: int | None = Field(default=None, ge=1, le=1440)
    cooldown_seconds: int | None = Field(default=None, ge=0)
    # Where it goes: a webhook, email recipients, or both (at least one).
    webhook: WebhookIn | None = None
    emails: list[Annotated[str, Field(max_length=MAX_EMAIL_LENGTH)]] | None = Field(
        default=None, max_length=MAX_EMAILS
    )


class AlertsOut(BaseModel):
    alerts: list[dict[str, Any]]


class DeliveriesOut(BaseModel):
    deliveries: list[dict[str, Any]]


def store_of(d: QueryDeps) -> RuleStore:
    client, table = d.sites.meta
    return RuleStore(client, table)


@alert_routes.get("/sites/{domain}/alerts", response_model=AlertsOut)
def list_alerts(domain: Domain, d: Deps) -> AlertsOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    return AlertsOut(alerts=[r.out() for r in store_of(d).list(site.domain, consistent=True)])


@alert_routes.post("/sites/{domain}/alerts", status_code=201)
def add_alert(domain: Domain, body: AlertIn, d: Deps) -> dict[str, Any]:
    """The rule, with its webhook secret: shown this once."""
    with site_errors():
        site = d.sites.require(_domain(domain))
    hook = body.webhook
    try:
        rule = store_of(d).add(
            site.domain,
            body.kind,
            body.threshold,
            hook.url if hook else None,
            hook.secret if hook else None,
            hook.format if hook else "json",
            body.goal,
            body.window_minutes,
            body.cooldown_seconds,
            site.goals,
            emails=body.emails,
        )
    except AlertError as exc:
        raise BadRequest(str(exc)) from None
    out = rule.out()
    if out["webhook"]:
        out["webhook"]["secret"] = rule.target.secret
    return out


@alert_routes.delete("/sites/{domain}/alerts/{rule_id}", status_code=204)
def remove_alert(domain: Domain, rule_id: RuleId, d: Deps) -> None:
    with site_errors():
        site = d.sites.require(_domain(domain))
    try:
        store_of(d).remove(site.domain, rule_id)
    except RuleNotFound as exc:
        raise NotFound(str(exc)) from None


@alert_routes.get("/sites/{domain}/alerts/deliveries", response_model=DeliveriesOut)
def list_deliveries(
    domain: Domain, d: Deps, limit: Annotated[int, Query(ge=1, le=MAX_LOGGED)] = 20
) -> DeliveriesOut:
    with site_errors():
        site = d.sites.require(_domain(domain))
    client, table = d.sites.meta
    return DeliveriesOut(deliveries=DeliveryLog(client, table).recent(site.domain, limit))
