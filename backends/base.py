"""The Backend protocol and the value types every backend speaks.

Messages and tools use the OpenAI chat format (plain dicts), the lingua franca of every server
we talk to. A backend returns a whole `ChatResult` from `chat()` or yields `Chunk`s from
`stream()`; the last chunk of a stream carries the finish reason, usage and complete tool calls.
Cancelling the awaiting task cancels generation.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]
Tool = dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, exactly as the model produced it

    def parsed_arguments(self) -> dict[str, Any]:
        return json.loads(self.arguments or "{}")

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass
class ChatRequest:
    messages: list[Message]
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    json_schema: dict[str, Any] | None = None  # constrain the output to this schema
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None  # "auto", "none", "required" or a function
    seed: int | None = None


@dataclass
class Chunk:
    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)


@dataclass
class ChatResult:
    text: str
    finish_reason: str
    usage: Usage
    model: str
    tool_calls: list[ToolCall] = field(default_factory=list)

    def json(self) -> Any:
        """The text parsed as JSON (for requests made with a json_schema)."""
        return json.loads(self.text)


@runtime_checkable
class Backend(Protocol):
    name: str

    async def chat(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]: ...

    async def list_models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


async def collect(chunks: AsyncIterator[Chunk], model: str) -> ChatResult:
    """Fold a stream into a ChatResult; backends whose native call is streaming use this."""
    parts: list[str] = []
    finish, usage, calls = "stop", Usage(), []
    async for chunk in chunks:
        parts.append(chunk.text)
        if chunk.finish_reason:
            finish = chunk.finish_reason
        if chunk.usage:
            usage = chunk.usage
        calls.extend(chunk.tool_calls)
    return ChatResult("".join(parts), finish, usage, model, calls)
