"""One task's events (agent_graph/events.py) as ACP session updates, for one prompt turn.

plan                      → a plan update (every entry, each time a step's status changes)
branch_started … selected → a `think` tool call per branch: its text when done, its score, kept
tool_call / tool_result   → a tool call of the tool's kind, completed or failed with its result
retrieved                 → a completed `search` tool call naming what was found
token                     → message chunks, where they are the answer (the fast path, the final
                            synthesis); a branch's tokens are only its candidate
answer / task_done        → the answer as message chunks (what streamed is not sent again)
routed, widened, replan   → thought chunks
task_failed               → a message with the one-line error
"""

from __future__ import annotations

import json
from typing import Any

from acp import (
    plan_entry,
    start_tool_call,
    text_block,
    tool_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
)

# Which kind of ACP tool call each of our tools is (the editor picks an icon by it).
TOOL_KINDS = {
    "read_file": "read",
    "search_files": "search",
    "search": "search",
    "web_search": "search",
    "fetch": "fetch",
    "fetch_url": "fetch",
    "run_tests": "execute",
    "run_code": "execute",
    "write_file": "edit",
    "ask_user": "think",
}
# Tokens of these branches are the answer as it is written.
ANSWER_STYLES = frozenset({"fast"})
FINAL_BRANCH = "final"
SHOWN_CHARS = 2000  # of a tool's result or a branch's text in a tool call's content


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _content(text: str) -> list[Any] | None:
    if not text:
        return None
    if len(text) > SHOWN_CHARS:
        text = text[:SHOWN_CHARS] + "…"
    return [tool_content(text_block(text))]


class TurnUpdates:
    """The updates one prompt turn's events make; keeps what later events refer back to."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []  # the latest plan's entries: content, status
        self.branch_titles: dict[str, str] = {}
        self.answer_branches: set[str] = {FINAL_BRANCH}
        self.streamed = ""  # answer text sent as message chunks so far
        self.answered = False

    def updates(self, event: dict[str, Any]) -> list[Any]:
        handler = getattr(self, f"_{event.get('type')}", None)
        return handler(event) if handler is not None else []

    # The plan and its steps -------------------------------------------------------------
    def _plan(self, event: dict[str, Any]) -> list[Any]:
        self.steps = [
            {"content": f"{s['title']}: {s['instruction']}", "status": "pending"}
            for s in event.get("steps") or []
        ]
        return [self._plan_update()]

    def _step_status(self, step: Any, status: str) -> list[Any]:
        if not isinstance(step, int) or not 0 <= step < len(self.steps):
            return []
        if self.steps[step]["status"] == status or self.steps[step]["status"] == "completed":
            return []
        self.steps[step]["status"] = status
        return [self._plan_update()]

    def _plan_update(self) -> Any:
        return update_plan([plan_entry(s["content"], status=s["status"]) for s in self.steps])

    # Branches ---------------------------------------------------------------------------
    @staticmethod
    def _branch_id(event: dict[str, Any]) -> str:
        return f"branch:{event.get('round', 1)}:{event.get('step', 0)}:{event['branch_id']}"

    def _branch_started(self, event: dict[str, Any]) -> list[Any]:
        if event.get("style") in ANSWER_STYLES:
            self.answer_branches.add(event["branch_id"])
        ident = self._branch_id(event)
        title = (
            f"Step {event.get('step', 0) + 1}, branch {event['branch_id']} "
            f"({event.get('agent')}, {event.get('style')}, temperature {event.get('temperature')})"
        )
        self.branch_titles[ident] = title
        start = start_tool_call(
            ident,
            title,
            kind="think",
            status="in_progress",
            raw_input={k: event.get(k) for k in ("step", "round", "branch_id", "agent", "style")},
        )
        return [*self._step_status(event.get("step"), "in_progress"), start]

    def _branch_done(self, event: dict[str, Any]) -> list[Any]:
        error = event.get("error")
        text = event.get("text") or ""
        return [
            update_tool_call(
                self._branch_id(event),
                status="failed" if error else "completed",
                content=_content(f"{text}\n\n{error}".strip() if error else text),
                raw_output={k: event.get(k) for k in ("text", "checks", "revisions", "error")},
            )
        ]

    def _retitle(self, event: dict[str, Any], note: str) -> Any:
        ident = self._branch_id(event)
        title = self.branch_titles.get(ident, f"Branch {event['branch_id']}") + f" — {note}"
        self.branch_titles[ident] = title
        return update_tool_call(ident, title=title)

    def _evaluation(self, event: dict[str, Any]) -> list[Any]:
        reasons = _short(event.get("reasons") or "")
        return [self._retitle(event, f"score {event.get('score')}/10: {reasons}")]

    def _selected(self, event: dict[str, Any]) -> list[Any]:
        score = event.get("score")
        note = f"kept (by {event.get('by')}" + (f", score {score}" if score is not None else "")
        note += ", best effort)" if event.get("best_effort") else ")"
        return [self._retitle(event, note), *self._step_status(event.get("step"), "completed")]

    def _widened(self, event: dict[str, Any]) -> list[Any]:
        return [update_agent_thought_text(f"More branches: {event.get('reason')}\n")]

    def _replan(self, event: dict[str, Any]) -> list[Any]:
        return [update_agent_thought_text(f"Planning again: {event.get('reason')}\n")]

    def _routed(self, event: dict[str, Any]) -> list[Any]:
        path = "one call" if event.get("path") == "fast" else "plan, branches and checks"
        return [
            update_agent_thought_text(f"{event.get('agent')} ({path}): {event.get('reason')}\n")
        ]

    def _memory_answered(self, event: dict[str, Any]) -> list[Any]:
        return [
            update_agent_thought_text(
                f"Answered from memory: {event.get('question')} → {event.get('text')}\n"
            )
        ]

    # Tools ------------------------------------------------------------------------------
    @staticmethod
    def _tool_id(event: dict[str, Any]) -> str:
        return f"tool:{event.get('branch_id')}:{event['call_id']}"

    def _tool_call(self, event: dict[str, Any]) -> list[Any]:
        name = event.get("name") or "tool"
        arguments = event.get("arguments")
        return [
            start_tool_call(
                self._tool_id(event),
                f"{name} {_short(arguments or {})}",
                kind=TOOL_KINDS.get(name, "other"),
                status="in_progress",
                raw_input=arguments,
            )
        ]

    def _tool_result(self, event: dict[str, Any]) -> list[Any]:
        error = event.get("error")
        result = event.get("result")
        shown = error or (result if isinstance(result, str) else _short(result, SHOWN_CHARS))
        return [
            update_tool_call(
                self._tool_id(event),
                status="failed" if error else "completed",
                content=_content(shown),
                raw_output={"result": result, "error": error},
            )
        ]

    def _retrieved(self, event: dict[str, Any]) -> list[Any]:
        passages = event.get("passages") or []
        found = "\n".join(f"- {p.get('title') or p.get('source')}" for p in passages)
        notes = "\n".join(event.get("notes") or [])
        return [
            start_tool_call(
                f"retrieved:{event.get('seq')}",
                f"Search {_short(event.get('query') or '')}: {len(passages)} passages",
                kind="search",
                status="completed",
                content=_content("\n".join(x for x in (found, notes) if x)),
            )
        ]

    # The answer -------------------------------------------------------------------------
    def _token(self, event: dict[str, Any]) -> list[Any]:
        if event.get("branch_id") not in self.answer_branches or not event.get("text"):
            return []
        self.streamed += event["text"]
        return [update_agent_message_text(event["text"])]

    def _answer(self, event: dict[str, Any]) -> list[Any]:
        text = event.get("text") or ""
        self.answered = True
        if not text or text == self.streamed:
            return []
        if self.streamed and text.startswith(self.streamed):
            rest = text[len(self.streamed) :]
        else:
            rest = f"\n\n{text}" if self.streamed else text
        self.streamed = text
        return [update_agent_message_text(rest)]

    def _task_done(self, event: dict[str, Any]) -> list[Any]:
        if self.answered:
            return []
        return self._answer({"text": event.get("answer") or ""})

    def _task_failed(self, event: dict[str, Any]) -> list[Any]:
        return [update_agent_message_text(f"\n\nThe task failed: {event.get('error')}")]
