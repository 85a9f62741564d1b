"""Which code a process runs, so that the CLI and the background worker can tell whether they
run the same myninja (see agent_graph/tasks/worker.py)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import time
from typing import Any

from myninja import __version__

PACKAGES = (
    "myninja",
    "myninja.backends",
    "myninja.skills",
    "myninja.agent_graph",
    "myninja.ninja_tui",
)


@functools.cache
def code_identity() -> dict[str, Any]:
    """This process's myninja: its version, a digest of its code files' paths, sizes and
    modification times, and when they were read. The digest tells a source checkout edited
    since a worker started from the checkout as it is now, under the same version. It costs
    about a millisecond (some 150 stats), so every install has one; an installed wheel's
    changes only when it is reinstalled. Once per process: it keeps the code it started with."""
    files: list[str] = []
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            _list_code(folder, files)
    digest = hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16]
    return {"version": __version__, "code": digest, "read_at": time.time()}


def _list_code(folder: str, files: list[str]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__" and not entry.name.startswith("."):
                    _list_code(entry.path, files)
            elif entry.name.endswith(".py"):
                info = entry.stat()
                files.append(f"{entry.path}\0{info.st_size}\0{info.st_mtime_ns}")


def same_code(one: dict[str, Any], other: dict[str, Any]) -> bool:
    return one.get("version") == other.get("version") and one.get("code") == other.get("code")


def which_code(theirs: dict[str, Any], mine: dict[str, Any], age: str) -> str:
    """What `theirs` runs, said to the process of `mine`; `age` is "older" or "newer"."""
    if theirs.get("version") != mine.get("version"):
        return f"myninja {theirs.get('version') or 'of an earlier release'}, not {mine['version']}"
    return f"{age} code of myninja {mine['version']} (its files changed in between)"
