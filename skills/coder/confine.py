"""Kernel confinement for model-written code on Linux, applied by the process itself before the
code runs and kept across exec: a user and network namespace, `no_new_privs`, Landlock and a
seccomp filter. No dependency: ctypes and the kernel's own interfaces.

- **Network**: `unshare(CLONE_NEWUSER | CLONE_NEWNET)` gives the process a network stack with
  no interface up, so no address (loopback included) is reachable, and abstract Unix sockets
  are those of the new namespace. The user namespace maps the process's own uid and gid, so
  the workspace's files keep their owner; a root caller loses its capabilities over the host.
- **Files** (Landlock): read and execute in the system folders and the Python installation,
  read and write in the workspace, nothing anywhere else: the person's home, myninja's data,
  /tmp and other processes' /proc entries cannot be opened, listed, written or linked to,
  whichever way the code asks (libc, raw syscalls, /proc/self/root, symlinks). Links and
  renames that would carry a file out of its rules are refused (Landlock's REFER right).
  Where the kernel's Landlock has them, TCP bind/connect are refused too, and signals and
  abstract Unix sockets are scoped to the confined processes.
- **Syscalls** (seccomp, an allow-by-default filter of known-dangerous calls, refused with
  EPERM): ptrace and process_vm_*, mount and the new mount API, namespaces (unshare, setns,
  clone with CLONE_NEW* flags; clone3 answers ENOSYS so libc falls back to clone), keyctl and
  keys, bpf, perf_event_open, io_uring, userfaultfd, module and kexec loading, handle-based
  opens, TIOCSTI/TIOCLINUX terminal injection, setsid and setpgid (leaving the process group
  would outlive the wall time's kill of the group), and socket() of every family when the run has
  no network (socketpair stays: event loops use it).

This file runs in two places: imported by the sandbox (to build the spec and to probe), and
as source text at the start of the sandboxed child, before any of the code it confines: so it
imports only the standard library and defines no globals that the child would trip over.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import stat
import struct

# -- seccomp ------------------------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Syscall numbers from the kernel headers (asm/unistd_64.h, asm-generic/unistd.h).
_DENIED = {
    "x86_64": {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165,
        "umount2": 166, "pivot_root": 155, "chroot": 161, "keyctl": 250, "add_key": 248,
        "request_key": 249, "bpf": 321, "unshare": 272, "setns": 308, "perf_event_open": 298,
        "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "swapon": 167, "swapoff": 168, "reboot": 169, "acct": 163,
        "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "quotactl": 179, "syslog": 103, "fanotify_init": 300, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "setsid": 112, "setpgid": 109,
    },
    "aarch64": {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40,
        "umount2": 39, "pivot_root": 41, "chroot": 51, "keyctl": 219, "add_key": 217,
        "request_key": 218, "bpf": 280, "unshare": 97, "setns": 268, "perf_event_open": 241,
        "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "swapon": 224, "swapoff": 225, "reboot": 142, "acct": 89,
        "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "quotactl": 60, "syslog": 116, "fanotify_init": 262, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "setsid": 157, "setpgid": 154,
    },
}  # fmt: skip
_SPECIAL = {
    "x86_64": {"socket": 41, "clone": 56, "clone3": 435, "ioctl": 16},
    "aarch64": {"socket": 198, "clone": 220, "clone3": 435, "ioctl": 29},
}
_CLONE_NEW_ANY = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C
_X32_BIT = 0x40000000  # x86_64's x32 syscalls: another way in to the same calls
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, JMP|K ops, RET|K
_ALLOW, _KILL = 0x7FFF0000, 0x80000000
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2

# -- Landlock -----------------------------------------------------------------------------

_LL_CREATE, _LL_ADD_RULE, _LL_RESTRICT = 444, 445, 446  # the same on every architecture
_LL_VERSION = 1  # landlock_create_ruleset flag: ask for the ABI version
_LL_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE, _FS_READ, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ALL_V1 = (1 << 13) - 1  # execute ... make_sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE | _FS_READ | _FS_TRUNCATE | _FS_IOCTL_DEV
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000


class ConfineError(OSError):
    """A layer of confinement could not be applied: the code must not run."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> ConfineError:
    code = ctypes.get_errno()
    return ConfineError(code, f"{what}: {os.strerror(code)}")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 where there is none."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_LL_VERSION))
    return max(0, int(version))


def _fs_rights(abi: int) -> int:
    rights = _FS_ALL_V1
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def _landlock(spec: dict, abi: int) -> None:
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    handled = _fs_rights(abi)
    fields = [handled]
    if abi >= 4:
        fields.append(0 if spec["network"] else _NET_BIND_TCP | _NET_CONNECT_TCP)
    if abi >= 6:
        fields.append(_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL)
    attr = struct.pack(f"<{len(fields)}Q", *fields)
    ruleset = libc.syscall(_LL_CREATE, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _fail("landlock_create_ruleset")
    try:
        read = _FS_EXECUTE | _FS_READ | _FS_READ_DIR
        device = _FS_READ | _FS_WRITE | (handled & (_FS_TRUNCATE | _FS_IOCTL_DEV))
        own = f"/proc/{os.getpid()}"  # this process's own entries (exec keeps the pid)
        for paths, rights in (
            (spec["read"] + [own], read),
            (spec["devices"], device),
            (spec["write"], handled),
        ):
            for path in paths:
                _allow(libc, ruleset, path, rights)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_LL_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise _fail("landlock_restrict_self")
    finally:
        os.close(ruleset)


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a folder this system does not have
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS
        attr = struct.pack("<Qi", rights, fd)  # landlock_path_beneath_attr is packed
        if libc.syscall(_LL_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_LL_PATH_BENEATH),
                        attr, ctypes.c_uint32(0)) != 0:  # fmt: skip
            raise _fail(f"landlock_add_rule {path}")
    finally:
        os.close(fd)


def _seccomp_program(arch: str, network: bool) -> bytes:
    """The filter as BPF instructions: (code, jump if true, jump if false, constant)."""
    special = _SPECIAL[arch]

    def deny(code: int = _errno.EPERM) -> tuple[int, int, int, int]:
        return (_RET, 0, 0, 0x00050000 | code)  # SECCOMP_RET_ERRNO

    prog = [(_LD, 0, 0, 4), (_JEQ, 1, 0, _AUDIT_ARCH[arch]), (_RET, 0, 0, _KILL), (_LD, 0, 0, 0)]
    if arch == "x86_64":
        prog += [(_JGE, 0, 1, _X32_BIT), deny()]
    denied = list(_DENIED[arch].values()) + ([] if network else [special["socket"]])
    for number in denied:
        prog += [(_JEQ, 0, 1, number), deny()]
    prog += [(_JEQ, 0, 1, special["clone3"]), deny(_errno.ENOSYS)]
    # clone: refused when its flags (argument 0, low word at offset 16) ask for a namespace.
    prog += [(_JEQ, 0, 4, special["clone"]), (_LD, 0, 0, 16), (_JSET, 0, 1, _CLONE_NEW_ANY),
             deny(), (_RET, 0, 0, _ALLOW)]  # fmt: skip
    # ioctl: the terminal requests that type into the person's shell (argument 1, offset 24).
    prog += [(_JEQ, 0, 5, special["ioctl"]), (_LD, 0, 0, 24), (_JEQ, 2, 0, _TIOCSTI),
             (_JEQ, 1, 0, _TIOCLINUX), (_RET, 0, 0, _ALLOW), deny()]  # fmt: skip
    prog.append((_RET, 0, 0, _ALLOW))
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


def _seccomp(arch: str, network: bool) -> None:
    program = _seccomp_program(arch, network)
    filters = ctypes.create_string_buffer(program, len(program))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(program) // 8, ctypes.addressof(filters))
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _fail("prctl(PR_SET_NO_NEW_PRIVS)")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise _fail("seccomp filter")


def _namespaces() -> None:
    uid, gid = os.getuid(), os.getgid()
    libc = _libc()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        raise _fail("unshare(user, network)")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):  # fmt: skip
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def confine(spec: dict) -> None:
    """Confine this process (and what it starts) as `spec` says: {"read", "write", "devices":
    paths, "network": bool}. Raises ConfineError, with this process half confined at most,
    when a layer cannot be applied: the caller must then exit, not run the code."""
    arch = os.uname().machine
    if arch not in _AUDIT_ARCH:
        raise ConfineError(_errno.ENOSYS, f"no seccomp filter for the {arch} architecture")
    abi = landlock_abi()
    if abi < 1:
        raise ConfineError(_errno.ENOSYS, "this kernel has no Landlock")
    if not spec["network"]:
        _namespaces()
    _landlock(spec, abi)
    _seccomp(arch, spec["network"])
