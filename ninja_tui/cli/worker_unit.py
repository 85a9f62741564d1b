"""`myninja worker install`: the background worker as a systemd user service, so that schedules
run from login on, with no `myninja` command started first.

The unit runs `myninja worker --stay` (the worker in the foreground, never leaving when idle)
from this very installation, with the environment it needs. It goes to
`$XDG_CONFIG_HOME/systemd/user/myninja-worker.service` (default `~/.config`), written whole or
not at all; a different unit already there is kept unless `--force`. Nothing here runs
systemctl: the commands to run are printed. Where systemd is absent, the unit is printed with
what to do instead (a crontab @reboot line)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from myninja import paths
from myninja.errors import UsageError

UNIT = "myninja-worker.service"
ENABLE = "systemctl --user daemon-reload && systemctl --user enable --now myninja-worker"
# Passed on to the service where they are set: where config and data live, the tools and the
# notify_command the worker runs, the keyring's session bus.
PASSED_ON = (
    "MYNINJA_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "PATH",
    "DBUS_SESSION_BUS_ADDRESS",
)


def unit_path() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "systemd" / "user" / UNIT


def worker_command() -> list[str]:
    """This installation's `myninja worker --stay`, by absolute paths: the console script beside
    the interpreter where there is one, else the interpreter with `-m myninja`."""
    python = Path(sys.executable).absolute()  # not resolved: a venv's python is a link
    script = python.parent / "myninja"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), "worker", "--stay"]
    return [str(python), "-m", "myninja", "worker", "--stay"]


def _quoted(word: str, command: bool = True) -> str:
    """A word as systemd reads it literally: quoted where needed, no % specifiers, and in a
    command line no $ expansion (Environment= expands no variables)."""
    if word and not any(c in word for c in " \t\"'\\;"):
        quoted = word
    else:
        quoted = '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    quoted = quoted.replace("%", "%%")
    return quoted.replace("$", "$$") if command else quoted


def environment() -> dict[str, str]:
    env = {"OMP_WAIT_POLICY": "PASSIVE"}  # llama.cpp decodes far slower under load without it
    env |= {name: os.environ[name] for name in PASSED_ON if os.environ.get(name)}
    return env


def unit_text() -> str:
    env = "".join(f"Environment={_quoted(f'{k}={v}', False)}\n" for k, v in environment().items())
    return (
        "# Written by `myninja worker install`; `myninja worker uninstall` removes it.\n"
        "[Unit]\n"
        "Description=myninja background worker (scheduled and detached tasks)\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={' '.join(_quoted(word) for word in worker_command())}\n"
        f"{env}"
        "Restart=on-failure\n"
        "RestartSec=5\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def without_systemd(text: str) -> str:
    """The unit, and where to put it or what to do instead, for a machine with no systemctl."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment().items())
    command = shlex.join(worker_command())
    log = shlex.quote(str(paths.data_dir() / "worker.log"))
    return (
        f"{text}\n"
        "# systemctl is not on PATH here. Where systemd runs, save the unit above as\n"
        f"#   {unit_path()}\n"
        f"# and run: {ENABLE}\n"
        "# Without systemd, start the worker at boot from your crontab (`crontab -e`):\n"
        f"#   @reboot {env} {command} >> {log} 2>&1\n"
    )


def install(force: bool) -> tuple[Path, bool]:
    """Write the unit; returns its path and whether it was written (False: the same one was
    there already). A different unit there is a UsageError unless `force`."""
    path, text = unit_path(), unit_text()
    try:
        old = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        old = None
    if old == text:
        return path, False
    if old is not None and not force:
        raise UsageError(
            f"{path} exists and is a different unit",
            hint="see it with `myninja worker install --print`; replace it with --force",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{UNIT}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, True


def uninstall() -> Path | None:
    """Remove the unit and its enablement link (what `systemctl --user disable` removes);
    returns the unit's path, or None where there was none."""
    path = unit_path()
    wants = path.parent / "default.target.wants" / UNIT
    if wants.is_symlink():
        wants.unlink()
    if not path.exists():
        return None
    path.unlink()
    return path


def have_systemd() -> bool:
    return shutil.which("systemctl") is not None
