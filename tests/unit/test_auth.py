"""Sign-in pieces, pure: the password hash, the session cookie, CSRF tokens, client addresses."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from core.edge import ORIGIN_HEADER
from query_api.admin import _is_loopback, _secure_cookie, share_url
from query_api.auth import (
    LoginLimiter,
    LoginLimits,
    PasswordHashError,
    Session,
    SessionCodec,
    client_address,
    hash_password,
    limited_prefix,
    parse_password_hash,
    verify_password,
)

PASSWORD = "correct horse battery staple"
ENCODED = hash_password(PASSWORD)  # once: each hash costs ~0.1 s on purpose
NOW = 1_774_785_600
SECRET = b"k" * 48

# ---- the password hash ---------------------------------------------------------------------------


def test_password_hash_round_trips_and_carries_its_parameters() -> None:
    assert ENCODED.startswith("scrypt$n=32768,r=8,p=1$")
    assert verify_password(PASSWORD, ENCODED)
    n, r, p, salt, digest = parse_password_hash(ENCODED)
    assert (n, r, p, len(salt), len(digest)) == (2**15, 8, 1, 16, 32)


@pytest.mark.parametrize(
    "attempt", ["", "correct horse battery stapl", PASSWORD.upper(), PASSWORD + " ", "x" * 2000]
)
def test_wrong_password_is_rejected(attempt: str) -> None:
    assert not verify_password(attempt, ENCODED)


def test_the_same_password_hashes_differently_each_time() -> None:
    assert hash_password(PASSWORD, n=2**14) != hash_password(PASSWORD, n=2**14)


def test_password_hash_does_not_contain_the_password() -> None:
    assert PASSWORD not in ENCODED and base64.b64encode(PASSWORD.encode()).decode() not in ENCODED


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "unset",
        "plaintext-password",
        ENCODED.replace("scrypt$", "bcrypt$"),
        ENCODED.replace("n=32768", "n=1024"),  # too weak to accept
        ENCODED.replace("n=32768", "n=30000"),  # not a power of two
        ENCODED.replace("n=32768", "n=4194304"),  # would exhaust memory
        ENCODED.replace("r=8", "r=1"),
        ENCODED.rsplit("$", 1)[0] + "$AAAA",  # digest too short
        ENCODED + "$extra",
    ],
    ids=[
        "empty",
        "unset",
        "plaintext",
        "other-algorithm",
        "weak-n",
        "n-not-power-of-two",
        "huge-n",
        "other-r",
        "short-digest",
        "extra-field",
    ],  # named: the hashes carry a random salt, and test ids must be stable
)
def test_unusable_hash_verifies_nothing(encoded: str) -> None:
    assert not verify_password(PASSWORD, encoded)
    with pytest.raises(PasswordHashError):
        parse_password_hash(encoded)


def test_a_changed_digest_fails_verification() -> None:
    head, digest = ENCODED.rsplit("$", 1)
    flipped = ("B" if digest[0] != "B" else "C") + digest[1:]
    assert not verify_password(PASSWORD, f"{head}${flipped}")


@pytest.mark.parametrize("password", ["", "short", "123456789"])
def test_too_short_a_password_is_not_hashed(password: str) -> None:
    with pytest.raises(PasswordHashError):
        hash_password(password)


# ---- session cookies and CSRF tokens -------------------------------------------------------------


def test_issued_cookie_reads_back_until_it_expires() -> None:
    codec = SessionCodec(SECRET, lifetime_seconds=3600)
    cookie, session = codec.issue(NOW)

    assert session.expires == NOW + 3600
    assert codec.read(cookie, NOW) == session
    assert codec.read(cookie, NOW + 3599) == session
    assert codec.read(cookie, NOW + 3600) is None


def _tampered(cookie: str) -> list[str]:
    payload, signature = cookie.rsplit(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    longer = base64.urlsafe_b64encode(
        json.dumps({**data, "exp": data["exp"] + 10**6}, separators=(",", ":")).encode()
    )
    # the first character: the last one's low bits are base64 padding, which decoding ignores
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return [
        f"{longer.decode().rstrip('=')}.{signature}",  # a later expiry, old signature
        f"{payload}.{flipped}",  # a changed signature
        payload,  # no signature
        f"{payload}.",
        cookie + "x",
        "",
        "garbage",
    ]


def test_tampered_cookie_is_rejected() -> None:
    codec = SessionCodec(SECRET, lifetime_seconds=3600)
    cookie, _ = codec.issue(NOW)

    for forged in _tampered(cookie):
        assert codec.read(forged, NOW) is None, forged


def test_cookie_signed_with_another_secret_is_rejected() -> None:
    cookie, _ = SessionCodec(b"o" * 48, 3600).issue(NOW)
    assert SessionCodec(SECRET, 3600).read(cookie, NOW) is None


def test_csrf_token_is_bound_to_its_session_and_secret() -> None:
    codec = SessionCodec(SECRET, 3600)
    _, one = codec.issue(NOW)
    _, two = codec.issue(NOW)
    token = codec.csrf_token(one)

    assert codec.csrf_ok(one, token)
    assert not codec.csrf_ok(two, token)
    assert not codec.csrf_ok(one, None)
    assert not codec.csrf_ok(one, "")
    assert not codec.csrf_ok(one, token[:-1])
    assert not SessionCodec(b"o" * 48, 3600).csrf_ok(one, token)
    assert codec.csrf_token(Session(one.sid, one.expires)) == token


# ---- addresses and origins -----------------------------------------------------------------------


ORIGIN_SECRET = "o" * 48
VIA_CLOUDFRONT = {ORIGIN_HEADER: ORIGIN_SECRET}
ACCEPTED = (hashlib.sha256(ORIGIN_SECRET.encode()).digest(),)


@pytest.mark.parametrize(
    ("headers", "address"),
    [
        ({**VIA_CLOUDFRONT, "cloudfront-viewer-address": "203.0.113.9:443"}, "203.0.113.9"),
        ({**VIA_CLOUDFRONT, "cloudfront-viewer-address": "[2001:db8::1]:443"}, "2001:db8::1"),
        ({**VIA_CLOUDFRONT, "cloudfront-viewer-address": "2001:db8::1:443"}, "2001:db8::1"),
        ({**VIA_CLOUDFRONT, "cloudfront-viewer-address": "nonsense"}, "10.0.0.1"),
        (VIA_CLOUDFRONT, "10.0.0.1"),
        ({}, "10.0.0.1"),
    ],
)
def test_client_address_prefers_cloudfronts_viewer_address(
    headers: dict[str, str], address: str
) -> None:
    assert client_address(headers, "10.0.0.1", ACCEPTED) == address


@pytest.mark.parametrize(
    "headers",
    [
        {"cloudfront-viewer-address": "203.0.113.9:443"},  # straight to execute-api
        {ORIGIN_HEADER: "guessed", "cloudfront-viewer-address": "203.0.113.9:443"},
        {ORIGIN_HEADER: "", "cloudfront-viewer-address": "203.0.113.9:443"},
        {ORIGIN_HEADER: ORIGIN_SECRET[:-1], "cloudfront-viewer-address": "203.0.113.9:443"},
    ],
)
def test_client_address_ignores_a_viewer_address_without_the_origin_secret(
    headers: dict[str, str],
) -> None:
    assert client_address(headers, "10.0.0.1", ACCEPTED) == "10.0.0.1"


def test_client_address_believes_no_header_when_no_origin_secret_is_configured() -> None:
    headers = {**VIA_CLOUDFRONT, "cloudfront-viewer-address": "203.0.113.9:443"}
    assert client_address(headers, "10.0.0.1", ()) == "10.0.0.1"


# ---- the login limit's clients ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "prefix"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4-mapped: the IPv4 address
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("testclient", "testclient"),  # no address: counted as given
    ],
)
def test_the_limit_counts_ipv4_per_address_and_ipv6_per_64(address: str, prefix: str) -> None:
    assert limited_prefix(address) == prefix


def test_addresses_of_one_ipv6_64_are_one_client_of_the_login_limit() -> None:
    limiter = LoginLimiter(None, "meta", LoginLimits(), b"k" * 32)
    one = limiter.client_scope("2001:db8:1:2::1")
    assert limiter.client_scope("2001:db8:1:2:dead:beef:0:7") == one
    assert limiter.client_scope("2001:db8:1:3::1") != one  # the next /64 is someone else
    assert limiter.client_scope("::ffff:198.51.100.7") == limiter.client_scope("198.51.100.7")
    assert limiter.client_scope("198.51.100.8") != limiter.client_scope("198.51.100.7")
    # Still only a keyed hash: neither the address nor its prefix is in the scope
    assert "2001" not in one and "db8" not in one


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("localhost", True),
        ("[::1]:8000", True),
        ("stats.example.com", False),
        ("stats.example.com:443", False),
        ("203.0.113.9:8000", False),
    ],
)
def test_loopback_hosts_are_recognised(host: str, loopback: bool) -> None:
    assert _is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("origin", "secure"),
    [
        ("http://127.0.0.1:8000", False),
        ("http://localhost:8000", False),
        ("https://127.0.0.1:8000", True),
        ("https://stats.example.com", True),
        ("http://stats.example.com", True),  # never a plain cookie off loopback
    ],
)
def test_cookie_is_secure_except_on_plain_http_loopback(origin: str, secure: bool) -> None:
    assert _secure_cookie(origin) is secure


def test_share_url_is_plausible_shaped_and_escaped() -> None:
    assert share_url("https://stats.example.com", "example.com", "lis_a-b_c") == (
        "https://stats.example.com/?site=example.com&auth=lis_a-b_c"
    )
