"""Load through the real worker: 200 scripted tasks at once with the app being typed into, and
50 tasks streaming on the tiny model. The figures are the benchmark's (benchmarks/load.py);
here only what must hold: every task finished with its answer and one final event, nothing
lost or doubled, every key typed reached the app."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.load import model_load, scripted_load

pytestmark = pytest.mark.heavy


def test_200_scripted_tasks_at_once_while_the_app_is_typed_into(tmp_path: Path) -> None:
    figures = asyncio.run(scripted_load(tmp_path / "home", tasks=200, keys=40))
    assert figures["statuses"] == {"done": 200}
    assert figures["tasks_without_answer"] == 0
    assert figures["duplicated_final_events"] == 0
    assert figures["events"] >= 200 * 5  # every task's run, not just its end, was recorded
    assert figures["tui_keys_loaded"]["keys_arrived"] == 40
    assert figures["tui_keys_idle"]["keys_arrived"] == 40
    assert figures["worker_peak_mib"] >= figures["worker_rss_idle_mib"] > 0


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 50 tasks queue on one small model: minutes on two cores
def test_50_tasks_streaming_on_the_tiny_model(tmp_path: Path) -> None:
    figures = asyncio.run(model_load(tmp_path / "home", tasks=50))
    assert figures["statuses"] == {"done": 50}
    assert figures["tasks_without_answer"] == 0
    assert figures["duplicated_final_events"] == 0
    assert figures["completion_tokens"] > 50
