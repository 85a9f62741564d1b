"""The code files in a model's answer: its Python blocks, the names they are written to, which
hold tests and which one is the program (the coder's review writes and runs them).
"""

from __future__ import annotations

import ast
import importlib.machinery
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .sandbox import Workspace

CODE_FILE = "solution.py"
# The sandbox's scratch folder (tmp/): pytest ignores it and it is never copied out.
_SCRATCH = Workspace(Path(".")).tmp.name

# ``` or ~~~ fences, indented at most three spaces (CommonMark), with an optional info string.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\n]*)$")
_PYTHON_LANGS = {"", "python", "py", "python3", "py3"}
# A file name a block may be written to: relative, simple characters, a .py file.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_/.-]+\.py")
# "# solution.py", "# file: test_x.py", "# filename: src/app.py" as a block's first line.
_NAME_COMMENT = re.compile(r"#\s*(?:file(?:name)?\s*[:=]\s*)?(\S+\.py)\s*", re.IGNORECASE)
# A name in backticks or bold on the line just above a fence: "`test_stack.py`:", "**stack.py**".
_NAME_ABOVE = re.compile(r"(?:`|\*\*|__)([^`*\s]+\.py)(?:`|\*\*|__)")
# Shell commands small models put in ```python blocks; some of them even parse ("pytest").
_SHELL = re.compile(
    r"\s*(?:\$\s|(?:pip3?|python3?|py|pytest|uv|poetry|conda|cd|ls|mkdir|export)"
    r"(?:\s+[-\w./]|\s*$))"  # an argument next, not "= 3": `python = 3` is Python
)
_OUTPUT_ABOVE = re.compile(r"\b(output|prints?|result|console|terminal)\b[^\n]*:\s*$", re.I)


@dataclass(frozen=True)
class _Block:
    code: str
    name: str | None  # the file it names, if any
    tests: bool  # whether it is tests of code elsewhere (see _holds_tests)


def code_files(answer: str) -> dict[str, str]:
    """The Python code blocks of a Markdown answer, as {file name: content}.

    A block goes into the file its first-line comment or the line above its fence names;
    other blocks are joined, in order, into one code file (solution.py, or the module the tests
    import) and one test file. Shell commands and program output are not code."""
    blocks: list[_Block] = []
    seen: set[str] = set()
    for code, above, info in _fenced_blocks(answer):
        # "python", "python:stack.py", "python title=stack.py": the language, then maybe a name
        lang = re.split(r"[\s:{]", info, maxsplit=1)[0].lower()
        key = code.strip()
        if key in seen or not _is_code(code, lang, above):
            continue
        seen.add(key)
        blocks.append(_Block(code, _named(code, above, info), _holds_tests(code)))

    named = {b.name for b in blocks if b.name}
    code_name = _code_file_name(blocks, named)
    test_name = f"test_{code_name}"
    parts: dict[str, list[str]] = {}
    for block in blocks:
        if block.name:
            parts[block.name] = [block.code]  # a file given again: its later version wins
        else:
            parts.setdefault(test_name if block.tests else code_name, []).append(block.code)

    files: dict[str, str] = {}
    for name, chunks in parts.items():
        text = "\n\n".join(chunk.strip("\n") for chunk in chunks) + "\n"
        files[name] = _without_selfimports(text, module_of(name))
    for name, text in list(files.items()):
        if name == code_name or code_name not in files:
            continue
        if _holds_tests(text) and not _imports_local(text):
            # Tests written as if they sat beside the code (in a file of their own, named or
            # not): they need its names.
            files[name] = f"from {module_of(code_name)} import *  # noqa: F403\n\n{text}"
    return files


def _fenced_blocks(answer: str) -> Iterator[tuple[str, str, str]]:
    """(content, the non-blank line above the fence, info string) of each fenced block."""
    lines = answer.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2).strip()
        above = next((ln.strip() for ln in reversed(lines[:i]) if ln.strip()), "")
        end = i + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(fence[0] * len(fence))
            and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        yield "\n".join(lines[i + 1 : end]), above, info
        i = end + 1


def _is_code(code: str, lang: str, above: str) -> bool:
    if lang not in _PYTHON_LANGS or not code.strip():
        return False
    first = next(ln for ln in code.splitlines() if ln.strip())
    if _SHELL.match(first) or first.lstrip().startswith(">>>"):
        return False  # a command to type, or an interactive session
    if not lang and _OUTPUT_ABOVE.search(above):
        return False  # "Output:" above a bare fence: what the program prints
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        # A ```python block that does not parse is broken code, which running it will show;
        # a bare block that does not parse is output or prose.
        return bool(lang)
    # Output that happens to parse ("5", "[1, 2]", "Total: 3") does something only if it has
    # a statement beyond bare expressions without calls and bare annotations.
    return any(not _inert(node) for node in tree.body)


def _inert(node: ast.stmt) -> bool:
    if isinstance(node, ast.AnnAssign):
        return node.value is None
    if isinstance(node, ast.Expr):
        return not any(isinstance(n, ast.Call | ast.Await) for n in ast.walk(node))
    return False


def _safe(name: str) -> bool:
    """A relative path of simple parts, not into the sandbox's scratch folder."""
    if not _SAFE_NAME.fullmatch(name) or name.startswith("/"):
        return False
    parts = name.split("/")
    return all(p not in ("", ".", "..") for p in parts) and parts[0] != _SCRATCH


def _named(code: str, above: str, info: str) -> str | None:
    first = code.lstrip("\n").split("\n", 1)[0].strip()
    comment = _NAME_COMMENT.fullmatch(first)
    if comment and _safe(comment.group(1)):
        return comment.group(1)
    in_info = re.search(r"([\w/.-]+\.py)\b", info)
    if in_info and _safe(in_info.group(1)):
        return in_info.group(1)
    names = {m.group(1) for m in _NAME_ABOVE.finditer(above)}
    if len(names) == 1:
        name = names.pop()
        # "the tests, which import from `stack.py`:" names the module the block uses, not the
        # block: a file never imports itself.
        if _safe(name) and not imports(code, name):
            return name
    return None


def _test_names(tree: ast.Module) -> list[str]:
    """Test functions at module level, or in a Test* class or a unittest.TestCase."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_test_name(node.name):
            found.append(node.name)
        elif isinstance(node, ast.ClassDef) and _is_test_class(node):
            found.extend(
                f"{node.name}.{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                and is_test_name(item.name)
            )
    return found


def is_test_name(name: str) -> bool:
    return name.startswith("test")  # pytest's default prefix, unittest's too


def _is_test_class(node: ast.ClassDef) -> bool:
    # pytest collects Test* classes, and unittest.TestCase subclasses whatever their name.
    return node.name.startswith("Test") or any(
        ast.unparse(base).endswith("TestCase") for base in node.bases
    )


def _holds_tests(code: str) -> bool:
    """Whether a block is tests (of code elsewhere) rather than code, tests or not."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return _only_tests(tree) or _tests_withimports(tree)


def _only_tests(tree: ast.Module) -> bool:
    """Tests and nothing to test: every function or class is a test or a fixture."""
    if not _test_names(tree):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if not is_test_name(node.name) and not node.decorator_list:
                return False
        elif isinstance(node, ast.ClassDef) and not _is_test_class(node):
            return False
    return True


def _tests_withimports(tree: ast.Module) -> bool:
    """Tests that import the code they test from a module of their own (with helpers beside)."""
    return bool(_test_names(tree)) and bool(_localimports(tree))


def _localimports(tree: ast.Module) -> list[str]:
    """Top-level modules imported that are neither in the standard library nor installed:
    the answer's own files."""
    found = []
    for node in ast.walk(tree):
        # `from stack import Stack` only: a bare `import numpy` is more often a package that
        # is missing here than a file of the answer.
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top not in found and not _installed(top):
                found.append(top)
    return found


def _imports_local(code: str) -> bool:
    try:
        return bool(_localimports(ast.parse(code)))
    except (SyntaxError, ValueError):
        return False


def _installed(module: str) -> bool:
    if module in sys.stdlib_module_names or module in sys.builtin_module_names:
        return True
    # The sandbox runs this same interpreter in isolated mode (-I): it sees site-packages but
    # not our working folder, where a stray stack.py must not count as installed.
    here = {"", str(Path.cwd())}
    paths = [p for p in sys.path if p not in here]
    try:
        return importlib.machinery.PathFinder.find_spec(module, paths) is not None
    except (ImportError, ValueError):
        return False


def _code_file_name(blocks: list[_Block], named: set[str]) -> str:
    """solution.py, unless the tests import one module that no named block provides: then the
    unnamed code is that module ("from stack import Stack" under a bare class block)."""
    wanted: list[str] = []
    for block in blocks:
        if block.tests:  # which parsed
            wanted += [m for m in _localimports(ast.parse(block.code)) if m not in wanted]
    missing = [m for m in wanted if f"{m}.py" not in named]
    if len(missing) == 1 and _safe(f"{missing[0]}.py"):
        return f"{missing[0]}.py"
    return CODE_FILE


def module_of(file_name: str) -> str:
    return file_name.removesuffix(".py").replace("/", ".")


def imports(code: str, file_name: str) -> bool:
    """Whether `code` imports the module of `file_name` (or one inside it)."""
    module = module_of(file_name)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        if any(name == module or name.startswith(f"{module}.") for name in names):
            return True
    return False


def _defined(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _without_selfimports(text: str, module: str) -> str:
    """Drop `from solution import add` from solution.py when it defines `add` itself: a usage
    example joined under the code would otherwise run the whole file a second time."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return text
    defined = _defined(tree)
    drop: set[int] = set()
    for node in tree.body:
        if (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module == module
            and all(a.name in defined and a.asname is None for a in node.names)
        ):
            drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    if not drop:
        return text
    lines = text.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, 1) if number not in drop)


def has_tests(code: str) -> bool:
    try:
        return bool(_test_names(ast.parse(code)))
    except (SyntaxError, ValueError):
        return False


def main_file(files: dict[str, str]) -> str:
    """The file to run when there are no tests: solution.py, the only file, the one with a
    `__main__` guard, main.py or app.py, else the first."""
    if CODE_FILE in files:
        return CODE_FILE
    if len(files) == 1:
        return next(iter(files))
    guarded = [name for name, code in files.items() if "__name__" in code and "__main__" in code]
    if len(guarded) == 1:
        return guarded[0]
    for name in ("main.py", "app.py"):
        if name in files:
            return name
    return next(iter(files))
