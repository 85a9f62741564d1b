"""A real CalDAV server for the calendar tests: Radicale on 127.0.0.1, a free port, two users
with passwords (htpasswd, plain), each allowed only their own calendars, storage in a temp dir.
Started as its own process (`python -m radicale`), as a person would run it, and stopped at
the end."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.local_http import free_port

USERS = {"alice": "alice-secret", "bob": "bob-secret"}


@dataclass
class Radicale:
    base_url: str  # ends in "/"
    proc: subprocess.Popen[bytes]

    def calendar_url(self, user: str, calendar: str = "work") -> str:
        return f"{self.base_url}{user}/{calendar}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def radicale_server(folder: Path) -> Iterator[Radicale]:
    """Radicale serving from `folder` for the block."""
    users = folder / "users"
    users.write_text("".join(f"{name}:{password}\n" for name, password in USERS.items()))
    port = free_port()
    config = folder / "radicale.conf"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\nhtpasswd_encryption = plain\n"
        # Radicale delays every failed login by default: the wrong-password test need not wait.
        "delay = 0\n"
        "[rights]\ntype = owner_only\n"
        f"[storage]\nfilesystem_folder = {folder / 'collections'}\n"
        "[logging]\nlevel = warning\n"
    )
    log = (folder / "radicale.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Radicale(f"http://127.0.0.1:{port}/", proc)
    try:
        _wait_until_it_answers(server, folder / "radicale.log")
        yield server
    finally:
        server.stop()
        log.close()


def _wait_until_it_answers(server: Radicale, log: Path, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"radicale exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            httpx.get(server.base_url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"radicale did not answer within {limit_s} s")
