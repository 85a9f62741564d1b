"""What the agents did, kept in history.db: tasks, events, branches, questions, citations,
feedback and routing corrections, searchable with FTS5."""

from .store import HistoryStore

__all__ = ["HistoryStore"]
