"""The one line an alert or resolved message says, for every kind of rule: the webhook's `text`,
Slack's body and the email's subject use it (alerts/deliver.py takes a queued message's `text`).
Pure: the message as alerts/detect.py queues it."""

from __future__ import annotations

from typing import Any

from alerts.rules import DROP, FIRED, REFERRER, SPIKE


def describe(message: dict[str, Any]) -> str:
    rule, value, site = message["rule"], message["value"], message["site"]
    detail = message.get("detail") or ""
    fired = message["type"] == FIRED
    kind, threshold, window = rule["kind"], rule["threshold"], rule["window_minutes"]
    if kind == SPIKE:
        what = f"{value} current visitors"
        return (
            f"{site}: {what} (above {threshold})"
            if fired
            else (f"Resolved, {site}: {what} ({threshold} or fewer)")
        )
    if kind == DROP:
        if fired:
            return f"{site}: no pageviews for {window} minutes, in an hour that usually has traffic"
        return f"Resolved, {site}: pageviews again ({value} in the latest minute with any)"
    if kind == REFERRER:
        if fired:
            return (
                f"{site}: new top referrer today: {detail} ({value} visitors), not in the previous"
                " 28 days' top 10"
            )
        top = f"{detail}, a source of the previous 28 days" if detail else "no new source"
        return f"Resolved, {site}: today's top referrer is {top}"
    what = f"{rule['goal']}: {value} conversions in {window} minutes"
    return (
        f"{site}: {what} (reached {threshold})"
        if fired
        else (f"Resolved, {site}: {what} (below {threshold})")
    )
