from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from myninja.agent_graph.history import HistoryStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "history.db") as opened:
        yield opened
