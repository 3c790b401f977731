"""Sites, their read keys and their shared links, stored in the meta table.

Keys and share tokens are kept only as SHA-256 hashes. Each has 192 random bits, so a fast
unsalted hash is enough to make a stolen table useless without making every API call pay for a
slow password hash. A lookup by token is never cached, so a revocation takes effect at once.

Removing a site deletes the site item, its keys, its shared links and its Umami website ids (one
attached UUID at most, and the one derived from its domain), so another site may take them; its
aggregates stay in the aggregates table (re-adding the domain shows them again) and its raw events expire with their TTL.
A purge (`site remove --purge`) deletes those too (`purge_items`), and its event archive.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import keys
from core.aws import paged
from core.segments import SegmentStore

DOMAIN_RE = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)
# A domain is a key (the meta table's sort key, part of every events and aggregates key): checked
# in its stored form, after lowercasing, which can grow a string ("İ" is 2 bytes, "i̇" 3). DOMAIN_RE
# admits ASCII only, so a valid domain is at most 253 bytes, far below DynamoDB's 1,024.
MAX_DOMAIN_BYTES = 253
# Each Lambda instance caches the sites it looked up, unknown ones too (a flood of unknown domains
# must not cost a read each): bounded, so that no sender can grow an instance's memory.
MAX_CACHED_SITES = 1000
KEY_PREFIX = "li_"
SHARE_PREFIX = "lis_"
PAGEVIEW_GOAL_PREFIX = "Visit "
# Bounds keep a site item small: the stats code reads it on every query.
MAX_GOALS = 100
MAX_GOAL_LENGTH = 200
MAX_HOSTNAMES = 50
MAX_LABEL_LENGTH = 100
# How long a site's archived events are kept (decision 0027): months, counted back from today.
DEFAULT_RETENTION_MONTHS = 24
MAX_RETENTION_MONTHS = 120
# A site's Umami website ids (issue 21): the one derived from its domain, uuid5 in the DNS
# namespace, which anyone can compute (python3 -c 'import uuid; print(uuid.uuid5(uuid.NAMESPACE_DNS,
# "example.com"))'), and at most one attached, any UUID: the `data-website-id` an existing Umami
# snippet carries, so switching changes only the host. Umami gives a website one id; so do we.
UMAMI_NAMESPACE = uuid.NAMESPACE_DNS
_MAX_UUID_TEXT = 45  # "urn:uuid:" + 36: uuid.UUID's longest spelling


class SiteError(ValueError):
    """Invalid site definition."""


class Duplicate(SiteError):
    """The thing to create exists already."""


class Missing(SiteError):
    """The thing named does not exist."""


class SiteExists(Duplicate):
    pass


class SiteNotFound(Missing):
    pass


class GoalExists(Duplicate):
    pass


class GoalNotFound(Missing):
    pass


class UmamiIdTaken(Duplicate):
    """The Umami website id is another site's."""


class _Keep:
    """`update(umami_id=KEEP)`: leave the attached Umami id as it is (None detaches it)."""


KEEP = _Keep()


@dataclass(frozen=True)
class Site:
    domain: str
    tz: str = "UTC"
    public: bool = False
    created_at: int = 0
    # Goals as Plausible names them: a custom event name ("Signup") or "Visit /path" for a
    # pageview goal. Empty: every custom event name counts as a goal.
    goals: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()  # hostnames allowed to send events; empty: any
    retention_months: int = DEFAULT_RETENTION_MONTHS  # of the event archive
    umami_id: str | None = None  # an attached Umami website id (canonical UUID)

    @property
    def derived_umami_id(self) -> str:
        return derived_umami_id(self.domain)

    def allows_hostname(self, hostname: str) -> bool:
        """An allowed hostname or a subdomain of one (`blog.example.com` under `example.com`)."""
        if not self.hostnames:
            return True
        host = hostname.strip().lower().rstrip(".")
        return any(host == allowed or host.endswith("." + allowed) for allowed in self.hostnames)


@dataclass(frozen=True)
class ApiKey:
    id: str  # the first 12 hex digits of the key's hash: safe to show, enough to revoke
    site: str
    created_at: int


@dataclass(frozen=True)
class ShareLink:
    id: str  # as ApiKey.id
    site: str
    created_at: int
    label: str = ""


@dataclass(frozen=True)
class Removal:
    domain: str
    keys: int
    shares: int


def key_id(digest: str) -> str:
    return digest[:12]


def normalize_domain(domain: str) -> str:
    """A site's domain as stored: lowercase, no `www.`, no final dot; SiteError if invalid."""
    if len(domain) <= 4 * MAX_DOMAIN_BYTES:  # longer cannot be valid: spare lower() the work
        domain = domain.strip().lower().removeprefix("www.").rstrip(".")
        if len(domain.encode(errors="replace")) <= MAX_DOMAIN_BYTES and DOMAIN_RE.fullmatch(domain):
            return domain
    raise SiteError(f"{_shown(domain)} is not a valid domain")


def site_domain(text: str) -> str | None:
    """The domain `text` names, normalised as a site's is, or None if it names no valid domain."""
    try:
        return normalize_domain(text)
    except SiteError:
        return None


def derived_umami_id(domain: str) -> str:
    """The Umami website id every site has without attaching one: uuid5 of its domain."""
    return str(uuid.uuid5(UMAMI_NAMESPACE, domain))


def normalize_umami_id(text: str) -> str:
    """An Umami website id as stored: a UUID's canonical form (lowercase, hyphenated), whichever
    spelling was given; SiteError if it is no UUID."""
    try:
        if len(text) > _MAX_UUID_TEXT:
            raise ValueError(text)
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise SiteError(
            f"{_shown(text)} is not a UUID: an Umami website id looks like "
            "'2ffbbd54-0d6d-4a6a-a4a4-7a4d2d1b9c3e'"
        ) from None


def _shown(text: str) -> str:
    """User input quoted in an error message, cut short: an error must not echo a megabyte."""
    return repr(text[:64] + "…" if len(text) > 64 else text)


def validate_tz(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SiteError(f"{tz!r} is not a known time zone") from exc
    return tz


def validate_hostname(hostname: str) -> str:
    host = hostname.strip().lower().rstrip(".")
    if len(host.encode(errors="replace")) > MAX_DOMAIN_BYTES or not DOMAIN_RE.fullmatch(host):
        raise SiteError(
            f"{_shown(hostname)} is not a valid hostname (no scheme, port, path or '*')"
        )
    return host


def validate_hostnames(hostnames: tuple[str, ...] | builtins.list[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(validate_hostname(h) for h in hostnames if h.strip()))
    if len(cleaned) > MAX_HOSTNAMES:
        raise SiteError(f"at most {MAX_HOSTNAMES} allowed hostnames")
    return cleaned


def validate_retention(months: int) -> int:
    if isinstance(months, bool) or not isinstance(months, int):
        raise SiteError("the retention is a whole number of months")
    if not 1 <= months <= MAX_RETENTION_MONTHS:
        raise SiteError(f"the retention is 1 to {MAX_RETENTION_MONTHS} months, not {months}")
    return months


def validate_goal(goal: str) -> str:
    """A custom event name, or "Visit /path" for a pageview goal on exactly that path."""
    goal = goal.strip()
    if not goal:
        raise SiteError("a goal needs a name")
    if len(goal) > MAX_GOAL_LENGTH:
        raise SiteError(f"a goal has at most {MAX_GOAL_LENGTH} characters")
    if not goal.isprintable():
        raise SiteError("a goal cannot hold control characters")
    if goal.startswith(PAGEVIEW_GOAL_PREFIX):
        path = goal.removeprefix(PAGEVIEW_GOAL_PREFIX).strip()
        if not path.startswith("/"):
            raise SiteError("a pageview goal is 'Visit /path', the path starting with '/'")
        if "*" in path:
            raise SiteError("pageview goals match exact paths: '*' is not supported")
        if any(c.isspace() for c in path) or "?" in path or "#" in path:
            raise SiteError("a pageview goal's path has no spaces, query string or fragment")
        return PAGEVIEW_GOAL_PREFIX + path
    if goal == "pageview":
        raise SiteError("'pageview' is not a custom event: use 'Visit /path' for a pageview goal")
    return goal


def validate_goals(goals: tuple[str, ...] | builtins.list[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(validate_goal(g) for g in goals))
    if len(cleaned) > MAX_GOALS:
        raise SiteError(f"at most {MAX_GOALS} goals per site")
    return cleaned


_T = TypeVar("_T")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SiteStore:
    """Sites and their credentials. Reads of a site are cached briefly: ingest asks for every
    event. Writes through this store drop its own cache entry; other instances see a change to
    a site's settings within `cache_seconds`. The cache keeps the `max_cached` sites used last."""

    def __init__(
        self,
        client: Any,
        table: str,
        cache_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        *,
        cache_clock: Callable[[], float] = time.monotonic,
        max_cached: int = MAX_CACHED_SITES,
    ) -> None:
        self._client = client
        self._clock = clock  # epoch seconds: when a site, key or link was created
        self._cache_clock = cache_clock  # seconds, for the cache's ages: steps of the wall clock
        self._table = table
        self._cache_seconds = cache_seconds
        self._max_cached = max_cached
        self._cache: OrderedDict[str, tuple[float, Site | None]] = OrderedDict()
        # Umami website id -> the domain it names (None: no site), cached as sites are
        self._umami_cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._keys = _Credentials(
            client, table, KEY_PREFIX, keys.api_key_pk, keys.site_keys_pk, clock
        )
        self._shares = _Credentials(
            client, table, SHARE_PREFIX, keys.share_pk, keys.site_shares_pk, clock
        )

    @property
    def meta(self) -> tuple[Any, str]:
        """The meta table's client and name, for the stores of a site's other settings
        (core/segments.py)."""
        return self._client, self._table

    # ---- sites ------------------------------------------------------------------------------

    def get(self, domain: str) -> Site | None:
        """The site `domain` names (any spelling), or None: unknown, or not a valid domain. An
        invalid one costs no read and no cache entry (callers that must say why check first)."""
        normalized = site_domain(domain)
        if normalized is None:
            return None

        def load() -> Site | None:
            response = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": keys.SITE_PK}, "sk": {"S": normalized}},
            )
            return _site_from_item(response["Item"]) if "Item" in response else None

        return self._cached(self._cache, normalized, load)

    def site_for_umami_id(self, website_id: str) -> Site | None:
        """The site an Umami website id names, attached or derived (one GetItem, then the site,
        both cached), or None: no site has it, or it is no UUID (no read, no cache entry)."""
        try:
            wanted = normalize_umami_id(website_id)
        except SiteError:
            return None

        def load() -> str | None:
            response = self._client.get_item(TableName=self._table, Key=_umami_key(wanted))
            return response["Item"]["site"]["S"] if "Item" in response else None

        domain = self._cached(self._umami_cache, wanted, load)
        return self.get(domain) if domain else None

    def _cached(
        self,
        cache: OrderedDict[str, tuple[float, _T | None]],
        key: str,
        load: Callable[[], _T | None],
    ) -> _T | None:
        now = self._cache_clock()
        cached = cache.get(key)
        if cached and now - cached[0] < self._cache_seconds:
            cache.move_to_end(key)
            return cached[1]
        value = load()
        if self._cache_seconds > 0:
            cache[key] = (now, value)
            cache.move_to_end(key)
            while len(cache) > self._max_cached:
                cache.popitem(last=False)  # the least recently used
        return value

    def require(self, domain: str) -> Site:
        """The site as stored now (never from the cache), or SiteNotFound."""
        domain = normalize_domain(domain)
        self._cache.pop(domain, None)
        site = self.get(domain)
        if site is None:
            raise SiteNotFound(f"no site {domain}")
        return site

    def add(
        self,
        domain: str,
        tz: str = "UTC",
        public: bool = False,
        hostnames: tuple[str, ...] = (),
        goals: tuple[str, ...] = (),
        retention_months: int = DEFAULT_RETENTION_MONTHS,
    ) -> Site:
        site = Site(
            normalize_domain(domain),
            validate_tz(tz),
            public,
            int(self._clock()),
            validate_goals(goals),
            validate_hostnames(hostnames),
            validate_retention(retention_months),
        )
        item = {
            "pk": {"S": keys.SITE_PK},
            "sk": {"S": site.domain},
            "tz": {"S": site.tz},
            "public": {"BOOL": site.public},
            "created_at": {"N": str(site.created_at)},
            "retention_months": {"N": str(site.retention_months)},
        }
        if site.goals:
            item["goals"] = _string_list(site.goals)
        if site.hostnames:
            item["hostnames"] = _string_list(site.hostnames)
        try:
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            raise SiteExists(f"site {site.domain} already exists") from None
        self._cache.pop(site.domain, None)
        self._register_derived_umami_id(site.domain)
        return site

    def update(
        self,
        domain: str,
        *,
        tz: str | None = None,
        public: bool | None = None,
        hostnames: tuple[str, ...] | builtins.list[str] | None = None,
        goals: tuple[str, ...] | builtins.list[str] | None = None,
        retention_months: int | None = None,
        umami_id: str | _Keep | None = KEEP,
    ) -> Site:
        """Change the given settings of an existing site; the others stay as they are.

        `umami_id` attaches that Umami website id (replacing the one attached before), None
        detaches it; UmamiIdTaken if another site has it. Every update also registers the
        site's derived id, which sites added before issue 21 lack."""
        domain = normalize_domain(domain)
        changes: dict[str, dict[str, Any]] = {}
        if tz is not None:
            changes["tz"] = {"S": validate_tz(tz)}
        if public is not None:
            changes["public"] = {"BOOL": public}
        if hostnames is not None:
            changes["hostnames"] = _string_list(validate_hostnames(hostnames))
        if goals is not None:
            changes["goals"] = _string_list(validate_goals(goals))
        if retention_months is not None:
            changes["retention_months"] = {"N": str(validate_retention(retention_months))}
        if not isinstance(umami_id, _Keep):
            wanted = normalize_umami_id(umami_id) if umami_id is not None else None
            site = self._update_umami_id(domain, changes, wanted)
            self._register_derived_umami_id(domain)
            return site
        if not changes:
            site = self.require(domain)
            self._register_derived_umami_id(domain)
            return site
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": keys.SITE_PK}, "sk": {"S": domain}},
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in changes),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={f"#{name}": name for name in changes},
                ExpressionAttributeValues={f":{name}": value for name, value in changes.items()},
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            self._cache.pop(domain, None)
            raise SiteNotFound(f"no site {domain}") from None
        self._cache.pop(domain, None)
        self._register_derived_umami_id(domain)
        return _site_from_item(response["Attributes"])

    def _update_umami_id(
        self, domain: str, changes: dict[str, dict[str, Any]], wanted: str | None
    ) -> Site:
        """The site's settings and its attached Umami id changed in one transaction: the site
        item (only if its attached id is still the one read), the new id's lookup item (only if
        no other site holds it) and the old one's deleted."""
        old = self.require(domain).umami_id
        names = {f"#{name}": name for name in changes} | {"#umami": "umami_id"}
        values = {f":{name}": value for name, value in changes.items()}
        sets = [f"#{name} = :{name}" for name in changes]
        if wanted:
            sets.append("#umami = :umami")
            values[":umami"] = {"S": wanted}
        expression = ("SET " + ", ".join(sets) if sets else "") + (
            "" if wanted else " REMOVE #umami"
        )
        condition = "attribute_exists(pk) AND " + (
            "#umami = :old" if old else "attribute_not_exists(#umami)"
        )
        if old:
            values[":old"] = {"S": old}
        mine = {
            "ConditionExpression": "attribute_not_exists(pk) OR #site = :site",
            "ExpressionAttributeNames": {"#site": "site"},
            "ExpressionAttributeValues": {":site": {"S": domain}},
        }
        items: builtins.list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": keys.SITE_PK}, "sk": {"S": domain}},
                    "UpdateExpression": expression.strip(),
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if not values:  # DynamoDB refuses an empty map: a detach that changes nothing else
            del items[0]["Update"]["ExpressionAttributeValues"]
        if wanted and wanted != old:
            item = {**_umami_key(wanted), "site": {"S": domain}}
            items.append({"Put": {"TableName": self._table, "Item": item, **mine}})
        if old and old not in (wanted, derived_umami_id(domain)):
            items.append({"Delete": {"TableName": self._table, "Key": _umami_key(old), **mine}})
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            self._cache.pop(domain, None)
            if wanted and len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                holder = self._client.get_item(
                    TableName=self._table, Key=_umami_key(wanted), ConsistentRead=True
                ).get("Item", {})
                other = holder.get("site", {}).get("S", "another site")
                raise UmamiIdTaken(
                    f"Umami website id {wanted} is attached to site {other}: detach it there first"
                ) from None
            self.require(domain)  # SiteNotFound if it went meanwhile
            raise Duplicate(f"site {domain} was changed meanwhile: try again") from None
        for website_id in (wanted, old):
            if website_id:
                self._umami_cache.pop(website_id, None)
        return self.require(domain)

    def _register_derived_umami_id(self, domain: str) -> None:
        """The lookup item of the site's derived Umami id, unless another site attached that
        id (it keeps it: a snippet with the derived id and a hostname still finds this site,
        ingest/umami.py candidate_domains)."""
        website_id = derived_umami_id(domain)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**_umami_key(website_id), "site": {"S": domain}},
                ConditionExpression="attribute_not_exists(pk) OR #site = :site",
                ExpressionAttributeNames={"#site": "site"},
                ExpressionAttributeValues={":site": {"S": domain}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return
        self._umami_cache.pop(website_id, None)

    def _release_umami_ids(self, domain: str, website_ids: builtins.list[str]) -> None:
        """Delete the lookup items of these ids that name the site (another site's stay)."""
        for website_id in dict.fromkeys(website_ids):
            with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
                self._client.delete_item(
                    TableName=self._table,
                    Key=_umami_key(website_id),
                    ConditionExpression="#site = :site",
                    ExpressionAttributeNames={"#site": "site"},
                    ExpressionAttributeValues={":site": {"S": domain}},
                )
            self._umami_cache.pop(website_id, None)

    def add_goal(self, domain: str, goal: str) -> Site:
        site = self.require(domain)
        goal = validate_goal(goal)
        if goal in site.goals:
            raise GoalExists(f"{goal!r} is already a goal of {site.domain}")
        return self.update(site.domain, goals=[*site.goals, goal])

    def remove_goal(self, domain: str, goal: str) -> Site:
        site = self.require(domain)
        wanted = goal.strip()
        if wanted not in site.goals:
            raise GoalNotFound(f"{wanted!r} is not a goal of {site.domain}")
        return self.update(site.domain, goals=[g for g in site.goals if g != wanted])

    def remove(self, domain: str) -> Removal:
        """Delete the site, then every key, shared link, funnel, segment, alert rule and report
        subscription of it.

        The site item goes first, so no new credential can be attached meanwhile; a removal
        interrupted half-way is finished by running it again.
        """
        domain = normalize_domain(domain)
        site_key = {"pk": {"S": keys.SITE_PK}, "sk": {"S": domain}}
        # Its Umami ids are released before the site goes (a removal cut short leaves no id
        # held by a site that is gone), and again from the deleted item, in case one was
        # attached meanwhile.
        current = self._client.get_item(TableName=self._table, Key=site_key, ConsistentRead=True)
        ids = [derived_umami_id(domain)]
        self._release_umami_ids(domain, ids + _umami_ids(current.get("Item", {})))
        response = self._client.delete_item(
            TableName=self._table, Key=site_key, ReturnValues="ALL_OLD"
        )
        self._cache.pop(domain, None)
        self._release_umami_ids(domain, _umami_ids(response.get("Attributes", {})))
        removal = Removal(domain, self.revoke_key(domain, "all"), self.revoke_share(domain, "all"))
        for pk in (keys.funnels_pk(domain), keys.alert_rules_pk(domain)):
            for item in _query_all(self._client, self._table, pk):
                self._client.delete_item(
                    TableName=self._table, Key={k: item[k] for k in ("pk", "sk")}
                )
        SegmentStore(self._client, self._table).remove_all(domain)
        # Its report subscriptions and sent markers (decision 0038). Imported here: only the
        # callers of a removal (the query function, the CLI) ship the reports package.
        from reports.store import ReportStore

        ReportStore(self._client, self._table).remove_all(domain)
        if "Attributes" not in response and not (removal.keys or removal.shares):
            raise SiteNotFound(f"no site {domain}")
        return removal

    def list(self) -> builtins.list[Site]:
        return [
            _site_from_item(item) for item in _query_all(self._client, self._table, keys.SITE_PK)
        ]

    # ---- read keys ----------------------------------------------------------------------------

    def create_key(self, domain: str) -> str:
        """A new read key for the site; only its hash is stored (and a listing entry by id)."""
        return self._keys.create(self.require(domain).domain, {})[0]

    def list_keys(self, domain: str) -> builtins.list[ApiKey]:
        return [
            ApiKey(key_id(item["sk"]["S"]), domain, int(item["created_at"]["N"]))
            for item in self._keys.listing(domain)
        ]

    def revoke_key(self, domain: str, key_or_id: str) -> int:
        """Revoke one key (given whole, or by its id) or every key of the site ("all")."""
        return self._keys.revoke(domain, key_or_id)

    def site_for_key(self, key: str) -> str | None:
        return self._keys.site_for(key)

    # ---- shared links -------------------------------------------------------------------------

    def create_share(self, domain: str, label: str = "") -> tuple[str, ShareLink]:
        """A new read-only token for the site's stats (a shared link); only its hash is stored."""
        label = label.strip()
        if len(label) > MAX_LABEL_LENGTH or not label.isprintable():
            raise SiteError(f"a label has at most {MAX_LABEL_LENGTH} printable characters")
        site = self.require(domain)
        extra = {"label": {"S": label}} if label else {}
        token, created = self._shares.create(site.domain, extra)
        return token, ShareLink(key_id(hash_key(token)), site.domain, created, label)

    def list_shares(self, domain: str) -> builtins.list[ShareLink]:
        return [
            ShareLink(
                key_id(item["sk"]["S"]),
                domain,
                int(item["created_at"]["N"]),
                item.get("label", {}).get("S", ""),
            )
            for item in self._shares.listing(domain)
        ]

    def revoke_share(self, domain: str, token_or_id: str) -> int:
        """Revoke one shared link (its token, or its id) or every one of the site ("all")."""
        return self._shares.revoke(domain, token_or_id)

    def site_for_share(self, token: str) -> str | None:
        return self._shares.site_for(token)


class _Credentials:
    """Bearer secrets of one kind (read keys, share tokens), stored as hashes twice: by hash for
    the lookup on each request, and under the site for listing and revoking."""

    def __init__(
        self,
        client: Any,
        table: str,
        prefix: str,
        item_pk: Any,
        listing_pk: Any,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._clock = clock
        self._table = table
        self._prefix = prefix
        self._item_pk = item_pk
        self._listing_pk = listing_pk

    def create(self, domain: str, extra: dict[str, Any]) -> tuple[str, int]:
        """A new secret and its creation time."""
        secret = self._prefix + secrets.token_urlsafe(24)
        digest = hash_key(secret)
        now = int(self._clock())
        created = {"N": str(now)}
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": self._item_pk(digest)},
                            "sk": {"S": keys.NO_SORT},
                            "site": {"S": domain},
                            "created_at": created,
                        },
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": {
                            "pk": {"S": self._listing_pk(domain)},
                            "sk": {"S": digest},
                            "created_at": created,
                            **extra,
                        },
                    }
                },
            ]
        )
        return secret, now

    def listing(self, domain: str) -> list[dict[str, Any]]:
        return _query_all(self._client, self._table, self._listing_pk(domain))

    def revoke(self, domain: str, secret_or_id: str) -> int:
        digests = [item["sk"]["S"] for item in self.listing(domain)]
        wanted = hash_key(secret_or_id) if secret_or_id.startswith(self._prefix) else secret_or_id
        chosen = [d for d in digests if secret_or_id == "all" or d == wanted or key_id(d) == wanted]
        for digest in chosen:
            # The lookup item first: once it is gone the secret no longer opens anything.
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": self._item_pk(digest)}, "sk": {"S": keys.NO_SORT}},
            )
            self._client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": self._listing_pk(domain)}, "sk": {"S": digest}},
            )
        return len(chosen)

    def site_for(self, secret: str) -> str | None:
        if not secret.startswith(self._prefix) or len(secret) > 200:
            return None
        response = self._client.get_item(
            TableName=self._table,
            Key={"pk": {"S": self._item_pk(hash_key(secret))}, "sk": {"S": keys.NO_SORT}},
        )
        item = response.get("Item")
        return item["site"]["S"] if item else None


def owner_of(pk: str) -> str | None:
    """The site an events or aggregates item belongs to (raw events, counters, visitor states of
    any tier), from its key; None for any other item."""
    parts = pk.split(keys.SEP)
    if len(parts) >= 3 and (parts[0] in {"EV", "C", "V"} or parts[0].startswith("V.")):
        return parts[1]
    return None


def purge_items(client: Any, table: str, key_names: builtins.list[str], domain: str) -> int:
    """Delete every item of `table` that belongs to the site; how many. A Scan of the whole table
    (keys only): a purge is rare, and an index for it would cost every write."""
    deleted = 0
    for item in paged(
        client.scan,
        TableName=table,
        ProjectionExpression=", ".join(f"#{k}" for k in key_names),
        ExpressionAttributeNames={f"#{k}": k for k in key_names},
    ):
        if owner_of(item["pk"]["S"]) == domain:
            client.delete_item(TableName=table, Key={k: item[k] for k in key_names})
            deleted += 1
    return deleted


def _query_all(client: Any, table: str, pk: str) -> list[dict[str, Any]]:
    return list(
        paged(
            client.query,
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
        )
    )


def _umami_key(website_id: str) -> dict[str, Any]:
    return {"pk": {"S": keys.umami_website_pk(website_id)}, "sk": {"S": keys.NO_SORT}}


def _umami_ids(site_item: dict[str, Any]) -> builtins.list[str]:
    return [site_item["umami_id"]["S"]] if "umami_id" in site_item else []


def _string_list(values: tuple[str, ...]) -> dict[str, Any]:
    return {"L": [{"S": v} for v in values]}


def _site_from_item(item: dict[str, Any]) -> Site:
    return Site(
        domain=item["sk"]["S"],
        tz=item.get("tz", {}).get("S", "UTC"),
        public=item.get("public", {}).get("BOOL", False),
        created_at=int(item.get("created_at", {}).get("N", "0")),
        goals=tuple(v["S"] for v in item.get("goals", {}).get("L", [])),
        hostnames=tuple(v["S"] for v in item.get("hostnames", {}).get("L", [])),
        # sites stored before decision 0027 keep the default
        retention_months=int(item.get("retention_months", {}).get("N", DEFAULT_RETENTION_MONTHS)),
        umami_id=item.get("umami_id", {}).get("S"),
    )
