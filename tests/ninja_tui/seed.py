"""A fixed history for screens that must look the same on every run (snapshots, benchmarks):
a finished task with a plan, scored branches, an answer with a table and sources and the tokens
its model calls spent, a task that waits for an answer, a failed one, and two schedules (one
whose last run is the finished task). Times and ids are fixed; no worker is needed to show
them (the schedules' "in 3 h" needs the clock at T0: MYNINJA_TEST_CLOCK)."""

from __future__ import annotations

from pathlib import Path

from myninja.agent_graph.events import make_event
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history import usage as ledger
from myninja.agent_graph.tasks.schedules import ScheduleBook, next_after

T0 = 1_790_000_000.0  # a fixed moment, so dates on screen never change
ANSWER = """\
## Three options for Tuesday

| slot | who is free |
|---|---|
| 09:30 | Alice, Bob, you |
| 14:00 | Alice, you |

- **09:30** suits everyone [1].
- Bob leaves early on Tuesdays [2].

```text
Subject: Planning, Tue 09:30
```
"""


def _events(store: HistoryStore, task_id: str, events: list[dict]) -> None:
    for number, event in enumerate(events, 1):
        event["ts"] = T0 + number
        store.append_event(task_id, f"seed:{number}", {"v": 1, **event, "task_id": task_id})


def seed_history(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with HistoryStore(data_dir / "history.db") as store:
        done = "t_0000000000a1"
        store.create_task(
            done,
            "Find a time next week for Alice, Bob and me",
            agent="scheduler",
            status="done",
            created_at=T0,
        )
        steps = [
            {"title": "Collect free slots", "instruction": "…"},
            {"title": "Draft the invite", "instruction": "…"},
        ]
        events = [make_event("plan", steps=steps, round=1, examples=[])]
        for step, scores in enumerate(((8, 5, 6), (7, 9, 4))):
            for n, score in enumerate(scores):
                branch = f"s{step}b{n}"
                events += [
                    make_event(
                        "branch_started",
                        step=step,
                        round=1,
                        branch_id=branch,
                        agent="scheduler",
                        temperature=0.2 + 0.3 * n,
                        style="direct",
                    ),
                    make_event("branch_done", step=step, round=1, branch_id=branch, text="…"),
                    make_event(
                        "evaluation", step=step, round=1, branch_id=branch, score=score, reasons="…"
                    ),
                ]
            best = max(range(3), key=lambda n: scores[n])
            events.append(
                make_event(
                    "selected",
                    step=step,
                    round=1,
                    branch_id=f"s{step}b{best}",
                    score=scores[best],
                    best_effort=False,
                )
            )
        _events(store, done, events)
        store.update_task(done, answer=ANSWER, unread=0)
        store.record_citation(
            done,
            1,
            passage_id="cal-1",
            title="Team calendar",
            source="calendar.ics",
            text="Tue 09:30–10:30 free: Alice, Bob.",
        )
        store.record_citation(
            done,
            2,
            passage_id="mail-7",
            title="Bob's note",
            source="mail/bob.eml",
            text="I leave at 15:00 on Tuesdays.",
        )

        waiting = "t_0000000000b2"
        store.create_task(
            waiting,
            "Book a table for the team on Friday",
            agent="advisor",
            status="waiting",
            created_at=T0 + 60,
        )
        store.record_question(waiting, "q1", "How many guests?", key="guests")
        failed = "t_0000000000c3"
        store.create_task(
            failed, "Summarise notes.md", agent="writer", status="failed", created_at=T0 + 120
        )
        store.update_task(
            failed,
            error="backend 'gateway' unreachable at 127.0.0.1:9 "
            "(check the URL or run `myninja backends test gateway`)",
            unread=0,
        )
        for agent, prompt, completion in (("router", 310, 4), ("scheduler", 1_850, 420)):
            ledger.record(
                store,
                done,
                agent=agent,
                backend="embedded",
                model="qwen2.5-coder-1.5b",
                prompt_tokens=prompt,
                completion_tokens=completion,
                ts=T0 + 2,
            )
        _schedules(store, done)


def _schedules(store: HistoryStore, done: str) -> None:
    """Rows as ScheduleBook writes them, with fixed ids (it draws random ones)."""
    ScheduleBook(store)  # its tables
    rows = [
        (
            "s_0000mon",
            "every monday at 09:00",
            "0 9 * * 1",
            "Find a time next week for Alice, Bob and me",
            0,
        ),
        ("s_0000fri", "30 18 * * fri", "30 18 * * 5", "@writer draft the weekly notes", 1),
    ]
    with store.batch():
        for schedule_id, spec, cron, text, paused in rows:
            store.db.conn.execute(
                "INSERT INTO schedules (id, spec, cron, text, paused, next_due, last_run,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (schedule_id, spec, cron, text, paused, next_after(cron, T0), None, T0 - 86_400),
            )
        store.db.conn.execute(
            "INSERT INTO schedule_runs (schedule_id, due_at, task_id, text, manual, claimed_at)"
            " VALUES (?, ?, ?, ?, 0, ?)",
            ("s_0000mon", T0 - 3600, done, rows[0][3], T0 - 3600),
        )
        store.db.conn.execute(
            "UPDATE schedules SET last_run = ? WHERE id = 's_0000mon'", (T0 - 3600,)
        )
