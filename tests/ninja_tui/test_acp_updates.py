"""Events as ACP session updates (ninja_tui/acp/updates.py): branches with their scores and
which was kept, the plan's step statuses, and the answer sent once however it streamed."""

from __future__ import annotations

from typing import Any

from myninja.agent_graph.events import make_event
from myninja.ninja_tui.acp.updates import TurnUpdates


def run(events: list[dict[str, Any]]) -> list[Any]:
    turn = TurnUpdates()
    return [update for event in events for update in turn.updates(event)]


def text(updates: list[Any]) -> str:
    return "".join(u.content.text for u in updates if u.session_update == "agent_message_chunk")


def branch(branch_id: str, **extra: Any) -> dict[str, Any]:
    return {"step": 0, "round": 1, "branch_id": branch_id, **extra}


STEPS = [{"title": "Draft", "instruction": "Write it."}]


def test_three_branches_show_their_scores_and_which_was_kept() -> None:
    started = {"agent": "writer", "temperature": 0.7, "style": "careful"}
    events = [make_event("plan", steps=STEPS, round=1, examples=[], memories=[])]
    for name in ("b1", "b2", "b3"):
        events.append(make_event("branch_started", **branch(name, **started)))
    for name, score in (("b1", 4), ("b2", 9), ("b3", 6)):
        events.append(make_event("branch_done", **branch(name, text=f"text {name}")))
        events.append(make_event("evaluation", **branch(name, score=score, reasons="why")))
    events.append(make_event("selected", **branch("b2", score=9, best_effort=False, by="judge")))
    updates = run(events)
    starts = [u for u in updates if u.session_update == "tool_call"]
    assert [u.kind for u in starts] == ["think"] * 3
    titles = {u.tool_call_id: u.title for u in updates if getattr(u, "title", None)}
    assert titles["branch:1:0:b1"].endswith("score 4/10: why")
    assert titles["branch:1:0:b2"].endswith("score 9/10: why — kept (by judge, score 9)")
    done = [u for u in updates if u.session_update == "tool_call_update" and u.status]
    assert {u.status for u in done} == {"completed"}
    assert done[0].content[0].content.text == "text b1"
    plans = [[e.status for e in u.entries] for u in updates if u.session_update == "plan"]
    assert plans == [["pending"], ["in_progress"], ["completed"]]


def test_a_streamed_answer_is_not_sent_twice() -> None:
    fast = {"agent": "assistant", "temperature": 0.2, "style": "fast"}
    events = [
        make_event("branch_started", **branch("fast", **fast)),
        {"type": "token", "branch_id": "fast", "text": "Par", "seq": 0},
        {"type": "token", "branch_id": "fast", "text": "is", "seq": 0},
        make_event("answer", text="Paris [1]"),
        make_event("task_done", answer="Paris [1]", usage={}, timings={}),
    ]
    assert text(run(events)) == "Paris [1]"


def test_a_branch_s_own_tokens_are_not_the_answer() -> None:
    careful = {"agent": "writer", "temperature": 0.7, "style": "careful"}
    events = [
        make_event("branch_started", **branch("b1", **careful)),
        {"type": "token", "branch_id": "b1", "text": "draft", "seq": 0},
        make_event("task_done", answer="Final", usage={}, timings={}),
    ]
    assert text(run(events)) == "Final"


def test_a_tool_call_and_a_failure() -> None:
    events = [
        make_event("tool_call", branch_id="b1", call_id="c1", name="read_file", arguments={}),
        make_event(
            "tool_result", branch_id="b1", call_id="c1", name="read_file", result=None,
            error="the person did not allow the files skill to do that",
        ),
        make_event("task_failed", error="backend down", error_type="X", exit_code=4,
                   partial_text=""),
    ]  # fmt: skip
    updates = run(events)
    assert (updates[0].kind, updates[0].status) == ("read", "in_progress")
    assert updates[1].status == "failed" and "did not allow" in updates[1].content[0].content.text
    assert text(updates).strip() == "The task failed: backend down"
