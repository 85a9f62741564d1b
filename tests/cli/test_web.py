"""`myninja web` as a user runs it: real server processes on 127.0.0.1, real HTTP and websocket
clients, and Debian's Chromium (through Playwright) typing a task into the app."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from myninja.agent_graph.tasks.client import WorkerClient
from tests.agent_graph.scripts import FENCE_RULES
from tests.conftest import REPO, _drain, myninja_cmd, run_myninja, scripted_config

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
# Where CI keeps what a run leaves to look at (not MYNINJA_*: those are config overrides).
ARTEFACTS = os.environ.get("TEST_ARTEFACTS")
TOKEN = "s3cret-token"
# Without the background-networking flags Chromium calls home, which this sandbox refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ANSI = re.compile(rb"\x1b(?:\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


@dataclass
class Web:
    proc: subprocess.Popen[str]
    url: str  # http://127.0.0.1:PORT/
    announced: str  # the line it printed
    stopped: bool = False


@pytest.fixture
def home(myninja_home: Path) -> Iterator[Path]:
    """A scripted backend, and the worker the app starts shut down afterwards."""
    scripted_config(myninja_home, FENCE_RULES, idle_s=30)
    yield myninja_home
    client = WorkerClient(myninja_home / "data")
    if asyncio.run(client.alive()):
        asyncio.run(client.request("shutdown"))


def start_web(*args: str, env: dict[str, str] | None = None) -> Web:
    proc = subprocess.Popen(
        myninja_cmd("web", "--port", "0", *args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
        start_new_session=True,  # its apps share its process group: a failed test kills all
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"web did not announce its URL: {line!r} {proc.stderr.read()}")
    _drain(proc.stderr)
    return Web(proc, match.group(1), line)


def stop_web(web: Web) -> float:
    """SIGTERM, as a service manager stops it: it must end promptly and cleanly."""
    started = time.monotonic()
    web.stopped = True
    web.proc.terminate()
    try:
        code = web.proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(web.proc.pid, signal.SIGKILL)
        raise AssertionError("myninja web ignored SIGTERM for 15 s") from None
    assert code == 0, code
    return time.monotonic() - started


def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[Web]:
    server = start_web(*args, env=env)
    yield server
    if not server.stopped:  # it must have kept serving through the test
        assert server.proc.poll() is None, f"myninja web died (exit {server.proc.returncode})"
        stop_web(server)


@pytest.fixture
def web(home: Path) -> Iterator[Web]:
    yield from serving()


@pytest.fixture
def web_with_token(home: Path) -> Iterator[Web]:
    yield from serving("--token-env", "WEB_TOKEN", env={"WEB_TOKEN": TOKEN})


def client() -> httpx.Client:
    return httpx.Client(trust_env=False, timeout=10, follow_redirects=False)


def ws_url(web: Web) -> str:
    return web.url.replace("http://", "ws://") + "ws?width=80&height=24"


# --- refusals before anything listens --------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_off_loopback_without_a_token_it_refuses_in_one_line(home: Path, host: str) -> None:
    result = run_myninja("web", "--host", host, "--port", "0", timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "token is required" in line and "--token-env" in line


def test_an_empty_token_variable_is_refused(home: Path) -> None:
    result = run_myninja(
        "web", "--host", "0.0.0.0", "--token-env", "WEB_TOKEN", env={"WEB_TOKEN": ""}, timeout=60
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "WEB_TOKEN is empty or not set" in line


def test_a_port_in_use_is_one_line(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_myninja("web", "--port", str(port), timeout=60)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


# --- the token, the Host and the Origin ------------------------------------------------------


def test_with_a_token_the_page_needs_it_once_then_the_cookie(web_with_token: Web) -> None:
    url = web_with_token.url
    assert "?token=" in web_with_token.announced and TOKEN not in web_with_token.announced
    with client() as http:
        assert http.get(url).status_code == 401
        assert http.get(url, params={"token": "wrong"}).status_code == 403
        assert http.get(f"{url}static/js/textual.js").status_code == 401
        first = http.get(url, params={"token": TOKEN})
        assert first.status_code == 200
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
        # The visit leaves for the bare URL, so the token stays out of the address bar.
        assert 'location.replace("/")' in first.text and TOKEN not in first.text
        page = http.get(url)  # the client kept the cookie
        assert page.status_code == 200
        assert f'data-session-websocket-url="{ws_url(web_with_token).split("?")[0]}"' in page.text
    origin = web_with_token.url.rstrip("/")
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(web_with_token), origin=origin, proxy=None, open_timeout=10)
    assert refused.value.response.status_code == 401


def test_a_websocket_from_another_site_is_refused(web: Web) -> None:
    for origin in ("http://evil.example", "http://127.0.0.1:1", None):
        with pytest.raises(InvalidStatus) as refused:
            connect(ws_url(web), origin=origin, proxy=None, open_timeout=10)  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403, origin
    # The page's own origin gets the app: its first screen arrives over the socket.
    with connect(ws_url(web), origin=web.url.rstrip("/"), proxy=None, open_timeout=10) as ws:
        received = b""
        deadline = time.monotonic() + 60
        while b"Ask myninja" not in ANSI.sub(b"", received) and time.monotonic() < deadline:
            message = ws.recv(timeout=60)
            received += message if isinstance(message, bytes) else message.encode()
    assert b"Ask myninja" in ANSI.sub(b"", received)


def test_a_foreign_host_name_is_refused_on_loopback(web: Web) -> None:
    # DNS rebinding: a site whose name now points at 127.0.0.1 reaches the port under its name.
    with client() as http:
        refused = http.get(web.url, headers={"Host": "evil.example"})
        assert refused.status_code == 403
        by_name = http.get(web.url.replace("127.0.0.1", "localhost"))
        assert by_name.status_code == 200
        # The page's websocket follows the address it was opened at (not the bound one).
        assert 'data-session-websocket-url="ws://localhost:' in by_name.text


# --- a real browser --------------------------------------------------------------------------


def screen_text(frames: list[bytes]) -> str:
    """What the app sent, escapes removed: enough to find a line of text it drew."""
    return ANSI.sub(b"", b"".join(frames)).decode("utf-8", "replace")


def wait_until(page: Page, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        # Not time.sleep: Playwright's sync API delivers events (the frames) only inside its
        # own calls.
        page.wait_for_timeout(200)


def listed_tasks() -> list[dict[str, object]]:
    listed = run_myninja("tasks", "list", "--json", timeout=60)
    assert listed.returncode == 0, listed.stderr
    tasks: list[dict[str, object]] = json.loads(listed.stdout)
    return tasks


@pytest.mark.slow
def test_a_task_typed_in_the_browser_runs_on_the_worker(web: Web, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    frames: list[bytes] = []
    shot = tmp_path / "myninja-web.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        try:
            drive(page, web, frames)
            page.screenshot(path=str(shot))
            # Stopped with a tab open, it ends that session and exits at once (no grace wait
            # for the open websocket); the page says the session ended.
            assert stop_web(web) < 10
            page.wait_for_selector("body.-closed", timeout=10_000)
        finally:
            if not shot.exists():  # on a failure: what the app showed by then
                page.screenshot(path=str(shot))
            browser.close()
            if ARTEFACTS:
                Path(ARTEFACTS).mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, Path(ARTEFACTS) / shot.name)
    assert shot.stat().st_size > 10_000


def drive(page: Page, web: Web, frames: list[bytes]) -> None:
    """Open the app, type a task, and see it listed by the CLI and answered on the page."""
    # Only this server: the page's web font from Google would only wait for a timeout.
    page.route(
        re.compile(r"^https?://"),
        lambda route: route.continue_() if route.request.url.startswith(web.url) else route.abort(),
    )
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framereceived",
            lambda data: frames.append(data if isinstance(data, bytes) else data.encode()),
        ),
    )
    page.goto(web.url)
    # textual.js marks the body once the app's first bytes arrived; the placeholder says the
    # app has mounted (its input box has focus from the start).
    page.wait_for_selector("body.-first-byte", timeout=60_000)
    wait_until(page, lambda: "Ask myninja" in screen_text(frames), 60, "the app's input box")
    # Focus the terminal's keyboard input without a click: a click is a mouse event the app
    # acts on (it would move focus from the input box to where it landed).
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.type("Paint the gate")
    page.keyboard.press("Enter")
    wait_until(
        page,
        lambda: any(t.get("text") == "Paint the gate" for t in listed_tasks()),
        60,
        "the task in `myninja tasks list`",
    )
    # The answer comes back from the worker and is drawn in the page.
    wait_until(page, lambda: "Fence painted" in screen_text(frames), 60, "the answer")
