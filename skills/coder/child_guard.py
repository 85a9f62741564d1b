"""Runs in the sandboxed child, not here: the audit hook (`sys.addaudithook`) that the child's
bootstrap installs before the user's code, with the paths child_paths.py allows (launch.py sends
this file's source to the child). It refuses, with a PermissionError whose message starts with
"sandbox:":

- writes outside the workspace (`open` for writing, remove, rename, mkdir, rmdir, chmod, chown,
  utime, truncate, symlink, link, xattrs, shutil's copy/move/rmtree/archives, sqlite3 files);
  hard links to files outside, since writing through one would change the outside file;
- reading what is private to the person (child_paths.py says what), by `open`,
  `os.listdir`/`os.scandir` and sqlite3 files;
- network use (connect, bind, sendto, sendmsg, name resolution; Unix sockets only inside the
  workspace);
- starting programs (subprocess, os.system, os.exec*, os.posix_spawn, and
  `_posixsubprocess.fork_exec`, which multiprocessing's "spawn" uses) unless allowed;
- a fork or program start past `SandboxLimits.processes` members of the run's process group
  (RLIMIT_NPROC does not bind root).

It is a guard against accidents and honest mistakes, not against code that sets out to escape
(sandbox.py says what gets around it; the kernel's layers, confine.py, hold where they run).

Self-contained: standard library only, imported inside the function, and no global but
`_install_audit_hook`, since the child runs it as source text beside confine.py's.
"""


def _install_audit_hook(config: dict, paths: tuple) -> set:  # pragma: no cover - in the child
    """Install the audit hook for the run `config` describes, checking paths with `paths`
    (what child_paths.py's `_path_rules` returns); the code objects of the hook's functions,
    whose frames a traceback leaves out."""
    import os
    import sys

    check_read, check_write, resolve, inside, path_code = paths
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    af_unix = 1  # socket.AF_UNIX on Linux and macOS; importing socket here would cost startup
    network_message = "sandbox: network access is not allowed"
    join, fspath, fsdecode = os.path.join, os.fspath, os.fsdecode
    getpid, getpgrp, listdir = os.getpid, os.getpgrp, os.listdir
    os_open, os_read, os_close, read_only = os.open, os.read, os.close, os.O_RDONLY

    # Processes: RLIMIT_NPROC does not bind root (nor, without a user namespace, count per run),
    # so each fork or program start also counts the members of the run's process group.
    process_limit = config["processes"]
    have_proc = os.path.isdir("/proc")
    counting: set[int] = set()  # threads counting, whose own audit events pass unchecked
    from _thread import get_ident

    # Confined by the kernel, /proc is closed to the run: its Python processes sign in to a
    # folder of the workspace instead (at start and after each fork), and the live ones count.
    registry = config["registry"]

    def sign_in() -> None:
        os_close(os_open(join(registry, str(getpid())), os.O_CREAT | os.O_WRONLY, 0o600))

    def registered() -> int:
        count = 0
        for name in listdir(registry):
            try:
                os.kill(int(name), 0)
                count += 1
            except ProcessLookupError:
                continue  # exited
            except (PermissionError, ValueError):
                count += 1
        return count

    if registry:
        os.makedirs(registry, exist_ok=True)
        sign_in()
        os.register_at_fork(after_in_child=sign_in)

    def group_size() -> int:
        if registry:
            return registered()
        group, count = str(getpgrp()).encode(), 0
        for name in listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                fd = os_open(f"/proc/{name}/stat", read_only)
                try:
                    stat = os_read(fd, 1024)
                finally:
                    os_close(fd)
            except OSError:
                continue  # it exited meanwhile
            fields = stat.rpartition(b")")[2].split()  # state, ppid, pgrp, …
            if len(fields) > 2 and fields[2] == group:
                count += 1
        return count

    def check_processes() -> None:
        if not have_proc:
            return
        me = get_ident()
        counting.add(me)
        try:
            size = group_size()
        finally:
            counting.discard(me)
        if size >= process_limit:
            raise PermissionError(f"sandbox: process limit reached ({process_limit} processes)")

    # event -> (index of the path argument, index of its dir_fd or None, follow symlinks)
    path_events: dict[str, tuple[tuple[int, int | None, bool], ...]] = {
        "os.remove": ((0, 1, False),),
        "os.rmdir": ((0, 1, False),),
        "os.mkdir": ((0, 2, False),),
        "os.rename": ((0, 2, False), (1, 3, False)),
        "os.symlink": ((1, 2, False),),
        "os.link": ((0, 2, True), (1, 3, False)),
        "os.chmod": ((0, 2, True),),
        "os.chown": ((0, 3, True),),
        "os.utime": ((0, 3, True),),
        "os.truncate": ((0, None, True),),
        "os.chflags": ((0, None, True),),
        "os.lchflags": ((0, None, False),),
        "os.setxattr": ((0, None, True),),
        "os.removexattr": ((0, None, True),),
        "shutil.rmtree": ((0, 1, False),),
        "shutil.copyfile": ((1, None, True),),
        "shutil.copymode": ((1, None, True),),
        "shutil.copystat": ((1, None, True),),
        "shutil.copytree": ((1, None, True),),
        "shutil.move": ((0, None, False), (1, None, True)),
        "shutil.chown": ((0, None, True),),
        "shutil.make_archive": ((0, None, True),),
        "shutil.unpack_archive": ((1, None, True),),
    }
    address_events = frozenset({"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"})
    lookup_events = frozenset(
        {
            "socket.getaddrinfo",
            "socket.gethostbyname",
            "socket.gethostbyname_ex",
            "socket.gethostbyaddr",
            "socket.getnameinfo",
        }
    )
    process_events = frozenset(
        {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.startfile"}
    )
    listing_events = frozenset({"os.listdir", "os.scandir"})
    fork_events = frozenset({"os.fork", "os.forkpty"})
    guard_network = config["guard_network"]
    guard_processes = config["guard_processes"]
    watched = frozenset(path_events) | {"open", "sqlite3.connect"} | listing_events | fork_events
    if guard_network:
        watched |= address_events | lookup_events | {"socket.__new__"}
    watched |= process_events  # refused, or (allowed) counted

    def check_open(args: tuple) -> None:
        path, mode, flags = args[0], args[1], args[2]
        if isinstance(path, int):
            return  # wrapping a descriptor that was checked when it was opened
        writing = (isinstance(flags, int) and flags & write_flags) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        )
        if writing:
            check_write(path)
        else:
            check_read(path)

    def check_sqlite(args: tuple) -> None:
        database = fsdecode(fspath(args[0]))
        if database in ("", ":memory:"):
            return
        if database.startswith("file:"):
            location, _, query = database[5:].partition("?")
            if location == ":memory:" or "mode=memory" in query:
                return
            if location.startswith("//"):  # file://host/path
                location = "/" + location[2:].partition("/")[2]
            if "mode=ro" in query:
                return check_read(location)
            database = location
        check_read(database)
        check_write(database)

    def check_address(sock: object, address: object) -> None:
        if address is None:
            return  # sendmsg on a connected socket: checked at connect
        if getattr(sock, "family", None) == af_unix and isinstance(address, str | bytes):
            name = fsdecode(address)
            if name and not name.startswith("\0"):
                target = resolve(name, None, True)
                if target is None or inside(target):
                    return
        raise PermissionError(network_message)

    def audit(event: str, args: tuple) -> None:
        if event not in watched or (counting and get_ident() in counting):
            return
        try:
            if event == "open":
                check_open(args)
            elif event in listing_events:
                check_read(args[0] if args else None)
            elif event in fork_events:
                check_processes()
            elif event == "sqlite3.connect":
                check_sqlite(args)
            elif event in path_events:
                for index, dir_fd_index, follow in path_events[event]:
                    if index < len(args):
                        has_dir_fd = dir_fd_index is not None and dir_fd_index < len(args)
                        dir_fd = args[dir_fd_index] if has_dir_fd else None  # type: ignore[index]
                        check_write(args[index], dir_fd, follow)
            elif event in address_events:
                check_address(args[0], args[1])
            elif event in lookup_events:
                raise PermissionError(network_message)
            elif event == "socket.__new__":
                # Unix sockets pass here (socketpair wraps its ends in new socket objects); the
                # kernel's filter refuses a new one where it confines the run.
                if len(args) > 1 and args[1] != af_unix:
                    raise PermissionError(network_message)
            elif event in process_events:
                if guard_processes:
                    raise PermissionError(f"sandbox: starting processes is not allowed ({event})")
                if event != "os.exec":  # exec replaces this process: no new one
                    check_processes()
        except PermissionError:
            raise
        except Exception as exc:  # a path we cannot make sense of: refuse rather than allow
            raise PermissionError(f"sandbox: could not check {event}: {exc!r}") from None

    if guard_processes:
        import _posixsubprocess

        def refuse_fork_exec(*args: object, **kwargs: object) -> None:
            raise PermissionError("sandbox: starting processes is not allowed (fork_exec)")

        # multiprocessing's "spawn" and "forkserver" start a fresh interpreter this way, with no
        # audit event and without our hook; subprocess raises its own event first.
        _posixsubprocess.fork_exec = refuse_fork_exec

    hook_code = {f.__code__ for f in (audit, check_open, check_sqlite, check_address)}
    hook_code |= path_code | {check_processes.__code__}
    hook_code |= {group_size.__code__, registered.__code__, sign_in.__code__}
    if guard_processes:
        hook_code.add(refuse_fork_exec.__code__)
    sys.addaudithook(audit)
    return hook_code
