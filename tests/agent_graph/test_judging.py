"""Agreement between branches: short answers that say the same thing, never code by its words."""

from __future__ import annotations

import pytest

from myninja.agent_graph.judging import agree, passed_share


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Paris.", "paris", True),
        ("The answer is Paris.\nIt is large.", "The answer is Paris!\nIt has a river.", True),
        ("Paris.", "Lyon.", False),
        ("answer A", "answer B", False),  # one letter apart: short answers must match whole
        ("The capital of France is Paris, on the Seine.", "The capital of France is Paris.", True),
        ("```python\ndef f(): return 1\n```", "```python\ndef f(): return 1\n```", False),
        ("Yes, it is.", "No, it is not.", False),
    ],
)
def test_agree(a: str, b: str, same: bool) -> None:
    assert agree(a, b) is same


@pytest.mark.parametrize(("verdicts", "share"), [
    (["doctests: passed 2, failed 1; examples: passed 2, failed 1"], 4 / 6),
    (["solution.py: exit code 1 (ValueError)", "examples: passed 0, failed 3"], 0.0),
    (["tests: passed 3, failed 0", "examples: passed 1, failed 1"], 4 / 5),
    (["the citations hold"], 0.0),
    ([], 0.0),
])  # fmt: skip
def test_passed_share_counts_every_check(verdicts: list[str], share: float) -> None:
    checks = [{"skill": "coder", "verdict": v, "passed": False} for v in verdicts]
    assert passed_share({"checks": checks}) == pytest.approx(share)  # type: ignore[typeddict-item]
