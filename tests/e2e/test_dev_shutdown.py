"""`liveinsight dev` stops on SIGTERM with its data saved, however much data it holds.

It used to save by scanning moto over HTTP: seconds per 1 MB page, so after a few minutes of
traffic the save outlasted the client's read timeout and the stop failed without saving. The
history here is seeded (thousands of raw events in the snapshot it starts from) so that the test
needs no minutes of traffic to reach that size.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP_UA, REPO, free_port, launch_dev, wait_for

pytestmark = pytest.mark.e2e

SITE = "shutdown.example"
SEEDED_EVENTS = 5_000  # ~3 MB of raw events: the old save's Scan took >5 s a page


def seed_history(data_dir: Path, events: int) -> str:
    """A site (made by the CLI on the saved data) and `events` raw events of another site, as a
    long run leaves them in the snapshot; the site's read key."""
    command = ["site", "add", SITE, "--json"]
    created = subprocess.run(
        [sys.executable, "-m", "local.cli", "--data-dir", str(data_dir), *command],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    key: str = json.loads(created.stdout)["key"]
    snapshot_path = data_dir / "snapshot.json"
    snapshot = json.loads(snapshot_path.read_text())
    expires = str(int(time.time()) + 7 * 86400)
    snapshot["tables"]["events"] = [
        {
            "pk": {"S": f"EV#history.example#{uuid.uuid4().hex}"},
            "ttl": {"N": expires},
            "site": {"S": "history.example"},
            "ts": {"N": str(int(time.time() * 1000) - i)},
            "name": {"S": "pageview"},
            "visitor_id": {"S": f"{i % 500:016x}"},
            "tz": {"S": "UTC"},
            "hostname": {"S": "history.example"},
            "page": {"S": f"/archive/{i % 300}"},
            "source": {"S": "Direct / None"},
            "browser": {"S": "Chrome"},
            "browser_version": {"S": "131.0"},
            "os": {"S": "Linux"},
            "device": {"S": "Desktop"},
            "interactive": {"BOOL": True},
        }
        for i in range(events)
    ]
    snapshot_path.write_text(json.dumps(snapshot))
    return key


def send_pageview(port: int, path: str, visitor: int) -> None:
    body = json.dumps({"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/event",
        data=body,
        headers={
            "content-type": "text/plain",
            "user-agent": DESKTOP_UA,
            "x-forwarded-for": f"192.0.2.{visitor}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def realtime(port: int, key: str) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/realtime?site_id={SITE}",
        headers={"authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def terminate(process: subprocess.Popen[bytes], timeout: float) -> str:
    """SIGTERM, then the output once it exits; fails (and kills it) if it does not in time."""
    process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        pytest.fail(f"liveinsight dev still running {timeout:g} s after SIGTERM:\n{out.decode()}")
    return out.decode()


def test_dev_stops_on_sigterm_after_traffic_and_keeps_its_data(tmp_path: Path) -> None:
    # Given a dev stack holding a long run's raw events, and demo plus test traffic
    key = seed_history(tmp_path, SEEDED_EVENTS)
    port = free_port()
    first = launch_dev(tmp_path, port, "--demo-traffic", "--demo-rate", "5", "--rollup-window", "1")
    assert first.poll() is None, first.stdout.read() if first.stdout else ""
    try:
        for i in range(30):
            send_pageview(port, f"/page/{i % 5}", visitor=i % 7 + 1)
        wait_for(lambda: realtime(port, key)["pageviews"] == 30, timeout=60)
    except BaseException:
        first.kill()
        raise

    # When it is sent SIGTERM (a generous bound: the time goal lives in the bench)
    output = terminate(first, timeout=30)

    # Then it has exited cleanly, saying it saved
    assert first.returncode == 0, output
    assert "Saved" in output, output
    saved = json.loads((tmp_path / "snapshot.json").read_text())["tables"]["events"]
    ours = [item for item in saved if item["site"]["S"] == SITE]
    assert len(ours) == 30
    assert sum(item["site"]["S"] == "history.example" for item in saved) == SEEDED_EVENTS
    assert not (tmp_path / "stack.json").exists()

    # And a restart reads the same counts back
    second = launch_dev(tmp_path, port, "--rollup-window", "1")
    try:
        assert second.poll() is None, second.stdout.read() if second.stdout else ""
        assert realtime(port, key)["pageviews"] == 30
    finally:
        terminate(second, timeout=30)
    assert second.returncode == 0
