"""The admin's side of `liveinsight dev` over real HTTP: the printed password signs in, the cookie
comes back from the local front, an admin change needs the CSRF token, and a shared link made
with the CLI reads its site."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


def call(
    stack: Stack, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Message, Any]:
    request = urllib.request.Request(
        stack.url + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def test_the_printed_admin_password_signs_in_and_changes_need_the_csrf_token(
    stack: Stack,
) -> None:
    # Given the password `liveinsight dev` made and saved in its data dir
    password = (stack.data_dir / "admin-password").read_text().strip()
    assert len(password) >= 16
    # When the admin signs in
    status, headers, session = call(stack, "POST", "/api/auth/login", {"password": password})
    assert status == 200
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    sent = {"cookie": cookie.split(";")[0], "origin": stack.url}
    # Then a change without the CSRF token is refused, and with it accepted
    site = {"domain": "e2e-admin.example"}
    assert call(stack, "POST", "/api/admin/sites", site, sent)[0] == 403
    with_token = {**sent, "x-csrf-token": session["csrf_token"]}
    assert call(stack, "POST", "/api/admin/sites", site, with_token)[0] == 201
    assert call(stack, "DELETE", "/api/admin/sites/e2e-admin.example", None, with_token)[0] == 200
    # And after signing out the cookie opens nothing
    assert call(stack, "POST", "/api/auth/logout", None, with_token)[0] == 200
    assert call(stack, "GET", "/api/admin/sites", None, sent)[0] == 401


def test_a_shared_link_made_with_the_cli_reads_its_site_until_revoked(stack: Stack) -> None:
    stack.cli("site", "add", "e2e-share.example", "--json")
    link = stack.cli("share", "create", "--site", "e2e-share.example", "--json")
    assert link["url"].startswith(stack.url)
    path = f"/api/realtime?site_id=e2e-share.example&auth={link['token']}"

    assert call(stack, "GET", path)[0] == 200
    assert stack.cli(
        "share", "revoke", "--site", "e2e-share.example", "--share", link["id"], "--json"
    ) == {"revoked": 1}
    assert call(stack, "GET", path)[0] == 401
