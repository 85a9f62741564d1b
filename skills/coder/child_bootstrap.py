"""Runs in the sandboxed child, not here: its bootstrap, before any of the user's code. It sets
the rlimits (CPU seconds, address space, file size, no core dumps; processes once any user
namespace exists), joins the run's pids cgroup, confines the process (kernel mode: confine.py's
`confine`), starts the program (`myninja sandbox run`) or installs the audit hook
(child_guard.py), then runs the user's code as __main__, with a traceback that leaves out its
own frames.

launch.py sends the child this file's source after child_paths.py's and child_guard.py's (and,
in kernel mode, confine.py's) and calls `_sandbox_child_main` with their functions, so it is
self-contained: standard library only, imported inside the function, and no global but
`_sandbox_child_main`.
"""

from collections.abc import Callable


def _sandbox_child_main(
    guard: Callable[[dict, tuple], set],
    paths: Callable[[dict], tuple],
    confine: Callable[[dict], None] | None = None,
) -> None:  # pragma: no cover - in the child
    """Set the rlimits, confine the process (kernel mode: `confine` is confine.py's function),
    install the audit hook (`guard`, checking paths with the rules `paths` makes), then run the
    user's code as __main__. The run's config is the first argument, the user's arguments the
    rest.
    """
    import json
    import os
    import resource
    import sys
    import types

    config = json.loads(sys.argv[1])
    user_args = sys.argv[2:]

    def lower(limit: int, soft: int, hard: int | None = None) -> None:
        hard = soft if hard is None else hard
        _, current_hard = resource.getrlimit(limit)
        if current_hard != resource.RLIM_INFINITY:
            hard = min(hard, current_hard)
        resource.setrlimit(limit, (min(soft, hard), hard))

    def tasks_of_this_user() -> int:
        # Without a user namespace RLIMIT_NPROC counts every task of the real uid on the machine,
        # so "64 processes" must be on top of what the user already runs.
        uid, count = os.getuid(), 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += len(os.listdir(f"/proc/{entry.name}/task"))
                except OSError:
                    pass
        return count

    # SIGXCPU at the soft limit, SIGKILL one second later if the program catches SIGXCPU.
    lower(resource.RLIMIT_CPU, config["cpu_s"], config["cpu_s"] + 1)
    lower(resource.RLIMIT_AS, config["memory_bytes"])
    lower(resource.RLIMIT_FSIZE, config["file_bytes"])
    lower(resource.RLIMIT_CORE, 0)
    nproc = config["processes"]
    if not config["user_namespace"] and os.path.isdir("/proc"):
        nproc += tasks_of_this_user()
    if config["cgroup_procs"]:
        try:
            with open(config["cgroup_procs"], "w") as procs:  # the kernel counts us from here on
                procs.write(str(os.getpid()))
        except OSError as exc:
            sys.stderr.write(f"sandbox: cannot join the run's pids cgroup, code not run: {exc}\n")
            os._exit(126)
    if callable(confine):
        try:
            confine(config["confine"])
        except OSError as exc:
            why = exc.strerror or exc
            sys.stderr.write(f"sandbox: the kernel confinement failed, code not run: {why}\n")
            os._exit(126)
    # Once the user namespace exists: lowered before it, RLIMIT_NPROC would also be held
    # against every process the user runs elsewhere on the machine.
    lower(resource.RLIMIT_NPROC, nproc)
    if config["exec"]:
        try:
            os.execvp(config["exec"][0], config["exec"])
        except OSError as exc:
            sys.stderr.write(f"sandbox: cannot run {config['exec'][0]}: {exc.strerror}\n")
            os._exit(127)

    hook_code = guard(config, paths(config))

    if config["code"] is not None:
        import linecache

        filename, source = config["filename"], config["code"]
        # tracebacks and inspect find the source of code that has no file
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    else:
        filename = config["script"]
        with open(filename, "rb") as script:
            source = script.read()
    sys.path.insert(0, config["path0"])  # -I leaves out the script's directory
    sys.argv = [filename, *user_args]
    main = types.ModuleType("__main__")
    main.__file__ = filename
    sys.modules["__main__"] = main
    try:
        exec(compile(source, filename, "exec"), main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        # The traceback the program's author reads leaves out this bootstrap's frame at the top
        # and the audit hook's frames at the bottom (where a refusal was raised).
        traceback = exc.__traceback__.tb_next if exc.__traceback__ else None
        last_own, node = None, traceback
        while node is not None:
            if node.tb_frame.f_code not in hook_code:
                last_own = node
            node = node.tb_next
        if last_own is not None:
            last_own.tb_next = None
        sys.excepthook(type(exc), exc.with_traceback(traceback), traceback)
        sys.exit(1)
