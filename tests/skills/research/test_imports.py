"""The research modules import one another as a DAG (every import counted: at the top, inside a
function, under TYPE_CHECKING), and no other module reaches into a corpus's private helpers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import myninja.skills.research as research

FOLDER = Path(research.__file__).parent
PACKAGE = "myninja.skills.research"


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The research modules that the module at `path` imports, wherever it imports them."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = (node.module or "") if node.level == 0 else f"{PACKAGE}.{node.module or ''}"
            names = [base.removeprefix(PACKAGE).strip(".").partition(".")[0]]
            if base.rstrip(".") == PACKAGE:
                names = [alias.name for alias in node.names]
            found.update(n for n in names if n in modules)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    found.add(alias.name.removeprefix(PACKAGE + ".").partition(".")[0])
    return found - {path.stem}


def test_the_research_modules_import_one_another_without_a_cycle() -> None:
    modules = {p.stem for p in FOLDER.glob("*.py") if p.stem != "__init__"}
    graph = {m: imports_of(FOLDER / f"{m}.py", modules) for m in modules}
    assert graph["dense"] >= {"fts", "passages"}  # the walk sees relative imports
    done: set[str] = set()
    while len(done) < len(graph):  # peel off modules whose imports are all done
        ready = {m for m, deps in graph.items() if m not in done and deps <= done}
        assert ready, f"import cycle among {sorted(set(graph) - done)}"
        done |= ready


def test_no_module_calls_a_private_helper_of_a_corpus() -> None:
    skills = FOLDER.parent
    private_use = re.compile(r"\bcorpus\._\w+")
    users = [
        f"{path.relative_to(skills)}:{number}"
        for path in skills.rglob("*.py")
        if path != FOLDER / "corpus.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if private_use.search(line)
    ]
    assert users == []
