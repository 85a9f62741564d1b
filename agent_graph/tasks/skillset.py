"""The skills, permission grants and MCP servers that tasks started from now on use."""

from __future__ import annotations

import asyncio

from myninja.config import Config


class SkillSet:
    def __init__(self, config: Config) -> None:
        from myninja.agent_graph.permissions import Grants
        from myninja.skills.mcp_bridge import McpPool
        from myninja.skills.registry import load_skills

        self.config = config
        self.skills = load_skills(config)
        self.grants = Grants(config)
        self.mcp = McpPool(config.mcp)
        self.mcp_listed = not config.mcp  # MCP servers are asked for their tools on first use
        self._lock = asyncio.Lock()

    async def list_mcp_tools(self) -> None:
        """Add the configured MCP servers' tools as skills, once (it starts their processes)."""
        async with self._lock:
            if self.mcp_listed:
                return
            from myninja.skills.mcp_bridge import mcp_skills

            found, warnings = await mcp_skills(self.config.mcp, self.mcp)
            for skill in found:
                why = self.skills.add(skill, f"mcp:{skill.name}")
                if why:
                    self.skills.warn(f"MCP server {skill.name!r} skipped: {why}")
            for warning in warnings:
                self.skills.warn(warning)
            self.mcp_listed = True

    async def aclose(self) -> None:
        await self.mcp.aclose()
