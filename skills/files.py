"""The built-in `files` skill: read and search files under the directories the person allowed.

Every path is resolved (symlinks followed, `..` collapsed) before it is checked, so neither
`../` nor a link inside an allowed directory can reach a file outside it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from pydantic import Field

from myninja.skills.api import Permission, Skill, ToolContext, ToolError, tool

MAX_CHARS = 20_000  # what one read returns: a small model's context is a few thousand tokens
MAX_LINES = 400
MAX_MATCHES = 50
MAX_FILES_SCANNED = 5_000
MAX_FILE_BYTES = 2_000_000  # larger files are skipped by search, refused by read
# Directories nobody means when they search their files.
SKIPPED_DIRS = {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox"}


def _roots(ctx: ToolContext) -> list[Path]:
    if not ctx.allowed_dirs:
        raise ToolError("no directories are allowed for reading files in this task")
    return [d.expanduser().resolve() for d in ctx.allowed_dirs]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def resolve_allowed(path: str, ctx: ToolContext) -> Path:
    """The real file `path` names, if it lies inside an allowed directory. A relative path is
    looked up in each allowed directory in turn."""
    roots = _roots(ctx)
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        real = candidate.resolve()
        if not _inside(real, roots):
            allowed = ", ".join(str(r) for r in roots)
            raise ToolError(f"refused: {path} is outside the allowed directories ({allowed})")
        if real.exists():
            return real
    raise ToolError(f"no such file: {path}")


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(8192)


@tool(permissions=[Permission.READ_FILES])
def read_file(
    path: Annotated[str, Field(description="File path, absolute or relative to an allowed dir")],
    ctx: ToolContext,
    first_line: Annotated[int, Field(ge=1, description="Line to start from (1-based)")] = 1,
) -> str:
    """Read a text file from a directory the person allowed."""
    real = resolve_allowed(path, ctx)
    if real.is_dir():
        raise ToolError(f"{path} is a directory; use search_files to list its files")
    if _is_binary(real):
        raise ToolError(f"{path} is not a text file")
    shown: list[str] = []
    size = 0
    total = 0
    full = False
    # Streamed: a big log costs one pass, not its size in memory.
    with real.open(encoding="utf-8", errors="replace") as handle:
        for total, line in enumerate(handle, 1):
            if total < first_line or full:
                continue
            text = line.rstrip("\n")[:MAX_CHARS]  # one minified line must not fill the context
            if len(shown) >= MAX_LINES or (shown and size + len(text) > MAX_CHARS):
                full = True
                continue
            shown.append(text)
            size += len(text) + 1
    if first_line > max(total, 1):
        raise ToolError(f"{path} has {total} lines; first_line {first_line} is past its end")
    last = first_line - 1 + len(shown)
    answer = "\n".join(shown)
    if first_line > 1 or last < total:
        # Say where the window is, so the model can ask for the next one.
        answer += f"\n[lines {first_line}-{last} of {total}"
        answer += f"; read again with first_line={last + 1} for more]" if last < total else "]"
    return answer


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """`**/` spans directories, `*` and `?` stay within one; a pattern without `/` matches a
    file's name at any depth (as `rg -g` does)."""
    if "/" not in pattern:
        pattern = "**/" + pattern
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _walk(root: Path) -> Iterator[Path]:
    # os.walk does not follow directory links; file links are checked by the caller.
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            yield Path(folder) / name


@tool(permissions=[Permission.READ_FILES])
def search_files(
    pattern: Annotated[str, Field(description="Glob for file paths, e.g. '*.md' or 'src/**/*.py'")],
    ctx: ToolContext,
    query: Annotated[
        str, Field(description="Text to find, case-insensitive; empty lists the matching files")
    ] = "",
) -> str:
    """Find files under the allowed directories whose path matches a glob, and the lines in them
    that contain some text. Answers `path:line: text` lines."""
    if pattern.startswith("/") or ".." in Path(pattern).parts:
        raise ToolError("the pattern must be relative to an allowed directory, without '..'")
    roots = _roots(ctx)
    matcher = _glob_regex(pattern)
    needle = query.casefold()
    found: list[str] = []
    scanned = 0
    for root in roots:
        for file in _walk(root):
            if not matcher.fullmatch(file.relative_to(root).as_posix()):
                continue
            scanned += 1
            if scanned > MAX_FILES_SCANNED or len(found) >= MAX_MATCHES:
                found.append(f"[stopped after {len(found)} matches; narrow the pattern or query]")
                return "\n".join(found)
            real = file.resolve()
            if not _inside(real, roots) or not real.is_file():
                continue  # a link out of the allowed directories, or a dangling one
            if not needle:
                found.append(str(real))
                continue
            if real.stat().st_size > MAX_FILE_BYTES or _is_binary(real):
                continue
            text = real.read_text(encoding="utf-8", errors="replace")
            for number, line in enumerate(text.splitlines(), 1):
                if needle in line.casefold():
                    found.append(f"{real}:{number}: {line.strip()[:200]}")
                    if len(found) >= MAX_MATCHES:
                        break
    return "\n".join(found) if found else "no matches"


skill = Skill(
    name="files",
    description="Read and search files under the directories the person allowed",
    tools=[read_file, search_files],
    # Offered where reading the person's files is the work; a small model offered tools it
    # has no use for tends to call them instead of answering.
    agents=("coder", "writer"),
    available=lambda config: bool(config.skills.allowed_dirs),
)
