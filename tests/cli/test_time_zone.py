"""The scheduler knows the person's time zone (agent_graph/needs.py): from a kept memory, the
config or the machine, and otherwise asks once per task, before its branches run; the answer
becomes a memory that stops the question. Run through `myninja` on the scripted backend."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.needs import NEEDS, TIME_ZONE, machine_zone, zone_from, zone_in_task
from myninja.ninja_tui.cli.render import EventPrinter
from myninja.skills.scheduler.request import meeting_request
from tests.conftest import run_myninja, scripted_config

QUESTION = NEEDS[TIME_ZONE].question
# Three branches, no judge: each answers with the zone its prompt names, or says it has none.
RULES: list[dict[str, Any]] = [
    {"match": r"Task to plan", "json": {"steps": [{"title": "Note", "instruction": "Write."}]}},
    {"match": r"The person's time zone is Europe/Berlin\.", "reply": "Monday 10:00 Berlin time"},
    {"match": r"The person's time zone is Europe/Paris\.", "reply": "Monday 10:00 Paris time"},
    {"match": r"The person's time zone is", "reply": "Monday 10:00 some time"},
    {"match": r"Attempt 1\.", "reply": "Monday 10:00, zone unknown"},
]
GRAPH = '[graph]\nbranches = 3\njudge = "none"\nadaptive = false\n'
TASK = "@scheduler Set up the weekly team meeting on Mondays at 10:00"


def events_of(done: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def myninja(home: Path, *args: str, tz: str = "UTC") -> Any:
    return run_myninja(*args, env={"MYNINJA_HOME": str(home), "TZ": tz})


def test_asked_once_then_answered_from_the_kept_memory(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH)
    asked = myninja(myninja_home, "ask", TASK, "--json")
    assert asked.returncode == 3, asked.stderr
    events = events_of(asked)
    questions = [e for e in events if e["type"] == "question"]
    assert [(q["text"], q["key"]) for q in questions] == [(QUESTION, TIME_ZONE)]
    assert not [e for e in events if e["type"] == "branch_started"]  # asked before any branch
    task1 = questions[0]["task_id"]

    answered = myninja(myninja_home, "answer", task1, "Europe/Berlin", "--json")
    assert answered.returncode == 0, answered.stderr
    events = events_of(answered)
    assert events[-1]["answer"] == "Monday 10:00 Berlin time"
    assert not [e for e in events if e["type"] == "question"]  # three branches, no question
    proposed = next(e for e in events if e["type"] == "memory_proposed")
    assert (proposed["text"], proposed["status"]) == ("time zone: Europe/Berlin", "proposed")
    kept = myninja(myninja_home, "memory", "confirm", str(proposed["memory_id"]), "--json")
    assert kept.returncode == 0, kept.stderr

    # The same task again: the kept memory answers, nobody is asked, the branches are told.
    again = myninja(myninja_home, "ask", TASK, "--json")
    assert again.returncode == 0, again.stderr
    events = events_of(again)
    assert not [e for e in events if e["type"] == "question"]
    used = [e for e in events if e["type"] == "memory_answered"]
    assert [(u["memory_id"], u["key"], u["question"]) for u in used] == [
        (proposed["memory_id"], TIME_ZONE, QUESTION)
    ]
    assert next(e for e in events if e["type"] == "plan")["memories"] == [proposed["memory_id"]]
    done = [e for e in events if e["type"] == "branch_done"]
    assert len(done) == 3 and {e["text"] for e in done} == {"Monday 10:00 Berlin time"}
    # The note for a person watching names no branch: the task itself was answered.
    err = io.StringIO()
    printer = EventPrinter(as_json=False, err=err)
    printer.progress = True
    printer.show(used[0])
    assert err.getvalue() == f"· the task answered from memory {used[0]['memory_id']}: " + (
        "time zone: Europe/Berlin\n"
    )


def test_an_answer_that_is_no_zone_is_asked_again_once(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH + '[memory]\nconfirm = "never"\n')
    asked = myninja(myninja_home, "ask", TASK, "--json")
    assert asked.returncode == 3, asked.stderr
    task = events_of(asked)[0]["task_id"]
    wrong = myninja(myninja_home, "answer", task, "Berlinx", "--json")
    assert wrong.returncode == 3, wrong.stderr
    retry = [e for e in events_of(wrong) if e["type"] == "question"]
    assert retry[-1]["text"] == f"'Berlinx' is not a time zone I know. {QUESTION}"
    assert retry[-1]["key"] == TIME_ZONE
    assert not [e for e in events_of(wrong) if e["type"] == "memory_proposed"]
    # A city is enough: it is kept as the zone it names.
    right = myninja(myninja_home, "answer", task, "berlin", "--json")
    assert right.returncode == 0, right.stderr
    events = events_of(right)
    assert events[-1]["answer"] == "Monday 10:00 Berlin time"
    proposed = [e for e in events if e["type"] == "memory_proposed"]
    assert [(p["text"], p["status"]) for p in proposed] == [("time zone: Europe/Berlin", "kept")]
    listed = myninja(myninja_home, "memory", "list", "--json")
    assert [json.loads(line)["answer"] for line in listed.stdout.splitlines()] == ["Europe/Berlin"]


@pytest.mark.parametrize(
    ("config", "tz", "told"),
    [
        ('[scheduler]\ntimezone = "Europe/Paris"\n', "UTC", "Paris"),
        ("", "Europe/Paris", "Paris"),
        ('[scheduler]\ntimezone = "Europe/Berlin"\n', "Europe/Paris", "Berlin"),  # config wins
        # The person's own (writable) calendar's zone, before a machine on UTC.
        (
            '[calendars.home]\nurl = "https://dav.example.org/ann/home/"\n'
            'timezone = "America/New_York"\n'
            '[calendars.work]\nurl = "https://dav.example.org/ann/work/"\n'
            'timezone = "Europe/Paris"\nwritable = true\n',
            "UTC",
            "Paris",
        ),
    ],
)
def test_the_config_or_the_machine_answers_without_a_question(
    myninja_home: Path, config: str, tz: str, told: str
) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH + config)
    done = myninja(myninja_home, "ask", TASK, "--json", tz=tz)
    assert done.returncode == 0, done.stderr
    events = events_of(done)
    assert not [e for e in events if e["type"] in ("question", "memory_answered")]
    assert events[-1]["answer"] == f"Monday 10:00 {told} time"


def test_a_question_the_task_and_the_zone_answer_is_dropped(myninja_home: Path) -> None:
    """Told the zone, the default model asked "What time should the weekly team meeting be
    held in Europe/Berlin?" of a task that gives the time: the branch answers instead."""
    rules = [
        {"match": r"Do not ask; that is for you", "reply": "Monday 10:00 Berlin time"},
        {
            "match": r"The person's time zone is Europe/Berlin\.",
            "reply": "ASK: What time should the weekly team meeting be held in Europe/Berlin?",
        },
    ]
    scripted_config(myninja_home, rules, graph=GRAPH + '[scheduler]\ntimezone = "Europe/Berlin"\n')
    done = myninja(myninja_home, "ask", TASK, "--json")
    assert done.returncode == 0, done.stderr
    events = events_of(done)
    assert not [e for e in events if e["type"] == "question"]
    assert events[-1]["answer"] == "Monday 10:00 Berlin time"


def test_other_agents_never_ask_it(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH)
    done = myninja(myninja_home, "ask", "@writer Draft the meeting note", "--json")
    assert done.returncode == 0, done.stderr
    events = events_of(done)
    assert not [e for e in events if e["type"] == "question"]
    assert events[-1]["answer"] == "Monday 10:00, zone unknown"


def test_a_bad_configured_zone_is_one_line(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph='[scheduler]\ntimezone = "Mars/Olympus"\n')
    done = myninja(myninja_home, "ask", TASK)
    assert done.returncode == 2
    assert "scheduler.timezone: 'Mars/Olympus' is not an IANA time zone" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_zones_as_people_write_them(tmp_path: Path) -> None:
    assert zone_from("Europe/Berlin") == "Europe/Berlin"
    assert zone_from("europe/berlin") == "Europe/Berlin"
    assert zone_from("Berlin") == "Europe/Berlin"
    assert zone_from("New York") == "America/New_York"
    assert zone_from("my time zone is Europe/Lisbon") == "Europe/Lisbon"
    assert zone_from("Berlinx") is None and zone_from("yes") is None and zone_from("") is None
    assert machine_zone({"TZ": "Europe/Paris"}) == "Europe/Paris"
    assert machine_zone({"TZ": ":Asia/Tokyo"}) == "Asia/Tokyo"
    # A machine on UTC is a server or a container more often than where its person lives.
    assert machine_zone({"TZ": "UTC"}) is None and machine_zone({"TZ": "Etc/UTC"}) is None
    assert machine_zone({"TZ": "/etc/nowhere"}) is None
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/America/Chicago")
    assert machine_zone({}, localtime=link) == "America/Chicago"
    utc = tmp_path / "utc"
    utc.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    assert machine_zone({}, localtime=utc) is None


@pytest.mark.parametrize(
    ("task", "zone"),
    [
        ("Book 30 minutes for me=cal:work (Europe/Berlin) and bob=b.ics", "Europe/Berlin"),
        ("an hour for me=/c/me.ics (Europe/London, me@x.org)", "Europe/London"),
        ("my calendar /c/me.ics in America/Chicago, and ann=a.ics", "America/Chicago"),
        ("my calendar at cal:work (Asia/Tokyo)", "Asia/Tokyo"),
        ("a slot for bob=b.ics (America/New_York) and me=/c/me.ics", None),  # bob's, not mine
        ("me=/c/me.ics (Mars/Olympus)", None),
        ("Find a time for Alice and me next week (Europe/Berlin is Alice's)", None),
    ],
)
def test_the_task_can_say_the_persons_zone(task: str, zone: str | None) -> None:
    assert zone_in_task(task) == zone


def test_the_task_says_the_zone_and_it_is_not_asked(myninja_home: Path) -> None:
    scripted_config(myninja_home, RULES, graph=GRAPH)
    task = TASK + " with me=cal:work (Europe/Paris)"
    done = myninja(myninja_home, "ask", task, "--json")
    # Past the needs, the calendar's reading asks its permission: the zone was not asked.
    (question,) = [e for e in events_of(done) if e["type"] == "question"]
    assert question["key"] == "permission:scheduler:network", done.stdout


def test_the_scheduler_prepares_with_the_persons_zone() -> None:
    task = "Find 30 minutes for me=/cal/me.ics and bob=/cal/bob.ics (America/New_York)"
    zones = {
        a.name: a.zone for a in meeting_request(task, date(2026, 3, 2), "Asia/Tokyo").attendees
    }
    assert zones == {"me": "Asia/Tokyo", "bob": "America/New_York"}
    # Unknown, "me" shares the zone written for another, as before.
    zones = {a.name: a.zone for a in meeting_request(task, date(2026, 3, 2)).attendees}
    assert zones == {"me": "America/New_York", "bob": "America/New_York"}
    bare = "Find 30 minutes for anna=/cal/anna.ics and ben=/cal/ben.ics"
    zones = {
        a.name: a.zone for a in meeting_request(bare, date(2026, 3, 2), "Asia/Tokyo").attendees
    }
    assert zones == {"anna": "Asia/Tokyo", "ben": "Asia/Tokyo"}
