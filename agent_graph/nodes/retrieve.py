"""retrieve: the researcher's first hop, before it plans. The task is searched in every configured
corpus and on the web (where a search provider is configured), and the pages it names by URL
are fetched; the passages found become the task's
numbered sources, which every branch reads and the answer's citations must point at. Other
agents pass straight through."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.research import fetch_named_pages, gather, search_text
from myninja.agent_graph.state import TaskState

RESEARCHER = "researcher"


async def retrieve(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    if (state.get("agent") or ctx.config.default_agent) != RESEARCHER:
        return {}
    settings = ctx.config.research
    query = search_text(state["text"])
    pages: list[dict[str, Any]] = []
    notes: list[str] = []
    if settings.fetch_urls:
        pages, notes = await fetch_named_pages(state["text"], query, settings)
    found, more_notes, web = await gather(query, ctx.config, settings.k)
    # Pages the person named come first: they asked about them.
    sources = (pages + found)[: max(settings.k, len(pages))]
    event = make_event(
        "retrieved",
        query=query,
        hop=1,
        branch_id=None,
        passages=sources,
        notes=notes + more_notes,
    )
    return {"sources": sources, "web": web, "events": [event]}
