"""How tokens and their cost read, the same in `myninja usage` and in the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the app's first frame must not wait for sqlite-utils
    from myninja.agent_graph.history.usage import Line


def cost_text(value: float | None) -> str:
    """A cost in the price table's currency; "?" where a call had no price."""
    return "?" if value is None else f"{value:.4f}"


def usage_text(line: Line) -> str:
    """Tokens and cost of a sum of calls, in one short phrase. The cost is "?" when any of
    its calls had no price: a partial sum would read as the whole."""
    cost = cost_text(None if line.unpriced else line.cost)
    return f"{line.total_tokens:,} tok · cost {cost}"
