"""Finding skills: the built-in ones, then every entry point in the group `myninja.skills`.

A plugin that fails to load is skipped with one warning naming it, so one broken package never
keeps the app from starting. The warnings are kept on the registry (the CLI prints them) and
logged to the `myninja.skills` logger.
"""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from myninja.config import Config
from myninja.errors import UsageError
from myninja.skills import old_names
from myninja.skills.api import Skill, Tool, ToolError

GROUP = "myninja.skills"
# "module:attribute" of each built-in skill, loaded like a plugin's entry point: a Skill, or a
# function returning one or a list.
BUILTINS: list[str] = [
    "myninja.skills.files:skill",
    "myninja.skills.coder.skill:skill",
    "myninja.skills.scheduler.skill:skill",
    "myninja.skills.writer:skill",
    "myninja.skills.advisor:skill",
]
BUILTIN = "builtin"

log = logging.getLogger("myninja.skills")
# A library logs; the application decides where it goes. Without this, Python's last-resort
# handler would print each warning a second time beside the CLI's own line.
log.addHandler(logging.NullHandler())


HOOKS = ("prepare", "review", "finish")


@dataclass
class SkillRegistry:
    """The skills this run knows, in load order, with where each came from."""

    skills: dict[str, Skill] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # skill name -> "builtin" or "dist 1.0"
    warnings: list[str] = field(default_factory=list)

    def add(self, skill: Skill, source: str) -> str | None:
        """Register `skill`; the first of two with a name wins. Returns why it was not added."""
        if skill.name in self.skills:
            return f"the name {skill.name!r} is taken by {self.sources[skill.name]}"
        taken = {t.name: s.name for s in self.skills.values() for t in s.tools}
        for t in skill.tools:
            if t.name in taken:
                return f"tool {t.name!r} is already provided by skill {taken[t.name]!r}"
        personas = {a: s.name for s in self.skills.values() for a in s.personas}
        for agent in skill.personas:
            if agent in personas:
                return f"agent {agent!r} is already added by skill {personas[agent]!r}"
        self.skills[skill.name] = skill
        self.sources[skill.name] = source
        return None

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)

    def tools_for(self, agent: str, config: Config | None = None) -> list[Tool]:
        """The tools an agent's branches are offered: those of every skill meant for it (or for
        every agent), then any its persona names; with `config`, only skills available under
        it."""
        tools = [
            t
            for s in self.skills.values()
            if (not s.agents or agent in s.agents)
            and (config is None or s.available is None or s.available(config))
            for t in s.tools
        ]
        for s in self.skills.values():
            persona = s.personas.get(agent)
            if persona is None:
                continue
            names = persona.tools if persona.tools is not None else [t.name for t in s.tools]
            for name in names:
                found = self._find(name)
                if found is not None and found[1] not in tools:
                    tools.append(found[1])
        return tools

    def with_hook(self, agent: str, hook: str, config: Config | None = None) -> list[Skill]:
        """The skills meant for `agent` (or for every agent) that have `hook` (one of HOOKS),
        in load order; with `config`, only those available under it."""
        return [
            s
            for s in self.skills.values()
            if getattr(s, hook) is not None
            and (not s.agents or agent in s.agents)
            and (config is None or s.available is None or s.available(config))
        ]

    def tool(self, name: str, *, agent: str | None = None) -> tuple[Skill, Tool]:
        """The skill and tool a model called by name; with `agent`, only among its tools."""
        found = self._find(name)
        if found is None or (agent is not None and found[1] not in self.tools_for(agent)):
            offered = self.tools_for(agent) if agent is not None else self.all_tools()
            names = ", ".join(t.name for t in offered) or "none"
            raise ToolError(f"there is no tool named {name!r} (tools: {names})")
        return found

    def all_tools(self) -> list[Tool]:
        return [t for s in self.skills.values() for t in s.tools]

    def _find(self, name: str) -> tuple[Skill, Tool] | None:
        for s in self.skills.values():
            for t in s.tools:
                if t.name == name:
                    return s, t
        return None

    def describe(self) -> list[dict[str, Any]]:
        """One entry per skill, for `myninja skills list`. `agents: []` means every agent."""
        return [
            {
                "name": s.name,
                "description": s.description,
                "tools": [t.name for t in s.tools],
                "permissions": sorted(s.permissions),
                "source": self.sources[s.name],
                "agents": list(s.agents),
                "personas": sorted(s.personas),
            }
            for s in self.skills.values()
        ]

    def describe_skill(self, name: str) -> dict[str, Any]:
        """One skill in full, for `myninja skills info NAME`: each tool with its schema."""
        if name not in self.skills:
            known = ", ".join(self.skills) or "none"
            raise UsageError(f"no skill named {name!r} (skills: {known})")
        s = self.skills[name]
        summary = next(d for d in self.describe() if d["name"] == name)
        return {
            **summary,
            "tools": [
                {
                    "name": t.name,
                    "description": t.description,
                    "permissions": sorted(t.permissions),
                    "workspace": t.workspace,
                    "parameters": t.parameters,
                }
                for t in s.tools
            ],
            "personas": {
                agent: {"system_prompt": p.system_prompt, "model": p.model, "tools": p.tools}
                for agent, p in s.personas.items()
            },
            "hooks": [h for h in HOOKS if getattr(s, h) is not None],
        }


def load_skills(
    config: Config | None = None,
    *,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> SkillRegistry:
    """The built-in skills, then the plugins' (`entry_points`, default: the installed ones in
    the group `myninja.skills`). `config` is for skills that come from it (MCP servers)."""
    registry = SkillRegistry()
    for ref in BUILTINS:
        builtin = importlib.metadata.EntryPoint(ref.split(":")[0], ref, GROUP)
        _load(registry, builtin, BUILTIN)
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=GROUP)
    with old_names.allow():  # plugins written for myninja 0.1 import `skills.api`
        for ep in entry_points:
            _load(registry, ep, _source(ep))
    return registry


def declared_permissions(config: Config) -> dict[str, list[str]]:
    """Each skill's name with the permissions it declares: built-ins, plugins, and the MCP
    servers of `config` (their permissions are the config's: no server is started for this).
    A server named like a loaded skill is left out, as the registry itself skips it."""
    declared = {
        name: sorted(skill.permissions) for name, skill in load_skills(config).skills.items()
    }
    for name, server in config.mcp.items():
        declared.setdefault(name, sorted(server.permissions))
    return declared


def _source(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)  # None for an EntryPoint made by hand
    if dist is not None:
        return f"{dist.name} {dist.version}"
    return f"entry point {ep.value}"


def _load(registry: SkillRegistry, ep: importlib.metadata.EntryPoint, source: str) -> None:
    label = f"skill plugin {ep.name!r} ({source})" if source != BUILTIN else f"skill {ep.value}"
    try:
        skills = _skills_of(ep)
    except (Exception, SystemExit) as exc:  # a plugin calling sys.exit must not end the app
        registry.warn(f"{label} skipped: {_reason(exc)}")
        return
    for skill in skills:
        why = registry.add(skill, source)
        if why is not None:
            registry.warn(f"{label} skipped: {why}")


class _NotASkill(Exception):
    pass


def _skills_of(ep: importlib.metadata.EntryPoint) -> list[Skill]:
    obj = ep.load()
    if isinstance(obj, Tool):  # callable, but calling it would run the tool
        raise _NotASkill(f"{ep.value} is a Tool; name the Skill that holds it")
    if not isinstance(obj, Skill) and callable(obj):
        obj = obj()
    items = list(obj) if isinstance(obj, list | tuple) else [obj]
    for item in items:
        if not isinstance(item, Skill):
            raise _NotASkill(f"{ep.value} gave a {type(item).__name__}, not a Skill")
    return items


def _reason(exc: BaseException) -> str:
    if isinstance(exc, _NotASkill):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
