"""The user agent parse reads ua-parser's device domain only for its "Spider" family, and so
compiles the device regexes only when a "Spider" matcher matches (decision 0022): the bot verdict
must be the one a full parse gives."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ua_parser import BasicResolver, Parser, load_lazy_builtins

from core import names
from ingest import enrich
from tests.unit import samples

USER_AGENTS = [
    samples.CHROME_WINDOWS,
    samples.EDGE_WINDOWS,
    samples.FIREFOX_MAC,
    samples.SAFARI_IPHONE,
    samples.SAFARI_IPAD,
    samples.CHROME_ANDROID_PHONE,
    samples.CHROME_ANDROID_TABLET,
    samples.GOOGLEBOT,
    samples.BINGBOT,
    samples.AHREFS,
    # A "Spider" matcher matches these Kindles ("silk"), but a Kindle matcher comes first.
    "Mozilla/5.0 (Linux; Android 9; KFMAWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.3.4 "
    "like Chrome/120.0.6099.280 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Silk/93.2.7 "
    "like Chrome/93.0.4577.82 Safari/537.36",
    # Spiders by ua-parser's device domain only: no word _BOT_RE knows.
    "Daum/4.1",
    "Mozilla/5.0 (compatible; Yeti/1.1; +http://naver.me/spd)",
    "ichiro/2.0",
    "NING/1.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 14_7_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/14.1.2 Mobile/15E148 Safari/604.1 (compatible; AdsBot-Google-Mobile; "
    "+http://www.google.com/mobile/adsbot.html)",
    "Mozilla/5.0 (compatible; YandexMetrika/2.0)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/131.0 Safari/537.36 Edge/44.18363.8131",
    "SomethingNobodyKnows/1.0",
]


@pytest.mark.parametrize("user_agent", USER_AGENTS)
def test_bot_verdict_and_fields_are_those_of_a_full_parse(user_agent: str) -> None:
    # Given ua-parser's full parse of every domain
    full = Parser(BasicResolver(load_lazy_builtins())).parse(user_agent).with_defaults()
    expected_bot = full.device.family == "Spider" or bool(enrich._BOT_RE.search(user_agent))
    # When the ingest parses the user agent
    info = enrich.parse_user_agent(user_agent)
    # Then it says what the full parse says, under Plausible's names (core/names.py)
    assert info.is_bot is expected_bot
    family = full.user_agent.family
    assert info.browser == ("" if family == "Other" else names.browser_name(family))
    ipad = "ipad" in user_agent.lower()
    system = full.os.family
    assert info.os == (
        "" if system == "Other" else names.os_name(system, full.os.major or "", ipad)
    )


def test_a_browser_user_agent_compiles_only_the_spider_device_regexes() -> None:
    # In a fresh interpreter: the lazy matchers are shared, and other tests compile them.
    script = (
        "from ingest import enrich\n"
        "from ua_parser import load_lazy_builtins\n"
        "from ua_parser.lazy import DeviceMatcher\n"
        f"assert not enrich.parse_user_agent({samples.CHROME_WINDOWS!r}).is_bot\n"
        "devices = load_lazy_builtins()[2]\n"
        "lazy = [m for m in devices if isinstance(m, DeviceMatcher)]\n"
        "print(sum('pattern' in vars(m) for m in lazy),"
        " sum('Spider' in m.family for m in lazy), len(devices))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    compiled, spiders, devices = map(int, done.stdout.split())
    assert compiled <= spiders < devices / 10
