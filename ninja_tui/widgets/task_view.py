"""One task: its status, the plan as a tree of steps and branches with their judge scores,
open questions, the answer as Markdown (streamed while it is written) and its sources.

Built from history rows and events only; live tokens arrive through `stream_token`."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.events import question_key
from myninja.ninja_tui.widgets.answer_view import AnswerView
from myninja.ninja_tui.widgets.sources import SourceList
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static, Tree

RESTING = ("done", "failed", "cancelled")


def branch_label(branch: dict[str, Any], tokens: int = 0) -> Text:
    label = Text(f"{branch['branch_id']} ")
    label.append(f"{branch.get('agent', '')} t={branch.get('temperature', 0):g}", style="dim")
    if branch.get("score") is not None:
        label.append(f"  {branch['score']:g}/10", style="bold")
    elif not branch.get("done"):
        label.append(f"  working… {tokens} tok" if tokens else "  working…", style="yellow")
    if branch.get("search"):
        query, found = branch["search"]
        label.append(f"  searched “{query}” +{found}", style="dim")
    for check in branch.get("checks") or []:
        if check.get("passed") is not None:
            mark, style = ("✓", "green") if check["passed"] else ("✗", "red")
            label.append(f"  {mark} {check['verdict']}", style=style)
    if branch.get("revisions"):
        n = branch["revisions"]
        label.append(f"  {n} revision{'s' * (n != 1)}", style="dim")
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
            branches[event["branch_id"]].update(
                done=True, checks=event.get("checks"), revisions=event.get("revisions")
            )
        elif kind == "evaluation" and event["branch_id"] in branches:
            branches[event["branch_id"]]["score"] = event["score"]
        elif kind == "selected" and event["branch_id"] in branches:
            branches[event["branch_id"]]["kept"] = True
        elif kind == "retrieved" and event.get("branch_id") in branches:
            branches[event["branch_id"]]["search"] = (event["query"], len(event["passages"]))
    return rounds


def search_summary(events: list[dict[str, Any]]) -> str | None:
    """What the first hop found, for the researcher's tasks; None for other agents."""
    first = next((e for e in events if e["type"] == "retrieved" and e["hop"] == 1), None)
    if first is None:
        return None
    found = len(first["passages"])
    notes = "".join(f"; {note}" for note in first["notes"])
    return f"searched: {found} passage{'s' * (found != 1)}{notes}"


def header_text(task: dict[str, Any]) -> Text:
    header = Text(f"{task['status'].upper()}  ", style="bold")
    header.append(f"{task.get('agent') or 'routing…'}  ", style="cyan")
    header.append(task["text"])
    return header


class TaskView(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static("Type a task below and press Enter.", id="task-header")
        yield Static("", id="questions")
        yield Static("", id="answer-caption")
        yield AnswerView(id="answer")
        yield SourceList(id="sources")
        yield Tree("plan", id="plan")

    def on_mount(self) -> None:
        self.task_id: str | None = None
        self.tokens: dict[str, int] = {}
        # Which stream the answer view shows while the task runs: a branch's draft until
        # the final answer is composed ("final"); None before the first token.
        self.drafting: str | None = None
        self.finished_branches: set[str] = set()
        plan = self.query_one("#plan", Tree)
        plan.display, plan.show_root = False, False
        self.query_one(SourceList).display = False

    @property
    def answer(self) -> AnswerView:
        return self.query_one("#answer", AnswerView)

    async def show(
        self,
        task: dict[str, Any],
        events: list[dict[str, Any]],
        questions: list[dict[str, Any]],
        citations: list[dict[str, Any]],
    ) -> None:
        if task["id"] != self.task_id:
            self.task_id, self.tokens, self.drafting = task["id"], {}, None
            await self.answer.show("")  # stops any stream of the task shown before
            self._caption("")
        self.finished_branches = {e["branch_id"] for e in events if e["type"] == "branch_done"}
        signature = (task["id"], task["status"], len(events), len(questions), len(citations))
        if signature != getattr(self, "_signature", None):
            self._signature = signature
            self.query_one("#task-header", Static).update(header_text(task))
            self._show_plan(events)
            unique = {question_key(q["text"]): q["text"] for q in questions}.values()
            lines = [f"? {text}  (answer in the box below, or ctrl+o)" for text in unique]
            asked = self.query_one("#questions", Static)
            asked.update("\n".join(lines))
            asked.display = bool(lines)
            self.query_one(SourceList).show(citations)
        if task["status"] == "failed":
            self._caption("")
            await self.answer.finish(f"**Failed:** {task.get('error') or 'unknown error'}")
        elif task["status"] in RESTING or task.get("answer"):
            self._caption("")
            await self.answer.finish(task.get("answer") or "")

    async def stream_token(self, branch_id: str, text: str) -> None:
        """A live token. The answer view follows one branch's draft (a new one once it is
        done) until the final answer streams; every branch's tokens are counted in the plan."""
        if branch_id != "final":
            self.tokens[branch_id] = self.tokens.get(branch_id, 0) + 1
        switch = self.drafting is None or (
            self.drafting != "final"
            and branch_id != self.drafting
            and (branch_id == "final" or self.drafting in self.finished_branches)
        )
        if switch:
            self.drafting = branch_id
            await self.answer.show("")
            self._caption(
                "" if branch_id == "final" else f"draft from branch {branch_id}, not judged yet"
            )
        if branch_id == self.drafting:
            await self.answer.stream(text)

    def _caption(self, text: str) -> None:
        caption = self.query_one("#answer-caption", Static)
        caption.update(Text(text, style="italic dim"))
        caption.display = bool(text)

    def refresh_token_counts(self, events: list[dict[str, Any]]) -> None:
        counts = tuple(sorted(self.tokens.items()))
        if counts != getattr(self, "_counts", None):
            self._counts = counts
            self._show_plan(events)

    def _show_plan(self, events: list[dict[str, Any]]) -> None:
        tree = self.query_one("#plan", Tree)
        tree.clear()
        rounds = plan_rounds(events)
        tree.display = bool(rounds)
        searched = search_summary(events)
        if searched:
            tree.root.add_leaf(Text(searched, style="dim"))
        for plan in rounds:
            node = tree.root.add(f"plan, attempt {plan['round']}", expand=True)
            for number, step in enumerate(plan["steps"], 1):
                step_node = node.add(f"{number}. {step['title']}", expand=True)
                for branch in step["branches"]:
                    tokens = self.tokens.get(branch["branch_id"], 0)
                    step_node.add_leaf(branch_label(branch, tokens))
        tree.root.expand()
