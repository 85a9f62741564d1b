"""Shared fixtures. Every test runs with MYNINJA_HOME in its own temp dir, XDG_RUNTIME_DIR in
the session's own, and no MYNINJA_* variables from the developer's shell."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the heavy reliability suites (marked heavy); `make test` sets it",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="heavy: run with --slow (make test and CI do)")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


TINY_MODEL = "smollm2-135m"
# One thread: on two cores a 135M model decodes about 3x faster on one thread than on two,
# whose per-operation synchronisation costs more than the work it splits.
TINY_THREADS = 1
# The tiny model's router may send any task to the scheduler, which asks for the person's time
# zone where nothing gives it (this machine is on UTC): tests that are not about that say it.
KNOWN_TIME_ZONE = {"MYNINJA_SCHEDULER__TIMEZONE": "Europe/Berlin"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def session_runtime_dir() -> Iterator[Path]:
    """The tests' own login-session runtime dir (private, short enough for socket paths) for the
    workers' sockets: not the developer's, and removed at the end with what killed workers
    left in it."""
    root = Path(tempfile.mkdtemp(prefix="myninja-tests-"))
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    yield runtime
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def myninja_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_runtime_dir: Path
) -> Path:
    for var in list(os.environ):
        if var.startswith("MYNINJA_"):
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("MYNINJA_HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(session_runtime_dir))
    # No test reaches the person's own desktop: OS notifications go to a bus that is not there
    # (the D-Bus tests start their own: tests/dbus_notifications.py).
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/myninja-test-bus")
    if not _kernel_confinement():
        # Code would not run at all: the rest of the suite runs under the in-process guard,
        # and the kernel's own tests skip (tests/reliability/test_kernel_confinement.py).
        monkeypatch.setenv("MYNINJA_SANDBOX__CONFINEMENT", "in-process")
    return home


def _kernel_confinement() -> bool:
    from myninja.skills.coder.confinement import offer

    return bool(offer()["ok"])


# Every branch runs and the judge scores each: the graph's whole machinery at once.
CLASSIC_GRAPH = '[graph]\nadaptive = false\njudge = "each"\n'


def scripted_config(
    home: Path, rules: list[dict[str, object]], idle_s: float = 2, graph: str = ""
) -> Path:
    """Point MYNINJA_HOME's config at a scripted backend answering with `rules`."""
    script = home / "script.json"
    script.write_text(json.dumps({"rules": rules}))
    (home / "config.toml").write_text(
        f'worker_idle_s = {idle_s}\n[backends.embedded]\ntype = "scripted"\nscript = "{script}"\n'
        + graph
    )
    return home


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models dir for the session, so the tiny model is verified once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model_path(models_dir: Path) -> Path:
    from myninja.backends.models import resolve_model

    return resolve_model(TINY_MODEL, models_dir)


def myninja_cmd(*args: str) -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).parent / "myninja"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "myninja", *args]


def run_myninja(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        myninja_cmd(*args),
        capture_output=True,
        text=True,
        input=input,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=REPO,
    )


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url  # ends in /v1


def _wait_for(
    proc: subprocess.Popen[str], url: str, headers: dict[str, str], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not come up in {timeout}s")


def server_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a server subprocess: its own MYNINJA_HOME, none of the developer's
    MYNINJA_* variables (session fixtures start before the autouse home fixture)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYNINJA_")}
    return {**clean, "MYNINJA_HOME": str(home), **(extra or {})}


def _drain(stream: IO[str]) -> None:
    """Keep reading a child's stderr so a chatty child never blocks on a full pipe."""
    threading.Thread(target=lambda: all(True for _ in stream), daemon=True).start()


def start_serve(model: str, *extra: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`myninja serve` on a free port; the URL is read from its first stderr line."""
    proc = subprocess.Popen(
        myninja_cmd(
            "serve", "--model", model, "--port", "0", "--threads", str(TINY_THREADS), *extra
        ),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    assert proc.stderr is not None
    lines = []
    while not (match := re.search(r"(http://\S+/v1)", lines[-1] if lines else "")):
        lines.append(proc.stderr.readline())
        if not lines[-1] or len(lines) > 20:  # it exited, or talks without announcing
            proc.kill()
            raise RuntimeError(f"serve did not announce its URL: {lines!r} {proc.stderr.read()}")
    _drain(proc.stderr)
    base = match.group(1)
    token = (env or {}).get("SERVE_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    _wait_for(proc, f"{base}/models", headers, 120)
    return ServerProcess(proc, base)


def stop(server: ServerProcess) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(10)
    except subprocess.TimeoutExpired:
        server.proc.kill()


@pytest.fixture(scope="session")
def serve_tiny(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Our own server hosting the tiny model, shared by the session."""
    server = start_serve(TINY_MODEL, env=server_env(tmp_path_factory.mktemp("serve-home")))
    yield server
    stop(server)


@pytest.fixture(scope="session")
def llama_cpp_server(
    tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """llama-cpp-python's own OpenAI-compatible server: an independent implementation."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("llama-cpp-server") / "stderr.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(tiny_model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "2",
            "--n_ctx",
            "2048",
            "--model_alias",
            TINY_MODEL,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),  # llama.cpp logs hundreds of kB while loading
        text=True,
    )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}/v1")
    _wait_for(proc, f"{server.base_url}/models", {}, 120)
    yield server
    stop(server)
