"""The answer as Markdown, rendered while it streams in.

Why not Textual's own `Markdown.append` / `MarkdownStream`? Measured on 5,000 tokens of
Markdown (benchmarks/tui_render.py): it re-renders as often as it can, and frames froze for
300-500 ms; after `update()` it resumes parsing from the last line, so a table or list going
on after a `show()` renders wrong; and a table it grows ends with cells unlike a fresh one's.

So this view keeps the document as a settled prefix (whole top-level blocks, which later
text cannot change) and a live tail (the last top-level block), and re-parses only the tail;
a tail that grew is updated in place (paragraph, code fence, table, list) rather than
rebuilt. Renders are paced by one RenderClock per app: at most one a frame, a flood taken in
CHUNK_CHARS pieces, many streams in turns. The blocks are Textual's own, made by
`Markdown._parse_markdown`, so the finished document is the one `Markdown(text)` shows,
widget for widget (tests/ninja_tui/test_answer_view.py checks that).
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from typing import ClassVar

from markdown_it import MarkdownIt
from markdown_it.token import Token
from textual._arrange import DockArrangeResult
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock, MarkdownFence

from myninja.ninja_tui.widgets.markdown_growth import is_heading, item_lines, update_in_place
from myninja.ninja_tui.widgets.render_pacing import FRAME_S, QUIET_GC, RenderClock

LINE_BREAK = re.compile(r"\r\n|\r|\n")
# A link reference definition changes links anywhere in the document, so a tail parsed on its
# own may miss one: a document with any gets one whole re-render when the stream finishes.
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:", re.MULTILINE)
# Above this size the whole-document parse runs in a thread, as Markdown.update does.
THREAD_PARSE_CHARS = 8_000


class AnswerView(Markdown):
    """Markdown that can be streamed into: `stream()` tokens, then `finish()`; `show()` for
    a whole document. `text` is everything given so far, rendered or about to be."""

    DEFAULT_CSS = """
    AnswerView {
        height: auto;
    }
    """

    FRAME_S: ClassVar[float] = FRAME_S
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
        items = item_lines(blocks[-1]) if blocks else []
        self._markdown = text
        old = self._tail_block
        # Growing the tail in place needs no batch: a frame painted meanwhile shows it a
        # little less grown. Replacing it does, or a frame could show neither block.
        if old is not None and blocks and await update_in_place(old, blocks[0], self._tail_items):
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
        if any(is_heading(block) for block in blocks) or is_heading(old):
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
