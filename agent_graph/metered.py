"""A backend seen through one agent of one task: each call's tokens go into history's usage
table (agent_graph/history/usage.py) as the call returns.

Graph nodes reach backends only through `GraphContext.agent_backend`, which hands them this
wrapper, so every model call of a task is counted, with the agent, backend and model it ran on.

It also keeps the config's `[budget]` (agent_graph/budget.py): before each call, a spent budget
raises BudgetSpent, which no node catches, so the task stops at that step and rests, resumable.
A call stopped so first waits for the task's calls already under way to return (a call that
started under budget finishes, and its tokens are counted): LangGraph cancels a failed step's
sibling branches, and a cancelled stream's tokens would be spent but never recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from myninja.backends.base import Backend, ChatRequest, ChatResult, Chunk, Usage

if TYPE_CHECKING:
    from myninja.agent_graph.history import HistoryStore
    from myninja.config import Config


class _InFlight:
    """The calls of one task under way in this process, and a signal when there are none."""

    def __init__(self) -> None:
        self.count = 0
        self.idle = asyncio.Event()
        self.idle.set()


_in_flight: dict[str, _InFlight] = {}  # by task id, while any call of the task is under way


@dataclass
class MeteredBackend:
    inner: Backend
    store: HistoryStore
    task_id: str
    agent: str
    backend: str  # the configured name
    model: str | None  # the model the agent asks for, or the backend's own
    config: Config | None = None  # its [budget] and [prices]; None: no budget is checked

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

    async def _may_start(self, request: ChatRequest) -> None:
        """Raise BudgetSpent (once the task's calls under way returned) if a budget is spent."""
        if self.config is None:
            return
        from myninja.agent_graph import budget
        from myninja.errors import BudgetSpent

        try:
            budget.check(
                self.config, self.store, self.task_id, self.backend, request.model or self.model
            )
        except BudgetSpent:
            flights = _in_flight.get(self.task_id)
            if flights is not None:
                await flights.idle.wait()
            raise

    def _started(self) -> _InFlight:
        flights = _in_flight.setdefault(self.task_id, _InFlight())
        flights.count += 1
        flights.idle.clear()
        return flights

    def _ended(self, flights: _InFlight) -> None:
        flights.count -= 1
        if flights.count == 0:
            flights.idle.set()
            if _in_flight.get(self.task_id) is flights:
                del _in_flight[self.task_id]

    async def chat(self, request: ChatRequest) -> ChatResult:
        await self._may_start(request)
        flights = self._started()
        try:
            result = await self.inner.chat(request)
        finally:
            self._ended(flights)
        self._record(request, result.usage)
        return result

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        await self._may_start(request)
        flights = self._started()
        try:
            async for chunk in self.inner.stream(request):
                if chunk.usage is not None:
                    # Before handing it on: a reader that stops at the last chunk still counts.
                    self._record(request, chunk.usage)
                yield chunk
        finally:
            self._ended(flights)

    async def list_models(self) -> list[str]:
        return await self.inner.list_models()

    async def aclose(self) -> None:
        # The pool owns the backend and closes it once, for every task.
        pass
