"""Skills' tools called by agents in the graph, behind the permission gate: the built-in files
skill and a real stdio MCP server, on a scripted backend with a real TaskManager."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from myninja import paths
from myninja.agent_graph.tasks.manager import TaskManager
from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.config import Config
from myninja.errors import UsageError
from tests.agent_graph.scripts import DIRECT, PLAN_ONE_STEP, branch, judge
from tests.agent_graph.test_graph import Open, of_type, run_to_rest
from tests.skills.test_mcp_bridge import SERVER

NOTE = "Otters hold hands while they sleep."
READ = {"match": rf"Attempt 1\. {DIRECT}", "tool_calls": [
    {"name": "read_file", "arguments": {"path": "otters.txt"}}
]}  # fmt: skip
AFTER_READ = {"match": rf"tool: .*{NOTE}", "reply": "They hold hands."}
AFTER_REFUSAL = {"match": r"tool: .*did not allow", "reply": "I was not allowed to read it."}
RULES = [PLAN_ONE_STEP, judge("They hold hands", 9), AFTER_READ, AFTER_REFUSAL, READ]


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "otters.txt").write_text(NOTE + "\n")
    return folder


@pytest.fixture
def open_skills(tmp_path: Path) -> Open:
    @asynccontextmanager
    async def opener(
        rules: list[dict[str, Any]], **config: Any
    ) -> AsyncIterator[tuple[TaskManager, ScriptedBackend]]:
        scripted = ScriptedBackend("embedded", [Rule(**r) for r in rules])
        # The scripted backend stands in for the embedded one, which is offered no tools
        # unless an agent says so.
        agents = {name: {"tools": True} for name in ("coder", "advisor")}
        settings = Config.model_validate({"graph": {"branches": 1}, "agents": agents, **config})
        async with TaskManager.open(
            settings, tmp_path / "data", backends={"embedded": scripted}
        ) as manager:
            yield manager, scripted

    return opener


async def test_a_tool_needing_a_permission_asks_first_and_runs_once_allowed(
    open_skills: Open, notes: Path
) -> None:
    skills = {"allowed_dirs": [str(notes)]}
    async with open_skills(RULES, skills=skills) as (manager, scripted):
        task_id = await manager.submit("@coder What do my otter notes say?")
        assert (await run_to_rest(manager, task_id))["status"] == "waiting"
        (question,) = manager.store.questions(task_id)
        assert (
            question["text"]
            == "Allow the files skill to read your files? (its tool read_file asks)"
        )
        assert question["choices"] == ["allow once", "always allow", "deny"]
        assert not [r for r in of_type(manager, task_id, "tool_result") if r["name"] != "ask_user"]
        await manager.answer(task_id, None, "allow once")
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "They hold hands."
        (read,) = [r for r in of_type(manager, task_id, "tool_result") if r["name"] == "read_file"]
        assert NOTE in read["result"] and read["error"] is None
        offered = [c.tools for c in scripted.calls if c.tools]
        names = {t["function"]["name"] for t in offered[0]}
        assert {"read_file", "search_files", "run_tests", "ask_user"} <= names
    # "Allow once" is not written anywhere.
    assert not paths.config_file().exists()


async def test_allow_given_with_the_task_asks_nothing(open_skills: Open, notes: Path) -> None:
    async with open_skills(RULES, skills={"allowed_dirs": [str(notes)]}) as (manager, _):
        task_id = await manager.submit("@coder Otter notes?", allow=["read_files"])
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "They hold hands."
        assert manager.store.questions(task_id) == []
        with pytest.raises(UsageError, match="unknown permission 'root'"):
            await manager.submit("@coder x", allow=["root"])


async def test_always_is_kept_in_the_config_and_not_asked_again(
    open_skills: Open, notes: Path
) -> None:
    async with open_skills(RULES, skills={"allowed_dirs": [str(notes)]}) as (manager, _):
        first = await manager.submit("@coder Otter notes?")
        await run_to_rest(manager, first)
        await manager.answer(first, None, "always allow")
        assert (await run_to_rest(manager, first))["status"] == "done"
        second = await manager.submit("@coder Otter notes again?")
        assert (await run_to_rest(manager, second))["status"] == "done"
        assert manager.store.questions(second) == []
    written = tomllib.loads(paths.config_file().read_text())
    assert written["skills"]["grants"] == {"files": ["read_files"]}


async def test_a_denied_tool_tells_the_model_and_runs_nothing(
    open_skills: Open, notes: Path
) -> None:
    async with open_skills(RULES, skills={"allowed_dirs": [str(notes)]}) as (manager, _):
        task_id = await manager.submit("@coder Otter notes?")
        await run_to_rest(manager, task_id)
        await manager.answer(task_id, None, "no")
        task = await run_to_rest(manager, task_id)
        assert task["answer"] == "I was not allowed to read it."
        (result,) = [
            r for r in of_type(manager, task_id, "tool_result") if r["name"] == "read_file"
        ]
        assert result["error"] == "the person did not allow the files skill to do that"


async def test_without_an_allowed_folder_the_files_tools_are_not_offered(
    open_skills: Open,
) -> None:
    rules = [PLAN_ONE_STEP, branch(DIRECT, "Nothing to read.")]
    async with open_skills(rules) as (manager, scripted):
        task = await run_to_rest(manager, await manager.submit("@coder Otter notes?"))
        assert task["answer"] == "Nothing to read."
        offered = {t["function"]["name"] for c in scripted.calls for t in c.tools or ()}
        assert "run_python" in offered and not offered & {"read_file", "search_files"}


async def test_an_mcp_servers_tool_is_called_like_any_other(
    open_skills: Open, tmp_path: Path
) -> None:
    script = tmp_path / "notes_server.py"
    script.write_text(SERVER)
    mcp = {"calc": {"command": sys.executable, "args": [str(script)], "agents": ["advisor"]}}
    rules = [
        PLAN_ONE_STEP,
        judge("It is 42", 9),
        {"match": r"tool: 42", "reply": "It is 42."},
        {"match": rf"Attempt 1\. {DIRECT}", "tool_calls": [
            {"name": "add", "arguments": {"a": 40, "b": 2}}
        ]},
    ]  # fmt: skip
    async with open_skills(rules, mcp=mcp) as (manager, scripted):
        task_id = await manager.submit("@advisor What is 40 + 2?", allow=["run_code"])
        task = await run_to_rest(manager, task_id)
        assert task["status"] == "done" and task["answer"] == "It is 42."
        assert manager.skills.sources["calc"] == "mcp:calc"
        offered = next(c.tools for c in scripted.calls if c.tools)
        assert {"add", "whoami", "fail"} <= {t["function"]["name"] for t in offered}
