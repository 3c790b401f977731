"""The local outbox (decision 0038): the mail SES "sent" on the local stack, as a page.

moto runs in this process (ThreadedMotoServer), so its SES backend's sent messages are read from
the backend object itself; nothing leaves the machine. The local front serves the page at
`/_local/outbox` (a list, newest first) and `/_local/outbox/<id>` (one message: its HTML part, or
its text); the deployed query function has no such route, and CloudFront sends only `/api/*` to
it. A message's HTML is shown under a CSP without scripts, as a mail client would.
"""

from __future__ import annotations

import email
import email.policy
import html
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

PATH = "/_local/outbox"
PAGE_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "x-content-type-options": "nosniff",
}


@dataclass(frozen=True)
class OutboxMail:
    id: str
    to: str
    subject: str
    date: str
    text: str
    html: str
    headers: dict[str, str]


def _backends() -> list[Any]:
    from moto.ses.models import ses_backends

    found = []
    for account in list(ses_backends):
        for region in list(ses_backends[account]):
            found.append(ses_backends[account][region])
    return found


def sent() -> list[OutboxMail]:
    """Every message moto's SES took, oldest first."""
    out = []
    for backend in _backends():
        for message in list(backend.sent_messages):
            raw = getattr(message, "raw_data", None)
            if raw is None:  # a Simple message (nothing of ours sends one)
                body = str(getattr(message, "body", ""))
                to = ", ".join(getattr(message, "destinations", {}).get("ToAddresses", []))
                out.append(OutboxMail(message.id, to, message.subject, "", body, "", {}))
                continue
            parsed = email.message_from_string(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            text_part = parsed.get_body(("plain",))
            html_part = parsed.get_body(("html",))
            out.append(
                OutboxMail(
                    message.id,
                    str(parsed.get("To", "")),
                    str(parsed.get("Subject", "")),
                    str(parsed.get("Date", "")),
                    text_part.get_content() if text_part else "",
                    html_part.get_content() if html_part else "",
                    {k: str(v) for k, v in parsed.items()},
                )
            )
    return out


def serve(path: str) -> tuple[int, bytes]:
    """(status, HTML) for a GET of the outbox's `path`."""
    messages = sent()
    if path.rstrip("/") == PATH:
        return 200, _listing(messages).encode()
    wanted = path[len(PATH) + 1 :].strip("/")
    for message in messages:
        if message.id == wanted:
            return 200, (message.html or f"<pre>{html.escape(message.text)}</pre>").encode()
    return 404, b"<p>No such message in the outbox.</p>"


def _listing(messages: list[OutboxMail]) -> str:
    rows = "".join(
        f'<tr><td>{html.escape(m.date)}</td><td>{html.escape(m.to)}</td><td><a href="{PATH}/'
        f'{html.escape(m.id)}">{html.escape(m.subject)}</a></td></tr>'
        for m in reversed(messages)
    )
    empty = "" if messages else "<p>Nothing sent yet.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Local outbox</title></head>"
        "<body style='font-family:sans-serif;margin:24px'><h1>Local outbox</h1>"
        "<p>Mail the local stack sent through SES (moto): nothing leaves this machine.</p>"
        f"{empty}<table cellpadding='6'><tr><th>Date</th><th>To</th><th>Subject</th></tr>"
        f"{rows}</table></body></html>"
    )
