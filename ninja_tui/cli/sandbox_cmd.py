"""`myninja sandbox`: what confinement this machine gives model-written code, and a way to run
any command under it, to see it and test it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from myninja.errors import EXIT_FAILED, EXIT_OK, UsageError


@click.group()
def sandbox() -> None:
    """Inspect and try the sandbox that model-written code runs in."""


@sandbox.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check(as_json: bool) -> int:
    """Which confinement this machine offers, and what is missing. Exit 1 when code would not
    be run (the kernel cannot confine it and the config asks for it)."""
    from myninja.skills.coder import confinement, process_cgroup

    offer = confinement.offer()
    mode = confinement.mode()
    runs = mode == "in-process" or offer["ok"]
    counted_by = process_cgroup.how_counted()
    if as_json:
        report = {"mode": mode, "code_runs": runs, "processes_counted_by": counted_by, **offer}
        click.echo(json.dumps(report, indent=2))
        return EXIT_OK if runs else EXIT_FAILED
    if offer["ok"]:
        abi = offer.get("landlock_abi")
        click.echo(
            f"kernel confinement: available ({confinement.KERNEL_LAYERS}; Landlock ABI {abi})"
        )
    else:
        click.echo("kernel confinement: not available")
        for item in offer["missing"]:
            click.echo(f"  missing: {item}")
    click.echo(f"mode: {mode} (config sandbox.confinement)")
    click.echo(f"processes counted by: {counted_by}")
    if mode == "in-process":
        click.echo("model-written code runs under the in-process guard alone (weaker)")
    elif runs:
        click.echo("model-written code runs confined by the kernel")
    else:
        click.echo(f"model-written code is not run; {confinement.OPT_IN} in config")
    return EXIT_OK if runs else EXIT_FAILED


@sandbox.command("run", context_settings={"ignore_unknown_options": True})
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The folder the command may write (default: the current one).",
)
@click.option("--network", is_flag=True, help="Leave the network open, as network=True runs do.")
@click.option("--timeout", type=float, default=None, help="Wall time in seconds (default 10).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(
    workspace: Path | None, network: bool, timeout: float | None, command: tuple[str, ...]
) -> int:
    """Run COMMAND under exactly the confinement model-written code gets:
    myninja sandbox run -- cat ~/.ssh/id_rsa"""
    from dataclasses import replace

    from myninja.skills.coder.sandbox import DEFAULT_LIMITS, run_command

    folder = (workspace or Path.cwd()).expanduser()
    if not folder.is_dir():
        raise UsageError(f"sandbox run: no such folder: {folder}; give an existing --workspace")
    limits = DEFAULT_LIMITS
    if timeout is not None:
        limits = replace(limits, wall_s=timeout, cpu_s=max(1, int(timeout)))
    stdin = None if sys.stdin.isatty() else sys.stdin.read()
    result = run_command(command, workspace=folder, stdin=stdin, limits=limits, network=network)
    sys.stdout.write(result.stdout)
    sys.stdout.flush()
    sys.stderr.write(result.stderr)
    if os.environ.get("MYNINJA_DEBUG"):
        sys.stderr.write(f"[sandbox] confinement: {result.confinement}\n")
    return result.exit_code if result.exit_code >= 0 else 128 - result.exit_code
