"""How a function becomes a tool's parameters, and how a tool's arguments are checked and handed
to it: the machinery behind the skill contract (api.py), which knows nothing of skills.

- `function_schema`: a typed function's JSON schema (a pydantic model built from its type hints,
  descriptions from `Annotated[..., Field(description=...)]` or the docstring's `Args:`), the
  validator of its arguments, and a way to call it with them.
- `json_schema_validator`: the validator of arguments for a JSON schema given as it is (MCP).
- `check_schema`: whether parameters are a JSON schema of an object, as function-calling APIs
  want; `parse_arguments`: the JSON text or mapping a model sent, as a dict.

Problems come out as `SchemaError` (a definition that cannot be a tool) and `ArgumentsError`
(arguments that do not fit, in one line a model can act on); api.py turns them into its
SkillError and ToolArgumentError.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

Validator = Callable[[dict[str, Any]], dict[str, Any]]


class SchemaError(ValueError):
    """A function or a JSON schema that cannot describe a tool's parameters; the message names
    the tool and says why."""


class ArgumentsError(ValueError):
    """Arguments that do not fit a tool's schema; the message names the tool and the arguments,
    for the model to read."""


@dataclass(frozen=True)
class FunctionSchema:
    """What a typed function's signature makes of it as a tool: the description above its
    docstring's sections, the JSON schema of its parameters, the validator of its arguments (the
    parameters' values by name), and which parameter, if any, is given the context instead."""

    func: Callable[..., Any]
    summary: str
    parameters: dict[str, Any]
    validate: Validator
    context_param: str | None
    positional_only: tuple[str, ...]

    async def call(self, arguments: dict[str, Any], context: Any) -> Any:
        """Call the function with validated `arguments`, and `context` where it asks for one."""
        kwargs = dict(arguments)
        if self.context_param is not None:
            kwargs[self.context_param] = context
        args = tuple(kwargs.pop(p) for p in self.positional_only)
        return await call_maybe_in_thread(self.func, args, kwargs)


class _NoFieldTitles(GenerateJsonSchema):
    # "title": "City" beside "city" is noise in every prompt the schema goes into.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def function_schema(func: Callable[..., Any], tool_name: str, context_type: type) -> FunctionSchema:
    """The schema of `func`'s parameters, all of which need a type hint; a parameter annotated
    `context_type` is left out of it (the caller injects it). Raises SchemaError."""
    summary, arg_docs = parse_docstring(inspect.getdoc(func) or "")
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise SchemaError(f"tool {tool_name!r}: cannot read its type hints: {exc}") from exc
    fields: dict[str, Any] = {}
    context_param: str | None = None
    positional_only: list[str] = []
    for index, param in enumerate(inspect.signature(func).parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SchemaError(f"tool {tool_name!r}: *args and **kwargs cannot have a schema")
        if param.name not in hints:
            raise SchemaError(f"tool {tool_name!r}: parameter {param.name!r} has no type hint")
        hint = hints[param.name]
        if hint is context_type:
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
        raise SchemaError(f"tool {tool_name!r}: its parameters have no JSON schema: {exc}") from exc
    schema.pop("title", None)
    aliases = {key: spec[1].alias for key, spec in fields.items()}

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        try:
            instance = model.model_validate(arguments)
        except ValidationError as exc:
            raise ArgumentsError(_one_line(tool_name, exc, list(aliases.values()))) from None
        # Attributes, not model_dump(): a nested model arrives as the model, not a dict.
        return {alias: getattr(instance, key) for key, alias in aliases.items()}

    return FunctionSchema(func, summary, schema, validate, context_param, tuple(positional_only))


def _described(hint: Any) -> bool:
    """Whether an Annotated hint already carries a Field(description=...), which then wins."""
    if typing.get_origin(hint) is not typing.Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in typing.get_args(hint)[1:])


async def call_maybe_in_thread(
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
    APIs accept. Raises SchemaError."""
    import jsonschema

    if not isinstance(parameters, dict) or parameters.get("type") != "object":
        raise SchemaError(f"tool {tool_name!r}: parameters must be a JSON schema with type object")
    try:
        jsonschema.validators.validator_for(parameters).check_schema(parameters)
    except jsonschema.exceptions.SchemaError as exc:
        raise SchemaError(
            f"tool {tool_name!r}: parameters are not a valid JSON schema: {exc.message}"
        ) from None


def json_schema_validator(tool_name: str, parameters: dict[str, Any]) -> Validator:
    """The validator of arguments for `parameters`, a JSON schema that `check_schema` passed:
    the arguments as they are, or ArgumentsError with the best-matching problem."""
    import jsonschema

    validator = jsonschema.validators.validator_for(parameters)(parameters)

    def validate(arguments: dict[str, Any]) -> dict[str, Any]:
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path)
            prefix = f"argument {where!r}: " if where else ""
            raise ArgumentsError(f"{tool_name}: {prefix}{error.message}")
        return arguments

    return validate


def parse_arguments(tool_name: str, arguments: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """`arguments` (a mapping, the JSON text a model sent, or nothing) as a dict. Raises
    ArgumentsError."""
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ArgumentsError(f"{tool_name}: arguments are not valid JSON: {exc}") from None
    if not isinstance(arguments, Mapping):
        kind = type(arguments).__name__
        raise ArgumentsError(f"{tool_name}: arguments must be a JSON object, not {kind}")
    return dict(arguments)
