"""Runs in the sandboxed child, not here: which paths the code may read and write, the rules
child_guard.py's audit hook applies (launch.py sends this file's source to the child).

Writing is allowed inside the workspace alone (and to /dev/null, /dev/stdout, /dev/stderr).
Reading is refused for what is private to the person: files under the real HOME (the one of the
process that starts the run) other than the workspace and the Python installation (its prefixes
and `sys.path`, which holds what .pth files add: editable installs), anything under myninja's
config and data folders (the key store file, history, other tasks' workspaces) but the task's own
workspace, and another process's environ, mem, cmdline, auxv and descriptors under /proc.
Elsewhere (/etc, /usr, /tmp) reading is up to the OS's permissions. Paths are resolved (symlinks
followed) before they are checked.

Self-contained: standard library only, imported inside the function, and no global but
`_path_rules`, since the child runs it as source text beside confine.py's.
"""


def _path_rules(config: dict) -> tuple:  # pragma: no cover - in the child
    """(check_read, check_write, resolve, inside, the code objects of these functions and their
    helpers) for the run `config` describes. `check_read(path, dir_fd)` and
    `check_write(path, dir_fd, follow)` raise PermissionError("sandbox: ..."); `resolve` gives
    the absolute, symlink-free path an operation would touch; `inside` says whether a resolved
    path is in the workspace."""
    import os
    import sys

    workspace = config["workspace"]
    workspace_prefix = workspace.rstrip(os.sep) + os.sep
    devices = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr"})
    realpath, normpath, isabs, split, join = (
        os.path.realpath,
        os.path.normpath,
        os.path.isabs,
        os.path.split,
        os.path.join,
    )
    readlink, getcwd, fspath, fsdecode = os.readlink, os.getcwd, os.fspath, os.fsdecode
    getpid = os.getpid

    def under(path: str, root: str) -> bool:
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def inside(path: str) -> bool:
        return path == workspace or path.startswith(workspace_prefix)

    # Reading: the real user's HOME (but the Python installation in it) and myninja's own config
    # and data folders (keys, history, other tasks' workspaces) are private; so are another
    # process's environment, memory, command line and descriptors under /proc.
    home = config["home"]
    private = tuple(config["private"])
    task_root = config["task_root"]  # a branch's code may read its task's workspace
    protect_home = home not in ("", os.sep)

    def exposes_private(root: str) -> bool:
        # a root that is HOME, or holds HOME or one of our folders, would open them all
        return any(under(secret, root) for secret in (home, *private) if secret != os.sep)

    readable_roots = tuple(
        dict.fromkeys(
            root
            for root in (
                realpath(entry)
                for entry in (
                    sys.prefix,
                    sys.base_prefix,
                    sys.exec_prefix,
                    sys.base_exec_prefix,
                    *sys.path,
                    config["path0"],
                )
                if entry and isabs(entry)
            )
            if not exposes_private(root) and not any(under(root, p) for p in private)
        )
    )
    proc_private = frozenset({"environ", "mem", "cmdline", "auxv", "fd", "fdinfo", "map_files"})

    def fd_target(fd: int) -> str | None:
        try:
            return readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None

    def resolve(path: object, dir_fd: object, follow: bool) -> str | None:
        """The absolute, symlink-free path an operation would touch; None when it touches no
        named file (an fd of a pipe or socket, an allowed device)."""
        if path is None:
            path = "."
        if isinstance(path, int):
            target = fd_target(path)
            return realpath(target) if target and target.startswith("/") else None
        text = fsdecode(fspath(path))  # type: ignore[arg-type]
        if not isabs(text):
            if isinstance(dir_fd, int) and dir_fd >= 0:
                base = fd_target(dir_fd)
                if base is None or not base.startswith("/"):
                    return f"(directory fd {dir_fd})/{text}"  # unknown: refuse
            else:
                base = getcwd()
            text = join(base, text)
        text = normpath(text)
        if text in devices:
            return None
        head, tail = split(text)
        # remove, rename, rmdir and friends act on the link itself, not on what it points to
        if follow or tail in ("", ".", ".."):
            return realpath(text)
        return join(realpath(head), tail)

    def read_refusal(target: str) -> str | None:
        for folder in private:
            if under(target, folder):
                return f"sandbox: reading myninja's own files is not allowed: {target}"
        if target.startswith("/proc/"):
            parts = target.split(os.sep)[2:]  # pid, entry… or pid, "task", tid, entry…
            if parts[0].isdigit() and int(parts[0]) != getpid():
                entry = parts[3:4] if parts[1:2] == ["task"] else parts[1:2]
                if entry and entry[0] in proc_private:
                    return f"sandbox: reading another process's {entry[0]} is not allowed"
        if protect_home and under(target, home):
            if not any(under(target, root) for root in readable_roots):
                return f"sandbox: reading the user's files is not allowed: {target}"
        return None

    def check_read(path: object, dir_fd: object = None) -> None:
        if isinstance(path, str) and isabs(path):
            # imports read hundreds of files of the Python installation: no realpath for those
            quick = normpath(path)
            if any(under(quick, root) for root in readable_roots) and not any(
                under(quick, folder) for folder in private
            ):
                return
        target = resolve(path, dir_fd, True)
        if target is None or inside(target) or (task_root and under(target, task_root)):
            return
        refusal = read_refusal(target)
        if refusal is not None:
            raise PermissionError(refusal)

    def check_write(path: object, dir_fd: object = None, follow: bool = True) -> None:
        target = resolve(path, dir_fd, follow)
        if target is not None and not inside(target) and target not in devices:
            raise PermissionError(
                f"sandbox: writing outside the workspace is not allowed: {target}"
            )

    codes = {f.__code__ for f in (resolve, fd_target, inside, under, check_read, read_refusal)}
    codes.add(check_write.__code__)
    return check_read, check_write, resolve, inside, codes
