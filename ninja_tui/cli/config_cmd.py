"""`myninja config`: where the config lives and what is in effect."""

from __future__ import annotations

import json

import click
import tomlkit

from myninja import paths
from myninja.config_file import load_config, masked


@click.group()
def config() -> None:
    """Show the configuration."""


@config.command("path")
def config_path() -> None:
    """Print the config file's path."""
    click.echo(paths.config_file())


@config.command("show")
@click.option("--json", "as_json", is_flag=True)
def config_show(as_json: bool) -> None:
    """Print the effective config (defaults, file, environment), secrets masked."""
    data = masked(load_config().model_dump(mode="json", exclude_none=True))
    click.echo(json.dumps(data, indent=2) if as_json else tomlkit.dumps(data).rstrip())
