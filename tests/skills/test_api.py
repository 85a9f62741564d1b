"""The skill contract: schemas from type hints, calling tools, and what a bad definition says."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from myninja.skills.api import (
    Permission,
    PermissionNeeded,
    PersonaSpec,
    Skill,
    SkillError,
    Tool,
    ToolArgumentError,
    ToolContext,
    ToolError,
    tool,
)
from myninja.skills.tool_schema import parse_docstring


class Attendee(BaseModel):
    email: str
    optional: bool = False


@tool
def invite(
    title: Annotated[str, Field(description="What the meeting is about")],
    attendees: list[Attendee],
    ctx: ToolContext,
    tags: list[str] | None = None,
    length: Literal["short", "long"] = "short",
    note: str | None = None,
) -> dict[str, object]:
    """Draft an invitation.

    Nothing is sent.

    Args:
        title: overridden by the Annotated description
        attendees: Who is invited.
        tags: Labels for the invite,
            on as many lines as it takes.
    """
    return {
        "title": title,
        "first": attendees[0].email,  # a model instance, not a dict
        "tags": tags,
        "length": length,
        "task": ctx.task_id,
    }


def context(**kwargs: object) -> ToolContext:
    return ToolContext(task_id="t1", **kwargs)  # type: ignore[arg-type]


def test_schema_comes_from_the_hints_and_the_docstring() -> None:
    params = invite.parameters
    assert params["type"] == "object"
    assert params["additionalProperties"] is False
    props = params["properties"]
    assert list(props) == ["title", "attendees", "tags", "length", "note"]  # no ctx
    assert params["required"] == ["title", "attendees"]
    assert props["title"] == {"type": "string", "description": "What the meeting is about"}
    assert props["attendees"]["description"] == "Who is invited."
    assert props["attendees"]["items"] == {"$ref": "#/$defs/Attendee"}
    assert params["$defs"]["Attendee"]["required"] == ["email"]
    assert props["tags"]["description"] == "Labels for the invite, on as many lines as it takes."
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    assert props["tags"]["default"] is None
    assert props["length"] == {"enum": ["short", "long"], "type": "string", "default": "short"}
    assert {"type": "null"} in props["note"]["anyOf"]
    assert "title" not in params and "title" not in props["title"]
    assert invite.description == "Draft an invitation.\n\nNothing is sent."


def test_the_schema_is_a_valid_json_schema_that_accepts_a_good_call() -> None:
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(invite.parameters)
    jsonschema.validate({"title": "x", "attendees": [{"email": "a@b"}]}, invite.parameters)


def test_to_openai_is_the_function_tools_format() -> None:
    assert invite.to_openai() == {
        "type": "function",
        "function": {
            "name": "invite",
            "description": invite.description,
            "parameters": invite.parameters,
        },
    }


async def test_call_validates_injects_the_context_and_answers_json() -> None:
    out = await invite.call(
        {"title": "Plan", "attendees": [{"email": "a@example.org"}], "tags": ["q3"]}, context()
    )
    assert json.loads(out) == {
        "title": "Plan",
        "first": "a@example.org",
        "tags": ["q3"],
        "length": "short",
        "task": "t1",
    }


async def test_arguments_may_be_the_json_text_a_model_sent() -> None:
    out = await invite.call('{"title": "x", "attendees": [{"email": "b@c"}]}', context())
    assert json.loads(out)["first"] == "b@c"


async def test_a_failing_function_is_one_tool_error_line() -> None:
    with pytest.raises(ToolError) as err:
        await invite.call({"title": "x", "attendees": []}, context())
    assert str(err.value) == "invite failed: IndexError: list index out of range"
    assert isinstance(err.value.__cause__, IndexError)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"attendees": []}, "invite: argument 'title' is required"),
        (
            {"title": "x", "attendees": [], "length": "medium"},
            "invite: argument 'length': Input should be 'short' or 'long' (got \"medium\")",
        ),
        (
            {"title": "x", "attendees": [{"optional": True}]},
            "invite: argument 'attendees.0.email' is required",
        ),
        (
            {"title": "x", "attendees": [], "colour": "red"},
            "invite: 'colour' is not a parameter (parameters: title, attendees, tags, length, "
            "note)",
        ),
        ("{not json", "invite: arguments are not valid JSON: "),
        ("[1, 2]", "invite: arguments must be a JSON object, not list"),
    ],
)
async def test_a_bad_argument_is_one_line_naming_it(arguments: object, expected: str) -> None:
    with pytest.raises(ToolArgumentError) as err:
        await invite.call(arguments, context())  # type: ignore[arg-type]
    message = str(err.value)
    assert message.startswith(expected)
    assert "\n" not in message


async def test_a_sync_tool_runs_in_a_thread_and_an_async_one_on_the_loop() -> None:
    loop_thread = threading.get_ident()

    @tool
    def where_sync() -> int:
        """Which thread runs me."""
        return threading.get_ident()

    @tool
    async def where_async() -> int:
        """Which thread runs me."""
        await asyncio.sleep(0)
        return threading.get_ident()

    assert int(await where_sync.call({}, context())) != loop_thread
    assert int(await where_async.call(None, context())) == loop_thread


async def test_a_str_result_is_returned_as_it_is() -> None:
    @tool(name="echo_text", description="Echo.")
    def echo(text: str) -> str:
        return text

    assert echo.name == "echo_text" and echo.description == "Echo."
    assert await echo.call({"text": '"quoted"'}, context()) == '"quoted"'
    assert echo("direct") == "direct"  # still a plain function in Python


async def test_a_parameter_named_like_a_pydantic_attribute_works() -> None:
    @tool
    def dump(json: str, model_config: int = 0) -> str:
        """Parameters whose names pydantic's BaseModel uses itself."""
        return f"{json}:{model_config}"

    assert list(dump.parameters["properties"]) == ["json", "model_config"]
    assert await dump.call({"json": "a", "model_config": 2}, context()) == "a:2"


async def test_a_tool_runs_only_with_its_permissions_granted() -> None:
    ran = []

    @tool(permissions=["network"])
    def fetch(url: str) -> str:
        """Fetch a page."""
        ran.append(url)
        return "ok"

    assert fetch.permissions == frozenset({Permission.NETWORK})
    with pytest.raises(PermissionNeeded) as err:
        await fetch.call({"url": "http://x"}, context())
    assert err.value.missing == frozenset({Permission.NETWORK})
    assert "needs permission network" in str(err.value)
    assert ran == []
    assert await fetch.call({"url": "http://x"}, context(granted={"network"})) == "ok"


async def test_a_tool_asks_only_for_what_one_call_needs() -> None:
    def by_source(arguments: dict[str, object]) -> list[str]:
        source = str(arguments["source"])
        return ["network", "run_code"] if source.startswith("http") else ["read_files"]

    @tool(permissions=["network", "read_files"], needs=by_source)
    def load(source: str) -> str:
        """Load a file or a page."""
        return f"loaded {source}"

    assert load.permissions == frozenset({Permission.NETWORK, Permission.READ_FILES})
    assert load.needed({"source": "/notes.txt"}) == frozenset({Permission.READ_FILES})
    # Never more than declared: run_code is not the tool's to ask for.
    assert load.needed('{"source": "http://x"}') == frozenset({Permission.NETWORK})
    # Arguments that do not validate need everything declared.
    assert load.needed({"nope": 1}) == load.permissions
    granted = context(granted={"read_files"})
    assert await load.call({"source": "/notes.txt"}, granted) == "loaded /notes.txt"
    with pytest.raises(PermissionNeeded) as err:
        await load.call({"source": "http://x"}, granted)
    assert err.value.missing == frozenset({Permission.NETWORK})


async def test_a_failing_needs_asks_for_every_declared_permission() -> None:
    def broken(arguments: dict[str, object]) -> list[str]:
        raise KeyError("oops")

    @tool(permissions=["network", "read_files"], needs=broken)
    def load(source: str) -> str:
        """Load a file or a page."""
        return source

    assert load.needed({"source": "/x"}) == load.permissions
    with pytest.raises(PermissionNeeded):
        await load.call({"source": "/x"}, context(granted={"read_files"}))


async def test_from_schema_validates_with_json_schema() -> None:
    seen = []

    async def handler(arguments: dict[str, object], ctx: ToolContext) -> dict[str, object]:
        seen.append(arguments)
        return {"ok": True}

    echo = Tool.from_schema(
        "remote_echo",
        "Echo on a server.",
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        handler,
    )
    assert await echo.call({"n": 3}, context()) == '{"ok":true}'
    with pytest.raises(ToolArgumentError, match=r"^remote_echo: argument 'n': 'x' is not of type"):
        await echo.call({"n": "x"}, context())
    with pytest.raises(ToolArgumentError, match="'n' is a required property"):
        await echo.call({}, context())
    assert seen == [{"n": 3}]
    with pytest.raises(TypeError):
        echo()


def test_the_workspace_is_a_per_task_folder_made_on_first_use(myninja_home: Path) -> None:
    ctx = ToolContext(task_id="task-42")
    folder = myninja_home / "data" / "workspaces" / "task-42"
    assert not folder.exists()
    assert ctx.workspace == folder and folder.is_dir()
    with pytest.raises(ValueError, match="not a safe folder name"):
        ToolContext(task_id="../escape")


def test_docstring_sections_are_split_from_the_description() -> None:
    summary, args = parse_docstring(
        """Do it.

        Args:
            a (int): First.
            b: Second,
                continued.

        Returns:
            c: not an argument.
        """
    )
    assert summary == "Do it."
    assert args == {"a": "First.", "b": "Second, continued."}


# -- definitions that are refused -----------------------------------------------------------


def _ok() -> None:
    """A tool."""


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Skill("Weather", "x"), "skill name 'Weather' must match"),
        (lambda: Skill("9lives", "x"), "skill name '9lives' must match"),
        (lambda: Skill("a b", "x"), "skill name 'a b' must match"),
        (lambda: Skill("ok", ""), "skill 'ok' has no description"),
        (lambda: Skill("ok", "x", tools=[_ok, tool(_ok)]), "two tools are named '_ok'"),
        (lambda: Skill("ok", "x", tools=[42]), "is neither a Tool nor a function"),
        (lambda: Skill("ok", "x", permissions=["root"]), "unknown permission 'root'"),
        (lambda: Skill("ok", "x", agents=["Bad Agent"]), "agent name 'Bad Agent'"),
        (
            lambda: Skill("ok", "x", personas={"coder": PersonaSpec("p")}),
            "persona 'coder' is a built-in agent",
        ),
    ],
)
def test_a_bad_skill_is_one_skill_error_line(make: object, message: str) -> None:
    with pytest.raises(SkillError) as err:
        make()  # type: ignore[operator]
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_tools_are_refused() -> None:
    def untyped(x):  # type: ignore[no-untyped-def]
        """No hint."""

    def star(*args: int) -> None:
        """Varargs."""

    def undocumented(x: int) -> None:
        pass

    with pytest.raises(SkillError, match="parameter 'x' has no type hint"):
        tool(untyped)
    with pytest.raises(SkillError, match=r"\*args and \*\*kwargs"):
        tool(star)
    with pytest.raises(SkillError, match="has no description"):
        tool(undocumented)
    with pytest.raises(SkillError, match="tool name 'has space' must match"):
        tool(name="has space")(_ok)
    with pytest.raises(SkillError, match="parameters must be a JSON schema with type object"):
        Tool.from_schema("t", "d", {"type": "array"}, lambda a, c: None)
    with pytest.raises(SkillError, match="not a valid JSON schema"):
        Tool.from_schema("t", "d", {"type": "object", "properties": 3}, lambda a, c: None)


def test_a_schema_spoiled_after_the_tool_was_made_is_caught_by_the_skill() -> None:
    spoiled = tool(_ok)
    spoiled.parameters["required"] = "everything"
    with pytest.raises(SkillError, match="'_ok': parameters are not a valid JSON schema"):
        Skill("ok", "x", tools=[spoiled])


def test_a_skill_needs_what_its_tools_need_plus_what_it_declares() -> None:
    reader = tool(permissions=[Permission.READ_FILES])(_ok)
    skill = Skill("ok", "x", tools=[reader], permissions=["network"], agents=["coder"])
    assert skill.permissions == frozenset({Permission.READ_FILES, Permission.NETWORK})
    assert skill.agents == ("coder",)
    assert skill.tool("_ok") is reader
