"""Sign-in through the real query handler: the cookie, sessions, CSRF and the login rate limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from core.aws import make_client
from core.edge import ORIGIN_HEADER
from local import tables
from tests.integration.admin_client import ORIGIN, Browser
from tests.integration.edge_client import ORIGIN_ENVIRONMENT, EdgeBrowser
from tests.integration.pipeline import Pipeline

NOW = datetime(2026, 11, 26, 12, 0, 5, tzinfo=UTC)
SITE_BODY = {"domain": "new.example"}


@pytest.fixture(autouse=True)
def origin_secret(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The query API knows the origin secret CloudFront adds, as in AWS (decision 0016); after
    aws_env, whose environment it overrides."""
    for name, value in ORIGIN_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)


@pytest.fixture()
def browser(pipeline: Pipeline) -> Browser:
    return EdgeBrowser(pipeline)  # through CloudFront


# ---- signing in and out --------------------------------------------------------------------------


def test_right_password_signs_in_with_a_strict_httponly_cookie(browser: Browser) -> None:
    reply = browser.login()

    assert reply.status == 200
    assert reply.json()["signed_in"] is True and len(reply.json()["csrf_token"]) == 64
    (cookie,) = reply.cookies
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert cookie.startswith("li_session=")
    assert {"httponly", "samesite=strict", "path=/api", "max-age=43200"} <= attributes
    assert "secure" not in attributes  # http://127.0.0.1: a Secure cookie would never come back


def test_cookie_is_secure_outside_localhost(pipeline: Pipeline) -> None:
    browser = Browser(pipeline, host="stats.example.com")
    (cookie,) = browser.login().cookies
    assert "secure" in {a.strip().lower() for a in cookie.split(";")[1:]}


def test_a_form_post_signs_in_too(browser: Browser) -> None:
    from tests.integration.admin_client import PASSWORD

    reply = browser.request("POST", "/api/auth/login", form={"password": PASSWORD})
    assert reply.status == 200 and browser.jar


@pytest.mark.parametrize("password", ["wrong password!", "", "correct horse battery stapl"])
def test_wrong_password_is_401_and_sets_no_cookie(browser: Browser, password: str) -> None:
    reply = browser.login(password)

    assert reply.status in (400, 401)
    assert "error" in reply.json()
    assert reply.cookies == [] and browser.jar == {}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"password=x", "text/plain"),
        (b"[]", ""),
        (b"[" * 60_000, "application/json"),  # deeper than json's recursion limit
        (b'{"password": ' * 5_000 + b"1" + b"}" * 5_000, "application/json"),
    ],
)
def test_malformed_login_is_a_400_with_a_message(
    browser: Browser, body: bytes, content_type: str
) -> None:
    from local.front import api_gateway_event

    event = api_gateway_event(
        "POST", "/api/auth/login", {"content-type": content_type}, body, "127.0.0.1"
    )
    result = browser.pipeline.query_fn.invoke(event)
    assert result["statusCode"] == 400
    assert "error" in result["body"]


def test_me_answers_the_sessions_csrf_token_and_401_when_signed_out(browser: Browser) -> None:
    assert browser.request("GET", "/api/auth/me").status == 401
    token = browser.login().json()["csrf_token"]

    me = browser.request("GET", "/api/auth/me")

    assert me.status == 200 and me.json()["csrf_token"] == token


def test_sign_out_ends_the_session_on_the_server(browser: Browser) -> None:
    browser.login()
    stolen = dict(browser.jar)

    reply = browser.request("POST", "/api/auth/logout")

    assert reply.status == 200 and browser.jar == {}
    assert any("max-age=0" in c.lower().replace(" ", "") for c in reply.cookies)
    # A copy of the cookie kept from before is worth nothing now
    browser.jar = stolen
    assert browser.request("GET", "/api/auth/me").status == 401
    assert browser.request("GET", "/api/admin/sites").status == 401


def test_sign_in_is_503_when_no_password_is_set(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH", "unset")
    reply = browser.login()
    assert reply.status == 503 and "RUNBOOK" in reply.json()["error"]


def test_unreadable_ssm_secrets_make_sign_in_unavailable_not_the_stats(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given secrets named in SSM that cannot be read
    monkeypatch.delenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH")
    monkeypatch.delenv("LIVEINSIGHT_SESSION_SECRET")
    monkeypatch.setenv("LIVEINSIGHT_ADMIN_PASSWORD_HASH_PARAMETER", "/nowhere/admin-password-hash")
    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET_PARAMETER", "/nowhere/session-signing-key")
    key = browser.pipeline.add_site("a.example")
    # Then sign-in answers 503, a stray cookie is ignored, and reads with a key work on
    assert browser.login().status == 503
    browser.jar["li_session"] = "anything"
    assert browser.request("GET", "/api/auth/me").status == 401
    read = browser.request(
        "GET", "/api/realtime?site_id=a.example", headers={"authorization": f"Bearer {key}"}
    )
    assert read.status == 200


# ---- cookies that must not work ------------------------------------------------------------------


def _forgeries(cookie: str) -> list[str]:
    payload, signature = cookie.rsplit(".", 1)
    # the first character: the last one's low bits are base64 padding, which decoding ignores
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    other = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")
    return [f"{payload}.{flipped}", f"{other}.{signature}", payload, "x" + cookie]


def test_tampered_cookie_is_rejected_everywhere(browser: Browser) -> None:
    browser.login()
    original = browser.jar["li_session"]

    for forged in _forgeries(original):
        browser.jar["li_session"] = forged
        assert browser.request("GET", "/api/auth/me").status == 401, forged
        assert browser.request("GET", "/api/admin/sites").status == 401, forged


def test_cookie_from_another_deployment_is_rejected(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a cookie signed with another secret (another deployment, or a rotated secret)
    browser.login()
    import query_api.deps

    monkeypatch.setenv("LIVEINSIGHT_SESSION_SECRET", "another-secret-" + "o" * 32)
    query_api.deps.get_deps.cache_clear()
    # Then it opens nothing
    assert browser.request("GET", "/api/auth/me").status == 401


def test_expired_session_is_rejected(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    set_clock(NOW)
    browser.login()
    set_clock(NOW + timedelta(hours=11, minutes=59))
    assert browser.request("GET", "/api/auth/me").status == 200
    set_clock(NOW + timedelta(hours=12, seconds=1))
    assert browser.request("GET", "/api/auth/me").status == 401
    assert browser.request("GET", "/api/admin/sites").status == 401


# ---- CSRF ------------------------------------------------------------------------------------------


def test_state_change_with_the_sessions_token_and_origin_is_allowed(browser: Browser) -> None:
    browser.login()
    reply = browser.request(
        "POST", "/api/admin/sites", json_body=SITE_BODY, headers={"origin": ORIGIN}
    )
    assert reply.status == 201, reply.body


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/admin/sites", SITE_BODY),
        ("PATCH", "/api/admin/sites/a.example", {"public": True}),
        ("DELETE", "/api/admin/sites/a.example", None),
        ("POST", "/api/admin/sites/a.example/keys", None),
        ("POST", "/api/admin/sites/a.example/shares", None),
        ("POST", "/api/admin/sites/a.example/goals", {"goal": "Signup"}),
        ("POST", "/api/auth/logout", None),
    ],
)
@pytest.mark.parametrize("token", [None, "", "0" * 64, "not-a-token"])
def test_state_change_without_the_csrf_token_is_403_and_changes_nothing(
    browser: Browser, method: str, path: str, body: object, token: str | None
) -> None:
    # Given a signed-in admin and a site
    browser.login()
    created = browser.request("POST", "/api/admin/sites", json_body={"domain": "a.example"})
    assert created.status == 201
    before = _meta(browser)
    # When a state-changing request comes with the cookie but a missing or wrong token
    headers = {} if token is None else {"x-csrf-token": token}
    reply = browser.request(method, path, json_body=body, headers=headers, with_csrf=False)
    # Then it is refused and nothing changed
    assert reply.status == 403, reply.body
    assert "CSRF" in reply.json()["error"]
    assert _meta(browser) == before


def _meta(browser: Browser) -> list[str]:
    return sorted(
        map(str, tables.scan_all(make_client("dynamodb"), browser.pipeline.names["meta"]))
    )


def test_csrf_token_of_another_session_is_refused(pipeline: Pipeline) -> None:
    first, second = Browser(pipeline), Browser(pipeline)
    first.login()
    second.login()
    first.csrf = second.csrf
    assert first.request("POST", "/api/admin/sites", json_body=SITE_BODY).status == 403


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://localhost:8000", "null", "http://127.0.0.1:9"]
)
def test_cross_origin_state_change_is_403_even_with_the_token(
    browser: Browser, origin: str
) -> None:
    browser.login()
    reply = browser.request(
        "POST", "/api/admin/sites", json_body=SITE_BODY, headers={"origin": origin}
    )
    assert reply.status == 403


def test_cross_origin_login_is_refused(browser: Browser) -> None:
    from tests.integration.admin_client import PASSWORD

    reply = browser.request(
        "POST",
        "/api/auth/login",
        form={"password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert reply.status == 403 and browser.jar == {}


def test_reads_need_no_csrf_token(browser: Browser) -> None:
    browser.login()
    browser.csrf = ""
    assert browser.request("GET", "/api/admin/sites").status == 200


def test_a_bearer_key_is_not_an_admin_sign_in(browser: Browser) -> None:
    key = browser.pipeline.add_site("a.example")
    reply = browser.request(
        "POST", "/api/admin/sites", json_body=SITE_BODY, headers={"authorization": f"Bearer {key}"}
    )
    assert reply.status == 403
    assert browser.request(
        "GET", "/api/admin/sites", headers={"authorization": f"Bearer {key}"}
    ).status in (401, 403)


# ---- the login rate limit --------------------------------------------------------------------------


def test_sixth_attempt_within_the_window_is_429_then_the_window_resets(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    set_clock(NOW)
    for _ in range(5):
        assert browser.login("wrong password!").status == 401
    # Even the right password waits now, told for how long
    limited = browser.login()
    assert limited.status == 429
    assert "error" in limited.json() and browser.jar == {}
    retry_after = int(limited.headers["retry-after"])
    assert 0 < retry_after <= 900
    # Another client is not held back by this one
    assert EdgeBrowser(browser.pipeline, ip="203.0.113.50").login().status == 200
    # And once the window has passed, the client may sign in again
    set_clock(NOW + timedelta(seconds=retry_after))
    assert browser.login().status == 200


def test_a_good_password_clears_the_clients_failures(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    set_clock(NOW)
    for _ in range(4):
        browser.login("wrong password!")
    assert browser.login().status == 200
    for _ in range(4):
        assert browser.login("wrong password!").status == 401
    assert browser.login().status == 200


def test_overall_cap_holds_for_clients_from_many_addresses(
    browser: Browser, set_clock: Callable[[datetime], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVEINSIGHT_LOGIN_FAILURES_GLOBAL", "8")
    set_clock(NOW)
    for i in range(8):
        assert EdgeBrowser(browser.pipeline, ip=f"203.0.113.{i}").login("nope nope!").status == 401
    assert EdgeBrowser(browser.pipeline, ip="198.51.100.99").login().status == 429


def test_addresses_of_one_ipv6_64_share_one_clients_limit(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    # Given five failures, each from a new address of one IPv6 /64 (one subscriber's prefix)
    set_clock(NOW)
    for i in range(5):
        ip = f"2001:db8:7:1:{i:x}::{i + 1:x}"
        assert EdgeBrowser(browser.pipeline, ip=ip).login("wrong password!").status == 401
    # When yet another address of that /64 tries, it waits
    assert EdgeBrowser(browser.pipeline, ip="2001:db8:7:1:ffff::9").login().status == 429
    # And the neighbouring /64, and IPv4, are other clients
    assert EdgeBrowser(browser.pipeline, ip="2001:db8:7:2::1").login().status == 200
    assert EdgeBrowser(browser.pipeline, ip="198.51.100.99").login().status == 200


def test_an_ipv4_mapped_address_is_the_same_client_as_its_ipv4(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    set_clock(NOW)
    for i in range(5):
        written = "198.51.100.44" if i % 2 else "::ffff:198.51.100.44"
        assert EdgeBrowser(browser.pipeline, ip=written).login("wrong password!").status == 401
    assert EdgeBrowser(browser.pipeline, ip="198.51.100.44").login().status == 429


def test_a_forged_viewer_address_without_the_origin_secret_does_not_escape_the_limit(
    pipeline: Pipeline, set_clock: Callable[[datetime], None]
) -> None:
    # Given someone calling the API directly (not through CloudFront), naming a new viewer each time
    set_clock(NOW)
    for i in range(5):
        forger = Browser(pipeline, ip=f"203.0.113.{i}")  # CloudFront-Viewer-Address, no secret
        assert forger.login("wrong password!").status == 401
    # Then every try was counted against the connection's own address: the sixth waits
    assert Browser(pipeline, ip="203.0.113.99").login().status == 429
    # Even with a guessed secret
    guessed = Browser(pipeline, ip="203.0.113.100")
    reply = guessed.request(
        "POST",
        "/api/auth/login",
        json_body={"password": "wrong password!"},
        headers={ORIGIN_HEADER: "guess"},
    )
    assert reply.status == 429
    # While a viewer CloudFront names is a client of its own
    assert EdgeBrowser(pipeline, ip="203.0.113.101").login().status == 200


def test_no_client_address_is_stored(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    set_clock(NOW)
    for _ in range(6):
        browser.login("wrong password!")
    stored = str(tables.scan_all(make_client("dynamodb"), browser.pipeline.names["meta"]))
    assert "LOGIN#" in stored
    assert browser.ip not in stored
    assert "198.51.100" not in stored


def test_failure_counters_expire_with_their_window(
    browser: Browser, set_clock: Callable[[datetime], None]
) -> None:
    set_clock(NOW)
    browser.login("wrong password!")
    items = [
        i
        for i in tables.scan_all(make_client("dynamodb"), browser.pipeline.names["meta"])
        if i["pk"]["S"].startswith("LOGIN#")
    ]
    assert len(items) == 2  # this client's window and the overall one
    window_end = int(NOW.timestamp()) - int(NOW.timestamp()) % 900 + 900
    assert {int(i["ttl"]["N"]) for i in items} == {window_end}
