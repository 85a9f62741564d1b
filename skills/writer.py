"""The built-in `writer` skill: drafts and edits documents as Markdown files in the task's
workspace, never elsewhere.

A document's name becomes a file name by slugging each part ("Meeting notes" →
`meeting-notes.md`, "drafts/Plan" → `drafts/plan.md`); absolute paths, `~` and `..` are
refused, and the result is resolved (symlinks followed) and checked to lie inside the
workspace before anything is read or written.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Annotated

from pydantic import Field

from myninja.skills.api import Draft, Review, Skill, ToolContext, ToolError, tool
from myninja.skills.coder.sandbox import Workspace, WorkspaceError

MAX_DOCUMENT_CHARS = 500_000  # a document, not a data dump: keeps one call's disk use sane
# Words as a reader counts them: "# Title" is one word, "don't" and "co-op" are one each.
_WORD = re.compile(r"\w[\w'’-]*")


def document_path(name: str, ctx: ToolContext) -> tuple[Workspace, str]:
    """The workspace and the relative path (`<slug>.md`, in slugged folders) `name` stands for,
    or a ToolError saying why it may not be used."""
    text = name.strip().replace("\\", "/")
    parts = PurePosixPath(text).parts
    if text.startswith(("/", "~")) or ".." in parts or re.match(r"^[A-Za-z]:", text):
        raise ToolError(f"refused: {name!r} is outside the workspace; give a plain name")
    stem = re.sub(r"\.(md|markdown)$", "", text, flags=re.IGNORECASE)
    slugs = [_slug(part) for part in PurePosixPath(stem).parts if part not in ("", ".")]
    if not slugs or not all(slugs):
        raise ToolError(f"{name!r} is not a usable document name; use letters or digits")
    relative = "/".join(slugs) + ".md"
    workspace = Workspace(ctx.workspace)
    try:
        workspace.path(relative)  # follows symlinks: a link out of the workspace is refused
    except WorkspaceError:
        raise ToolError(f"refused: {name!r} leads outside the workspace") from None
    return workspace, relative


def _slug(text: str) -> str:
    # NFKD first, so "Café" keeps its "e" rather than losing the letter.
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].rstrip("-")


def _words(text: str) -> int:
    return len(_WORD.findall(text))


@tool(workspace=True)
def save_document(
    name: Annotated[str, Field(description="Document name, e.g. 'project plan'")],
    markdown: Annotated[str, Field(description="The whole document, in Markdown")],
    ctx: ToolContext,
) -> str:
    """Save a Markdown document in the task's workspace, replacing any earlier version.
    Returns its path and word count."""
    if len(markdown) > MAX_DOCUMENT_CHARS:
        raise ToolError(f"the document is over {MAX_DOCUMENT_CHARS} characters; split it")
    workspace, relative = document_path(name, ctx)
    existed = workspace.path(relative).is_file()
    if markdown and not markdown.endswith("\n"):
        markdown += "\n"  # a text file ends with a newline; diffs and editors expect one
    path = workspace.write(relative, markdown)
    verb = "Replaced" if existed else "Saved"
    words = _words(markdown)
    return f"{verb} {path} ({words} word{'' if words == 1 else 's'})"


@tool(workspace=True)
def edit_document(
    name: Annotated[str, Field(description="Name of a document saved before")],
    find: Annotated[str, Field(description="Exact text to replace; must occur once")],
    replace: Annotated[str, Field(description="The new text")],
    ctx: ToolContext,
) -> str:
    """Replace one exact piece of text in a saved document. Returns the change as a diff."""
    workspace, relative = document_path(name, ctx)
    path = workspace.path(relative)
    if not path.is_file():
        raise ToolError(f"no document {relative}; {_saved(workspace.root)}")
    if not find:
        raise ToolError("find is empty; give the exact text to replace")
    text = path.read_text(encoding="utf-8")
    count = text.count(find)
    if count == 0:
        raise ToolError(f"the text to find is not in {relative}{_closest(find, text)}")
    if count > 1:
        raise ToolError(
            f"the text to find occurs {count} times in {relative}; "
            "include more of the text around it so that it occurs once"
        )
    new_text = text.replace(find, replace, 1)
    if new_text == text:
        return f"no change: {relative} already reads that way"
    if len(new_text) > MAX_DOCUMENT_CHARS:
        raise ToolError(f"the document would be over {MAX_DOCUMENT_CHARS} characters")
    diff = workspace.diff(relative, new_text)
    workspace.write(relative, new_text)
    return diff


def _saved(root: Path) -> str:
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.md") if p.is_file())
    return f"saved documents: {', '.join(names[:20])}" if names else "no documents saved yet"


def _closest(find: str, text: str) -> str:
    """A hint when the text is not found: the line most like its first line, since a small
    model most often gets the whitespace or one word wrong."""
    wanted = find.strip().splitlines()[0] if find.strip() else ""
    lines = [line for line in text.splitlines() if line.strip()]
    match = difflib.get_close_matches(wanted, lines, n=1, cutoff=0.6) if wanted else []
    return f"; the closest line is {match[0][:200]!r}" if match else ""


_HEADING = re.compile(r"^\s{0,3}#{1,3}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_TITLE_WORDS = 6


def document_name(answer: str, task: str) -> str:
    """The name an answer is saved under: its first heading, else the task's first words."""
    heading = _HEADING.search(answer)
    if heading and _slug(heading.group(1)):
        return heading.group(1)
    words = [w for w in re.findall(r"[\w'-]+", task)][:_TITLE_WORDS]
    return " ".join(words) if words and _slug(" ".join(words)) else "document"


# A reply about the text instead of the text: "Sure.", "The email has been drafted.", "I will
# write it." Small models give these; a real text of that length (a haiku) matches none.
_ABOUT_IT = re.compile(
    r"^\W*(sure|certainly|of course|okay|ok|absolutely)\b"
    r"|\b(has|have) been (drafted|written|prepared|created|completed)\b"
    r"|^\W*i (will|can|'ll|am going to) (now )?(write|draft|provide|prepare|create)\b",
    re.IGNORECASE,
)
SHORT_WORDS = 40  # a reply about the text is short; a text this short is checked for that


async def review(draft: Draft) -> Review | None:
    """Sends back a reply that talks about the text instead of being it (nothing to check in
    a reply that is the text: None)."""
    text = draft.text.strip()
    if _words(text) >= SHORT_WORDS or not (_ABOUT_IT.search(text) or not text):
        return None
    return Review(
        verdict="a note about the text, not the text",
        passed=False,
        feedback="That is a note about the text, not the text. Write the whole text itself now, "
        "in Markdown, ready to use, with no preamble.",
    )


DOCUMENT_WORDS = 120  # below this, and without a heading, an answer is not a document


def is_document(text: str) -> bool:
    return _words(text) >= DOCUMENT_WORDS or bool(_HEADING.search(text))  # a titled document


async def finish(draft: Draft) -> str | None:
    """The chosen answer saved as a Markdown document in the task's workspace (its own folder:
    no question is asked), when it is a document: a haiku or a two-line note is not worth a
    file. A branch that saved documents itself (through its tools) needs no copy."""
    if not is_document(draft.text):
        return None
    if any(draft.workspace.glob("*.md")):
        return None  # promoted from the chosen branch already
    saved = await draft.use(
        "save_document", {"name": document_name(draft.text, draft.task), "markdown": draft.text}
    )
    return saved.split(" (", 1)[0]  # "Saved /path/x.md"


skill = Skill(
    name="writer",
    description="Draft and edit Markdown documents in the task's workspace",
    tools=[save_document, edit_document],
    agents=("writer",),
    review=review,
    finish=finish,
)
