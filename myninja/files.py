"""Writing a file so that it is never seen half-written: a temporary file in the same folder,
flushed to disk, then renamed over the target in one step."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from myninja.errors import UsageError


def write_atomic(path: Path, lines: Iterable[str]) -> None:
    """Write `lines` (each with its own line ending) to `path`, replacing it whole or not at all.
    A folder that does not exist is a usage error; nothing is created on the way."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a folder", hint="give a file name")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.writelines(lines)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        Path(tmp_name).unlink(missing_ok=True)
