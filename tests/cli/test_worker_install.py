"""`myninja worker install|uninstall` as a user runs them: the systemd user unit lands under
$XDG_CONFIG_HOME, parses, names an executable that exists and passes `systemd-analyze verify`
(where that is installed); a different unit is kept without --force; with no systemctl the unit
is printed with a crontab line instead. The command the unit runs stays up while idle."""

from __future__ import annotations

import asyncio
import configparser
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from tests.conftest import run_myninja

ENABLE = "systemctl --user daemon-reload && systemctl --user enable --now myninja-worker"


@pytest.fixture
def xdg(tmp_path: Path) -> dict[str, str]:
    """A config home of the test's own, and a fake systemctl on PATH (it is never run)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    # A space and a % in it: the unit must quote and escape what it passes on.
    return {"XDG_CONFIG_HOME": str(tmp_path / "config home 100%"), "PATH": path}


def unit_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "myninja-worker.service"


def parsed(text: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(text)
    return unit


def environment_of(text: str) -> dict[str, str]:
    pairs = [
        shlex.split(line.removeprefix("Environment="))[0].split("=", 1)
        for line in text.splitlines()
        if line.startswith("Environment=")
    ]
    return {name: value.replace("%%", "%") for name, value in pairs}


def test_install_writes_a_unit_that_parses_and_verifies(
    xdg: dict[str, str], myninja_home: Path
) -> None:
    done = run_myninja("worker", "install", env=xdg)
    assert done.returncode == 0, done.stderr
    path = unit_file(xdg)
    assert done.stdout.splitlines() == [
        f"wrote {path}",
        "start it now and at every login with:",
        f"  {ENABLE}",
    ]
    text = path.read_text()
    unit = parsed(text)
    service = unit["Service"]
    assert service["Restart"] == "on-failure" and unit["Install"]["WantedBy"] == "default.target"
    program, *args = shlex.split(service["ExecStart"])
    assert Path(program).is_absolute() and os.access(program, os.X_OK)
    assert args[-2:] == ["worker", "--stay"]
    env = environment_of(text)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["MYNINJA_HOME"] == str(myninja_home)
    assert env["XDG_CONFIG_HOME"] == xdg["XDG_CONFIG_HOME"] and env["PATH"] == xdg["PATH"]
    assert (path.stat().st_mode & 0o777) == 0o644
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left

    analyze = shutil.which("systemd-analyze")
    if analyze is not None:  # no running systemd needed: no man pages, no generators
        verify = [analyze, "verify", "--user", "--man=no", "--generators=no", str(path)]
        checked = subprocess.run(verify, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
        assert "myninja-worker" not in checked.stderr, checked.stderr

    printed = run_myninja("worker", "install", "--print", env=xdg)
    assert printed.returncode == 0 and printed.stdout == text
    again = run_myninja("worker", "install", env=xdg)
    assert again.returncode == 0 and again.stdout.startswith(f"already installed: {path}")


def test_a_different_unit_is_kept_without_force(xdg: dict[str, str]) -> None:
    path = unit_file(xdg)
    path.parent.mkdir(parents=True)
    path.write_text("[Service]\nExecStart=/usr/bin/true\n")
    refused = run_myninja("worker", "install", env=xdg)
    assert refused.returncode == 2 and refused.stdout == ""
    [line] = refused.stderr.splitlines()
    assert str(path) in line and "--force" in line
    assert path.read_text() == "[Service]\nExecStart=/usr/bin/true\n"

    forced = run_myninja("worker", "install", "--force", env=xdg)
    assert forced.returncode == 0, forced.stderr
    assert "worker --stay" in path.read_text()

    wants = path.parent / "default.target.wants"
    wants.mkdir()
    (wants / path.name).symlink_to(path)  # what `systemctl --user enable` makes
    removed = run_myninja("worker", "uninstall", env=xdg)
    assert removed.returncode == 0 and removed.stdout.startswith(f"removed {path}")
    assert not path.exists() and not (wants / path.name).is_symlink()
    nothing = run_myninja("worker", "uninstall", env=xdg)
    assert nothing.returncode == 0 and nothing.stdout.startswith("no unit at")


def test_without_systemd_the_unit_is_printed_with_what_to_do_instead(
    xdg: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = run_myninja("worker", "install", env={**xdg, "PATH": str(empty)})
    assert done.returncode == 0, done.stderr
    assert not unit_file(xdg).exists()
    assert "ExecStart=" in done.stdout and "systemctl is not on PATH" in done.stdout
    assert str(unit_file(xdg)) in done.stdout
    [cron] = [line for line in done.stdout.splitlines() if "@reboot" in line]
    assert "OMP_WAIT_POLICY=PASSIVE" in cron and "worker --stay" in cron
    assert "worker.log" in cron


def test_the_units_command_stays_up_while_idle(xdg: dict[str, str], myninja_home: Path) -> None:
    (myninja_home / "config.toml").write_text("worker_idle_s = 1\n")
    text = run_myninja("worker", "install", "--print", env=xdg).stdout
    command = shlex.split(parsed(text)["Service"]["ExecStart"])
    env = {**os.environ, **environment_of(text)}
    staying = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        client = WorkerClient(paths.data_dir())
        deadline = time.monotonic() + 120
        while not asyncio.run(client.alive()) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # three times worker_idle_s
        assert staying.poll() is None and asyncio.run(client.alive())
        asyncio.run(client.request("shutdown"))
        assert staying.wait(timeout=60) == 0
    finally:
        if staying.poll() is None:
            staying.kill()
            staying.wait()
