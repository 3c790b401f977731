"""Sign-in for the dashboard: the admin password, sessions, CSRF tokens and the login rate limit.

Invariants:
- The admin password exists only as a scrypt hash (random salt, parameters in the hash string),
  set at deploy time; it is compared in constant time.
- A session is a cookie signed with the session secret (itsdangerous) *and* an item in the meta
  table: the signature rejects a forged or altered cookie without a read, the item makes sign-out
  and expiry real on the server. The cookie never holds more than a random session id and its
  expiry.
- A CSRF token is an HMAC of the session id: bound to the session, never stored.
- Failed sign-ins are counted per fixed window, per client and over all clients, in the meta
  table with a TTL. The client is a keyed hash of its address (an IPv6 address's /64): no
  address is stored or logged. The address is CloudFront's CloudFront-Viewer-Address only on a
  request that carries the origin secret (core/edge.py), else the connection's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from itsdangerous import BadSignature, URLSafeSerializer

from core import edge, keys
from core.observability import logger
from core.settings import QuerySettings

log = logger("query")

SESSION_COOKIE = "li_session"
CSRF_HEADER = "x-csrf-token"

# ---- the password hash ------------------------------------------------------------------------
# scrypt, N=2^15, r=8, p=1: 32 MiB and ~0.1 s per check, OWASP's recommended floor. hashlib's
# scrypt is OpenSSL's: no native dependency beyond the Lambda runtime's own.

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_HASH_PREFIX = "scrypt"


class PasswordHashError(ValueError):
    """A password too weak to hash, or a hash string that is not ours or is too weak."""


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """`scrypt$n=32768,r=8,p=1$<salt>$<hash>` (base64url, no padding)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordHashError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordHashError(f"the password has at most {MAX_PASSWORD_LENGTH} characters")
    _check_cost(n, r, p)
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, n, r, p, 32)
    return f"{_HASH_PREFIX}$n={n},r={r},p={p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches `encoded`; False for any mismatch or unusable hash."""
    try:
        n, r, p, salt, expected = parse_password_hash(encoded)
    except PasswordHashError:
        return False
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(expected)), expected)


def parse_password_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    try:
        prefix, params, salt, digest = encoded.strip().split("$")
        cost = dict(part.split("=", 1) for part in params.split(","))
        n, r, p = int(cost["n"]), int(cost["r"]), int(cost["p"])
        salt_bytes, digest_bytes = _unb64(salt), _unb64(digest)
    except (ValueError, KeyError, binascii.Error) as exc:
        raise PasswordHashError("not a LiveInsight password hash (scrypt$n=…,r=…,p=…$…$…)") from exc
    if prefix != _HASH_PREFIX or len(salt_bytes) < 16 or len(digest_bytes) < 32:
        raise PasswordHashError("not a LiveInsight password hash (scrypt$n=…,r=…,p=…$…$…)")
    _check_cost(n, r, p)
    return n, r, p, salt_bytes, digest_bytes


def _usable(encoded: str) -> bool:
    try:
        parse_password_hash(encoded)
    except PasswordHashError:
        return False
    return True


def _check_cost(n: int, r: int, p: int) -> None:
    # A floor keeps weak hashes out; a ceiling keeps a bad parameter from exhausting memory.
    if n < 2**14 or n > 2**20 or n & (n - 1) or not 8 <= r <= 32 or not 1 <= p <= 16:
        raise PasswordHashError("scrypt parameters out of range (n=2^14..2^20, r=8..32, p=1..16)")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # OpenSSL needs 128·r·(n + p + 2) bytes; its default limit (32 MiB) is just too small.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=maxmem)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---- sessions and CSRF tokens -----------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    sid: str
    expires: int  # epoch seconds


class SessionCodec:
    """Signs and reads session cookies; derives each session's CSRF token. Pure: time is given."""

    def __init__(self, secret: bytes, lifetime_seconds: int) -> None:
        self.lifetime = lifetime_seconds
        self._serializer = URLSafeSerializer(
            secret, salt="liveinsight.session", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self._csrf_key = hmac.new(secret, b"liveinsight.csrf", hashlib.sha256).digest()

    def issue(self, now: int) -> tuple[str, Session]:
        session = Session(secrets.token_urlsafe(24), now + self.lifetime)
        return self._serializer.dumps({"sid": session.sid, "exp": session.expires}), session

    def read(self, cookie: str, now: int) -> Session | None:
        """The session a cookie carries, or None if it is forged, altered or expired."""
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        sid, expires = data.get("sid"), data.get("exp")
        if not isinstance(sid, str) or not isinstance(expires, int) or expires <= now:
            return None
        return Session(sid, expires)

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), str(token))


def session_hash(session: Session) -> str:
    return hashlib.sha256(session.sid.encode()).hexdigest()


class SessionStore:
    """Live sessions in the meta table, by a hash of their id, expiring with the session."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    def _key(self, session: Session) -> dict[str, Any]:
        return {"pk": {"S": keys.session_pk(session_hash(session))}, "sk": {"S": keys.NO_SORT}}

    def create(self, session: Session) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={**self._key(session), "ttl": {"N": str(session.expires)}},
        )

    def is_live(self, session: Session, now: int) -> bool:
        item = self._client.get_item(TableName=self._table, Key=self._key(session)).get("Item")
        # DynamoDB deletes expired items late (up to days): the expiry is checked here too.
        return bool(item) and int(item["ttl"]["N"]) > now

    def delete(self, session: Session) -> None:
        self._client.delete_item(TableName=self._table, Key=self._key(session))


# ---- the login rate limit ---------------------------------------------------------------------


@dataclass(frozen=True)
class LoginLimits:
    per_client: int = 5
    overall: int = 100
    window_seconds: int = 900


class LoginLimiter:
    """Fixed windows of failed sign-ins, per client (keyed hash of its address) and overall."""

    def __init__(self, client: Any, table: str, limits: LoginLimits, key: bytes) -> None:
        self._client = client
        self._table = table
        self.limits = limits
        self._key = key

    def client_scope(self, address: str) -> str:
        prefix = limited_prefix(address)
        return hmac.new(self._key, prefix.encode(), hashlib.sha256).hexdigest()[:32]

    def wait_seconds(self, address: str, now: int) -> int:
        """0 if a sign-in may be tried now, else the seconds until the window ends."""
        start = now - now % self.limits.window_seconds
        for scope, limit in self._scopes(address):
            if self._failures(scope, start) >= limit:
                return start + self.limits.window_seconds - now
        return 0

    def record_failure(self, address: str, now: int) -> None:
        start = now - now % self.limits.window_seconds
        for scope, _ in self._scopes(address):
            self._client.update_item(
                TableName=self._table,
                Key=self._item_key(scope, start),
                UpdateExpression="ADD failures :one SET #ttl = :ttl",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":ttl": {"N": str(start + self.limits.window_seconds)},
                },
            )

    def record_success(self, address: str, now: int) -> None:
        """A good password clears the client's own failures (not the overall count)."""
        start = now - now % self.limits.window_seconds
        self._client.delete_item(
            TableName=self._table, Key=self._item_key(self.client_scope(address), start)
        )

    def _scopes(self, address: str) -> list[tuple[str, int]]:
        return [
            (self.client_scope(address), self.limits.per_client),
            (keys.LOGIN_ALL, self.limits.overall),
        ]

    def _item_key(self, scope: str, start: int) -> dict[str, Any]:
        return {
            "pk": {"S": keys.login_attempts_pk(scope)},
            "sk": {"S": keys.login_window_sk(start)},
        }

    def _failures(self, scope: str, start: int) -> int:
        item = self._client.get_item(
            TableName=self._table, Key=self._item_key(scope, start), ConsistentRead=True
        ).get("Item")
        return int(item["failures"]["N"]) if item else 0


def limited_prefix(address: str) -> str:
    """What one client's failures are counted under: an IPv4 address (also written IPv4-mapped
    as ::ffff:a.b.c.d), or an IPv6 address's /64. A subscriber gets at least a /64 (RFC 6177),
    so counting per IPv6 address would give one attacker 2^64 fresh clients."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # no address at all (a test client): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # int(): a scope id (fe80::1%eth0) names the same prefix
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


def client_address(headers: Mapping[str, str], peer: str, accepted: Sequence[bytes]) -> str:
    """The viewer's address: CloudFront-Viewer-Address on a request with an origin secret whose
    digest is `accepted`, else the peer (API Gateway's sourceIp)."""
    return edge.viewer(headers, peer, accepted).ip


# ---- secrets and the whole ---------------------------------------------------------------------


class SignInError(Exception):
    """Base of the sign-in outcomes that are not a session."""


class NotConfigured(SignInError):
    pass


class WrongPassword(SignInError):
    pass


class TooManyAttempts(SignInError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Secrets:
    password_hash: str
    session_secret: bytes


MIN_SECRET_LENGTH = 32


class SecretSource:
    """The password hash and session secret: from the settings, or from SSM parameters named
    there (read with GetParameter, cached per instance for `secrets_cache_seconds`, so a new
    password is picked up without a deployment)."""

    def __init__(self, config: QuerySettings, ssm: Callable[[], Any]) -> None:
        self._config = config
        self._ssm = ssm
        self._cached: tuple[float, Secrets | None] | None = None

    @property
    def origin_digests(self) -> tuple[bytes, ...]:
        """Digests of the origin secrets CloudFront adds (decision 0016): not secret themselves."""
        return self._config.origin_digests

    def get(self) -> Secrets | None:
        now = time.monotonic()
        if self._cached and now - self._cached[0] < self._config.secrets_cache_seconds:
            return self._cached[1]
        try:
            password_hash = self._value(
                self._config.admin_password_hash, self._config.admin_password_hash_parameter
            )
            secret = self._value(self._config.session_secret, self._config.session_secret_parameter)
        except (BotoCoreError, ClientError) as exc:
            # Sign-in is unavailable (503), stats reads with a key go on; retried next request.
            log.warning("sign-in secrets unreadable", extra={"error": type(exc).__name__})
            return None
        found = (
            Secrets(password_hash, secret.encode()) if len(secret) >= MIN_SECRET_LENGTH else None
        )
        self._cached = (now, found)
        return found

    def _value(self, direct: str, parameter: str) -> str:
        if direct or not parameter:
            return direct
        response = self._ssm().get_parameter(Name=parameter, WithDecryption=True)
        return str(response["Parameter"]["Value"])


@dataclass(frozen=True)
class SignedIn:
    cookie: str
    session: Session
    csrf_token: str


class Auth:
    """Sign-in as the query Lambda uses it. Every method takes the time (epoch seconds)."""

    def __init__(
        self,
        secrets_source: SecretSource,
        client: Any,
        table: str,
        limits: LoginLimits,
        session_seconds: int,
    ) -> None:
        self._secrets = secrets_source
        self._client = client
        self._table = table
        self.limits = limits
        self.sessions = SessionStore(client, table)
        self._session_seconds = session_seconds

    def _codec(self) -> SessionCodec | None:
        found = self._secrets.get()
        return SessionCodec(found.session_secret, self._session_seconds) if found else None

    def login(self, password: str, address: str, now: int) -> SignedIn:
        found = self._secrets.get()
        if found is None or not _usable(found.password_hash):
            raise NotConfigured("no usable admin password hash or session secret")
        # A key derived from the session secret keys the address hash: no raw address is kept.
        limiter_key = hmac.new(found.session_secret, b"liveinsight.login", hashlib.sha256).digest()
        limiter = LoginLimiter(self._client, self._table, self.limits, limiter_key)
        wait = limiter.wait_seconds(address, now)
        if wait:
            raise TooManyAttempts(wait)
        if not verify_password(password, found.password_hash):
            limiter.record_failure(address, now)
            raise WrongPassword("wrong password")
        limiter.record_success(address, now)
        codec = SessionCodec(found.session_secret, self._session_seconds)
        cookie, session = codec.issue(now)
        self.sessions.create(session)
        return SignedIn(cookie, session, codec.csrf_token(session))

    def client_address(self, headers: Mapping[str, str], peer: str) -> str:
        return client_address(headers, peer, self._secrets.origin_digests)

    def session(self, cookie: str, now: int) -> Session | None:
        """The live session a cookie names, or None (forged, altered, expired, signed out)."""
        codec = self._codec()
        session = codec.read(cookie, now) if codec else None
        if session is None or not self.sessions.is_live(session, now):
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        codec = self._codec()
        return codec.csrf_token(session) if codec else ""

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        codec = self._codec()
        return codec is not None and codec.csrf_ok(session, token)

    def logout(self, session: Session) -> None:
        self.sessions.delete(session)
