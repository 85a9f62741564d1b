"""`myninja worker`: the background worker (started on demand by `run --detach`, `schedule`
and the app), and `worker install|uninstall`: it as a systemd user service (worker_unit.py)."""

from __future__ import annotations

import click

from myninja import paths
from myninja.agent_graph.tasks.worker import run_worker
from myninja.config_file import load_config
from myninja.ninja_tui.cli import worker_unit


@click.group(invoke_without_command=True)
@click.option(
    "--stay", is_flag=True, help="Never exit when idle (as the installed service runs it)."
)
@click.pass_context
def worker(ctx: click.Context, stay: bool) -> int | None:
    """The background worker. With no command, run it in the foreground for this data dir
    until it has been idle a while (`worker_idle_s`; --stay: until stopped)."""
    if ctx.invoked_subcommand is not None:
        return None
    return run_worker(load_config(), paths.data_dir(), stay=stay)


@worker.command("install")
@click.option("--print", "print_only", is_flag=True, help="Print the unit; write nothing.")
@click.option("--force", is_flag=True, help="Replace a different unit of the same name.")
def worker_install(print_only: bool, force: bool) -> None:
    """Run the worker as a systemd user service (from login on, so schedules run without a
    myninja command started first). Writes the unit and prints the commands that start it."""
    text = worker_unit.unit_text()
    if print_only:
        click.echo(text, nl=False)
        return
    if not worker_unit.have_systemd():
        click.echo(worker_unit.without_systemd(text), nl=False)
        return
    path, written = worker_unit.install(force)
    click.echo(f"{'wrote' if written else 'already installed:'} {path}")
    click.echo(f"start it now and at every login with:\n  {worker_unit.ENABLE}")


@worker.command("uninstall")
def worker_uninstall() -> None:
    """Remove the systemd user service that `worker install` wrote."""
    path = worker_unit.uninstall()
    if path is None:
        click.echo(f"no unit at {worker_unit.unit_path()}")
        return
    click.echo(f"removed {path}")
    click.echo(
        "stop the running one with:\n  systemctl --user stop myninja-worker && "
        "systemctl --user daemon-reload"
    )
