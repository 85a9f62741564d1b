"""Growing a streamed Markdown document's last block in place: a paragraph, code fence, table
or list that got longer takes its new content without being unmounted and rebuilt, and ends as
the block a fresh `Markdown(text)` would have made. This reaches into Textual's Markdown
widgets (textual<9 is pinned for it); tests/ninja_tui/test_answer_view.py compares the result
with a fresh render widget for widget."""

from __future__ import annotations

from textual.containers import Horizontal, Vertical
from textual.widget import Widget
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


def is_heading(block: Widget | None) -> bool:
    return block is not None and block.name == "heading_open"


async def update_in_place(old: Widget, new: MarkdownBlock, items: list[tuple[int, int]]) -> bool:
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


def item_lines(block: MarkdownBlock) -> list[tuple[int, int]]:
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
    lines = item_lines(new)
    parts = [_row_parts(row) for row in old.query_children(Horizontal)]
    rows = [part for part in parts if part is not None]  # else not composed yet
    if (
        not items
        or len(rows) != len(items)
        or len(parts) != len(rows)
        or lines[: len(items) - 1] != items[:-1]
    ):
        return False
    fresh = list(new.compose())
    if len(fresh) != len(lines) or len(fresh) < len(rows):
        return False
    last = len(rows) - 1
    if await _update_row(rows[-1][1], fresh[last]):
        last += 1
    else:
        await old.query_children(Horizontal).last().remove()
    for (bullet, _), made in zip(rows[:last], fresh, strict=False):
        symbol = made._pending_children[0]
        assert isinstance(symbol, MarkdownBullet)
        if bullet.symbol != symbol.symbol:
            widens = len(bullet.symbol) != len(symbol.symbol)
            bullet.symbol = symbol.symbol
            if widens:  # "9. " to "10. ": the bullet is as wide as its symbol
                bullet.refresh(layout=True)
    if fresh[last:]:
        await old.mount_all(fresh[last:])
    return True


def _row_parts(row: Widget) -> tuple[MarkdownBullet, Vertical] | None:
    """A list row's bullet and body, once the row has composed them."""
    match list(row.children):
        case [MarkdownBullet() as bullet, Vertical() as body]:
            return bullet, body
    return None


async def _update_row(kept_body: Vertical, made: Widget) -> bool:
    """A list item's row (bullet, then a Vertical of its blocks) updated in place from a
    freshly composed one, block by block; False if their blocks do not pair up."""
    kept = list(kept_body.children)
    body = made._pending_children[1]
    blocks = body._pending_children
    if len(kept) != len(blocks) or not all(isinstance(b, MarkdownBlock) for b in blocks):
        return False
    for old, new in zip(kept, blocks, strict=True):
        if not await update_in_place(old, new, []):
            return False
    return True


async def _update_table(old: MarkdownTable, new: MarkdownTable) -> bool:
    """Grow a table row by row, its cells made as MarkdownTableContent.compose makes them
    (Textual's own table update mounts plain Statics instead)."""
    headers, rows = new._get_headers_and_rows()
    content = next(iter(old.query_children(MarkdownTableContent)), None)
    kept = old._rows
    if (
        content is None  # not composed yet, mounted a moment ago
        or [h.markup for h in headers] != [h.markup for h in old._headers]
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
