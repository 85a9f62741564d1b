"""The skill contract: everything a plugin author needs, in one file.

A skill is a named set of tools (typed Python functions), optionally agent personas and hooks
into its agents' work (`prepare`, `review`, `finish`: steps the graph runs in code, for models
that cannot call tools themselves), and the permissions its tools need. `@tool` turns a
function into a `Tool` whose JSON schema comes from its type hints and docstring; `Skill(...)`
bundles tools and is what the entry point `myninja.skills` names. docs/plugins.md shows it in use.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, overload

import pydantic_core
from pydantic import ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from myninja import paths
from myninja.config import AGENTS, Config
from myninja.errors import MyninjaError

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


class Permission(StrEnum):
    """What a tool may do beyond computing: the person grants these per skill."""

    NETWORK = "network"
    READ_FILES = "read_files"
    WRITE_FILES = "write_files"
    RUN_CODE = "run_code"


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

Validator = Callable[[dict[str, Any]], dict[str, Any]]
Runner = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]
PermissionsFor = Callable[[dict[str, Any]], Iterable[Permission | str]]


class Tool:
    """A function an agent may call. Make one with `@tool` (from a typed function) or
    `Tool.from_schema` (from a JSON schema and a handler, as MCP servers describe theirs)."""

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
        check_schema(name, parameters)
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
        import jsonschema

        check_schema(name, parameters)  # before building a validator from it
        validator = jsonschema.validators.validator_for(parameters)(parameters)

        def validate(arguments: dict[str, Any]) -> dict[str, Any]:
            error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path)
                prefix = f"argument {where!r}: " if where else ""
                raise ToolArgumentError(f"{name}: {prefix}{error.message}")
            return arguments

        async def run(arguments: dict[str, Any], context: ToolContext) -> Any:
            return await _maybe_in_thread(handler, (arguments, context), {})

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
        args = self._parse(arguments)
        valid = self._validate(args)
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
            picked = self._needs(self._validate(self._parse(arguments)))
            return self.permissions & _permissions(picked, f"tool {self.name!r}")
        except Exception:
            return self.permissions

    def _parse(self, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
        if arguments is None or arguments == "":
            return {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError as exc:
                raise ToolArgumentError(
                    f"{self.name}: arguments are not valid JSON: {exc}"
                ) from None
        if not isinstance(arguments, Mapping):
            kind = type(arguments).__name__
            raise ToolArgumentError(f"{self.name}: arguments must be a JSON object, not {kind}")
        return dict(arguments)

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


class _NoFieldTitles(GenerateJsonSchema):
    # "title": "City" beside "city" is noise in every prompt the schema goes into.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _tool_from_function(
    func: Callable[..., Any],
    name: str | None,
    description: str | None,
    permissions: Iterable[Permission | str],
    needs: PermissionsFor | None = None,
    workspace: bool = False,
) -> Tool:
    tool_name = name or getattr(func, "__name__", "")
    summary, arg_docs = parse_docstring(inspect.getdoc(func) or "")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise SkillError(f"tool {tool_name!r}: cannot read its type hints: {exc}") from exc
    fields: dict[str, Any] = {}
    context_param: str | None = None
    positional_only: list[str] = []
    for index, param in enumerate(inspect.signature(func).parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SkillError(f"tool {tool_name!r}: *args and **kwargs cannot have a schema")
        if param.name not in hints:
            raise SkillError(f"tool {tool_name!r}: parameter {param.name!r} has no type hint")
        hint = hints[param.name]
        if hint is ToolContext:
            context_param = param.name
            continue
        if param.kind is param.POSITIONAL_ONLY:
            positional_only.append(param.name)
        default = ... if param.default is param.empty else param.default
        # Fields get neutral names and the parameter's name as alias, so a parameter called
        # `json` or `model_id` cannot collide with pydantic's own attributes.
        extra: dict[str, Any] = {"alias": param.name}
        if param.name in arg_docs and not _described(hint):
            extra["description"] = arg_docs[param.name]
        fields[f"p{index}"] = (hint, Field(default, **extra))
    try:
        model = create_model(  # type: ignore[call-overload]
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
        schema = model.model_json_schema(schema_generator=_NoFieldTitles)
    except Exception as exc:
        raise SkillError(f"tool {tool_name!r}: its parameters have no JSON schema: {exc}") from exc
    schema.pop("title", None)
    aliases = {key: spec[1].alias for key, spec in fields.items()}

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            instance = model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolArgumentError(_one_line(tool_name, exc, list(aliases.values()))) from None
        # Attributes, not model_dump(): a nested model arrives as the model, not a dict.
        return {alias: getattr(instance, key) for key, alias in aliases.items()}

    async def run(arguments: dict[str, Any], context: ToolContext) -> Any:
        kwargs = dict(arguments)
        if context_param is not None:
            kwargs[context_param] = context
        args = tuple(kwargs.pop(p) for p in positional_only)
        return await _maybe_in_thread(func, args, kwargs)

    return Tool(
        tool_name,
        description if description is not None else summary,
        schema,
        validate=validate,
        run=run,
        permissions=permissions,
        needs=needs,
        fn=func,
        workspace=workspace,
    )


def _described(hint: Any) -> bool:
    """Whether an Annotated hint already carries a Field(description=...), which then wins."""
    if typing.get_origin(hint) is not typing.Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in typing.get_args(hint)[1:])


async def _maybe_in_thread(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Await an async function; run a sync one in a thread so it cannot block the event loop."""
    if inspect.iscoroutinefunction(func):
        return await func(*args, **kwargs)
    result = await asyncio.to_thread(func, *args, **kwargs)
    if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
        result = await result
    return result


def _one_line(tool_name: str, exc: ValidationError, params: list[str]) -> str:
    """The first few problems, each naming its argument, on one line."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        if error["type"] == "missing":
            parts.append(f"argument {where!r} is required")
        elif error["type"] == "extra_forbidden":
            known = ", ".join(params) or "none"
            parts.append(f"{where!r} is not a parameter (parameters: {known})")
        else:
            got = error.get("input")
            shown = json.dumps(got, default=str) if not isinstance(got, dict) else "{...}"
            parts.append(f"argument {where!r}: {error['msg']} (got {shown[:60]})")
    more = exc.error_count() - len(parts)
    tail = f"; and {more} more" if more > 0 else ""
    return f"{tool_name}: " + "; ".join(parts) + tail


_SECTION = re.compile(
    r"(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises|Examples?|Notes?|"
    r"Warnings?|See Also|Attributes|Todo)\s*:\s*"
)
_ARG_LINE = re.compile(r"\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and its `Args:` entries."""
    description: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    base_indent: int | None = None
    for line in inspect.cleandoc(doc).splitlines():
        header = _SECTION.fullmatch(line) if not line[:1].isspace() else None
        if header:
            section, current, base_indent = header.group(1).lower(), None, None
            continue
        if section is None:
            description.append(line)
            continue
        if section not in ("args", "arguments", "parameters", "params") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        entry = _ARG_LINE.fullmatch(line.strip()) if indent == base_indent else None
        if entry:
            current = entry.group(1)
            args[current] = entry.group(2).strip()
        elif current is not None:  # a continuation line of the entry above
            args[current] = f"{args[current]} {line.strip()}".strip()
    return "\n".join(description).strip(), args


def check_schema(tool_name: str, parameters: Any) -> None:
    """A tool's parameters must be a valid JSON schema of an object: what function calling
    APIs accept."""
    import jsonschema

    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise SkillError(f"tool {tool_name!r}: parameters must be a JSON schema with type object")
    try:
        jsonschema.validators.validator_for(parameters).check_schema(parameters)
    except jsonschema.exceptions.SchemaError as exc:
        raise SkillError(
            f"tool {tool_name!r}: parameters are not a valid JSON schema: {exc.message}"
        ) from None


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
            check_schema(t.name, t.parameters)  # again: a plugin may have edited it since
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
