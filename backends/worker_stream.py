"""Blocking generation in one worker thread, its output streamed into asyncio.

Both local engines (llama.cpp, and the Neuron libraries' `sample()` / `generate()`) block for the
whole reply. Each engine owns a single-thread executor, so concurrent requests queue in order on
one model instead of racing on it; items cross into the event loop with `call_soon_threadsafe`.
When the consumer stops reading (it got what it wanted, or it was cancelled) a flag is set that
the producer checks at its next item, and the next request starts once the producer returns."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from typing import Any

Emit = Callable[[Any], None]
Producer = Callable[[Emit, threading.Event], None]

_DONE = object()


class WorkerFailed(Exception):
    """The producer raised `error` in the worker thread."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


async def from_worker(worker: Executor, produce: Producer) -> AsyncIterator[Any]:
    """Run `produce(emit, stopped)` on `worker` and yield what it emits, in order.

    `stopped` is set once the consumer is gone; the producer should end soon after. An
    exception in the producer ends the stream with WorkerFailed (the items emitted before it
    have been yielded)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stopped = threading.Event()

    def emit(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed under us
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        try:
            if not stopped.is_set():  # a request cancelled while it queued never starts
                produce(emit, stopped)
        except BaseException as exc:  # reported through the queue, never lost in the thread
            emit(WorkerFailed(exc))
        emit(_DONE)

    # work() reports its own errors through the queue, so its future is not awaited.
    loop.run_in_executor(worker, work)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, WorkerFailed):
                raise item
            yield item
    finally:
        stopped.set()
