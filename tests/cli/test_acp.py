"""`myninja acp` as an editor drives it: a real subprocess talking JSON-RPC on its stdio, driven
by the agent-client-protocol SDK's own client side (ACP protocol version 1), on a scripted
backend and once on the tiny embedded model. Tasks run in the real background worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from acp import PROTOCOL_VERSION, RequestPermissionResponse, spawn_agent_process, text_block
from acp.schema import AllowedOutcome, ClientCapabilities, DeniedOutcome, Implementation

from myninja import paths
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.errors import MyninjaError
from tests.agent_graph.scripts import DIRECT, FENCE_RULES
from tests.conftest import (
    KNOWN_TIME_ZONE,
    REPO,
    TINY_MODEL,
    TINY_THREADS,
    myninja_cmd,
    run_myninja,
)

NOTE = "Otters hold hands while they sleep."
# The files skill reads a note (after asking), on top of the fence tasks (a question) and a
# slow one (to cancel).
OTTER_RULES = [
    {"match": rf"tool: .*{NOTE}", "reply": "They hold hands."},
    {"match": r"tool: .*did not allow", "reply": "I was not allowed to read it."},
    {
        "match": rf"otter.*Attempt 1\. {DIRECT}",
        "tool_calls": [{"name": "read_file", "arguments": {"path": "otters.txt"}}],
    },
]
TESTED_PROTOCOL_VERSION = 1  # the ACP version these tests speak (the SDK's PROTOCOL_VERSION)


class RecordingClient:
    """An editor: keeps every session update in order, answers permission requests with the
    options given, in turn ("cancelled" for none left)."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, Any]] = []
        self.permissions: list[Any] = []
        self.choices: list[str] = []
        self.heard = asyncio.Event()

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append((session_id, update))
        self.heard.set()

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any
    ) -> RequestPermissionResponse:
        self.permissions.append((tool_call, options))
        if not self.choices:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.choices.pop(0))
        )

    def of(self, session_id: str, start: int = 0) -> list[Any]:
        return [u for s, u in self.updates[start:] if s == session_id]


def kinds(updates: list[Any]) -> list[str]:
    return [u.session_update for u in updates]


def message(updates: list[Any]) -> str:
    return "".join(u.content.text for u in updates if u.session_update == "agent_message_chunk")


@asynccontextmanager
async def acp_agent(log: Path) -> AsyncIterator[tuple[Any, RecordingClient]]:
    client = RecordingClient()
    command = myninja_cmd("acp")
    with log.open("w") as stderr:
        async with spawn_agent_process(
            client,
            command[0],
            *command[1:],
            env=dict(os.environ),
            cwd=REPO,
            transport_kwargs={"stderr": stderr},
        ) as (conn, _process):
            init = await conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(),
                client_info=Implementation(name="pytest", version="1"),
            )
            assert init.protocol_version == TESTED_PROTOCOL_VERSION == PROTOCOL_VERSION
            assert init.agent_info is not None and init.agent_info.name == "myninja"
            yield conn, client


def listed_tasks() -> dict[str, dict[str, Any]]:
    done = run_myninja("tasks", "list", "--json")
    assert done.returncode == 0, done.stderr
    return {row["id"]: row for row in json.loads(done.stdout)}


def stop_worker() -> None:
    with contextlib.suppress(OSError, MyninjaError):
        asyncio.run(WorkerClient(paths.data_dir()).request("shutdown"))


def otter_home(myninja_home: Path, tmp_path: Path) -> None:
    """A scripted home: the fence task asks "Which colour?", the otter task asks to read a
    note (a permission) from a folder the files skill may read."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "otters.txt").write_text(NOTE + "\n")
    script = myninja_home / "script.json"
    script.write_text(json.dumps({"rules": OTTER_RULES + FENCE_RULES}))
    (myninja_home / "config.toml").write_text(
        "worker_idle_s = 30\n"
        f'[backends.embedded]\ntype = "scripted"\nscript = "{script}"\n'
        "[graph]\nbranches = 1\n"
        "[agents.coder]\ntools = true\n"
        f"[skills]\nallowed_dirs = [{json.dumps(str(notes))}]\n"
    )


@pytest.fixture
def acp_home(myninja_home: Path, tmp_path: Path) -> Iterator[Path]:
    otter_home(myninja_home, tmp_path)
    yield tmp_path
    stop_worker()


async def test_a_session_prompts_streams_asks_and_cancels(acp_home: Path) -> None:
    async with acp_agent(acp_home / "acp.log") as (conn, client):
        session = (await conn.new_session(cwd=str(acp_home), mcp_servers=[])).session_id

        # A prompt, answered: the plan, the branch as a tool call, then the answer.
        done = await conn.prompt(session_id=session, prompt=[text_block("Write a fence note")])
        assert done.stop_reason == "end_turn"
        first = client.of(session)
        order = kinds(first)
        assert "plan" in order and "tool_call" in order and "agent_message_chunk" in order
        assert order.index("plan") < order.index("tool_call") < order.index("agent_message_chunk")
        assert message(first) == "Fence painted"
        plans = [u for u in first if u.session_update == "plan"]
        assert [e.content for e in plans[0].entries] == ["Draft: Write the text."]
        assert plans[-1].entries[0].status == "completed"
        branch = next(u for u in first if u.session_update == "tool_call")
        assert branch.kind == "think" and branch.status == "in_progress"
        ends = [
            u
            for u in first
            if u.session_update == "tool_call_update" and u.tool_call_id == branch.tool_call_id
        ]
        assert any(u.status == "completed" for u in ends)
        assert any(u.title and "kept" in u.title for u in ends)

        # A question for the person: a message, and the next prompt answers it.
        seen = len(client.updates)
        asked = await conn.prompt(session_id=session, prompt=[text_block("Paint the fence")])
        assert asked.stop_reason == "end_turn"
        assert "Which colour?" in message(client.of(session, seen))
        seen = len(client.updates)
        answered = await conn.prompt(session_id=session, prompt=[text_block("blue")])
        assert answered.stop_reason == "end_turn"
        assert message(client.of(session, seen)) == "Painted it blue"

        # A permission question: session/request_permission, allowed then denied.
        client.choices = ["allow once", "deny"]
        seen = len(client.updates)
        allowed = await conn.prompt(
            session_id=session, prompt=[text_block("@coder What do my otter notes say?")]
        )
        assert allowed.stop_reason == "end_turn"
        tool_call, options = client.permissions[0]
        assert tool_call.title == (
            "Allow the files skill to read your files? (its tool read_file asks)"
        )
        assert [o.kind for o in options] == ["allow_once", "allow_always", "reject_once"]
        after = client.of(session, seen)
        assert message(after) == "They hold hands."
        read = [u for u in after if u.session_update == "tool_call" and u.kind == "read"]
        assert read and read[0].raw_input == {"path": "otters.txt"}
        seen = len(client.updates)
        denied = await conn.prompt(
            session_id=session, prompt=[text_block("@coder Otter notes again?")]
        )
        assert denied.stop_reason == "end_turn" and len(client.permissions) == 2
        assert message(client.of(session, seen)) == "I was not allowed to read it."
        # The editor's own cancel of a permission request (none left) cancels the task.
        dismissed = await conn.prompt(
            session_id=session, prompt=[text_block("@coder Otter notes, once more?")]
        )
        assert dismissed.stop_reason == "cancelled" and len(client.permissions) == 3

        # Cancel: the turn ends "cancelled", and so does the task.
        seen = len(client.updates)
        slow = asyncio.create_task(
            conn.prompt(session_id=session, prompt=[text_block("Slow task")])
        )
        while not any(u.session_update == "tool_call" for u in client.of(session, seen)):
            client.heard.clear()
            await asyncio.wait_for(client.heard.wait(), 30)
        await conn.cancel(session_id=session)
        assert (await asyncio.wait_for(slow, 30)).stop_reason == "cancelled"

    # Every prompt's task is an ordinary task: in `tasks list`, as it ended.
    rows = sorted(listed_tasks().values(), key=lambda r: r["created_at"])
    assert [(r["text"], r["status"]) for r in rows] == [
        ("Write a fence note", "done"),
        ("Paint the fence", "done"),
        ("What do my otter notes say?", "done"),
        ("Otter notes again?", "done"),
        ("Otter notes, once more?", "cancelled"),
        ("Slow task", "cancelled"),
    ]
    assert [r["agent"] for r in rows[2:4]] == ["coder", "coder"]


async def test_a_worker_gone_between_prompts_is_started_again(acp_home: Path) -> None:
    async with acp_agent(acp_home / "acp.log") as (conn, client):
        session = (await conn.new_session(cwd=str(acp_home), mcp_servers=[])).session_id
        await conn.prompt(session_id=session, prompt=[text_block("Paint the fence")])
        # The worker exits, as an idle one does while the person thinks.
        worker = WorkerClient(paths.data_dir())
        await worker.request("shutdown")
        for _ in range(300):
            if not await worker.alive():
                break
            await asyncio.sleep(0.1)
        answered = await conn.prompt(session_id=session, prompt=[text_block("blue")])
        assert answered.stop_reason == "end_turn"
        assert message(client.of(session)).endswith("Painted it blue")


async def test_an_unknown_session_is_a_one_line_error(acp_home: Path) -> None:
    from acp import RequestError

    async with acp_agent(acp_home / "acp.log") as (conn, _client):
        with pytest.raises(RequestError) as raised:
            await conn.prompt(session_id="s_nope", prompt=[text_block("hello")])
        assert "no session 's_nope'" in json.dumps(raised.value.data)


def test_a_broken_config_is_one_line_before_any_protocol(myninja_home: Path) -> None:
    (myninja_home / "config.toml").write_text("worker_idle_s = 'soon'\n")
    done = run_myninja("acp", input="")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "worker_idle_s" in done.stderr


@pytest.fixture
def tiny_home(
    myninja_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    (myninja_home / "config.toml").write_text("worker_idle_s = 30\n")
    monkeypatch.setenv("MYNINJA_BACKENDS__EMBEDDED__MODEL", TINY_MODEL)
    monkeypatch.setenv("MYNINJA_BACKENDS__EMBEDDED__THREADS", str(TINY_THREADS))
    monkeypatch.setenv("MYNINJA_AGENTS__ASSISTANT__MAX_TOKENS", "24")
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    for name, value in KNOWN_TIME_ZONE.items():
        monkeypatch.setenv(name, value)
    yield tmp_path
    stop_worker()


async def test_a_prompt_is_answered_on_the_tiny_model(
    tiny_home: Path, tiny_model_path: Path
) -> None:
    async with acp_agent(tiny_home / "acp.log") as (conn, client):
        session = (await conn.new_session(cwd=str(tiny_home), mcp_servers=[])).session_id
        done = await conn.prompt(
            session_id=session, prompt=[text_block("What is the capital of France?")]
        )
        assert done.stop_reason == "end_turn"
        updates = client.of(session)
        order = kinds(updates)
        assert order[0] == "agent_thought_chunk"  # routed
        assert order.index("plan") < order.index("agent_message_chunk")
        assert message(updates).strip()
    (row,) = listed_tasks().values()
    assert row["status"] == "done" and row["text"] == "What is the capital of France?"
