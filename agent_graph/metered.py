"""A backend seen through one agent of one task: each call's tokens go into history's usage
table (agent_graph/history/usage.py) as the call returns.

Graph nodes reach backends only through `GraphContext.agent_backend`, which hands them this
wrapper, so every model call of a task is counted, with the agent, backend and model it ran on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from myninja.backends.base import Backend, ChatRequest, ChatResult, Chunk, Usage

if TYPE_CHECKING:
    from myninja.agent_graph.history import HistoryStore


@dataclass
class MeteredBackend:
    inner: Backend
    store: HistoryStore
    task_id: str
    agent: str
    backend: str  # the configured name
    model: str | None  # the model the agent asks for, or the backend's own

    @property
    def name(self) -> str:
        return self.inner.name

    def _record(self, request: ChatRequest, usage: Usage) -> None:
        from myninja.agent_graph.history import usage as ledger

        ledger.record(
            self.store,
            self.task_id,
            agent=self.agent,
            backend=self.backend,
            model=request.model or self.model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
        )

    async def chat(self, request: ChatRequest) -> ChatResult:
        result = await self.inner.chat(request)
        self._record(request, result.usage)
        return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        async for chunk in self.inner.stream(request):
            if chunk.usage is not None:
                # Before handing it on: a reader that stops at the last chunk still counts.
                self._record(request, chunk.usage)
            yield chunk

    async def list_models(self) -> list[str]:
        return await self.inner.list_models()

    async def aclose(self) -> None:
        # The pool owns the backend and closes it once, for every task.
        pass
