from __future__ import annotations

from pathlib import Path

import pytest
from sqlite_utils import Database

from myninja import paths
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.migrations import MIGRATIONS, migrate, migration


def _recorded(store: HistoryStore) -> list[dict]:
    return list(store.db["_migrations"].rows)


ALL = [m.__name__ for m in MIGRATIONS]  # the registered ones, in order


def test_first_open_applies_and_records_migrations(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        assert store.migrated == ALL
        assert ALL[0] == "m001_initial"
        assert [row["name"] for row in _recorded(store)] == ALL
        tables = set(store.db.table_names())
        assert {"tasks", "events", "branches", "questions", "citations", "feedback"} <= tables
        assert {"route_corrections", "tasks_fts", "citations_fts"} <= tables
        assert {"memories", "memories_fts"} <= tables


def test_reopening_does_not_rerun_migrations(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.db") as store:
        store.create_task("t1", "kept across opens")
        first = _recorded(store)
    with HistoryStore(tmp_path / "h.db") as store:
        assert store.migrated == []
        assert _recorded(store) == first  # same row, same applied_at
        assert store.get_task("t1")["text"] == "kept across opens"


def test_migration_added_later_runs_once(store: HistoryStore) -> None:
    store.create_task("t1", "older than the new column")
    calls: list[str] = []

    def m002_tags(db: Database) -> None:
        calls.append("m002_tags")
        db["tasks"].add_column("tags", str)

    assert migrate(store.db, [*MIGRATIONS, m002_tags]) == ["m002_tags"]
    assert migrate(store.db, [*MIGRATIONS, m002_tags]) == []
    assert calls == ["m002_tags"]
    assert [row["name"] for row in _recorded(store)] == [*ALL, "m002_tags"]
    store.update_task("t1", tags="a,b")
    assert store.get_task("t1")["tags"] == "a,b"


def test_failed_migration_leaves_nothing_behind(store: HistoryStore) -> None:
    def m002_broken(db: Database) -> None:
        db["tasks"].add_column("half_done", str)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        migrate(store.db, [*MIGRATIONS, m002_broken])
    assert "half_done" not in store.db["tasks"].columns_dict
    assert [row["name"] for row in _recorded(store)] == ALL


def test_a_name_cannot_be_registered_twice() -> None:
    def m001_initial(db: Database) -> None:
        pass

    before = list(MIGRATIONS)
    with pytest.raises(ValueError, match="twice"):
        migration(m001_initial)
    assert before == MIGRATIONS


def test_connection_settings(store: HistoryStore) -> None:
    def pragma(name: str) -> object:
        return store.db.execute(f"PRAGMA {name}").fetchone()[0]

    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 1  # NORMAL
    assert pragma("busy_timeout") == 10000
    assert pragma("foreign_keys") == 1


def test_default_path_is_in_the_data_dir() -> None:
    with HistoryStore() as store:
        assert store.path == paths.data_dir() / "history.db"
        store.create_task("t1", "hello")
    assert (paths.data_dir() / "history.db").is_file()
