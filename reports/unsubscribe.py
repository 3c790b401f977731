"""Signed unsubscribe links (decision 0038): they work without signing in, for one site, one
address and one kind of report, and nobody can make one for another address.

The token is HMAC-SHA256 over `site \\n address \\n kind`, keyed with a key derived from the
deployment's session-signing key (SSM, terraform/secrets.tf): no new secret to create or rotate,
and the derivation (an HMAC of a fixed label) never exposes the session key itself. Rotating
the session key invalidates the links of reports already sent; the next report carries new ones.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

LABEL = b"liveinsight/report-unsubscribe/v1"
PATH = "/api/reports/unsubscribe"


def link_key(session_secret: bytes) -> bytes:
    return hmac.new(session_secret, LABEL, hashlib.sha256).digest()


def token(key: bytes, site: str, address: str, kind: str) -> str:
    mac = hmac.new(key, f"{site}\n{address}\n{kind}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def valid(key: bytes, site: str, address: str, kind: str, given: str) -> bool:
    return hmac.compare_digest(token(key, site, address, kind), given)


def link(base_url: str, key: bytes, site: str, address: str, kind: str) -> str:
    query = urllib.parse.urlencode(
        {"site": site, "email": address, "kind": kind, "token": token(key, site, address, kind)}
    )
    return f"{base_url.rstrip('/')}{PATH}?{query}"
