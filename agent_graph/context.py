"""What every node gets besides its state: config, backends, the history store, live output.

Passed as LangGraph's run-time context, never stored in state (it is not serialisable, and a
resumed task must pick up today's config and connections, not yesterday's)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from myninja.agent_graph.metered import MeteredBackend
from myninja.agent_graph.personas import persona
from myninja.backends.base import Backend
from myninja.backends.factory import make_backend
from myninja.config import AgentConfig, Config

if TYPE_CHECKING:
    from myninja.agent_graph.history import HistoryStore
    from myninja.agent_graph.permissions import Grants
    from myninja.skills.registry import SkillRegistry


DEFAULT_MAX_STEPS = 4  # a plan's steps on a gateway model, unless the config says


class BackendPool:
    """One backend object per configured name, built on first use and shared by all tasks."""

    def __init__(self, config: Config, overrides: dict[str, Backend] | None = None) -> None:
        self.config = config
        self._backends: dict[str, Backend] = dict(overrides or {})

    def get(self, name: str) -> Backend:
        if name not in self._backends:
            self._backends[name] = make_backend(self.config, name)
        return self._backends[name]

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()


@dataclass
class GraphContext:
    config: Config
    backends: BackendPool
    store: HistoryStore | None = None
    backend_override: str | None = None  # `--backend` for this task: every agent uses it
    model_override: str | None = None
    skills: SkillRegistry | None = None
    grants: Grants | None = None
    allow: set[str] = field(default_factory=set)  # permissions given for this task
    task_id: str = ""
    # Branches whose skills' checks passed, by branch id: a sibling then stops revising.
    passed: set[str] = field(default_factory=set)

    def tools(self, agent: str) -> list[dict[str, Any]]:
        """The tools an agent's branches are offered, in the OpenAI format."""
        if self.skills is None or not self.offers_tools(agent):
            return []
        return [tool.to_openai() for tool in self.skills.tools_for(agent, self.config)]

    def offers_tools(self, agent: str) -> bool:
        settings = self.config.agent(agent)
        if settings.tools is not None:
            return settings.tools
        return not self.on_embedded(agent)

    def max_steps(self, agent: str | None) -> int:
        """The most steps the plan of an agent (None: the default one) may have: its own
        setting, its persona's, the graph's when set in the config, else 1 on the embedded
        backend (a small planner's extra steps lose the task: "send the email", "check your
        interest rate") and the graph's default elsewhere."""
        agent = agent or self.config.default_agent
        settings = self.config.agent(agent)
        if settings.max_steps is not None:
            return settings.max_steps
        if (own := persona(agent).max_steps) is not None:
            return own
        if self.config.graph.max_steps is not None:
            return self.config.graph.max_steps
        return 1 if self.on_embedded(agent) else DEFAULT_MAX_STEPS

    def revises_fresh(self, agent: str) -> bool:
        """Whether an agent's branch whose checks failed tries a new sample rather than a
        revision from the checks' report (`[graph] revise`)."""
        if self.config.graph.revise is not None:
            return self.config.graph.revise == "fresh"
        return self.on_embedded(agent)

    def on_embedded(self, agent: str) -> bool:
        """Whether an agent runs on the embedded backend for this task (its small models get
        defaults of their own)."""
        name = self.backend_override or self.config.agent(agent).backend
        return getattr(self.config.backends.get(name), "type", "") == "embedded"

    def agent_backend(self, agent: str) -> tuple[Backend, AgentConfig, str | None]:
        """The backend, settings and model an agent runs on for this task."""
        settings = self.config.agent(agent)
        name = self.backend_override or settings.backend
        backend = self.backends.get(name)
        model = self.model_override or settings.model
        if self.store is not None and self.task_id:
            # Every call of a task counts its tokens (`myninja usage`) and keeps its budget.
            default = getattr(self.config.backends.get(name), "model", None)
            backend = MeteredBackend(
                backend, self.store, self.task_id, agent, name, model or default, self.config
            )
        return backend, settings, model
