"""AnswerView driven in a small host app: whatever way the text arrives (streamed in pieces of
any size, a burst, a show() halfway, a stored answer at the end), the view ends up with the
same blocks as Textual's Markdown given the whole text, compared block by block: type,
classes, size, position and rendered content."""

from __future__ import annotations

import asyncio
import gc
import random
from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Markdown

from myninja.ninja_tui.widgets.answer_view import AnswerView
from myninja.ninja_tui.widgets.render_pacing import QUIET_GC

ITEMS = "\n".join(f"{n}. item number {n} with `code` in it" for n in range(1, 13))
DOCUMENT = f"""# Report

Intro with **bold**, *emphasis*, `inline code` and a [link](https://example.com).
A second line in the same paragraph.

Setext heading
--------------

- first bullet
- second bullet, long enough to wrap around the narrow column of the test app twice over
  - nested bullet
  - another nested one
- third bullet

{ITEMS}

```python
def step(task):
    total = 0
    for branch in task.branches:
        total += branch.score

    return total
```

| Branch | Agent | Score |
|---|---|---:|
| b1 | writer | 7 |
| b2 | coder | **9** |
| b3 | critic | 4 |

> A quote
> over two lines

---

Paragraph then a table without a blank line:
| a | b |
|---|---|
| 1 | 2 |

    indented code

Last words."""

REFERENCES = """Links by reference: [the docs][docs] and [home].

- a list item with [docs] too

[docs]: https://example.com/docs
[home]: https://example.com
"""


class Host(App[None]):
    CSS = "VerticalScroll { height: 1fr; }"

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield AnswerView(id="view")
            yield Markdown(id="reference")

    @property
    def view(self) -> AnswerView:
        return self.query_one("#view", AnswerView)


def pieces(text: str, rng: random.Random, longest: int) -> list[str]:
    cuts, at = [], 0
    while at < len(text):
        step = rng.randint(1, longest)
        cuts.append(text[at : at + step])
        at += step
    return cuts


def blocks(markdown: Markdown) -> list[tuple[Any, ...]]:
    """Every widget under `markdown` as it is laid out and rendered (ids left out: Textual
    numbers heading ids by object identity)."""
    top = markdown.region.offset
    rows = []
    for widget in markdown.walk_children(Widget, with_self=False):
        shown = widget.render()
        content = getattr(shown, "markup", None) or getattr(shown, "plain", None)
        region = widget.region
        rows.append(
            (
                type(widget).__name__,
                sorted(widget.classes),
                widget.name,
                (region.x - top.x, region.y - top.y, region.width, region.height),
                content if content is not None else type(shown).__name__,
            )
        )
    return rows


async def both_renders(pilot: Pilot[None], text: str) -> tuple[list[Any], list[Any]]:
    """The view's widgets and those of Markdown(text), once the view is checked to hold
    `text`; a caller asserts the two are equal."""
    app = pilot.app
    assert isinstance(app, Host)
    reference = app.query_one("#reference", Markdown)
    await reference.update(text)
    await pilot.pause()
    assert app.view.text == text
    assert app.view.source == text
    ours, theirs = blocks(app.view), blocks(reference)
    assert len(ours) > 3
    return ours, theirs


@pytest.mark.parametrize(("seed", "longest"), [(1, 1), (2, 4), (3, 12), (4, 40)])
async def test_streamed_pieces_end_as_markdown_renders_the_whole_text(
    seed: int, longest: int
) -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        for piece in pieces(DOCUMENT, random.Random(seed), longest):
            await app.view.stream(piece)
            if random.Random(seed + len(piece)).random() < 0.05:
                await pilot.pause()  # now and then the screen catches up mid-block
        await app.view.finish()
        ours, theirs = await both_renders(pilot, DOCUMENT)
        assert ours == theirs


async def test_a_stream_that_ran_ahead_of_the_screen_is_caught_up_by_finish() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        text = DOCUMENT * 4  # several screen chunks' worth, all before the first render
        for piece in pieces(text, random.Random(5), 6):
            await app.view.stream(piece)
        await app.view.finish()
        ours, theirs = await both_renders(pilot, text)
        assert ours == theirs


async def test_the_stored_final_answer_wins_over_what_streamed() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        for piece in pieces(DOCUMENT[:300], random.Random(6), 5):
            await app.view.stream(piece)
        final = "# Final\n\nThe **stored** answer, not the draft.\n\n- one\n- two\n"
        await app.view.finish(final)
        ours, theirs = await both_renders(pilot, final)
        assert ours == theirs
        assert not app.view.streaming


async def test_a_final_answer_that_goes_on_from_the_stream_is_appended() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        for piece in pieces(DOCUMENT[:500], random.Random(7), 5):
            await app.view.stream(piece)
        await app.view.finish(DOCUMENT)  # the stream lost its last tokens
        ours, theirs = await both_renders(pilot, DOCUMENT)
        assert ours == theirs


async def test_show_in_the_middle_of_a_stream_replaces_it_and_the_stream_goes_on() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        for piece in pieces(DOCUMENT[:400], random.Random(8), 5):
            await app.view.stream(piece)
        shown = "| a | b |\n|---|---|\n| 1 | 2 |\n"
        await app.view.show(shown)
        await pilot.pause()
        assert app.view.source == shown
        rest = "| 3 | 4 |\n\n- after\n- the table\n"
        for piece in pieces(rest, random.Random(9), 3):
            await app.view.stream(piece)
        await app.view.finish()
        ours, theirs = await both_renders(pilot, shown + rest)
        assert ours == theirs


async def test_a_burst_of_tokens_all_arrive_in_order() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        tokens = [f"w{n} " if n % 40 else f"w{n}\n\n" for n in range(3000)]
        # All at once, none awaited alone: a flood from several producers' worth of chunks.
        await asyncio.gather(*(app.view.stream(token) for token in tokens))
        await app.view.finish()
        ours, theirs = await both_renders(pilot, "".join(tokens))
        assert ours == theirs


async def test_show_of_the_same_text_changes_nothing() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        await app.view.show(DOCUMENT)
        await pilot.pause()
        before = list(app.view.children)
        await app.view.show(DOCUMENT)
        await app.view.finish(DOCUMENT)
        await pilot.pause()
        assert list(app.view.children) == before
        ours, theirs = await both_renders(pilot, DOCUMENT)
        assert ours == theirs


async def test_reference_links_resolve_once_the_stream_finishes() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        for piece in pieces(REFERENCES, random.Random(10), 4):
            await app.view.stream(piece)
        await app.view.finish()
        ours, theirs = await both_renders(pilot, REFERENCES)
        assert ours == theirs


async def test_full_collections_pause_while_streaming_and_resume_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(100):  # an earlier test's stream may still be resuming
        if QUIET_GC.saved is None:
            break
        await asyncio.sleep(0.02)
    monkeypatch.setattr(QUIET_GC, "RESUME_AFTER_S", 0.01)
    normal = gc.get_threshold()
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        await app.view.stream("# Title\n\nsome ")
        assert gc.get_threshold()[2] > normal[2]
        await app.view.finish()
        await pilot.pause(0.1)
        assert gc.get_threshold() == normal


async def test_a_view_removed_mid_stream_keeps_no_one_waiting() -> None:
    app = Host()
    async with app.run_test(size=(70, 40)) as pilot:
        view = app.view
        await view.stream(DOCUMENT[:200])
        await view.remove()
        await asyncio.wait_for(view.finish(DOCUMENT), 2)
        await pilot.pause()
        assert QUIET_GC.streams == 0
