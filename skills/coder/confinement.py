"""Which confinement model-written code gets (the parent's side of confine.py): the folders it
may read and write, the person's choice of mode, and what this machine offers.

Kernel mode (the default) confines the sandboxed process with confine.py: namespaces, Landlock
and seccomp. Where the kernel cannot (not Linux, no Landlock, no user namespaces), code is not
run unless the person opts in to the in-process guard alone (`[sandbox] confinement =
"in-process"`): the audit hook, the rlimits and the process group, which code that sets out to
escape can get around (docs/security.md)."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, Literal

Mode = Literal["kernel", "in-process"]
SOURCE = Path(__file__).with_name("confine.py").read_text(encoding="utf-8")

# Read-only for the confined code: the system's programs, libraries and settings.
SYSTEM_READ = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
               "/sys/devices/system/cpu", "/proc/cpuinfo", "/proc/meminfo")  # fmt: skip
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
KERNEL_LAYERS = "Landlock, seccomp, user and network namespaces"
OPT_IN = 'to run it with the weaker in-process guard, set [sandbox] confinement = "in-process"'
NOT_RUN_EXIT = 126  # the child's exit code when it could not confine itself


def mode() -> Mode:
    """The person's choice (config `sandbox.confinement`); kernel when the config is unreadable:
    a broken config must not loosen the sandbox."""
    from myninja.config_file import load_config
    from myninja.errors import MyninjaError

    try:
        return load_config().sandbox.confinement
    except (MyninjaError, OSError, ValueError):
        return "kernel"


def _private() -> list[str]:
    from myninja import paths

    home = os.path.realpath(os.path.expanduser("~"))
    return [home, os.path.realpath(paths.config_dir()), os.path.realpath(paths.data_dir())]


def _covers(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


@cache
def _isolated_path() -> tuple[str, ...]:
    """The import path of `python -I` (what the sandboxed child has): ours less its script's
    folder or the working directory, PYTHONPATH and the user site."""
    entries = list(sys.path)
    if entries and not sys.flags.safe_path:
        entries = entries[1:]  # the script's folder, or "" for the working directory
    dropped = {p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}
    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    return tuple(
        p for p in entries
        if p not in dropped and not (user_site and _covers(user_site, p))
    )  # fmt: skip


def python_paths() -> list[str]:
    """The Python installation and what its path holds (an editable install's source), less any
    entry that would open the home or myninja's folders as a whole."""
    found = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), *_isolated_path()]  # fmt: skip
    private = _private()
    kept: dict[str, None] = {}
    for entry in found:
        if not entry or not os.path.exists(entry):
            continue
        real = os.path.realpath(entry)
        if not any(_covers(real, p) for p in private):
            kept[real] = None
    return list(kept)


def spec(
    workspace: Path, *, network: bool, read: Sequence[str | Path] = (), write: Sequence[Path] = ()
) -> dict[str, Any]:
    """What confine.py is given: the workspace (and `write`) writable, the system, Python and
    `read` readable, nothing else."""
    return {
        "read": [*SYSTEM_READ, *python_paths(), *map(str, read)],
        "write": [str(workspace), *map(str, write)],
        "devices": list(DEVICES),
        "network": network,
    }


def not_run_message(why: str) -> str:
    return f"sandbox: code not run: the kernel cannot confine it here ({why}); {OPT_IN} in config"


# -- what this machine offers ---------------------------------------------------------------

_PROBE = """
import json, os, socket, sys
spec, outside = json.loads(sys.argv[1]), sys.argv[2]
found = {"landlock_abi": landlock_abi(), "arch": os.uname().machine}
try:
    confine(spec)
except OSError as exc:
    found["error"] = exc.strerror or str(exc)
else:
    def refused(action):
        try:
            action()
        except PermissionError:
            return True
        return False
    found["read_outside_refused"] = refused(lambda: open(outside).read())
    found["write_outside_refused"] = refused(
        lambda: open(os.path.join(os.path.dirname(outside), "new"), "w"))
    found["socket_refused"] = refused(lambda: socket.socket(socket.AF_INET))
    found["unshare_refused"] = refused(lambda: os.unshare(0x10000000)) if hasattr(
        os, "unshare") else True
print(json.dumps(found))
"""


@cache
def offer() -> dict[str, Any]:
    """What this machine offers, tried for real in a throwaway process: the Landlock ABI, and
    whether the whole confinement applies and refuses what it should. `ok` sums it up; `missing`
    lists what is not there."""
    found: dict[str, Any] = {"platform": sys.platform, "layers": KERNEL_LAYERS}
    if sys.platform != "linux":
        return {**found, "ok": False, "missing": [f"Linux ({sys.platform} has no Landlock)"]}
    with tempfile.TemporaryDirectory() as inside, tempfile.TemporaryDirectory() as other:
        secret = Path(other) / "secret"
        secret.write_text("secret")
        command = [sys.executable, "-I", "-B", "-c", SOURCE + _PROBE,
                   json.dumps(spec(Path(inside), network=False)), str(secret)]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30,
                                  cwd=inside, check=False)  # fmt: skip
            found.update(json.loads(done.stdout.strip().splitlines()[-1]))
        except (OSError, subprocess.SubprocessError, ValueError, IndexError):
            found["error"] = "the probe did not run"
    checks = ("read_outside_refused", "write_outside_refused", "socket_refused",
              "unshare_refused")  # fmt: skip
    missing = [] if not found.get("error") else [found["error"]]
    if found.get("landlock_abi", 0) < 1:
        missing.append("Landlock (kernel 5.13 or later, with lsm=landlock)")
    missing += [f"{c.replace('_', ' ')}: no" for c in checks if c in found and not found[c]]
    return {**found, "ok": not missing, "missing": missing}
