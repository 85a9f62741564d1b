"""`myninja keys`: store gateway API keys in the keyring (never printed back)."""

from __future__ import annotations

import json
import sys

import click

from myninja.backends.keys import KeyStore, key_store
from myninja.config_file import load_config
from myninja.errors import UsageError


def _store() -> KeyStore:
    return key_store(load_config())


@click.group()
def keys() -> None:
    """Manage API keys for gateway backends and web search providers, and calendar passwords
    (cal-NAME)."""


@keys.command("set")
@click.argument("name")
def keys_set(name: str) -> None:
    """Store the key NAME; the value is read from a hidden prompt or stdin, never argv."""
    if sys.stdin.isatty():
        value = click.prompt(f"Key for {name}", hide_input=True)
    else:
        try:
            value = sys.stdin.readline().strip()
        except UnicodeDecodeError:
            raise UsageError("the key on stdin is not UTF-8 text") from None
    store = _store()
    if store.uses_file:
        click.echo(
            f"warning: storing the key in a plain file ({store.file}, mode 0600), not in a keyring",
            err=True,
        )
    store.set(name, value)
    click.echo(f"stored key {name}", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
def keys_list(as_json: bool) -> None:
    """List the names of stored keys (values are never shown)."""
    names = _store().names()
    if as_json:
        click.echo(json.dumps(names))
    else:
        for name in names:
            click.echo(name)


@keys.command("delete")
@click.argument("name")
def keys_delete(name: str) -> None:
    """Delete the key NAME."""
    _store().delete(name)
    click.echo(f"deleted key {name}", err=True)
