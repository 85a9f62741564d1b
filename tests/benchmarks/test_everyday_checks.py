"""The checks of benchmarks/data/everyday.jsonl: for every task a hand-written correct answer
passes and a hand-written wrong one fails. No model is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import everyday_checks
from benchmarks.everyday import report
from benchmarks.everyday_checks import check, numbers

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "benchmarks" / "data" / "everyday.jsonl"


TASKS = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]

# task id -> (a correct answer, a wrong answer), written by hand.
ANSWERS: dict[str, tuple[str, str]] = {
    "fact-01": ("The capital of Australia is Canberra.", "Sydney is the capital of Australia."),
    "fact-02": ("Pride and Prejudice was written by Jane Austen (1813).", "Charlotte Brontë."),
    "fact-03": ("Gold's chemical symbol is **Au**, from the Latin *aurum*.", "It is Ag."),
    "fact-04": ("Jupiter is the largest planet in the solar system.", "Saturn is the largest."),
    "fact-05": ("Apollo 11 landed on 20 July 1969.", "People first walked on the Moon in 1968."),
    "fact-06": ("An adult human skeleton has 206 bones.", "Adults have about 300 bones."),
    "arith-01": ("17 × 24 = 408", "17 × 24 = 418"),
    "arith-02": ("15% of 240 is 36.", "15% of 240 is 24."),
    "arith-03": ("The square root of 729 is 27, since 27 × 27 = 729.", "It is 29."),
    "arith-04": ("7! = 7 × 6 × 5 × 4 × 3 × 2 × 1 = 5,040", "7! = 720"),
    "arith-05": (
        "35% of $80 is $28, so the sale price is $52.00.",
        "The discount is $28, so you pay $28.",
    ),
    "arith-06": ("(12 + 18 + 27) / 3 = 57 / 3 = 19", "The average is 18."),
    "conv-01": ("26.2 miles is about 42.2 km.", "26.2 miles is 16.3 km."),
    "conv-02": ("100 °F is about 37.8 °C.", "100 °F is 212 °C."),
    "conv-03": ("One kilogram is about 2.2 pounds (2.2046 lb).", "One kilogram is 1000 grams."),
    "conv-04": ("5 ft 10 in = 70 inches = 177.8 cm, so about 178 cm.", "About 160 cm."),
    "conv-05": ("A day has 24 × 60 × 60 = 86,400 seconds.", "A day has 3,600 seconds."),
    "conv-06": ("60 mph is about 96.6 km/h.", "60 mph is 37.3 km/h."),
    "def-01": (
        "Photosynthesis is the process by which plants use sunlight, water and carbon dioxide "
        "to make glucose and release oxygen.",
        "Photosynthesis is how animals digest their food.",
    ),
    "def-02": (
        "A prime number is a whole number greater than 1 that is divisible only by 1 and itself.",
        "A prime number is any odd number.",
    ),
    "def-03": (
        "An API (application programming interface) is a defined way for one program to "
        "request data or services from another.",
        "An API is a kind of database.",
    ),
    "def-04": (
        "Inflation is the general rise in prices over time, which lowers what money can buy.",
        "Inflation is when prices fall across the economy.",
    ),
    "def-05": (
        "A black hole is a region of space where gravity is so strong that nothing, not even "
        "light, can escape.",
        "A black hole is a dark cloud of dust between stars.",
    ),
    "def-06": (
        "A haiku is a short Japanese poem of three lines with 5, 7 and 5 syllables.",
        "A haiku is a traditional Japanese sword.",
    ),
    "code-01": ("```python\nr = s[::-1]\n```", "```python\nr = s.reverse()\n```"),
    "code-02": (
        "```python\ndef is_even(n):\n    return n % 2 == 0\n```",
        "```python\ndef is_even(n):\n    return n % 2 == 1\n```",
    ),
    "code-03": (
        "Here it is:\n\n```python\ntotal = sum(x**2 for x in nums)\n```\n",
        "```python\ntotal = sum(nums) ** 2\n```",
    ),
    "code-04": (
        "```python\ndef count_vowels(text):\n    return sum(c in 'aeiouAEIOU' for c in text)\n```",
        "```python\ndef count_vowels(text):\n    return sum(c in 'aeiou' for c in text)\n```",
    ),
    "code-05": (
        "```python\nunique = list(dict.fromkeys(items))\n```",
        "```python\nunique = list(set(items))\n```",
    ),
    "code-06": (
        "```python\ndef fizzbuzz(n):\n    if n % 15 == 0:\n        return 'FizzBuzz'\n"
        "    if n % 3 == 0:\n        return 'Fizz'\n    if n % 5 == 0:\n        return 'Buzz'\n"
        "    return str(n)\n```",
        "```python\ndef fizzbuzz(n):\n    if n % 3 == 0:\n        return 'Fizz'\n"
        "    if n % 5 == 0:\n        return 'Buzz'\n    if n % 15 == 0:\n"
        "        return 'FizzBuzz'\n    return str(n)\n```",
    ),
    "email-01": (
        "Hi Priya,\n\nMy train is delayed, so I'll be about 15 minutes late to our 10:00 meeting "
        "on Tuesday. Sorry for the trouble; please start without me.\n\nBest,\nAlex",
        "Hi Priya, see you at the meeting.",
    ),
    "email-02": (
        "Hi Marco, thank you so much for dinner on Saturday! The lasagne was delicious, and it "
        "was lovely to spend the evening with you.",
        "Hi Marco, are you free for dinner next week? Let me know what suits you.",
    ),
    "email-03": (
        "Dear Mr. Okafor,\n\nThe kitchen tap in flat 4B is leaking. Could you please send a "
        "plumber this week to fix it? Thank you.\n\nKind regards,\nJo",
        "Dear Mr. Okafor, the heating in my flat is not working. Please fix it soon.",
    ),
    "email-04": (
        "Hi team,\n\nThe office will be closed on Friday 3 May for electrical maintenance. "
        "Please work from home that day. Thanks!",
        "Hi team, the office will be closed next week. Enjoy!",
    ),
    "email-05": (
        "Hi Sam, thanks for the invite! Unfortunately I can't make Saturday's hike because it's "
        "my sister's wedding that day. Could we go another weekend instead?",
        "Hi Sam, sounds great, count me in for Saturday's hike!",
    ),
    "email-06": (
        "Hi Helen, I'm away from 12 to 19 August. Could you water my plants while I'm gone? The "
        "spare key is under the blue pot by the door. Thank you so much!",
        "Hi Helen, could you water my plants while I'm away? Thanks!",
    ),
    "advice-01": (
        "1. Keep the same bedtime every night. 2. Put your phone away an hour before bed. "
        "3. Keep the bedroom cool and dark.",
        "Eat a large meal and watch a thriller right before bed.",
    ),
    "advice-02": (
        "Blot it at once with a paper towel, rinse from the back with cold water, then cover it "
        "with salt or baking soda before washing.",
        "Just iron it and it will disappear.",
    ),
    "advice-03": (
        "Restart it, close programs you are not using, remove startup apps, free up disk space "
        "and run a malware scan.",
        "Buy a bigger monitor and a new keyboard.",
    ),
    "advice-04": (
        'Repeat their name right away ("Nice to meet you, Maya") and associate it with '
        "something you know.",
        "Don't worry about it; just ask them again later.",
    ),
    "advice-05": (
        "Make it long (at least 14 characters), and use a unique one for every account, "
        "stored in a password manager.",
        "Use your birthday so it is easy to remember.",
    ),
    "advice-06": (
        "Plasters and bandages, gauze, antiseptic wipes, tape, scissors, tweezers and painkillers.",
        "A torch and some snacks.",
    ),
    "date-01": ("1 January 2000 was a Saturday.", "It was a Friday."),
    "date-02": ("February 2024 has 29 days, because 2024 is a leap year.", "It has 28 days."),
    "date-03": (
        "No. 2100 is divisible by 100 but not by 400, so it is not a leap year.",
        "Yes, 2100 is a leap year because it is divisible by 4.",
    ),
    "date-04": ("25 December 2023 was a Monday.", "It was a Sunday."),
    "date-05": (
        "20 February 2024 is 41 days after 10 January 2024 (21 days left in January + 20).",
        "It is 40 days later.",
    ),
    "date-06": ("The next day is 1 March 2023.", "The next day is 29 February 2023."),
}


def test_every_task_has_answers() -> None:
    missing = [t["id"] for t in TASKS if t["id"] not in ANSWERS]
    assert not missing, f"no hand-written answers for {missing}"
    assert not set(ANSWERS) - {t["id"] for t in TASKS}, "answers for tasks that do not exist"


def test_data_shape() -> None:
    kinds = {"fact", "arithmetic", "conversion", "definition", "code", "email", "advice", "date"}
    assert len(TASKS) >= 44
    assert len({t["id"] for t in TASKS}) == len(TASKS)
    for task in TASKS:
        assert task["kind"] in kinds
        assert task["needs_question"] is False
        assert task["text"].strip() and task["check"]
    assert {t["kind"] for t in TASKS} == kinds


@pytest.mark.parametrize("task", TASKS, ids=[t["id"] for t in TASKS])
def test_correct_answer_passes(task: dict) -> None:
    if task["id"] not in ANSWERS:
        pytest.fail(f"no hand-written answers for {task['id']}")
    assert check(ANSWERS[task["id"]][0], task["check"])


@pytest.mark.parametrize("task", TASKS, ids=[t["id"] for t in TASKS])
def test_wrong_answer_fails(task: dict) -> None:
    if task["id"] not in ANSWERS:
        pytest.fail(f"no hand-written answers for {task['id']}")
    assert not check(ANSWERS[task["id"]][1], task["check"])


def test_routing_data() -> None:
    rows = [
        json.loads(line)
        for line in (ROOT / "benchmarks" / "data" / "routing.jsonl").read_text().splitlines()
        if line.strip()
    ]
    labels = {"fast", "researcher", "coder", "advisor", "scheduler", "writer"}
    assert len(rows) >= 66
    assert all(r["label"] in labels and r["text"].strip() for r in rows)
    for label in labels:
        assert sum(r["label"] == label for r in rows) >= 8
    assert len({r["text"] for r in rows}) == len(rows)
    assert not {r["text"] for r in rows} & {t["text"] for t in TASKS}


def test_numbers() -> None:
    assert numbers("It is 5,040 or 210.0, not −3; 12, 18 and 27") == [
        5040.0,
        210.0,
        -3.0,
        12.0,
        18.0,
        27.0,
    ]
    assert check("210.0", {"number": 210, "tol": 0})
    assert not check("CO2 is 44 g/mol", {"number": 2})


@pytest.mark.parametrize(
    "answer",
    [
        "s[::-1]",
        "Use `r = s[::-1]`.",
        "```python\ns = 'hello world'\nr = s[::-1]\nprint(r)\n```",
        "```python\nprint(s[::-1])\n```",
        "```\nr = ''.join(reversed(s))\n```\nThat reverses it.",
    ],
)
def test_python_check_is_lenient_with_correct_forms(answer: str) -> None:
    spec = {"python": {"setup": "s = 'stressed'", "expr": "r", "expect": "'desserts'"}}
    assert check(answer, spec)


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "I cannot do that.",
        "```python\nr = s\n```",
        "```python\nimport sys\nsys.exit(0)\n```",
        "```python\nwhile True:\n    pass\n```",
    ],
)
def test_python_check_rejects(answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(everyday_checks, "PYTHON_TIMEOUT_S", 2)
    spec = {"python": {"setup": "s = 'stressed'", "expr": "r", "expect": "'desserts'"}}
    assert not check(answer, spec)


def test_report_from_rows() -> None:
    def row(mode: str, kind: str, correct: bool, wall: float, **extra) -> dict:
        base = {"id": kind, "kind": kind, "text": "t", "mode": mode, "answer": "a"}
        return base | {"correct": correct, "wall_s": wall, "first_token_s": wall / 4} | extra

    ours = {"replans": 1, "questions": 0, "exit_code": 0, "dangling_citation": False}
    rows = [
        row("ours", "fact", True, 4.0, routed={"agent": "assistant", "path": "fast"}, **ours),
        row("plain", "fact", True, 2.0),
        row("ours", "code", False, 8.0, routed={"agent": "coder"}, **ours | {"exit_code": 3}),
        row("plain", "code", False, 2.0),
    ]
    summary = report(rows, "m", 2, Path("d.jsonl"))
    assert summary["ours"]["correct"] == summary["plain"]["correct"] == 1
    assert summary["ours"]["paths"] == {"fast/assistant": 1, "coder": 1}
    assert summary["ours"]["exit_codes"] == {"0": 1, "3": 1}
    assert summary["ratios"]["median_wall"] == 3.0
    assert summary["targets"] == {
        "correct_at_least_plain": True,
        "median_wall_at_most_2x": False,
        "no_questions": True,
        "no_exit_3": False,
        "no_dangling_citations": True,
    }
    assert summary["per_kind"]["code"] == {"tasks": 1, "ours": 0, "plain": 0}
    # Each path beside the plain call on its own tasks: the fact, not the code task's 2 s.
    assert summary["per_path"]["fast/assistant"] == {
        "tasks": 1,
        "ours_correct": 1,
        "plain_correct": 1,
        "ours_median_wall_s": 4.0,
        "plain_median_wall_s": 2.0,
    }
    assert summary["per_path"]["coder"]["ours_median_wall_s"] == 8.0
