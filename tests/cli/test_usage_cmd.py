"""`myninja usage` as a user runs it: tasks answered by a real OpenAI-compatible server on
127.0.0.1 that reports different token counts for each request, then the command's sums checked
against the tasks' `task_done` usage and its cost against the price table."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_myninja
from tests.local_http import serving
from tests.openai_stub import send_reply

INPUT_PER_MTOK, OUTPUT_PER_MTOK = 0.15, 0.60


class Counted(BaseHTTPRequestHandler):
    """Chat completions, streamed or not; request n reports 100 + 7n prompt tokens and 3 + n
    completion tokens, so that no two calls count alike."""

    counter = itertools.count(1)
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        with self.lock:
            n = next(self.counter)
        usage = {"prompt_tokens": 100 + 7 * n, "completion_tokens": 3 + n}
        send_reply(self, body, "Hello there.", usage, reply_id=f"c{n}")


@pytest.fixture
def gateway_home(myninja_home: Path) -> Iterator[Path]:
    with serving(Counted) as url:
        (myninja_home / "config.toml").write_text(
            f'[backends.gw]\ntype = "openai"\nurl = "{url}/v1"\nmodel = "gpt-4o-mini"\n'
            "max_retries = 0\n"
            '[prices."gpt-4o-mini"]\n'
            f"input_per_mtok = {INPUT_PER_MTOK}\noutput_per_mtok = {OUTPUT_PER_MTOK}\n"
        )
        yield myninja_home


def task_done_usage(task_id: str) -> dict[str, int]:
    shown = run_myninja("tasks", "show", task_id, "--json")
    assert shown.returncode == 0, shown.stderr
    (done,) = [e for e in json.loads(shown.stdout)["events"] if e["type"] == "task_done"]
    return done["usage"]


def usage_json(*args: str) -> dict[str, Any]:
    shown = run_myninja("usage", "--json", *args)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_usage_sums_the_tasks_and_prices_them(gateway_home: Path) -> None:
    task_ids = []
    for text in ("Say hello", "Say hello again", "Greet me once more"):
        asked = run_myninja("ask", "--agent", "assistant", "--backend", "gw", "--json", text)
        assert asked.returncode == 0, asked.stderr
        events = [json.loads(line) for line in asked.stdout.splitlines()]
        task_ids.append(events[0]["task_id"])
    prompt = completion = 0
    for task_id in task_ids:
        done = task_done_usage(task_id)
        prompt += done["prompt_tokens"]
        completion += done["completion_tokens"]
    assert prompt > 0 and completion > 0

    report = usage_json()
    total = report["total"]
    assert (total["prompt_tokens"], total["completion_tokens"]) == (prompt, completion)
    assert total["total_tokens"] == prompt + completion
    expected_cost = (prompt * INPUT_PER_MTOK + completion * OUTPUT_PER_MTOK) / 1e6
    assert total["cost"] == pytest.approx(expected_cost)
    assert [row["key"] for row in report["rows"]] == ["gpt-4o-mini"]

    by_agent = usage_json("--by", "agent")
    assert {row["key"] for row in by_agent["rows"]} == {"assistant"}
    by_backend = usage_json("--by", "backend", "--since", "7d")
    assert [(r["key"], r["total_tokens"]) for r in by_backend["rows"]] == [
        ("gw", prompt + completion)
    ]
    assert usage_json("--since", "2999-01-01")["total"]["calls"] == 0

    table = run_myninja("usage", "--by", "day")
    assert table.returncode == 0, table.stderr
    assert str(prompt + completion) in table.stdout and f"{expected_cost:.4f}" in table.stdout
    assert usage_json()["budget"] == {
        "daily": None,
        "per_task": None,
        "spent_today": pytest.approx(expected_cost),
        "left_today": None,
    }

    # With a daily budget, the report says what today's calls left of it.
    with (gateway_home / "config.toml").open("a") as config:
        config.write("\n[budget]\ndaily = 0.5\n")
    budget = usage_json("--since", "2999-01-01")["budget"]  # the budget counts all of today
    assert budget["spent_today"] == pytest.approx(expected_cost)
    assert budget["left_today"] == pytest.approx(0.5 - expected_cost)
    table = run_myninja("usage")
    assert f"daily budget 0.5000: spent {expected_cost:.4f} today" in table.stdout, table.stdout


def test_an_unpriced_model_is_named_and_its_cost_unknown(myninja_home: Path) -> None:
    with serving(Counted) as url:
        (myninja_home / "config.toml").write_text(
            f'[backends.gw]\ntype = "openai"\nurl = "{url}/v1"\nmodel = "house-model"\n'
            "max_retries = 0\n"
        )
        asked = run_myninja("ask", "--agent", "assistant", "--backend", "gw", "Say hello")
        assert asked.returncode == 0, asked.stderr
    report = usage_json()
    (row,) = report["rows"]
    assert row["key"] == "house-model" and row["cost"] is None and row["calls"] >= 1
    assert report["total"]["unpriced"] == ["gw/house-model"]
    table = run_myninja("usage")
    assert "no price for gw/house-model" in table.stdout


def test_a_bad_since_is_one_line(myninja_home: Path) -> None:
    bad = run_myninja("usage", "--since", "last week")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--since 'last week'" in bad.stderr


def test_a_bad_price_is_one_line(myninja_home: Path) -> None:
    (myninja_home / "config.toml").write_text(
        '[prices.gw]\ninput_per_mtok = -1\noutput_per_mtok = "a lot"\n'
    )
    bad = run_myninja("usage")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "prices" in bad.stderr and "Traceback" not in bad.stderr
