"""Email through Amazon SES (decision 0038): one MIME message, text and HTML parts, sent raw.

Raw (SES v2 `SendEmail` with `Content.Raw`) rather than `Content.Simple`, because a report needs
headers Simple cannot set: `List-Unsubscribe` and `List-Unsubscribe-Post` (RFC 8058 one-click).
One recipient per message: each report carries its recipient's own unsubscribe link, and an
alert's recipients do not see each other. The message's recipients come from its `To` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

MAX_ADDRESS_LENGTH = 254  # RFC 5321's path limit
# Plain addresses only (no quotes, comments or IP literals): what we send to and put in keys.
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)


class MailError(ValueError):
    """An address or a message SES would refuse."""


def normal_address(raw: str) -> str:
    """The address trimmed, its domain lower-cased; MailError for anything but a plain address."""
    address = raw.strip() if isinstance(raw, str) else ""
    if len(address) > MAX_ADDRESS_LENGTH or not _ADDRESS.fullmatch(address) or ".." in address:
        raise MailError(f"{str(raw)[:80]!r} is not an email address (name@example.com)")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)


def mime(mail: Mail, sender: str, sender_name: str = "LiveInsight") -> bytes:
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender))
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1])
    for name, value in mail.headers.items():
        message[name] = value
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message.as_bytes()


def send(ses: Any, mail: Mail, sender: str) -> str:
    """Send by SES v2 (raw); the message id. Raises what botocore raises (the caller retries)."""
    if not sender:
        raise MailError("no sender address: LIVEINSIGHT_EMAIL_FROM is not set")
    response = ses.send_email(
        FromEmailAddress=sender, Content={"Raw": {"Data": mime(mail, sender)}}
    )
    return str(response["MessageId"])
