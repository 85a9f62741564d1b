"""The skill contract: what a plugin imports (and the rules its names and permissions follow).

A skill is a named set of tools (typed Python functions), optionally agent personas and hooks
into its agents' work (`prepare`, `review`, `finish`: steps the graph runs in code, for models
that cannot call tools themselves), and the permissions its tools need. `@tool` turns a
function into a `Tool` whose JSON schema comes from its type hints and docstring (tool_schema.py
does the work); `Skill(...)` bundles tools and is what the entry point `myninja.skills` names.
docs/plugins.md shows it in use.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import pydantic_core

from myninja import paths
from myninja.config import AGENTS, Config, Permission
from myninja.errors import MyninjaError
from myninja.skills.tool_schema import (
    ArgumentsError,
    SchemaError,
    Validator,
    call_maybe_in_thread,
    check_schema,
    function_schema,
    json_schema_validator,
    parse_arguments,
)

__all__ = [
    "Draft",
    "Permission",
    "PermissionNeeded",
    "PersonaSpec",
    "Review",
    "Skill",
    "SkillError",
    "Tool",
    "ToolArgumentError",
    "ToolContext",
    "ToolError",
    "UseTool",
    "tool",
]


class SkillError(MyninjaError):
    """A skill or tool is defined wrongly (bad name, duplicate tool, bad schema)."""


class ToolError(MyninjaError):
    """A tool could not do what it was asked. The message is written for the model to read."""


class ToolArgumentError(ToolError):
    """The arguments a model passed do not fit the tool's schema."""


class PermissionNeeded(ToolError):
    """The tool needs permissions its context was not granted: the caller asks the person."""

    def __init__(self, tool: str, missing: frozenset[Permission]) -> None:
        names = ", ".join(sorted(missing))
        super().__init__(f"tool {tool!r} needs permission {names}, which was not granted")
        self.tool = tool
        self.missing = missing


SKILL_NAME = re.compile(r"[a-z][a-z0-9_-]*")
# OpenAI's rule for function names; every backend we talk to accepts it.
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
AGENT_NAME = re.compile(r"[a-z][a-z0-9_-]*")
_SAFE_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class ToolContext:
    """What a tool learns about the task it serves. A parameter annotated `ToolContext` gets
    this injected; it never appears in the schema the model sees."""

    task_id: str
    config: Config = field(default_factory=Config)
    allowed_dirs: list[Path] = field(default_factory=list)
    granted: frozenset[Permission] = frozenset()
    # Where `workspace` lives; default: <data dir>/workspaces/<task_id>.
    workspace_dir: Path | None = None

    def __post_init__(self) -> None:
        # The task id becomes a folder name: nothing that could climb out of the data dir.
        if not _SAFE_TASK_ID.fullmatch(self.task_id) or ".." in self.task_id:
            raise ValueError(f"task_id {self.task_id!r} is not a safe folder name")
        self.allowed_dirs = [Path(d) for d in self.allowed_dirs]
        self.granted = frozenset(Permission(p) for p in self.granted)

    @property
    def workspace(self) -> Path:
        """The task's own folder, created on first use."""
        folder = self.workspace_dir or task_workspace(self.task_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def task_workspace(task_id: str) -> Path:
    """Where a task's files go (not created here): <data dir>/workspaces/<task_id>."""
    return paths.data_dir() / "workspaces" / task_id


# -- tools -------------------------------------------------------------------------------------

Runner = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
PermissionsFor = Callable[[dict[str, Any]], Iterable[Permission | str]]


class Tool:
    """A function an agent may call. Make one with `@tool` (from a typed function) or
    `Tool.from_schema` (from a JSON schema and a handler, as MCP servers describe theirs).
    `validate` raises tool_schema.ArgumentsError (or ToolArgumentError) for arguments that do
    not fit; `run` gets the arguments it returns."""

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        *,
        validate: Validator,
        run: Runner,
        permissions: Iterable[Permission | str] = (),
        needs: PermissionsFor | None = None,
        fn: Callable[..., Any] | None = None,
        workspace: bool = False,
    ) -> None:
        if not TOOL_NAME.fullmatch(name):
            raise SkillError(f"tool name {name!r} must match [a-zA-Z0-9_-]{{1,64}}")
        if not description.strip():
            raise SkillError(f"tool {name!r} has no description (give it a docstring)")
        _check_schema(name, parameters)
        self.name = name
        self.description = description.strip()
        self.parameters = parameters
        self.permissions = _permissions(permissions, f"tool {name!r}")
        self.fn = fn  # the typed function behind a @tool, for calling it directly in Python
        # It writes only in the task's own workspace and runs code only in the sandbox: that
        # is what the workspace is for, so it asks for nothing (its permissions are the rest).
        self.workspace = workspace
        self._validate = validate
        self._run = run
        self._needs = needs

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: dict[str, Any],
        handler: Callable[[dict[str, Any], ToolContext], Any],
        *,
        permissions: Iterable[Permission | str] = (),
    ) -> Tool:
        """A tool described by a JSON schema; `handler(arguments, context)` (sync or async)
        gets the arguments once they validate against it."""
        _check_schema(name, parameters)  # before building a validator from it
        validate = json_schema_validator(name, parameters)

        async def run(arguments: dict[str, Any], context: ToolContext) -> Any:
            return await call_maybe_in_thread(handler, (arguments, context), {})

        return cls(
            name, description, parameters, validate=validate, run=run, permissions=permissions
        )

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI chat-completions `tools` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    async def call(self, arguments: Mapping[str, Any] | str | None, context: ToolContext) -> str:
        """Validate `arguments` (a dict, or the JSON text a model sent), run the tool, and
        return its result as text: a str as it is, anything else as JSON.

        Raises PermissionNeeded before running when `context.granted` lacks a permission,
        ToolArgumentError for arguments that do not fit, and ToolError when the tool fails."""
        missing = self.needed(arguments) - context.granted
        if missing:
            raise PermissionNeeded(self.name, missing)
        try:
            valid = self._validate(parse_arguments(self.name, arguments))
        except ArgumentsError as exc:
            raise ToolArgumentError(str(exc)) from None
        try:
            result = await self._run(valid, context)
        except MyninjaError:
            raise
        except Exception as exc:
            # The model reads this line and may try again; the cause stays for --debug.
            raise ToolError(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc
        if isinstance(result, str):
            return result
        return pydantic_core.to_json(result, fallback=str).decode()

    def needed(self, arguments: Mapping[str, Any] | str | None) -> frozenset[Permission]:
        """What a call with `arguments` needs: the declared permissions, or the part of them
        that the tool's `needs` picks for these arguments (all of them when the arguments do
        not validate or `needs` fails: asking too much is safe, too little is not)."""
        if self._needs is None:
            return self.permissions
        try:
            picked = self._needs(self._validate(parse_arguments(self.name, arguments)))
            return self.permissions & _permissions(picked, f"tool {self.name!r}")
        except Exception:
            return self.permissions

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the decorated function directly, as plain Python."""
        if self.fn is None:
            raise TypeError(f"tool {self.name!r} has no Python function; use `await .call()`")
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, permissions={sorted(self.permissions)})"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    permissions: Iterable[Permission | str] = (),
    needs: PermissionsFor | None = None,
    workspace: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    permissions: Iterable[Permission | str] = (),
    needs: PermissionsFor | None = None,
    workspace: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a typed function (sync or async) a Tool: `@tool`, or `@tool(name=..., ...)`.

    The schema comes from the type hints; a parameter's description from
    `Annotated[T, Field(description=...)]` or the docstring's `Args:` section; a parameter with
    a default is optional; a parameter annotated `ToolContext` is injected, not asked for.
    The tool's description is the docstring above its sections, unless `description=` is given.
    `needs(arguments)`, given the validated arguments of one call, returns which of the
    `permissions` that call needs (say, network only when a source is a URL); without it every
    call needs them all. `workspace=True` says the tool writes only in the task's own workspace
    (`ToolContext.workspace`) and runs code only in the sandbox: no question is asked for that,
    so declare `permissions` only for what reaches further (the network, the person's files).
    """

    def make(func: Callable[..., Any]) -> Tool:
        return _tool_from_function(func, name, description, permissions, needs, workspace)

    return make(fn) if fn is not None else make


def _tool_from_function(
    func: Callable[..., Any],
    name: str | None,
    description: str | None,
    permissions: Iterable[Permission | str],
    needs: PermissionsFor | None = None,
    workspace: bool = False,
) -> Tool:
    tool_name = name or getattr(func, "__name__", "")
    try:
        signature = function_schema(func, tool_name, ToolContext)
    except SchemaError as exc:
        raise SkillError(str(exc)) from exc.__cause__
    return Tool(
        tool_name,
        description if description is not None else signature.summary,
        signature.parameters,
        validate=signature.validate,
        run=signature.call,
        permissions=permissions,
        needs=needs,
        fn=func,
        workspace=workspace,
    )


def _check_schema(tool_name: str, parameters: Any) -> None:
    try:
        check_schema(tool_name, parameters)
    except SchemaError as exc:
        raise SkillError(str(exc)) from None


def _permissions(values: Iterable[Permission | str], owner: str) -> frozenset[Permission]:
    if isinstance(values, str):  # permissions="network" would otherwise become letters
        values = [values]
    result = set()
    for value in values:
        try:
            result.add(Permission(value))
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise SkillError(f"{owner}: unknown permission {value!r} (known: {known})") from None
    return frozenset(result)


# -- skills ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonaSpec:
    """A new agent a plugin adds: its system prompt, its default model (None: the config's),
    and the names of the tools it gets (None: the tools of the skill that declares it)."""

    system_prompt: str
    model: str | None = None
    tools: tuple[str, ...] | None = None


UseTool = Callable[[str, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Draft:
    """What a hook is handed: the task, the answer so far, and a way to use the skill's tools.

    `use(name, arguments)` runs one of this skill's tools exactly as a model's call would run:
    through the permission gate (the person is asked for what is not granted), traced as
    `tool_call`/`tool_result` events. It returns the tool's text, or raises ToolError (a
    refusal, a denied permission, a failure) with a message to show."""

    task: str  # the person's task, without a leading @agent
    agent: str
    task_id: str
    use: UseTool
    workspace: Path  # where this draft's files go: the task's workspace, or a branch's folder
    text: str = ""  # the answer (empty in prepare)
    branch_id: str | None = None  # None in prepare
    revision: int = 0  # 0 for a branch's first answer, then 1, 2… after each review's feedback
    # What the skill may already do without asking: a hook whose work is optional (saving a
    # copy, say) checks this rather than stopping the task with a question.
    granted: frozenset[Permission] = frozenset()
    # What the agent knows of the person without asking, by need key ("time zone":
    # "Europe/Berlin"; agent_graph/needs.py): a kept memory, the config or the machine's.
    facts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Review:
    """A review of one answer. `passed` None means nothing was checked; `feedback` goes back
    to the model as a request for a revision while revisions are left."""

    verdict: str  # one line the judge and the trace read, e.g. "tests: 3 passed, 1 failed"
    passed: bool | None = None
    feedback: str | None = None


@dataclass
class Skill:
    """A named set of tools, with the agents whose branches get them (empty: every agent)."""

    name: str
    description: str
    # Tools; a bare function is taken as `@tool` would take it.
    tools: Sequence[Tool] = ()
    agents: Sequence[str] = ()
    personas: Mapping[str, PersonaSpec] = field(default_factory=dict)
    # Hooks into the work of this skill's agents, each `async (Draft) -> ...`:
    # prepare, once per task before planning: text the agent's branches are given;
    # review, after each answer of a branch: a Review (checks run, and feedback for a revision);
    # finish, on the chosen answer: a line added under it (where a file was saved, say).
    prepare: Callable[[Draft], Awaitable[str | None]] | None = None
    review: Callable[[Draft], Awaitable[Review | None]] | None = None
    finish: Callable[[Draft], Awaitable[str | None]] | None = None
    # Declared on top of what the tools need (e.g. a hook that fetches pages).
    permissions: Iterable[Permission | str] = frozenset()
    # Whether its tools can do anything under a config (the files skill with no allowed
    # folder cannot): tools that could only fail are not offered.
    available: Callable[[Config], bool] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not SKILL_NAME.fullmatch(self.name):
            raise SkillError(f"skill name {self.name!r} must match [a-z][a-z0-9_-]*")
        if not isinstance(self.description, str) or not self.description.strip():
            raise SkillError(f"skill {self.name!r} has no description")
        tools = tuple(t if isinstance(t, Tool) else _as_tool(self.name, t) for t in self.tools)
        seen: set[str] = set()
        for t in tools:
            if t.name in seen:
                raise SkillError(f"skill {self.name!r}: two tools are named {t.name!r}")
            seen.add(t.name)
            _check_schema(t.name, t.parameters)  # again: a plugin may have edited it since
        self.tools = tools
        self.agents = tuple(self.agents)
        for agent in (*self.agents, *self.personas):
            if not isinstance(agent, str) or not AGENT_NAME.fullmatch(agent):
                raise SkillError(f"skill {self.name!r}: agent name {agent!r} is not valid")
        for agent, persona in self.personas.items():
            if agent in AGENTS:
                raise SkillError(f"skill {self.name!r}: persona {agent!r} is a built-in agent")
            if not isinstance(persona, PersonaSpec):
                raise SkillError(f"skill {self.name!r}: persona {agent!r} is not a PersonaSpec")
        self.personas = dict(self.personas)
        for hook in ("prepare", "review", "finish"):
            value = getattr(self, hook)
            if value is not None and not inspect.iscoroutinefunction(value):
                raise SkillError(f"skill {self.name!r}: {hook} must be an async function")
        declared = _permissions(self.permissions, f"skill {self.name!r}")
        self.permissions = declared.union(*(t.permissions for t in tools))

    def tool(self, name: str) -> Tool:
        for t in self.tools:
            if t.name == name:
                return t
        raise KeyError(name)


def _as_tool(skill: str, value: Any) -> Tool:
    if not callable(value):
        raise SkillError(f"skill {skill!r}: {value!r} is neither a Tool nor a function")
    return tool(value)
