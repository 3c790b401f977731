"""Browser and OS names as Plausible reports them (docs/compat.md §4, core/names.py): real user
agents parse to Plausible's names and major.minor versions, and names stored before the
renaming read as the new ones (decision 0034)."""

from __future__ import annotations

import duckdb
import pytest

from core import names
from ingest import enrich
from tests.unit import samples

# Captured from the browsers (their vendors' documented strings, current versions).
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHROME_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
)
CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CHROMEBOOK = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
ANDROID_WEBVIEW = (
    "Mozilla/5.0 (Linux; Android 13; SM-S911B Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
IPAD_IOS_12 = (
    "Mozilla/5.0 (iPad; CPU OS 12_5_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/12.1.2 Mobile/15E148 Safari/604.1"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
FIREFOX_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15"
)
EDGE_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.50"
)
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
)
OPERA_WINDOWS = samples.CHROME_WINDOWS + " OPR/109.0.0.0"
OPERA_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36 OPR/81.1.4292.78746"
)
OPERA_MINI = (
    "Opera/9.80 (Android; Opera Mini/36.2.2254/119.132; U; id) Presto/2.12.423 Version/12.16"
)
DUCKDUCKGO_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 "
    "Chrome/124.0.0.0 Mobile DuckDuckGo/5 Safari/537.36"
)
FACEBOOK_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/460.0.0.38.108;FBDV/iPhone14,5;FBSV/17.4]"
)


@pytest.mark.parametrize(
    ("user_agent", "browser", "browser_version", "os", "os_version"),
    [
        (samples.CHROME_WINDOWS, "Chrome", "124.0", "Windows", "10"),
        (CHROME_MAC, "Chrome", "124.0", "Mac", "10.15"),
        (samples.CHROME_ANDROID_PHONE, "Chrome", "124.0", "Android", "14"),
        (samples.CHROME_ANDROID_TABLET, "Chrome", "124.0", "Android", "13"),
        (CHROME_IPHONE, "Chrome", "124.0", "iOS", "17.4"),
        (CHROME_LINUX, "Chrome", "124.0", "GNU/Linux", ""),
        (CHROMEBOOK, "Chrome", "124.0", "Chrome OS", "14541.0"),
        (SAFARI_MAC, "Safari", "17.4", "Mac", "10.15"),
        (samples.SAFARI_IPHONE, "Safari", "17.4", "iOS", "17.4"),
        (samples.SAFARI_IPAD, "Safari", "17.4", "iPadOS", "17.4"),
        (IPAD_IOS_12, "Safari", "12.1", "iOS", "12.5"),  # iPadOS began at 13
        (FIREFOX_WINDOWS, "Firefox", "125.0", "Windows", "10"),
        (samples.FIREFOX_MAC, "Firefox", "125.0", "Mac", "10.15"),
        (FIREFOX_LINUX, "Firefox", "125.0", "GNU/Linux", ""),
        (FIREFOX_UBUNTU, "Firefox", "125.0", "Ubuntu", ""),
        (FIREFOX_ANDROID, "Firefox", "125.0", "Android", "14"),
        (FIREFOX_IPHONE, "Firefox", "125.0", "iOS", "17.4"),
        (samples.EDGE_WINDOWS, "Microsoft Edge", "124.0", "Windows", "10"),
        (EDGE_ANDROID, "Microsoft Edge", "124.0", "Android", "10"),
        (SAMSUNG_INTERNET, "Samsung Browser", "24.0", "Android", "14"),
        (OPERA_WINDOWS, "Opera", "109.0", "Windows", "10"),
        (OPERA_ANDROID, "Opera", "81.1", "Android", "10"),
        (OPERA_MINI, "Opera", "36.2", "Android", ""),
        (DUCKDUCKGO_ANDROID, "DuckDuckGo Privacy Browser", "5", "Android", "14"),
        (ANDROID_WEBVIEW, "Mobile App", "", "Android", "13"),
        (FACEBOOK_IPHONE, "Mobile App", "", "iOS", "17.4"),
    ],
)
def test_real_user_agents_get_plausibles_browser_and_os_names_and_major_minor_versions(
    user_agent: str, browser: str, browser_version: str, os: str, os_version: str
) -> None:
    info = enrich.parse_user_agent(user_agent)

    assert (info.browser, info.browser_version, info.os, info.os_version) == (
        browser,
        browser_version,
        os,
        os_version,
    )
    assert info.is_bot is False


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (samples.CHROME_ANDROID_PHONE, "Mobile"),
        (samples.SAFARI_IPAD, "Tablet"),
        (CHROMEBOOK, "Desktop"),
    ],
)
def test_device_classes_stay_as_they_were(user_agent: str, device: str) -> None:
    assert enrich.parse_user_agent(user_agent).device == device


@pytest.mark.parametrize(
    ("dimension", "stored", "reads"),
    [
        ("browser", "Chrome Mobile", "Chrome"),
        ("browser", "Chrome Mobile iOS", "Chrome"),
        ("browser", "Mobile Safari", "Safari"),
        ("browser", "Firefox iOS", "Firefox"),
        ("browser", "Edge", "Microsoft Edge"),
        ("browser", "Samsung Internet", "Samsung Browser"),
        ("browser", "Chrome", "Chrome"),
        ("browser", "Something New", "Something New"),
        ("os", "Mac OS X", "Mac"),
        ("os", "Linux", "GNU/Linux"),
        ("os", "iOS", "iOS"),
        ("browser_version", "Chrome Mobile", "Chrome Mobile"),  # only browser and os
    ],
)
def test_a_name_stored_before_the_renaming_reads_as_plausibles(
    dimension: str, stored: str, reads: str
) -> None:
    assert names.renamed(dimension, stored) == reads


@pytest.mark.parametrize("dimension", [names.BROWSER, names.OS])
def test_renaming_twice_changes_nothing_so_new_and_old_rows_read_alike(dimension: str) -> None:
    for new in names.TABLES[dimension].values():
        assert names.renamed(dimension, new) == new


@pytest.mark.parametrize("dimension", [names.BROWSER, names.OS])
def test_the_sql_spelling_renames_as_the_table_does(dimension: str) -> None:
    stored = [*names.TABLES[dimension], *names.TABLES[dimension].values(), "Kept As Is", ""]
    expr = names.sql(dimension, "v")

    rows = duckdb.sql(f"SELECT v, {expr} FROM unnest($1) t(v)", params=[stored]).fetchall()

    assert dict(rows) == {v: names.renamed(dimension, v) for v in stored}


def test_stored_names_of_a_name_are_every_old_name_that_reads_as_it() -> None:
    assert names.stored_names(names.BROWSER, "Chrome") == {
        "Chrome",
        "Chrome Mobile",
        "Chrome Mobile iOS",
    }
    assert names.stored_names(names.OS, "Mac") == {"Mac", "Mac OS X", "Mac OS"}
