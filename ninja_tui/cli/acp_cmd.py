"""`myninja acp`: serve the Agent Client Protocol on stdin/stdout, for an editor to start."""

from __future__ import annotations

import asyncio
import logging

import click

from myninja.config_file import load_config


@click.command()
def acp() -> int:
    """Talk the Agent Client Protocol (version 1) on stdin/stdout: an editor such as Zed
    starts this command, and its prompts become myninja tasks."""
    load_config()  # a broken config is one line on stderr, before the editor is answered
    from acp import run_agent

    from myninja.ninja_tui.acp.agent import MyninjaAgent

    # stdout carries the protocol: anything else goes to stderr, the editor's log.
    logging.basicConfig(level=logging.WARNING, format="myninja acp: %(message)s")
    asyncio.run(run_agent(MyninjaAgent()))
    return 0
