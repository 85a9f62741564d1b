"""What the agents did, kept in history.db: tasks, events, branches, questions, citations,
feedback and routing corrections, searchable with FTS5."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import HistoryStore

__all__ = ["HistoryStore"]


def __getattr__(name: str) -> Any:
    # The store (and sqlite-utils under it) is imported when first used: the app's first frame
    # and statuses.py's importers need none of it.
    if name == "HistoryStore":
        from .store import HistoryStore

        return HistoryStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
