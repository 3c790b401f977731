"""End-to-end fixtures: the real local stack in a subprocess, a second origin, headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-blink-features=AutomationControlled",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    def cli(self, *args: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "local.cli", "--data-dir", str(self.data_dir), *args],
            cwd=REPO,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return json.loads(out.stdout)

    def get_json(self, path: str, key: str | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"authorization": f"Bearer {key}"} if key else {}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1):
            return True
    except OSError:
        return False


def launch_dev(
    data_dir: Path, port: int, *extra: str, stdout: Any = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """`liveinsight dev` in a subprocess, returned once it answers (or has died)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.cli",
            "--data-dir",
            str(data_dir),
            "dev",
            "--port",
            str(port),
            *extra,
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=stdout,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: healthy(port) or process.poll() is not None, timeout=60)
    return process


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not (REPO / "dashboard" / "dist" / "index.html").exists():
        pytest.fail("the front-end is not built: run `make build` (make test does it)")
    data_dir = tmp_path_factory.mktemp("stack")
    port = free_port()
    log = (data_dir / "stack.log").open("wb")
    process = launch_dev(data_dir, port, "--no-persist", "--rollup-window", "1", stdout=log)
    if process.poll() is not None:
        pytest.fail(f"local stack did not start:\n{(data_dir / 'stack.log').read_text()}")
    url = f"http://127.0.0.1:{port}"
    yield Stack(url, data_dir, process)
    process.terminate()
    process.wait(30)


@pytest.fixture(scope="session")
def other_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A static site on a different origin (localhost vs 127.0.0.1, another port)."""
    root = tmp_path_factory.mktemp("site")

    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://localhost:{server.server_address[1]}", root
    server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian chromium is required: apt-get install chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def sign_in(page: Any, stack: Stack) -> None:
    """The admin signs in on the login view with the password `liveinsight dev` made."""
    page.goto(stack.url + "/?view=login")
    page.fill("#password", (stack.data_dir / "admin-password").read_text().strip())
    page.click("#login-form button[type=submit]")
    page.locator("#nav-settings").wait_for()


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
