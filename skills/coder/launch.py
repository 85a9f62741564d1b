"""How a sandboxed run is started: kernel or in-process confinement (and, in-process, a network
namespace where `unshare` can make one), what the child is given (its config, an environment
built from nothing, the source it runs: child_paths.py, child_guard.py and child_bootstrap.py,
after confine.py's in kernel mode), and what a child that could not confine itself means
(`launch` runs it with runner.py and returns the `RunResult`).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from myninja.skills.coder import confinement
from myninja.skills.coder.limits import NetworkIsolation, SandboxLimits
from myninja.skills.coder.process_cgroup import ProcessCgroup
from myninja.skills.coder.run_result import RunResult
from myninja.skills.coder.runner import run_process

# Code longer than this goes to a file in the workspace's tmp/ rather than on the command line
# (Linux caps one argument at 128 KiB).
_MAX_INLINE_CODE = 100_000
_CODE_FILENAME = "<main>"


def _child_source(*names: str) -> str:
    return "\n".join(Path(__file__).with_name(name).read_text(encoding="utf-8") for name in names)


# Read here and sent to `python -c`: the child must not import myninja to confine itself.
_BOOTSTRAP = _child_source("child_paths.py", "child_guard.py", "child_bootstrap.py")
_CHILD_SOURCE = _BOOTSTRAP + "\n_sandbox_child_main(_install_audit_hook, _path_rules)\n"
# Kernel mode: confine.py's source first (its own imports, `confine`), then the bootstrap.
_CONFINED_SOURCE = (
    confinement.SOURCE
    + "\n"
    + _BOOTSTRAP
    + "\n_sandbox_child_main(_install_audit_hook, _path_rules, confine)\n"
)


@functools.cache
def _unshare_prefix() -> tuple[str, ...] | None:
    """`unshare --net --map-root-user` if this machine lets an unprivileged process make a
    network namespace (user namespaces enabled), else None. Probed once per process."""
    exe = shutil.which("unshare")
    if sys.platform != "linux" or exe is None:
        return None
    prefix = (exe, "--net", "--map-root-user")
    try:
        probe = subprocess.run(
            [*prefix, sys.executable, "-I", "-S", "-c", ""],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=_base_env(),
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return prefix if probe.returncode == 0 else None


def network_isolation_available() -> NetworkIsolation:
    """What `network=False` gets on this machine: "namespace" or "audit-hook"."""
    return "namespace" if _unshare_prefix() else "audit-hook"


def _private_dirs() -> list[str]:
    """myninja's own folders (config, data: the key store, history, other tasks' workspaces),
    which sandboxed code may not read."""
    from myninja import paths

    return sorted({os.path.realpath(paths.config_dir()), os.path.realpath(paths.data_dir())})


def _task_root(workspace: Path) -> str | None:
    """The task's workspace (<data dir>/workspaces/<task id>) when `workspace` is in one, such
    as a branch's folder inside it: readable, unlike the rest of the data dir."""
    from myninja import paths

    root = Path(os.path.realpath(paths.data_dir() / "workspaces"))
    if workspace == root or root not in workspace.parents:
        return None
    return str(root / workspace.relative_to(root).parts[0])


def _base_env() -> dict[str, str]:
    path = os.pathsep.join(
        dict.fromkeys([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"])
    )
    return {"PATH": path, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _child_env(workspace: Path) -> dict[str, str]:
    """Built from nothing, never copied from os.environ: our keys stay with us."""
    return {
        **_base_env(),
        "HOME": str(workspace),
        "TMPDIR": str(workspace / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # glibc reserves 64 MB of address space per malloc arena and BLAS/OpenMP start a thread
        # per core: with RLIMIT_AS both would turn small programs into MemoryErrors.
        "MALLOC_ARENA_MAX": "2",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def launch(
    ws: Path,
    script: Path | None,
    code: str | None,
    exec_argv: list[str] | None,
    args: Sequence[str],
    stdin: str | None,
    limits: SandboxLimits,
    network: bool,
    allow_subprocess: bool,
    cancel: threading.Event | None,
    confine: confinement.Mode | None,
) -> RunResult:
    """Run `script` (a file), `code` (Python source) or `exec_argv` (a program) in the resolved
    workspace `ws`, confined as `confine` says (default: the config's), and wait for it; what
    sandbox.py's `run_python` and `run_command` do once their arguments are checked."""
    kernel = (confine or confinement.mode()) == "kernel"
    if kernel and sys.platform != "linux":
        return _not_run(confinement.not_run_message(f"{sys.platform} is not Linux"), limits)
    prefix = None if network or kernel else _unshare_prefix()
    isolation: NetworkIsolation = (
        "none" if network else ("namespace" if prefix or kernel else "audit-hook")
    )
    task_root = _task_root(ws)
    rules = None
    if kernel:
        readable = [p for p in (task_root, script) if p is not None]
        rules = confinement.spec(ws, network=network, read=readable)
    code_file: Path | None = None
    if code is not None and len(code.encode()) > _MAX_INLINE_CODE:
        code_file = ws / "tmp" / f"_sandbox_main_{os.getpid()}_{threading.get_ident()}.py"
        code_file.write_text(code, encoding="utf-8")
        script, code = code_file, None
    cgroup = ProcessCgroup.create(limits.processes)
    config = {
        "workspace": str(ws),
        "cpu_s": max(1, int(limits.cpu_s)),
        "memory_bytes": limits.memory_mb * 1024 * 1024,
        "file_bytes": limits.file_mb * 1024 * 1024,
        "processes": limits.processes,
        "home": os.path.realpath(os.path.expanduser("~")),
        "private": _private_dirs(),
        "task_root": task_root,
        "user_namespace": prefix is not None or (kernel and not network),
        "confine": rules,
        "registry": str(ws / "tmp" / f".processes-{os.getpid()}-{threading.get_ident()}")
        if kernel
        else None,
        "guard_network": not network,
        "guard_processes": not allow_subprocess,
        "code": code,
        "filename": _CODE_FILENAME,
        "script": str(script) if script is not None else None,
        "path0": str(script.parent if script is not None and code_file is None else ws),
        "exec": exec_argv,
        "cgroup_procs": cgroup.procs_file if cgroup is not None else None,
    }
    command = [
        *(prefix or ()),
        sys.executable,
        "-I",
        "-B",
        "-c",
        _CONFINED_SOURCE if kernel else _CHILD_SOURCE,
        json.dumps(config, ensure_ascii=False),
        *map(str, args),
    ]
    try:
        result = run_process(
            command, ws, _child_env(ws), stdin, limits, isolation, cancel, kernel, cgroup
        )
        if kernel:
            result.confinement = "kernel"
            _confinement_failed(result)
        return result
    finally:
        if code_file is not None:
            code_file.unlink(missing_ok=True)
        if config["registry"]:
            shutil.rmtree(config["registry"], ignore_errors=True)
        if cgroup is not None:
            cgroup.remove()


_CONFINE_FAILED = "sandbox: the kernel confinement failed, code not run: "


def _confinement_failed(result: RunResult) -> None:
    """A child that could not confine itself ran nothing: say why and how to opt out."""
    if result.exit_code != confinement.NOT_RUN_EXIT or _CONFINE_FAILED not in result.stderr:
        return
    why = result.stderr.split(_CONFINE_FAILED, 1)[1].strip().splitlines()[0]
    result.stderr = confinement.not_run_message(why) + "\n"
    result.killed_reason = "not confined"
    result.confinement = "none"


def _not_run(message: str, limits: SandboxLimits) -> RunResult:
    return RunResult(exit_code=confinement.NOT_RUN_EXIT, stdout="", stderr=message + "\n",
                     timed_out=False, killed_reason="not confined", duration_s=0.0,
                     truncated=False, network_isolation="none", limits=limits,
                     confinement="none")  # fmt: skip
