"""The answer as Markdown, rendered while it streams in.

Why not Textual's own `Markdown.append` / `MarkdownStream`? Measured on 5,000 tokens of
Markdown: it re-renders as often as it can keep up, so a flood of tokens keeps the event loop
busy; after `update()` it resumes parsing from the last line only, so a table or list that
goes on after a `show()` renders wrong; and a table it grows in place ends with cells unlike a
fresh render's. So this view keeps the document as a settled prefix (complete top-level
blocks, never touched again) and a live tail (the last top-level block, the only one later
text can change), re-parses only the tail, and renders at most once a frame however fast
tokens come. The blocks are Textual's own, built by `Markdown._parse_markdown`, so the
finished document renders as `Markdown(text)` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import re
import threading
import time
import weakref
from typing import Any, ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual._arrange import DockArrangeResult
from textual.app import App
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets._markdown import (  # not exported; textual<9 is pinned
    MarkdownBullet,
    MarkdownList,
    MarkdownListItem,
    MarkdownParagraph,
    MarkdownTable,
    MarkdownTableCellContents,
    MarkdownTableContent,
)
from textual.widgets.markdown import MarkdownBlock, MarkdownFence

LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A link reference definition changes links anywhere in the document, so a tail parsed on its
# own may miss one: a document with any gets one whole re-render when the stream finishes.
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:", re.MULTILINE)
# Above this size the whole-document parse runs in a thread, as Markdown.update does.
THREAD_PARSE_CHARS = 8_000


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
                    except Exception as error:  # shown like a handler's error, not lost
                        view.app._handle_exception(error)
                        continue
                    if more:
                        self.due.setdefault(view, None)
                    painter = view if view.is_attached else painter
                    rendered += 1
                if painter is not None and painter.is_running:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(painter.wait_for_refresh(), self.PAINT_WAIT_S)
                cycle = loop.time() - started
                rest = self.REST * cycle if rendered > 1 else 0.0
                pause = max(AnswerView.FRAME_S - cycle, rest)
                if self.due and not self.hurry.is_set() and pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.hurry.wait(), pause)
                self.hurry.clear()
        finally:
            self.task = None


class AnswerView(Markdown):
    """Markdown that can be streamed into: `stream()` tokens, then `finish()`; `show()` for
    a whole document. `text` is everything given so far, rendered or about to be."""

    DEFAULT_CSS = """
    AnswerView {
        height: auto;
    }
    """

    FRAME_S: ClassVar[float] = 1 / 30
    """At most one re-render per this many seconds: tokens arriving meanwhile are batched."""

    CHUNK_CHARS: ClassVar[int] = 250
    """At most this much new text per re-render while the screen catches up with a flood:
    a frame mounting a whole flood of blocks at once would stall."""

    def __init__(
        self,
        markdown: str = "",
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(None, name=name, id=id, classes=classes)
        self._target = markdown  # the document as it should look
        self._version = 1 if markdown else 0  # bumped whenever _target changes
        self._shown_version = 0
        self._shown = ""  # what the blocks show; differs from source if someone else updated
        self._whole = False  # the next render re-renders the whole document
        self._streaming = False
        self._quiet = False  # this view holds QUIET_GC: streaming, or catching up with one
        self._tail_offset = 0  # where the live tail starts in _shown: chars, lines
        self._tail_line = 0
        self._tail_block: Widget | None = None
        self._tail_items: list[tuple[int, int]] = []  # lines of its items, if a list
        self._tail_parser = MarkdownIt("gfm-like")
        self._ready = False  # mounted, and Markdown's own mount-time update is done
        self._patched = False  # the blocks were last changed by a tail render
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def arrange(self, size: Size, optimal: bool = False) -> DockArrangeResult:
        # The blocks are all `height: auto` and stacked from the top, so the height they are
        # arranged in changes nothing but the cache key: arranging them in a height of 0
        # lets Textual reuse each settled block's arrangement while the document grows,
        # instead of arranging every list, table and fence again each frame.
        return super().arrange(Size(size.width, 0), optimal)

    @property
    def text(self) -> str:
        """The whole document given so far (what `source` will be once rendered)."""
        return self._target

    @property
    def streaming(self) -> bool:
        return self._streaming

    # -- the API ------------------------------------------------------------------------------

    async def show(self, text: str) -> None:
        """Replace the whole document (any stream stops); nothing happens if it is unchanged."""
        self._set_streaming(False)
        if text == self._target:
            return
        self._set_target(text, whole=True)
        await self._rendered()

    async def stream(self, fragment: str) -> None:
        """Append a streamed fragment; it is on screen within about a frame."""
        self._set_streaming(True)
        if fragment:
            self._set_target(self._target + fragment)
        # Let the loop breathe between tokens, as a network read would.
        await asyncio.sleep(0)

    async def finish(self, text: str | None = None) -> None:
        """End the stream. A given `text` (the stored final answer) wins over what streamed."""
        self._set_streaming(False)
        if text is not None and text != self._target:
            self._set_target(text, whole=not text.startswith(self._target))
        pending_tail = self._version != self._shown_version and not self._whole
        if (self._patched or pending_tail) and REFERENCE.search(self._target):
            self._set_target(self._target, whole=True)
        await self._rendered()

    def _set_streaming(self, streaming: bool) -> None:
        self._streaming = streaming
        if streaming and not self._quiet:
            self._quiet = True
            QUIET_GC.begin()
        elif self._quiet and not streaming and self._shown_version == self._version:
            self._quiet = False
            QUIET_GC.end()

    # -- rendering ----------------------------------------------------------------------------

    def _set_target(self, text: str, whole: bool = False) -> None:
        self._target = text
        self._version += 1
        self._whole = self._whole or whole
        if self._ready:
            # A whole replacement is not worth waiting a frame for.
            RenderClock.of(self.app).want(self, hurry=whole)

    async def _rendered(self) -> None:
        """Wait until what was asked so far is on screen (at once when not mounted)."""
        if self._shown_version >= self._version or not self._ready:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((self._version, waiter))
        RenderClock.of(self.app).want(self, hurry=True)
        await waiter

    def on_mount(self) -> None:
        _warm_highlighter()
        # Markdown's own Mount handler (after this one) renders an empty document: start
        # once it is done.
        self.call_later(self._start)

    def _start(self) -> None:
        self._ready = True
        if self._version != self._shown_version:
            RenderClock.of(self.app).want(self)

    def on_unmount(self) -> None:
        self._ready = False
        self._shown_version = self._version  # nothing more will be shown
        self._set_streaming(False)
        self._release_waiters(everyone=True)

    def _release_waiters(self, everyone: bool = False) -> None:
        still: list[tuple[int, asyncio.Future[None]]] = []
        for version, waiter in self._waiters:
            if everyone or version <= self._shown_version:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((version, waiter))
        self._waiters = still

    async def _render_once(self) -> bool:
        """One render towards the target (all of it, or a chunk of a flood); True while
        there is more to show."""
        if not self._ready or self._version == self._shown_version:
            return False
        version, whole = self._version, self._whole
        self._whole = False
        text = self._target if whole else self._next_chunk()
        caught_up = text == self._target
        try:
            await self._render_text(text, whole)
        except Exception:
            self._release_waiters(everyone=True)  # nobody waits on a broken view
            raise
        QUIET_GC.frame()
        if caught_up:
            self._shown_version = version
            self._release_waiters()
            self._set_streaming(self._streaming)  # lets QUIET_GC go when done
        return self._version != self._shown_version

    def _next_chunk(self) -> str:
        """The target, or when it ran far ahead of the screen, the next chunk of it (up to a
        line end)."""
        target, shown = self._target, len(self._shown)
        if len(target) - shown <= self.CHUNK_CHARS or not target.startswith(self._shown):
            return target
        cut = target.rfind("\n", shown, shown + self.CHUNK_CHARS) + 1
        return target[: cut if cut > shown else shown + self.CHUNK_CHARS]

    async def _render_text(self, text: str, whole: bool) -> None:
        async with self.lock:
            grows = text.startswith(self._shown) and self._markdown == self._shown
            if whole or not grows:
                await self._render_whole(text)
            else:
                await self._render_tail(text)
            self._shown, self._patched = text, not (whole or not grows)

    async def _render_whole(self, text: str) -> None:
        parser = MarkdownIt("gfm-like")  # its own parser: it may run in a thread
        if len(text) > THREAD_PARSE_CHARS:
            tokens = await asyncio.get_running_loop().run_in_executor(None, parser.parse, text)
        else:
            tokens = parser.parse(text)
        blocks = list(self._parse_markdown(tokens))
        self._markdown = text
        with self.app.batch_update():
            await self.remove_children()
            if blocks:
                await self.mount_all(blocks)
        self._tail_offset = self._tail_line = 0
        self._settle(text, tokens, blocks, [])
        self._contents_changed()

    async def _render_tail(self, text: str) -> None:
        tail = text[self._tail_offset :]
        tokens = self._tail_parser.parse(tail)
        blocks = list(self._parse_markdown(tokens))
        for block in blocks:
            start, end = block.source_range
            block.source_range = (start + self._tail_line, end + self._tail_line)
        items = _item_lines(blocks[-1]) if blocks else []
        self._markdown = text
        old = self._tail_block
        # Growing the tail in place needs no batch: a frame painted meanwhile shows it a
        # little less grown. Replacing it does, or a frame could show neither block.
        if old is not None and blocks and await _update_in_place(old, blocks[0], self._tail_items):
            shown: list[Widget] = [old, *blocks[1:]]
            if len(shown) > 1:
                await self.mount_all(shown[1:])
        else:
            shown = list(blocks)
            with self.app.batch_update():
                if old is not None:
                    await old.remove()
                if shown:
                    await self.mount_all(shown)
        self._settle(tail, tokens, shown, items)
        if any(_is_heading(block) for block in blocks) or _is_heading(old):
            self._contents_changed()

    def _settle(
        self, parsed: str, tokens: list[Token], shown: list[Widget], items: list[tuple[int, int]]
    ) -> None:
        """Move the tail to the last top-level block of what was just parsed: everything
        before it is settled, as no later text can change it. `items`: the lines of the last
        block's items when it is a list, so that the next render can keep those unchanged."""
        start = next(
            (t.map[0] for t in reversed(tokens) if t.map is not None and t.level == 0), None
        )
        self._tail_items = [(first - (start or 0), end - (start or 0)) for first, end in items]
        if start is None:
            self._tail_block = None
            return
        line_starts = [0, *(match.end() for match in LINE_BREAK.finditer(parsed))]
        self._tail_offset += line_starts[min(start, len(line_starts) - 1)]
        self._tail_line += start
        last = shown[-1] if shown else None
        starts_tail = isinstance(last, MarkdownBlock) and last.source_range[0] == self._tail_line
        self._tail_block = last if starts_tail else None

    def _contents_changed(self) -> None:
        self._table_of_contents = None
        self.post_message(
            Markdown.TableOfContentsUpdated(self, self.table_of_contents).set_sender(self)
        )


@functools.cache
def _warm_highlighter() -> None:
    """Load Pygments and its Python lexer on a thread, once: done by the first code fence
    instead, it holds that frame some 30-50 ms."""

    def warm() -> None:
        MarkdownFence.highlight("x = 1", "python")

    threading.Thread(target=warm, daemon=True).start()


def _is_heading(block: Widget | None) -> bool:
    return block is not None and block.name == "heading_open"


async def _update_in_place(old: Widget, new: MarkdownBlock, items: list[tuple[int, int]]) -> bool:
    """Give `old` the content of `new` where that renders as mounting `new` would (a
    paragraph, code fence, table or list that grew); False where `old` must be replaced.
    `items`: the lines of the items of `old`, when it is a list."""
    if type(old) is not type(new):
        return False
    if isinstance(old, MarkdownParagraph):
        old.set_content(new._content)
        old._inline_token = new._inline_token
    elif isinstance(old, MarkdownFence) and isinstance(new, MarkdownFence):
        old.code, old.lexer = new.code, new.lexer
        old._highlighted_code = new._highlighted_code
        old.set_content(new._highlighted_code)
    elif isinstance(old, MarkdownTable) and isinstance(new, MarkdownTable):
        if not await _update_table(old, new):
            return False
    elif isinstance(old, MarkdownList) and isinstance(new, MarkdownList):
        if not await _update_list(old, new, items):
            return False
    else:
        return False  # headings and the rest are short-lived as a tail: replaced
    old._token = new._token
    old.source_range = new.source_range
    return True


def _item_lines(block: MarkdownBlock) -> list[tuple[int, int]]:
    if not isinstance(block, MarkdownList):
        return []
    return [
        (item._token.map[0], item._token.map[1])
        for item in block._blocks
        if isinstance(item, MarkdownListItem) and item._token.map is not None
    ]


async def _update_list(old: MarkdownList, new: MarkdownList, items: list[tuple[int, int]]) -> bool:
    """Grow a list item by item: items before the last are complete and stay, with their
    numbers updated (an ordered list pads them to the widest); the last one and any new
    ones are made by the list's own compose."""
    lines = _item_lines(new)
    rows = list(old.query_children(Horizontal))
    if not items or len(rows) != len(items) or lines[: len(items) - 1] != items[:-1]:
        return False
    fresh = list(new.compose())
    if len(fresh) != len(lines) or len(fresh) < len(rows):
        return False
    last = len(rows) - 1
    if await _update_row(rows[-1], fresh[last]):
        last += 1
    else:
        await rows[-1].remove()
    for row, made in zip(rows[:last], fresh, strict=False):
        bullet, symbol = row.query_children(MarkdownBullet).first(), made._pending_children[0]
        assert isinstance(symbol, MarkdownBullet)
        if bullet.symbol != symbol.symbol:
            widens = len(bullet.symbol) != len(symbol.symbol)
            bullet.symbol = symbol.symbol
            if widens:  # "9. " to "10. ": the bullet is as wide as its symbol
                bullet.refresh(layout=True)
    if fresh[last:]:
        await old.mount_all(fresh[last:])
    return True


async def _update_row(row: Widget, made: Widget) -> bool:
    """A list item's row (bullet, then a Vertical of its blocks) updated in place from a
    freshly composed one, block by block; False if their blocks do not pair up."""
    kept = list(row.query_children(Vertical).first().children)
    body = made._pending_children[1]
    blocks = body._pending_children
    if len(kept) != len(blocks) or not all(isinstance(b, MarkdownBlock) for b in blocks):
        return False
    for old, new in zip(kept, blocks, strict=True):
        if not await _update_in_place(old, new, []):
            return False
    return True


async def _update_table(old: MarkdownTable, new: MarkdownTable) -> bool:
    """Grow a table row by row, its cells made as MarkdownTableContent.compose makes them
    (Textual's own table update mounts plain Statics instead)."""
    headers, rows = new._get_headers_and_rows()
    content = old.query_children(MarkdownTableContent).first()
    kept = old._rows
    if (
        [h.markup for h in headers] != [h.markup for h in old._headers]
        or len(rows) < len(kept)
        or any(len(row) != len(headers) for row in rows)
    ):
        return False
    cells = list(content.query_children(MarkdownTableCellContents))[len(headers) :]
    before = [cell for row in kept for cell in row]
    after = [cell for row in rows for cell in row][: len(before)]
    if len(cells) != len(before):
        return False
    for widget, was, now in zip(cells, before, after, strict=True):
        if was.markup != now.markup:
            widget.update(now)
            widget.tooltip = now.plain
    added = [
        MarkdownTableCellContents(
            cell, classes=f"row{number} cell", name=f"cell{number}.{column}"
        ).with_tooltip(cell.plain)
        for number, row in enumerate(rows[len(kept) :], len(kept) + 1)
        for column, cell in enumerate(row, 1)
    ]
    if added:
        await content.mount_all(added)
    old._rows = content.rows = rows
    content.last_row = len(rows)
    return True
