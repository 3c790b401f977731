"""SiteStore's read cache: bounded (LRU), timed (TTL), and never fed an invalid domain.

Ingest asks for a site on every event and each Lambda instance keeps its own cache, so whatever
a sender puts in `d` must neither grow an instance's memory nor reach DynamoDB unchecked.
"""

from __future__ import annotations

from typing import Any

import pytest

from core import keys
from core.sites import MAX_CACHED_SITES, SiteError, SiteStore, normalize_domain, site_domain

KNOWN = "example.com"


class FakeMeta:
    """The meta table's GetItem, counting the reads that reach it."""

    def __init__(self, domains: tuple[str, ...] = (KNOWN,)) -> None:
        self.domains = set(domains)
        self.reads: list[str] = []

    def get_item(self, TableName: str, Key: dict[str, Any]) -> dict[str, Any]:
        assert Key["pk"]["S"] == keys.SITE_PK
        domain = Key["sk"]["S"]
        self.reads.append(domain)
        if domain not in self.domains:
            return {}
        return {"Item": {"pk": {"S": keys.SITE_PK}, "sk": {"S": domain}, "tz": {"S": "UTC"}}}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(meta: FakeMeta, clock: FakeClock | None = None, **kwargs: Any) -> SiteStore:
    return SiteStore(meta, "meta", cache_clock=clock or FakeClock(), **kwargs)


# ---- bounded ----------------------------------------------------------------------------------


def test_lookups_of_many_unknown_domains_keep_at_most_the_maximum_in_memory() -> None:
    # Given one instance's store
    meta = FakeMeta()
    sites = store(meta)

    # When a flood of distinct (unknown) domains is looked up, 10 per event as `d` allows
    for i in range(MAX_CACHED_SITES * 2):
        assert sites.get(f"site{i}.example") is None

    # Then the cache holds at most its maximum, and every lookup reached the table once
    assert len(sites._cache) <= MAX_CACHED_SITES
    assert len(meta.reads) == MAX_CACHED_SITES * 2


def test_least_recently_used_site_is_evicted_first() -> None:
    # Given a full cache whose oldest entry, the known site, was just used again
    meta = FakeMeta()
    sites = store(meta, max_cached=3)
    sites.get(KNOWN)
    sites.get("a.example")
    sites.get("b.example")
    sites.get(KNOWN)
    meta.reads.clear()

    # When a new domain needs room
    sites.get("c.example")

    # Then the least recently used one went, the known site stayed
    assert sites.get(KNOWN) is not None
    assert sites.get("a.example") is None
    assert meta.reads == ["c.example", "a.example"]


def test_cached_site_is_read_again_after_the_cache_time() -> None:
    clock = FakeClock()
    meta = FakeMeta()
    sites = store(meta, clock, cache_seconds=30)
    sites.get(KNOWN)

    clock.now += 29
    sites.get(KNOWN)
    assert meta.reads == [KNOWN]

    clock.now += 2
    sites.get(KNOWN)
    assert meta.reads == [KNOWN, KNOWN]


def test_cache_time_of_zero_caches_nothing() -> None:
    meta = FakeMeta()
    sites = store(meta, cache_seconds=0)
    sites.get(KNOWN)
    sites.get(KNOWN)
    assert meta.reads == [KNOWN, KNOWN] and not sites._cache


# ---- never an invalid domain ----------------------------------------------------------------------

INVALID = [
    pytest.param("İ" * 500, id="500-dotted-capital-i-grows-to-1500-bytes"),
    pytest.param("İ" * 100 + ".com", id="dotted-capital-i-under-the-byte-limit"),
    pytest.param("a" * 254, id="254-characters"),
    pytest.param(".".join(["a" * 63] * 4), id="255-characters-in-labels"),
    pytest.param("a" * 64 + ".com", id="label-of-64"),
    pytest.param("bücher.de", id="unicode-not-punycode"),
    pytest.param("example.com\x00", id="nul"),
    pytest.param("example.com\r\nx-injected: 1", id="crlf"),
    pytest.param("exa mple.com", id="space"),
    pytest.param("*.example.com", id="star"),
    pytest.param("example.com/path", id="path"),
    pytest.param("example.com:8080", id="port"),
    pytest.param("-example.com", id="leading-hyphen"),
    pytest.param("example..com", id="empty-label"),
    pytest.param("", id="empty"),
    pytest.param("www.", id="just-www"),
]


@pytest.mark.parametrize("domain", INVALID)
def test_invalid_domain_is_neither_read_nor_cached(domain: str) -> None:
    meta = FakeMeta()
    sites = store(meta)

    assert sites.get(domain) is None

    assert meta.reads == [] and not sites._cache


@pytest.mark.parametrize("domain", INVALID)
def test_invalid_domain_is_refused_everywhere_a_domain_is_accepted(domain: str) -> None:
    assert site_domain(domain) is None
    with pytest.raises(SiteError):
        normalize_domain(domain)
    with pytest.raises(SiteError):
        store(FakeMeta()).add(domain)  # no client call: FakeMeta has no put_item


def test_domain_is_checked_after_lowercasing_so_it_cannot_grow_past_the_key_limit() -> None:
    # "İ" is 2 bytes and lowercases to 3 ("i" and a combining dot): 500 of them are 1,000 bytes
    # before and 1,500 after, past DynamoDB's 1,024-byte sort key.
    assert len(("İ" * 500).encode()) == 1000 and len(("İ" * 500).lower().encode()) == 1500
    assert site_domain("İ" * 500) is None
    # The longest valid domain is 253 ASCII bytes, whatever its spelling before normalising.
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert site_domain(" WWW." + longest.upper() + ". ") == longest
    assert len(longest.encode()) == 253


@pytest.mark.parametrize(
    "spelling",
    ["example.com", "EXAMPLE.com", "www.example.com", " Example.COM. ", "WWW.example.com"],
)
def test_any_spelling_of_a_domain_is_one_lookup_and_one_entry(spelling: str) -> None:
    meta = FakeMeta()
    sites = store(meta)
    sites.get(KNOWN)

    site = sites.get(spelling)

    assert site is not None and site.domain == KNOWN
    assert meta.reads == [KNOWN] and list(sites._cache) == [KNOWN]
