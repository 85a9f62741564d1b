"""The docstring examples of an answer's code, run as a child program in the sandbox (the
review reads the line of counts it prints)."""

from __future__ import annotations

import re

PROMPT = re.compile(r"^\s*>>> ", re.M)  # code holding a doctest
MARK = "@@doctests "  # the line of counts: attempted, failed

# Docstring examples are checked as a person reads them: `"21"` shows the value '21' (doctest
# itself compares the printed text), and `>>> f(x) == y` with no line after it asserts.
_RUNNER = """\
import ast, doctest, importlib, sys
sys.path.insert(0, '.')
module = importlib.import_module({module!r})


def literal(text):
    try:
        return True, ast.literal_eval(text.strip())
    except Exception:
        return False, None


class ByValue(doctest.OutputChecker):
    def check_output(self, want, got, optionflags):
        if super().check_output(want, got, optionflags):
            return True
        (a, x), (b, y) = literal(want), literal(got)
        return a and b and type(x) is type(y) and x == y


def asserts(source):
    try:
        return isinstance(ast.parse(source, mode='eval').body, ast.Compare)
    except SyntaxError:
        return False


flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
runner = doctest.DocTestRunner(checker=ByValue(), optionflags=flags)
for test in doctest.DocTestFinder().find(module, module.__name__):
    for example in test.examples:
        if not example.want and asserts(example.source):
            example.want = 'True\\n'
    runner.run(test)
result = runner.summarize(verbose=False)
print({mark!r} + f'{{result.attempted}} {{result.failed}}')
sys.exit(1 if result.failed else 0)
"""


def runner(module: str) -> str:
    """Code that runs the docstring examples of `module` and prints a line of counts."""
    return _RUNNER.format(module=module, mark=MARK)
