"""Where config and data live. `MYNINJA_HOME` moves both (tests always set it). The worker's
socket lives in a private runtime directory (`runtime_dir`)."""

from __future__ import annotations

import contextlib
import os
import stat
import warnings
from pathlib import Path

import platformdirs

from myninja.errors import UsageError

APP = "myninja"


def _home() -> Path | None:
    value = os.environ.get("MYNINJA_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    home = _home()
    return home if home else Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP))


def config_file() -> Path:
    return config_dir() / "config.toml"


def models_dir() -> Path:
    return data_dir() / "models"


# AF_UNIX socket paths end at 107 bytes on Linux (103 on macOS): a runtime dir longer than this
# leaves no room for the socket names beside it.
RUNTIME_DIR_MAX = 64
RUNTIME_DIR_NOTE = "worker.rundir"  # in the data dir: where its private fallback directory is


def runtime_dir(data_dir: Path) -> Path:
    """A directory only this user can enter, for the sockets of `data_dir`'s worker.

    platformdirs' `user_runtime_dir` ($XDG_RUNTIME_DIR, /run/user/UID) where that is the user's
    own private directory; otherwise (no login session: containers, cron, `su`; or a path too
    long for a socket) a directory made by mkdtemp, noted in `data_dir`. Its name is random, so
    nobody can take it first; platformdirs' own fallback, /tmp/runtime-UID, is a name anyone
    can guess and create before us."""
    base = _session_runtime_dir()
    if base is None:
        return _noted_private_dir(data_dir / RUNTIME_DIR_NOTE)
    with contextlib.suppress(FileExistsError):
        base.mkdir(mode=0o700)
    return _private(base)


def existing_runtime_dir(data_dir: Path) -> Path | None:
    """`runtime_dir` where it exists already, else None (then no worker listens): a client
    looking for the worker leaves nothing behind."""
    base = _session_runtime_dir()
    if base is not None:
        return _private(base) if os.path.lexists(base) else None
    try:
        noted = (data_dir / RUNTIME_DIR_NOTE).read_text(encoding="utf-8").strip()
        return _private(Path(noted)) if os.path.isabs(noted) else None
    except (OSError, UsageError):  # none noted, gone (a reboot), or no longer ours
        return None


def drop_runtime_dir(data_dir: Path) -> None:
    """Remove `data_dir`'s private fallback directory where it is empty (its worker leaves, so
    nothing is left behind in /tmp). The session's runtime dir stays: every data dir's worker
    has its socket there."""
    if _session_runtime_dir() is None and (folder := existing_runtime_dir(data_dir)):
        with contextlib.suppress(OSError):  # a retiring worker's socket is still there
            folder.rmdir()


def _session_runtime_dir() -> Path | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns that XDG_RUNTIME_DIR is unset: we fall back
        try:
            base = Path(platformdirs.user_runtime_dir(APP))
        except OSError:  # its own fallback was taken by another user
            return None
    if len(str(base)) > RUNTIME_DIR_MAX or not _session_dir(base.parent):
        return None
    return base


def _session_dir(path: Path) -> bool:
    """The user's own runtime dir: a real directory of theirs, closed to others (as the XDG
    spec requires), and not a name in a directory where anyone may create names (/tmp)."""
    try:
        info, parent = path.lstat(), path.parent.stat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & 0o077
        and not parent.st_mode & stat.S_IWOTH
    )


def _private(path: Path) -> Path:
    """`path` if it is a directory of this user's, not a link; made 0700 if it was not."""
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise UsageError(
            f"{path} is not a directory of yours",
            hint="remove it, or set XDG_RUNTIME_DIR to a directory of yours with mode 0700",
        )
    if info.st_mode & 0o777 != 0o700:
        path.chmod(0o700)
    return path


def _noted_private_dir(note: Path) -> Path:
    """The directory named in `note` while it is still ours; else a new one from mkdtemp (mode
    0700, a random name), written to `note`."""
    import fcntl
    import tempfile

    note.parent.mkdir(parents=True, exist_ok=True)
    with open(note, "a+", encoding="utf-8") as file:
        fcntl.flock(file, fcntl.LOCK_EX)  # processes starting at once agree on one directory
        file.seek(0)
        if os.path.isabs(noted := file.read().strip()):
            with contextlib.suppress(OSError, UsageError):  # gone (a reboot) or not ours
                return _private(Path(noted))
        made = Path(tempfile.mkdtemp(prefix="myninja-"))
        file.seek(0)
        file.truncate()
        file.write(str(made))
        return made
