"""Whether an app is open on a data dir: each open app (a terminal, or a browser tab's through
`myninja web`) keeps a file named after its process id in `apps/`. The worker sends the OS
notification only when none is open; an open app tells the person itself, by its focus."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FOLDER = "apps"


def mark_open(data_dir: Path) -> Path:
    """Record this process as an open app; returns the mark to remove on closing."""
    folder = data_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    mark = folder / str(os.getpid())
    mark.touch()
    return mark


def mark_closed(mark: Path) -> None:
    with contextlib.suppress(OSError):
        mark.unlink()


def app_open(data_dir: Path) -> bool:
    """Whether some app is open; marks of processes gone (an app killed) are removed."""
    folder = data_dir / FOLDER
    try:
        marks = list(folder.iterdir())
    except OSError:
        return False
    found = False
    for mark in marks:
        if not mark.name.isdigit():
            continue
        if _alive(int(mark.name)):
            found = True
        else:
            mark_closed(mark)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: not ours, but alive
        return True
    return True
