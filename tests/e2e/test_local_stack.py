"""`liveinsight dev` as a newcomer uses it: data survives a restart, Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP_UA, REPO, free_port, launch_dev, wait_for

pytestmark = pytest.mark.e2e


def start(data_dir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    process = launch_dev(data_dir, port, *extra)
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    return process


def send(port: int, path: str) -> None:
    body = json.dumps(
        {"n": "pageview", "u": f"https://keep.example{path}", "d": "keep.example"}
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/event",
        data=body,
        headers={"content-type": "text/plain", "user-agent": DESKTOP_UA},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202


def realtime(port: int, key: str) -> Any:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/realtime?site_id=keep.example",
        headers={"authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def stop(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGINT)  # what Ctrl-C does
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return out.decode()


def test_data_survives_a_restart_and_is_not_counted_twice(tmp_path: Path) -> None:
    # Given a site created while the stack is stopped (the CLI works on the saved data)
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "local.cli",
            "--data-dir",
            str(tmp_path),
            "site",
            "add",
            "keep.example",
            "--json",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    key = json.loads(created.stdout)["key"]
    port = free_port()
    first = start(tmp_path, port)
    send(port, "/one")
    send(port, "/two")
    wait_for(lambda: realtime(port, key)["pageviews"] == 2)
    output = stop(first)
    assert "Stopping" in output

    # When it starts again
    second = start(tmp_path, port)
    try:
        # Then the counts are back, and restored events are not aggregated again
        assert realtime(port, key)["pageviews"] == 2
        send(port, "/three")
        wait_for(lambda: realtime(port, key)["pageviews"] == 3)
        time.sleep(1.5)  # one more batching window: nothing else may arrive
        assert realtime(port, key)["pageviews"] == 3
        assert realtime(port, key)["current_visitors"] == 1
    finally:
        stop(second)
    assert (tmp_path / "snapshot.json").exists()
    assert not (tmp_path / "stack.json").exists()


def test_demo_traffic_reaches_the_public_demo_dashboard(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, port, "--demo-traffic", "--demo-rate", "10", "--no-persist")
    try:
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{url}/api/v1/sites/public", timeout=5) as response:
            (demo,) = json.loads(response.read())["sites"]
        with urllib.request.urlopen(f"{url}/", timeout=5) as response:
            assert b"LiveInsight" in response.read()
            assert "script-src 'self'" in response.headers["content-security-policy"]

        def pageviews() -> int:
            with urllib.request.urlopen(
                f"{url}/api/realtime?site_id={demo['domain']}", timeout=5
            ) as r:
                return int(json.loads(r.read())["pageviews"])

        wait_for(lambda: pageviews() > 5, timeout=30)
    finally:
        stop(process)


# tgkill: a signal to one thread of another process (Linux). A process-directed signal goes to
# whichever of its threads the kernel picks; this picks a worker thread on purpose.
TGKILL = {"x86_64": 234, "aarch64": 131}


@pytest.mark.skipif(
    sys.platform != "linux" or os.uname().machine not in TGKILL, reason="tgkill: Linux only"
)
def test_ctrl_c_delivered_to_a_worker_thread_still_stops_the_stack(tmp_path: Path) -> None:
    import ctypes

    # Given a running stack (dozens of threads: moto, the front, a tier instance per shard)
    port = free_port()
    process = start(tmp_path, port, "--no-persist")
    workers = [int(t) for t in os.listdir(f"/proc/{process.pid}/task") if int(t) != process.pid]
    assert workers
    # When SIGINT reaches one of its worker threads rather than the main one
    libc = ctypes.CDLL(None, use_errno=True)
    syscall = TGKILL[os.uname().machine]
    assert libc.syscall(syscall, process.pid, workers[-1], signal.SIGINT) == 0
    # Then it stops as after any Ctrl-C (the main thread's wait used to sleep through it)
    try:
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()  # a stack that missed the signal is not left running
    assert process.returncode == 0
    assert "Stopped" in out.decode()
