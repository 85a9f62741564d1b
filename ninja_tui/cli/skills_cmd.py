"""`myninja skills`: the skills this installation has, where each came from, and its tools."""

from __future__ import annotations

import json
import textwrap

import click

from myninja.config import load_config
from skills.registry import SkillRegistry, load_skills


def _registry() -> SkillRegistry:
    registry = load_skills(load_config())
    # A skipped plugin is one line on stderr, so stdout stays clean for --json.
    for warning in registry.warnings:
        click.echo(f"myninja: warning: {warning}", err=True)
    return registry


def _joined(items: list[str], empty: str) -> str:
    return ", ".join(items) if items else empty


@click.group()
def skills() -> None:
    """List the installed skills (built-in and plugins) and their tools."""


@skills.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def skills_list(as_json: bool) -> None:
    """Each skill: its source, the permissions it needs, its tools and agents."""
    rows = _registry().describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']:<12} {row['source']:<28} "
            f"needs {_joined(row['permissions'], 'no permissions')}; "
            f"tools {_joined(row['tools'], 'none')}; "
            f"for {_joined(row['agents'], 'every agent')}"
        )
        click.echo(f"{'':<12} {row['description']}")


@skills.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def skills_info(name: str, as_json: bool) -> None:
    """One skill in full: each tool with its JSON schema and permissions."""
    info = _registry().describe_skill(name)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['name']}: {info['description']}")
    click.echo(f"source: {info['source']}")
    click.echo(f"permissions: {_joined(info['permissions'], 'none')}")
    click.echo(f"agents: {_joined(info['agents'], 'every agent')}")
    for agent, persona in info["personas"].items():
        click.echo(f"adds agent {agent} (model: {persona['model'] or 'the configured one'})")
    for tool in info["tools"]:
        click.echo(f"\ntool {tool['name']} (needs {_joined(tool['permissions'], 'nothing')})")
        click.echo(textwrap.indent(tool["description"], "  "))
        click.echo(textwrap.indent(json.dumps(tool["parameters"], indent=2), "  "))
