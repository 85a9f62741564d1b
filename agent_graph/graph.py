"""The agent graph: route → answer (the fast path: one call) → finalize → deliver, or route →
retrieve → needs (→ ask_needs) → prepare → plan → fan_out → branch×N (Send) → evaluate →
select | replan → finalize → deliver. A fast answer that fails a check goes on to retrieve.
Nodes live in nodes/, one phase each; this file only wires them."""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.nodes.answer import answer
from myninja.agent_graph.nodes.branch import branch, fan_out, send_branches
from myninja.agent_graph.nodes.evaluate import evaluate
from myninja.agent_graph.nodes.finalize import deliver, finalize
from myninja.agent_graph.nodes.needs import after_needs, ask_needs, needs
from myninja.agent_graph.nodes.plan import plan
from myninja.agent_graph.nodes.prepare import prepare
from myninja.agent_graph.nodes.retrieve import retrieve
from myninja.agent_graph.nodes.route import FAST, route
from myninja.agent_graph.state import TaskState


def build_graph() -> StateGraph:
    graph = StateGraph(TaskState, context_schema=GraphContext)
    # Pick the specialised agent (or take the person's @agent).
    graph.add_node("route", route)
    # The fast path: one streamed call; checks in code keep it or hand the task on.
    graph.add_node("answer", answer, destinations=("finalize", "retrieve", END))
    # The researcher's first hop: corpora searched, named pages fetched, sources numbered.
    graph.add_node("retrieve", retrieve)
    # What the agent needs of the person (the scheduler: the time zone), from a memory, the
    # config or the machine; what none gives is asked once, before any branch runs.
    graph.add_node("needs", needs)
    graph.add_node("ask_needs", ask_needs)
    # What the agent's skills work out in code for its branches (skills' prepare hooks).
    graph.add_node("prepare", prepare)
    # A JSON plan of steps; a malformed plan is repaired or the task fails with the reason.
    graph.add_node("plan", plan, destinations=("fan_out", END))
    # Announce the current step's branches, then send each its own input.
    graph.add_node("fan_out", fan_out)
    # One candidate solution: the agent works the step, with tools and questions.
    graph.add_node("branch", branch)
    # The judge scores the branches; keep the best, move on, or replan.
    graph.add_node("evaluate", evaluate, destinations=("plan", "fan_out", "finalize", END))
    # The answer, its citations checked (researcher).
    graph.add_node("finalize", finalize)
    # The skills' finish hooks (files saved), then answer and task_done.
    graph.add_node("deliver", deliver)
    graph.add_edge(START, "route")
    graph.add_conditional_edges("route", _path, ["answer", "retrieve"])
    graph.add_edge("retrieve", "needs")
    graph.add_conditional_edges("needs", after_needs, ["ask_needs", "prepare"])
    graph.add_edge("ask_needs", "prepare")
    graph.add_edge("prepare", "plan")
    graph.add_conditional_edges("fan_out", send_branches, ["branch"])
    graph.add_edge("branch", "evaluate")
    graph.add_edge("finalize", "deliver")
    graph.add_edge("deliver", END)
    return graph


def _path(state: TaskState) -> str:
    return "answer" if state.get("path") == FAST else "retrieve"
