"""When answer views render: one clock per app takes turns between streaming views, a frame at
a time, and full garbage collections wait while an answer streams. Both keep a flood of tokens
(or twenty streams at once) from freezing frames and key presses; see benchmarks/tui_render.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App

if TYPE_CHECKING:
    from myninja.ninja_tui.widgets.answer_view import AnswerView

FRAME_S = 1 / 30  # the most often one view re-renders


class QuietGC:
    """No full garbage collections while an answer streams.

    A full collection walks every object: with a long answer on screen (some 150,000 objects
    for 5,000 tokens of Markdown) that takes 100-250 ms on a small machine, and it comes
    round several times per stream as the document grows, each time a frozen frame. While
    any view streams (or catches up with a stream) the collector's threshold for the old
    generation is lifted, so the young generations are still collected as usual, cheaply,
    and the old one waits until RESUME_AFTER_S after the last stream ended (the finished
    answer is on screen by then), or for FULL_EVERY_S of continuous streaming so memory
    stays bounded. (Textual's App.PAUSE_GC_ON_SCROLL pauses the collector likewise.)"""

    FULL_EVERY_S = 30.0
    RESUME_AFTER_S = 0.5
    NEVER = 2**30

    def __init__(self) -> None:
        self.streams = 0
        self.saved: tuple[int, int, int] | None = None
        self.last_full = 0.0
        self.ends = 0  # which end() a pending resume belongs to
        self.lock = threading.Lock()  # the resume runs on a timer thread

    def begin(self) -> None:
        with self.lock:
            self.streams += 1
            if self.streams == 1 and self.saved is None:
                self.saved = gc.get_threshold()
                gc.set_threshold(self.saved[0], self.saved[1], self.NEVER)
                self.last_full = time.monotonic()

    def end(self) -> None:
        with self.lock:
            self.streams -= 1
            self.ends += 1
            if self.streams == 0:
                # A thread, not the event loop: it must happen even if the loop is gone.
                timer = threading.Timer(self.RESUME_AFTER_S, self._resume, (self.ends,))
                timer.daemon = True
                timer.start()

    def _resume(self, ends: int) -> None:
        with self.lock:
            if self.streams == 0 and ends == self.ends and self.saved is not None:
                gc.set_threshold(*self.saved)
                self.saved = None

    def frame(self) -> None:
        """After a render: the full collection that is overdue after a long stream."""
        if self.saved is not None and time.monotonic() - self.last_full > self.FULL_EVERY_S:
            self.last_full = time.monotonic()
            gc.collect()


QUIET_GC = QuietGC()


class RenderClock:
    """Renders an app's AnswerViews in turns, a frame at a time.

    A loop per view, each rendering on its own schedule, measured badly with many streams:
    twenty views at 20 tokens/s meant some 400 renders and as many screen refreshes a second,
    more than two cores do, and key presses queued behind them for over a second. One clock
    per app instead renders each view that has news once a cycle (taking all its new text at
    once), for up to RENDER_BUDGET_S (the views left over go first next cycle),
    waits for the screen to paint, and starts the next cycle no sooner than a frame later.
    A cycle that rendered several views is followed by a rest REST times as long, so that
    however many streams run, input keeps half the loop; a lone stream (the answer being
    read) renders flat out."""

    RENDER_BUDGET_S = 0.03
    REST = 1.0
    PAINT_WAIT_S = 0.3  # a screen that never paints (say, not the current one) holds no one

    _clocks: ClassVar[weakref.WeakKeyDictionary[App[Any], RenderClock]] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def of(cls, app: App[Any]) -> RenderClock:
        clock = cls._clocks.get(app)
        if clock is None:
            clock = cls._clocks[app] = cls()
        return clock

    def __init__(self) -> None:
        self.due: dict[AnswerView, None] = {}  # in turn order
        self.hurry = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def want(self, view: AnswerView, hurry: bool = False) -> None:
        self.due.setdefault(view, None)
        if hurry:
            self.hurry.set()
        if self.task is None:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.due:
                started = loop.time()
                turn, self.due = list(self.due), {}
                painter: AnswerView | None = None
                rendered = 0
                for index, view in enumerate(turn):
                    if loop.time() - started > self.RENDER_BUDGET_S:
                        self.due = {**dict.fromkeys(turn[index:]), **self.due}
                        break
                    try:
                        more = await view._render_once()
                    except Exception as error:
                        if view.is_attached:  # shown like a handler's error, not lost
                            view.app._handle_exception(error)
                        continue  # a view torn down mid-render is no error
                    if more:
                        self.due.setdefault(view, None)
                    painter = view if view.is_attached else painter
                    rendered += 1
                if painter is not None and painter.is_running:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(painter.wait_for_refresh(), self.PAINT_WAIT_S)
                cycle = loop.time() - started
                rest = self.REST * cycle if rendered > 1 else 0.0
                pause = max(FRAME_S - cycle, rest)
                if self.due and not self.hurry.is_set() and pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.hurry.wait(), pause)
                self.hurry.clear()
        finally:
            self.task = None
