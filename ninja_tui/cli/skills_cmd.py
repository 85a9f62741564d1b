"""`myninja skills`: the skills this installation has, where each came from, and its tools;
and the permissions each may use without asking (`grant`, `revoke`)."""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

import click

from myninja import paths
from myninja.config import Config
from myninja.config_file import load_config, update_config_file
from myninja.errors import UsageError
from myninja.ninja_tui.cli.params import Choice
from myninja.skills.api import Permission
from myninja.skills.registry import SkillRegistry, declared_permissions, load_skills

PERMISSIONS = [p.value for p in Permission]


def _registry(config: Config) -> SkillRegistry:
    registry = load_skills(config)
    if config.mcp:
        _add_mcp_skills(registry, config)
    # A skipped plugin is one line on stderr, so stdout stays clean for --json.
    for warning in registry.warnings:
        click.echo(f"myninja: warning: {warning}", err=True)
    return registry


def _add_mcp_skills(registry: SkillRegistry, config: Config) -> None:
    """The configured MCP servers' tools, asked of each server (which is started and stopped)."""
    from myninja.skills.mcp_bridge import McpPool, mcp_skills

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


def _with_grants(row: dict[str, Any], config: Config) -> dict[str, Any]:
    return {**row, "granted": sorted(config.skills.grants.get(row["name"], []))}


def _needs(row: dict[str, Any]) -> str:
    granted = f" (granted: {', '.join(row['granted'])})" if row["granted"] else ""
    return f"needs {_joined(row['permissions'], 'no permissions')}{granted}"


@click.group()
def skills() -> None:
    """The installed skills (built-in and plugins), their tools, and what each may do without
    asking."""


@skills.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def skills_list(as_json: bool) -> None:
    """Each skill: its source, the permissions it needs, its tools and agents."""
    config = load_config()
    rows = [_with_grants(row, config) for row in _registry(config).describe()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(
            f"{row['name']:<12} {row['source']:<28} "
            f"{_needs(row)}; "
            f"tools {_joined(row['tools'], 'none')}; "
            f"for {_joined(row['agents'], 'every agent')}"
        )
        click.echo(f"{'':<12} {row['description']}")


@skills.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def skills_info(name: str, as_json: bool) -> None:
    """One skill in full: each tool with its JSON schema and permissions."""
    config = load_config()
    info = _with_grants(_registry(config).describe_skill(name), config)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{info['name']}: {info['description']}")
    click.echo(f"source: {info['source']}")
    click.echo(f"permissions: {_joined(info['permissions'], 'none')}")
    click.echo(f"granted for good: {_joined(info['granted'], 'none (it asks)')}")
    click.echo(f"agents: {_joined(info['agents'], 'every agent')}")
    if info["hooks"]:
        click.echo(f"hooks: {', '.join(info['hooks'])}")
    for agent, persona in info["personas"].items():
        click.echo(f"adds agent {agent} (model: {persona['model'] or 'the configured one'})")
    for tool in info["tools"]:
        needs = _joined(tool["permissions"], "nothing")
        where = "; works in the task's workspace" if tool["workspace"] else ""
        click.echo(f"\ntool {tool['name']} (needs {needs}{where})")
        click.echo(textwrap.indent(tool["description"], "  "))
        click.echo(textwrap.indent(json.dumps(tool["parameters"], indent=2), "  "))


def _declared(name: str, config: Config) -> list[str]:
    """The permissions skill `name` declares (no MCP server is started for this)."""
    declared = declared_permissions(config)
    if name not in declared:
        raise UsageError(f"no skill named {name!r} (skills: {', '.join(declared) or 'none'})")
    return declared[name]


def _report(name: str, granted: list[str], as_json: bool) -> None:
    path = paths.config_file()
    if as_json:
        click.echo(json.dumps({"skill": name, "granted": granted, "config": str(path)}))
        return
    now = _joined(granted, "nothing; it asks for every permission it needs")
    click.echo(f"{name} may now use without asking: {now} (kept in {path})")


@skills.command("grant")
@click.argument("name")
@click.argument(
    "permissions", nargs=-1, required=True, type=Choice(PERMISSIONS), metavar="PERMISSION..."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def skills_grant(name: str, permissions: tuple[str, ...], as_json: bool) -> None:
    """Let skill NAME use PERMISSIONS for good, without asking ([skills.grants] in the config)."""
    config = load_config()
    declared = _declared(name, config)
    undeclared = sorted(set(permissions) - set(declared))
    if undeclared:
        raise UsageError(
            f"skill {name!r} does not need {', '.join(undeclared)} "
            f"(it needs {_joined(declared, 'no permissions')})",
            hint=f"grant only what `myninja skills info {name}` lists",
        )
    granted = sorted({*config.skills.grants.get(name, []), *permissions})
    update_config_file(paths.config_file(), {f"skills.grants.{name}": granted})
    _report(name, granted, as_json)


@skills.command("revoke")
@click.argument("name")
@click.argument("permissions", nargs=-1, type=click.Choice(PERMISSIONS), metavar="[PERMISSION]...")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def skills_revoke(name: str, permissions: tuple[str, ...], as_json: bool) -> None:
    """Take back PERMISSIONS (all, if none is named) from skill NAME: it asks again."""
    config = load_config()
    had = config.skills.grants.get(name, [])
    granted = sorted(set(had) - set(permissions)) if permissions else []
    # A skill no longer installed may still have grants: those can be taken back too; a name
    # with no grants and no skill is a typo.
    if not had:
        _declared(name, config)
    update_config_file(paths.config_file(), {f"skills.grants.{name}": granted or None})
    _report(name, granted, as_json)
