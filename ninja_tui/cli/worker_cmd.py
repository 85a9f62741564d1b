"""`myninja worker`: the background worker (started on demand by `run --detach`)."""

from __future__ import annotations

import click

from myninja import paths
from myninja.agent_graph.tasks.worker import run_worker
from myninja.config_file import load_config


@click.command(hidden=True)
def worker() -> int:
    """Run the background worker for this data dir until it has been idle a while."""
    return run_worker(load_config(), paths.data_dir())
