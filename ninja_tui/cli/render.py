"""How the headless commands show a task: events as JSON lines, or a terse progress on stderr
with the answer on stdout. Both end in the exit code docs/architecture.md gives."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from myninja.agent_graph.events import answer_command
from myninja.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_WAITING


class EventPrinter:
    def __init__(self, as_json: bool, out: TextIO | None = None, err: TextIO | None = None):
        self.as_json = as_json
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.exit_code = EXIT_FAILED  # until an event says otherwise
        # Progress notes are for a person watching; scripts get the answer and errors only.
        self.progress = self.err.isatty()

    def show(self, event: dict[str, Any]) -> None:
        if self.as_json:
            self.out.write(json.dumps(event, ensure_ascii=False) + "\n")
            self.out.flush()
        else:
            self._plain(event)
        kind = event["type"]
        if kind == "task_done":
            self.exit_code = EXIT_OK
        elif kind == "task_failed":
            self.exit_code = int(event.get("exit_code", EXIT_FAILED))
        elif kind == "task_cancelled":
            self.exit_code = EXIT_INTERRUPTED

    def _note(self, text: str) -> None:
        if not self.progress:
            return
        self.err.write(f"· {text}\n")
        self.err.flush()

    def _plain(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "routed":
            self._note(f"agent: {event['agent']} ({event['reason']})")
        elif kind == "plan":
            steps = "; ".join(f"{i}. {s['title']}" for i, s in enumerate(event["steps"], 1))
            self._note(f"plan (attempt {event['round']}): {steps}")
        elif kind == "retrieved":
            found = len(event["passages"])
            if event["hop"] == 1:
                self._note(f"sources: {found} passage{'s' * (found != 1)} found")
            else:
                self._note(
                    f"{event['branch_id']} searched again for “{event['query']}”: {found} new"
                )
            for note in event["notes"]:
                self._note(note)
        elif kind == "citations":
            dropped = len(event["dropped"])
            repaired = ", repaired once" if event["repaired"] else ""
            gone = (
                f", {dropped} unsupported sentence{'s' * (dropped != 1)} dropped" if dropped else ""
            )
            self._note(f"citations checked: {len(event['sources'])} sources cited{repaired}{gone}")
        elif kind == "tool_result":
            what = (event["error"] or event["result"] or "").strip().split("\n", 1)[0]
            self._note(f"{event['branch_id'] or 'task'} {event['name']}: {what[:100]}")
        elif kind == "branch_done" and (event.get("checks") or event.get("revisions")):
            ran = [c for c in event.get("checks") or [] if c["passed"] is not None]
            checks = "; ".join(f"{'✓' if c['passed'] else '✗'} {c['verdict']}" for c in ran)
            n = event.get("revisions") or 0
            revised = f" after {n} revision{'s' * (n != 1)}" if n else ""
            self._note(f"{event['branch_id']} done{revised}" + (f": {checks}" if checks else ""))
        elif kind == "evaluation":
            self._note(f"{event['branch_id']} scored {event['score']:g}")
        elif kind == "replan":
            self._note("every branch fell short: replanning")
        elif kind == "memory_proposed":
            n = event["memory_id"]
            if event["status"] == "proposed":
                self._note(
                    f"remember “{event['text']}”? myninja memory confirm {n} (or reject {n})"
                )
            else:
                self._note(f"remembered {n}: {event['text']}")
        elif kind == "memory_answered":
            self._note(
                f"{event['branch_id'] or 'the task'} answered from memory "
                f"{event['memory_id']}: {event['text']}"
            )
        elif kind == "selected":
            note = " (best effort)" if event["best_effort"] else ""
            self._note(f"kept {event['branch_id']}{note}")
        elif kind == "task_done":
            self.out.write(event["answer"].rstrip() + "\n")
            self.out.flush()
        elif kind == "task_failed":
            if event.get("partial_text"):
                self.out.write(event["partial_text"].rstrip() + "\n")
            self.err.write(f"myninja: error: {event['error']}\n")
        elif kind == "task_cancelled":
            self.err.write(f"myninja: task cancelled: {event['reason']}\n")

    def waiting(self, task_id: str, questions: list[dict[str, Any]]) -> int:
        """The task paused for the person: the questions as JSON on stdout, with the exact
        command that answers each; exit code 3."""
        asked = [
            {
                "task_id": task_id,
                "question_id": q["id"],
                "question": q["text"],
                "choices": q.get("choices"),
                "key": q.get("key"),
                "answer_command": answer_command(task_id, q["id"]),
            }
            for q in questions
        ]
        if self.as_json:
            self.show(
                {
                    "v": 1,
                    "type": "task_waiting",
                    "task_id": task_id,
                    "seq": 0,
                    "ts": round(time.time(), 6),
                    "questions": asked,
                }
            )
        else:
            for item in asked:
                self.out.write(json.dumps(item, ensure_ascii=False) + "\n")
            self.err.write(f"myninja: waiting for your answer; run: {asked[0]['answer_command']}\n")
        self.exit_code = EXIT_WAITING
        return EXIT_WAITING
