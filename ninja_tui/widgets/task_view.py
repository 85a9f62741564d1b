"""One task: its status, the plan as a tree of steps and branches with their judge scores,
open questions, the answer as Markdown (streamed while it is written) and its sources.

Built from the task's events: those history held when the task was shown (`load`), then each
one its feed brings (`add`); live tokens arrive through `stream_token`. The task's row (status,
answer) comes with each `show`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static, Tree

from myninja.agent_graph.events import question_key
from myninja.agent_graph.history.statuses import FINISHED
from myninja.agent_graph.tasks.branch_tree import BranchTree
from myninja.agent_graph.tasks.feed import Cursor
from myninja.ninja_tui.usage_text import usage_text
from myninja.ninja_tui.widgets.answer_view import AnswerView
from myninja.ninja_tui.widgets.sources import SourceList

if TYPE_CHECKING:
    from myninja.agent_graph.history.usage import Line


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


def search_summary(events: list[dict[str, Any]]) -> str | None:
    """What the first hop found, for the researcher's tasks; None for other agents."""
    first = next((e for e in events if e["type"] == "retrieved" and e["hop"] == 1), None)
    if first is None:
        return None
    found = len(first["passages"])
    notes = "".join(f"; {note}" for note in first["notes"])
    return f"searched: {found} passage{'s' * (found != 1)}{notes}"


def header_text(task: dict[str, Any], usage: Line | None = None) -> Text:
    header = Text(f"{task['status'].upper()}  ", style="bold")
    header.append(f"{task.get('agent') or 'routing…'}  ", style="cyan")
    header.append(task["text"])
    if usage is not None and usage.calls:
        calls = f"{usage.calls} model call{'s' * (usage.calls != 1)}"
        header.append(f"\n{usage_text(usage)}  ({calls})", style="dim")
    return header


class TaskEvents:
    """What one task's stored events say, taken in one event at a time: the events, the plan
    tree, the open questions and the sources. Built from the rows read when the task is
    shown, then extended with each event its feed brings."""

    def __init__(
        self,
        events: list[dict[str, Any]],
        questions: list[dict[str, Any]],
        citations: list[dict[str, Any]],
    ) -> None:
        self.events: list[dict[str, Any]] = []
        self.tree = BranchTree()
        self.cursor = Cursor()
        self.questions = [{"id": q["id"], "text": q["text"]} for q in questions]
        self.citations = {c["n"]: c for c in citations}
        for event in events:  # the questions and sources they record are in the rows
            self._take(event)

    def add(self, event: dict[str, Any]) -> bool:
        """Take in a followed stored event; False where it was taken in before."""
        if not self._take(event):
            return False
        kind = event["type"]
        if kind == "question":
            self.questions.append({"id": event["question_id"], "text": event["text"]})
        elif kind == "question_answered":
            self.questions = [q for q in self.questions if q["id"] != event["question_id"]]
        elif kind == "citations":
            self.citations.update((source["n"], source) for source in event["sources"])
        return True

    def _take(self, event: dict[str, Any]) -> bool:
        if not event.get("seq") or not self.cursor.admit(event):
            return False
        self.events.append(event)
        self.tree.add(event)
        return True


class TaskView(VerticalScroll):
    def compose(self) -> ComposeResult:
        yield Static("Type a task below and press Enter.", id="task-header")
        yield Static("", id="questions")
        yield Static("", id="answer-caption")
        yield AnswerView(id="answer")
        yield SourceList(id="sources")
        yield Tree("plan", id="plan")

    def on_mount(self) -> None:
        self.row: dict[str, Any] | None = None  # the row shown
        self.known = TaskEvents([], [], [])
        self.tokens: dict[str, int] = {}
        self.usage: Line | None = None  # the shown task's tokens and cost, once read
        # Which stream the answer view shows while the task runs: a branch's draft until
        # the final answer is composed ("final"); None before the first token.
        self.drafting: str | None = None
        self._signature: tuple[Any, ...] | None = None  # of what is rendered
        plan = self.query_one("#plan", Tree)
        plan.display, plan.show_root = False, False
        self.query_one(SourceList).display = False

    @property
    def answer(self) -> AnswerView:
        return self.query_one("#answer", AnswerView)

    @property
    def task_id(self) -> str | None:
        return None if self.row is None else self.row["id"]

    @property
    def questions(self) -> list[dict[str, Any]]:
        """The shown task's open questions (id and text)."""
        return self.known.questions

    @property
    def seq(self) -> int:
        """The last stored event of the shown task the view has taken in."""
        return self.known.cursor.seq

    async def load(
        self,
        task: dict[str, Any],
        events: list[dict[str, Any]],
        questions: list[dict[str, Any]],
        citations: list[dict[str, Any]],
    ) -> None:
        """Show `task` from its rows, read once when it is chosen; `add` brings the rest."""
        self.known = TaskEvents(events, questions, citations)
        self.row, self.tokens, self.drafting, self._signature = task, {}, None, None
        self.usage = None
        await self.answer.show("")  # stops any stream of the task shown before
        self._caption("")
        await self.show(task)

    def add(self, event: dict[str, Any]) -> bool:
        """Take in a stored event of the shown task from its feed; False if it is not news."""
        return event.get("task_id") == self.task_id and self.known.add(event)

    async def show(self, task: dict[str, Any] | None = None) -> None:
        """Render the shown task with its latest row (`task`), or the row it has."""
        task = self.row = task or self.row
        if task is None:
            return
        known = self.known
        signature = (task["status"], len(known.events), len(known.questions), len(known.citations))
        if signature != self._signature:
            self._signature = signature
            self.query_one("#task-header", Static).update(header_text(task, self.usage))
            self._show_plan()
            unique = {question_key(q["text"]): q["text"] for q in known.questions}.values()
            lines = [f"? {text}  (answer in the box below, or ctrl+o)" for text in unique]
            asked = self.query_one("#questions", Static)
            asked.update("\n".join(lines))
            asked.display = bool(lines)
            self.query_one(SourceList).show([known.citations[n] for n in sorted(known.citations)])
        if task["status"] == "failed":
            self._caption("")
            await self.answer.finish(f"**Failed:** {task.get('error') or 'unknown error'}")
        elif task["status"] in FINISHED or task.get("answer"):
            self._caption("")
            await self.answer.finish(task.get("answer") or "")

    def show_usage(self, usage: Line) -> None:
        """The shown task's tokens and cost, read from history (the app says when)."""
        self.usage = usage
        if self.row is not None:
            self.query_one("#task-header", Static).update(header_text(self.row, usage))

    async def stream_token(self, branch_id: str, text: str) -> None:
        """A live token. The answer view follows one branch's draft (a new one once it is
        done) until the final answer streams; every branch's tokens are counted in the plan."""
        if branch_id != "final":
            self.tokens[branch_id] = self.tokens.get(branch_id, 0) + 1
        switch = self.drafting is None or (
            self.drafting != "final"
            and branch_id != self.drafting
            and (branch_id == "final" or self._finished(self.drafting))
        )
        if switch:
            self.drafting = branch_id
            await self.answer.show("")
            self._caption(
                "" if branch_id == "final" else f"draft from branch {branch_id}, not judged yet"
            )
        if branch_id == self.drafting:
            await self.answer.stream(text)

    def _finished(self, branch_id: str) -> bool:
        return any(
            b["done"] for b in self.known.tree.branches.values() if b["branch_id"] == branch_id
        )

    def _caption(self, text: str) -> None:
        caption = self.query_one("#answer-caption", Static)
        caption.update(Text(text, style="italic dim"))
        caption.display = bool(text)

    def refresh_token_counts(self) -> None:
        counts = tuple(sorted(self.tokens.items()))
        if counts != getattr(self, "_counts", None):
            self._counts = counts
            self._show_plan()

    def _show_plan(self) -> None:
        tree = self.query_one("#plan", Tree)
        tree.clear()
        rounds = self.known.tree.rounds
        tree.display = bool(rounds)
        searched = search_summary(self.known.events)
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
