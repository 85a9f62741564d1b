"""The `myninja` command: the group, its subcommands, and the one place errors become exit codes.

A user's mistake prints one line on stderr and exits with its code (docs/architecture.md); a
traceback appears only with `--debug` (or MYNINJA_DEBUG=1)."""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
import traceback

import click

from myninja import __version__, paths
from myninja.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    MyninjaError,
    UsageError,
    printable,
)

# name -> "module:attribute". A command's module is imported only when that command runs (or
# for --help), so `myninja` opening the app does not wait for langgraph, uvicorn and the rest.
COMMANDS = {
    "ask": "myninja.ninja_tui.cli.ask:ask",
    "run": "myninja.ninja_tui.cli.run_cmd:run",
    "answer": "myninja.ninja_tui.cli.answer_cmd:answer",
    "tasks": "myninja.ninja_tui.cli.tasks_cmd:tasks",
    "feedback": "myninja.ninja_tui.cli.feedback_cmd:feedback",
    "memory": "myninja.ninja_tui.cli.memory_cmd:memory",
    "export": "myninja.ninja_tui.cli.export_cmd:export",
    "index": "myninja.ninja_tui.cli.index_cmd:index",
    "eval": "myninja.ninja_tui.cli.eval_cmd:eval_command",
    "config": "myninja.ninja_tui.cli.config_cmd:config",
    "keys": "myninja.ninja_tui.cli.keys_cmd:keys",
    "backends": "myninja.ninja_tui.cli.backends_cmd:backends",
    "calendars": "myninja.ninja_tui.cli.calendars_cmd:calendars",
    "skills": "myninja.ninja_tui.cli.skills_cmd:skills",
    "serve": "myninja.ninja_tui.cli.serve_cmd:serve",
    "neuron": "myninja.ninja_tui.cli.neuron_cmd:neuron",
    "worker": "myninja.ninja_tui.cli.worker_cmd:worker",
    "sandbox": "myninja.ninja_tui.cli.sandbox_cmd:sandbox",
    "usage": "myninja.ninja_tui.cli.usage_cmd:usage",
    "schedule": "myninja.ninja_tui.cli.schedule_cmd:schedule",
    "acp": "myninja.ninja_tui.cli.acp_cmd:acp",
    "web": "myninja.ninja_tui.cli.web_cmd:web",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name].split(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
)
@click.version_option(__version__, prog_name="myninja")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """myninja: a terminal personal assistant with a local agent runtime.

    With no command it opens the app."""
    if ctx.invoked_subcommand is None:
        from myninja.config_file import load_config
        from myninja.ninja_tui.app import MyninjaApp

        # A broken config is one line here, not a crash inside the app.
        MyninjaApp(config=load_config()).run()


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("MYNINJA_DEBUG", "") not in ("", "0")


def _environment_error(exc: Exception) -> MyninjaError | None:
    """A file or folder the person can fix (read-only, full, a file in the way) or a damaged
    database, met where no command expected it: one line instead of "internal error"."""
    if isinstance(exc, OSError):
        from myninja.agent_graph.history.connection import describe_os_error

        return describe_os_error(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        from myninja.agent_graph.history.connection import damaged

        if damaged(exc):
            return MyninjaError(
                f"a database in {paths.data_dir()} is damaged ({exc})",
                hint="move history.db or checkpoints.db aside to start a fresh one",
            )
    return None


def _check_utf8(argv: list[str]) -> None:
    """Arguments that are not UTF-8 reach Python as lone surrogates (PEP 383) and fail wherever
    they are stored or printed: refuse them up front, in one line."""
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            try:
                shown = repr(os.fsencode(arg))
            except UnicodeError:
                shown = ascii(arg)
            raise UsageError(
                f"argument {shown} is not valid UTF-8 text",
                hint="give text and file names as UTF-8",
            ) from None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    debug = _debug_requested(argv)
    try:
        _check_utf8(argv)
        code = cli.main(args=argv, prog_name="myninja", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        if not isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
            exc.message = printable(exc.message)  # it may quote an argument
        exc.show()
        code = EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("myninja: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except Exception as exc:
        if debug:
            traceback.print_exc()
        error = exc if isinstance(exc, MyninjaError) else _environment_error(exc)
        if error is not None:
            print(f"myninja: error: {error.one_line()}", file=sys.stderr)
            code = error.exit_code
        else:
            print(
                f"myninja: internal error: {type(exc).__name__}: {exc} "
                "(run again with --debug for the traceback, and please report it)",
                file=sys.stderr,
            )
            code = EXIT_FAILED
    sys.exit(code if isinstance(code, int) else 0)
