"""`myninja ask` end to end: the event stream on the tiny model, and the exit codes."""

from __future__ import annotations

import json

import pytest

from myninja.agent_graph.events import FIELDS
from tests.conftest import KNOWN_TIME_ZONE, TINY_MODEL, TINY_THREADS, run_myninja
from tests.local_http import free_port

TINY = {
    "MYNINJA_BACKENDS__EMBEDDED__MODEL": TINY_MODEL,
    "MYNINJA_BACKENDS__EMBEDDED__THREADS": str(TINY_THREADS),
}


@pytest.mark.slow
def test_ask_json_runs_the_whole_graph_on_the_tiny_model() -> None:
    """Route, plan, two branches, judge, select and finalize, all on the real tiny model."""
    env = {**TINY, "MYNINJA_GRAPH__BRANCHES": "2", "MYNINJA_GRAPH__MAX_STEPS": "1"}
    env |= {"MYNINJA_GRAPH__ADAPTIVE": "false", "MYNINJA_GRAPH__JUDGE": "each"}
    env |= {
        f"MYNINJA_AGENTS__{a}__MAX_TOKENS": "24"
        for a in ("ADVISOR", "WRITER", "CODER", "RESEARCHER", "SCHEDULER")
    }
    env |= KNOWN_TIME_ZONE
    # A task no rule routes: the router model decides (the tiny model may pick any agent).
    done = run_myninja("ask", "Name one colour and say nothing else.", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every line is JSON
    durable = [e for e in events if e["type"] != "token"]
    types = [e["type"] for e in durable]
    assert types[0] == "task_started" and types[-1] == "task_done"
    for kind in ("routed", "plan", "branch_started", "branch_done", "evaluation", "selected"):
        assert kind in types, kind
    assert [e["seq"] for e in durable] == list(range(1, len(durable) + 1))
    assert len({e["task_id"] for e in events}) == 1
    for event in events:
        assert event["v"] == 1
        assert set(FIELDS[event["type"]]) <= set(event)
    tokens = [e for e in events if e["type"] == "token"]
    assert tokens and all(e["seq"] == 0 and e["branch_id"] for e in tokens)
    (selected,) = [e for e in durable if e["type"] == "selected"]
    kept = next(
        e for e in durable if e["type"] == "branch_done" and e["branch_id"] == selected["branch_id"]
    )
    assert durable[-1]["answer"] == kept["text"] != ""
    assert durable[-1]["usage"]["completion_tokens"] > 0


def test_ask_json_takes_the_fast_path_on_the_tiny_model() -> None:
    """A short question: one call on the real tiny model, no plan call, no branches, no judge."""
    env = {**TINY, "MYNINJA_AGENTS__ASSISTANT__MAX_TOKENS": "24"}
    done = run_myninja("ask", "What is the capital of France?", "--json", env=env)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    durable = [e for e in events if e["type"] != "token"]
    assert [e["type"] for e in durable] == [
        "task_started", "routed", "plan", "branch_started", "branch_done", "answer", "task_done",
    ]  # fmt: skip
    routed = durable[1]
    assert (routed["agent"], routed["path"], routed["reason"]) == (
        "assistant",
        "fast",
        "a short question",
    )
    tokens = [e for e in events if e["type"] == "token"]
    assert tokens and {e["branch_id"] for e in tokens} == {"fast"}
    assert durable[-1]["answer"] == durable[4]["text"] != ""
    assert durable[-1]["kept"] == ["fast"]


@pytest.mark.slow
def test_ask_plain_streams_text_and_reads_stdin() -> None:
    done = run_myninja(
        "ask", "-", env={**TINY, "MYNINJA_AGENTS__ADVISOR__MAX_TOKENS": "12"}, input="Say hello."
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() != ""
    assert not done.stdout.lstrip().startswith("{")


def test_unreachable_backend_exits_4_with_one_line(myninja_home) -> None:  # type: ignore[no-untyped-def]
    (myninja_home / "config.toml").write_text(
        f'[backends.gw]\ntype = "openai"\nurl = "http://127.0.0.1:{free_port()}/v1"\n'
        'model = "m"\nmax_retries = 1\n'
    )
    plain = run_myninja("ask", "hello", "--backend", "gw")
    assert plain.returncode == 4
    assert len(plain.stderr.strip().splitlines()) == 1
    assert "cannot connect" in plain.stderr and "Traceback" not in plain.stderr
    as_json = run_myninja("ask", "hello", "--backend", "gw", "--json")
    assert as_json.returncode == 4
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert events[-1]["type"] == "task_failed"
    assert events[-1]["exit_code"] == 4
    assert events[-1]["error_type"] == "BackendUnreachable"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ask", "hi", "--agent", "chef"], "chef"),
        (["ask", "hi", "--frobnicate"], "--frobnicate"),
        (["ask", "hi", "--backend", "nowhere"], "unknown backend 'nowhere'"),
        (["ask", "   "], "the task is empty"),
        (["ask", "hi", "--model", "gpt-17"], "unknown model 'gpt-17'"),
    ],
)
def test_user_mistakes_print_one_clear_line(args: list[str], expected: str) -> None:
    done = run_myninja(*args, env=TINY)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_debug_flag_shows_the_traceback() -> None:
    done = run_myninja("--debug", "ask", "hi", "--backend", "nowhere")
    assert done.returncode == 2
    assert "Traceback" in done.stderr


@pytest.mark.parametrize(
    ("agent", "backend", "model", "preloaded"),
    [
        (None, None, None, [("embedded", None)]),  # the fast path's model
        ("coder", None, "tiny", [("embedded", "tiny")]),
        (None, "gw", None, []),  # a gateway has nothing to load
        (None, "nowhere", None, []),  # an unknown backend is the task's to report
    ],
)
def test_ask_starts_loading_the_first_model_at_once(
    monkeypatch: pytest.MonkeyPatch,
    agent: str | None,
    backend: str | None,
    model: str | None,
    preloaded: list[tuple[str, str | None]],
) -> None:
    from myninja.backends.embedded import EmbeddedBackend
    from myninja.config import Config
    from myninja.ninja_tui.cli.ask import preload_model

    started: list[tuple[str, str | None]] = []
    monkeypatch.setattr(
        EmbeddedBackend, "preload", lambda self, name=None: started.append((self.name, name))
    )
    config = Config.model_validate(
        {
            "backends": {
                "embedded": {"type": "embedded"},
                "gw": {"type": "openai", "url": "http://127.0.0.1:9/v1"},
            }
        }
    )
    preload_model(config, agent, backend, model)
    assert started == preloaded
