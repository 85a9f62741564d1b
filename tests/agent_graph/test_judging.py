"""Agreement between branches: short answers that say the same thing, never code by its words."""

from __future__ import annotations

import pytest

from agent_graph.judging import agree


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
