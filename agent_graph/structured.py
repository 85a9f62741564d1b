"""Model calls whose answer must be JSON of a given schema, repaired a bounded number of times.

The schema is sent to the backend (grammar-constrained where it can), and the reply is still
validated here: a gateway may ignore the schema, and a truncated reply is not valid JSON."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from myninja.agent_graph.prompts import json_repair_message
from myninja.backends.base import Backend, ChatRequest, Message


class StructuredOutputError(Exception):
    """No valid JSON after every repair; `problem` says what was wrong the last time."""

    def __init__(self, problem: str, attempts: int) -> None:
        super().__init__(f"{problem} (after {attempts} attempts)")
        self.problem = problem


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    """One checked validator per distinct schema: `jsonschema.validate` checks the schema
    against its meta-schema on every call, which costs ~100x the validation itself."""
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def problem_with(text: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    try:
        # strict=False: grammar-constrained models may put raw newlines inside strings.
        value = json.loads(text, strict=False)
    except ValueError as exc:
        return None, f"not valid JSON ({exc.msg} at position {exc.pos})"
    # The error jsonschema.validate would raise (best_match), without re-checking the schema.
    error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "the top level"
        return None, f"{where}: {error.message}"
    return value, None


async def structured_call(
    backend: Backend,
    messages: list[Message],
    schema: dict[str, Any],
    *,
    retries: int,
    repair: Callable[[str], Message] = json_repair_message,
    model: str | None = None,
    temperature: float | None = 0.0,
    max_tokens: int | None = 400,
    usage: dict[str, int] | None = None,
) -> Any:
    """The parsed value. `repair(problem)` makes the follow-up message after a bad reply."""
    messages = list(messages)
    problem = "no reply"
    for _ in range(retries + 1):
        result = await backend.chat(
            ChatRequest(
                messages,
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                json_schema=schema,
            )
        )
        if usage is not None:
            usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + result.usage.prompt_tokens
            usage["completion_tokens"] = (
                usage.get("completion_tokens", 0) + result.usage.completion_tokens
            )
        value, problem = problem_with(result.text, schema)  # type: ignore[assignment]
        if problem is None:
            return value
        messages += [{"role": "assistant", "content": result.text}, repair(problem)]
    raise StructuredOutputError(problem, retries + 1)
