"""A deterministic backend that answers from a script: for graph tests and benchmarks.

A script is a list of rules; the first rule whose `match` regex is found in the request (all
messages, as "role: content" lines) decides the reply. A rule replies with `reply` (text),
`json` (an object, sent as JSON text), `tool_calls` ([{"name", "arguments"}]), or `error`
("unreachable" | "bad_response"), optionally after `delay` seconds and streaming
`token_delay` seconds apart. The same request always gets the same reply, so a run that is
interrupted and resumed can be compared with one that was not.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from myninja.backends.base import ChatRequest, ChatResult, Chunk, ToolCall, Usage, collect
from myninja.errors import BackendUnreachable, BadResponse, ConfigError


@dataclass
class Rule:
    match: str
    reply: str | None = None
    json: Any = None
    tool_calls: list[dict[str, Any]] | None = None
    error: str | None = None
    delay: float = 0.0
    token_delay: float = 0.0

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.match, re.DOTALL | re.IGNORECASE)


@dataclass
class ScriptedBackend:
    name: str
    rules: list[Rule]
    default: str = "OK."
    calls: list[ChatRequest] = field(default_factory=list)  # every request, for tests

    @classmethod
    def from_file(cls, name: str, path: Path) -> ScriptedBackend:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            rules = [Rule(**rule) for rule in data.get("rules", [])]
        except (OSError, ValueError, TypeError, re.error) as exc:
            raise ConfigError(f"backend {name}: cannot read script {path}: {exc}") from exc
        return cls(name, rules, data.get("default", "OK."))

    async def list_models(self) -> list[str]:
        return ["scripted"]

    async def aclose(self) -> None:
        pass

    def _rule_for(self, request: ChatRequest) -> Rule | None:
        text = "\n".join(f"{m['role']}: {m.get('content') or ''}" for m in request.messages)
        return next((rule for rule in self.rules if rule.pattern.search(text)), None)

    async def chat(self, request: ChatRequest) -> ChatResult:
        return await collect(self.stream(request), "scripted")

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        self.calls.append(request)
        rule = self._rule_for(request)
        if rule and rule.delay:
            await asyncio.sleep(rule.delay)
        if rule and rule.error == "unreachable":
            raise BackendUnreachable(f"{self.name}: scripted outage")
        if rule and rule.error:
            raise BadResponse(f"{self.name}: scripted bad response")
        if rule and rule.tool_calls:
            calls = [
                ToolCall(f"call_{i}", c["name"], json.dumps(c.get("arguments", {})))
                for i, c in enumerate(rule.tool_calls)
            ]
            yield Chunk(finish_reason="tool_calls", usage=Usage(10, 5), tool_calls=calls)
            return
        if rule and rule.json is not None:
            text = json.dumps(rule.json)
        else:
            text = rule.reply if rule and rule.reply is not None else self.default
        pieces = re.findall(r"\S+\s*|\s+", text) or [text]
        for piece in pieces:
            if rule and rule.token_delay:
                await asyncio.sleep(rule.token_delay)
            yield Chunk(text=piece)
        prompt = sum(len(str(m.get("content") or "").split()) for m in request.messages)
        yield Chunk(finish_reason="stop", usage=Usage(prompt, len(pieces)))
