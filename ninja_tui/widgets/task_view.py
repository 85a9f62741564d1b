"""One task: its status, the plan as a tree of steps and branches with their judge scores,
open questions, and the answer as Markdown. Built from history events only."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static, Tree


def branch_label(branch: dict[str, Any]) -> Text:
    label = Text(f"{branch['branch_id']} ")
    label.append(f"{branch.get('agent', '')} t={branch.get('temperature', 0):g}", style="dim")
    if branch.get("score") is not None:
        label.append(f"  {branch['score']:g}/10", style="bold")
    elif not branch.get("done"):
        label.append("  working…", style="yellow")
    if branch.get("kept"):
        label.append("  ✓ kept", style="green")
    return label


def plan_rounds(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold the events into plans → steps → branches."""
    rounds: list[dict[str, Any]] = []
    branches: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind == "plan":
            steps = [{"title": s["title"], "branches": []} for s in event["steps"]]
            rounds.append({"round": event["round"], "steps": steps})
        elif kind == "branch_started" and rounds:
            branch = {k: event[k] for k in ("branch_id", "agent", "temperature")}
            branches[event["branch_id"]] = branch
            rounds[-1]["steps"][event["step"]]["branches"].append(branch)
        elif kind == "branch_done" and event["branch_id"] in branches:
            branches[event["branch_id"]]["done"] = True
        elif kind == "evaluation" and event["branch_id"] in branches:
            branches[event["branch_id"]]["score"] = event["score"]
        elif kind == "selected" and event["branch_id"] in branches:
            branches[event["branch_id"]]["kept"] = True
    return rounds


class TaskView(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static("Type a task below and press Enter.", id="task-header")
        yield Tree("plan", id="plan")
        yield Static("", id="questions")
        yield Markdown("", id="answer")

    def show(
        self, task: dict[str, Any], events: list[dict[str, Any]], questions: list[dict[str, Any]]
    ) -> None:
        signature = (task["id"], task["status"], len(events), len(questions))
        if signature == getattr(self, "_signature", None):
            return
        self._signature = signature
        header = Text(f"{task['status'].upper()}  ", style="bold")
        header.append(f"{task.get('agent') or 'routing…'}  ", style="cyan")
        header.append(task["text"])
        self.query_one("#task-header", Static).update(header)
        self._show_plan(events)
        lines = [f"? {q['text']}  (answer in the box below)" for q in questions]
        self.query_one("#questions", Static).update("\n".join(lines))
        answer = task.get("answer") or ""
        if task["status"] == "failed":
            answer = f"**Failed:** {task.get('error') or 'unknown error'}"
        self.query_one("#answer", Markdown).update(answer)

    def _show_plan(self, events: list[dict[str, Any]]) -> None:
        tree = self.query_one("#plan", Tree)
        tree.clear()
        for plan in plan_rounds(events):
            node = tree.root.add(f"plan, attempt {plan['round']}", expand=True)
            for number, step in enumerate(plan["steps"], 1):
                step_node = node.add(f"{number}. {step['title']}", expand=True)
                for branch in step["branches"]:
                    step_node.add_leaf(branch_label(branch))
        tree.root.expand()
