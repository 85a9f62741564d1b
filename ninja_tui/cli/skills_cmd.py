"""`myninja skills`: the skills this installation has, where each came from, and its tools."""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

import click

from myninja.config import Config, load_config
from skills.registry import SkillRegistry, load_skills


def _registry() -> SkillRegistry:
    config = load_config()
    registry = load_skills(config)
    if config.mcp:
        _add_mcp_skills(registry, config)
    # A skipped plugin is one line on stderr, so stdout stays clean for --json.
    for warning in registry.warnings:
        click.echo(f"myninja: warning: {warning}", err=True)
    return registry


def _add_mcp_skills(registry: SkillRegistry, config: Config) -> None:
    """The configured MCP servers' tools, asked of each server (which is started and stopped)."""
    from skills.mcp_bridge import McpPool, mcp_skills

    async def listed() -> tuple[list[Any], list[str]]:
        pool = McpPool(config.mcp)
        try:
            return await mcp_skills(config.mcp, pool)
        finally:
            await pool.aclose()

    found, warnings = asyncio.run(listed())
    for skill in found:
        why = registry.add(skill, f"mcp:{skill.name}")
        if why:
            warnings.append(f"MCP server {skill.name!r} skipped: {why}")
    registry.warnings.extend(warnings)


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
    if info["hooks"]:
        click.echo(f"hooks: {', '.join(info['hooks'])}")
    for agent, persona in info["personas"].items():
        click.echo(f"adds agent {agent} (model: {persona['model'] or 'the configured one'})")
    for tool in info["tools"]:
        click.echo(f"\ntool {tool['name']} (needs {_joined(tool['permissions'], 'nothing')})")
        click.echo(textwrap.indent(tool["description"], "  "))
        click.echo(textwrap.indent(json.dumps(tool["parameters"], indent=2), "  "))
