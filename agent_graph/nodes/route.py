"""route: who answers the task, and on which path.

The fast path (the `assistant` agent) answers in one streamed call; a specialist agent takes
the full machinery (plan, branches, judge). The person's @agent wins; then rules in code for
cues that leave no doubt (a URL, a calendar, "with tests"); then the model names the kind of
work in one constrained word, its prompt a fixed head (reused from the cache) plus the
person's own past corrections. Every choice is a `routed` event that says which path and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langgraph.runtime import Runtime

from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.agent_graph.prompts import (
    FAST_AGENT,
    ROUTE_KINDS,
    ROUTE_SCHEMA,
    route_messages,
)
from myninja.agent_graph.state import TaskState
from myninja.backends.base import ChatRequest
from myninja.config import WORKER_AGENTS
from myninja.errors import BackendError

_MENTION = re.compile(r"^\s*@(\w+)\s*[:,]?\s*")

FAST, AGENT = "fast", "agent"  # the two paths
FALLBACK_AGENT = "advisor"  # takes everyday tasks when the fast path is turned off


def split_mention(text: str) -> tuple[str | None, str]:
    """`@coder write …` → ("coder", "write …"); text without a known @agent is left as it is."""
    match = _MENTION.match(text)
    if match and match.group(1).lower() in WORKER_AGENTS:
        return match.group(1).lower(), text[match.end() :]
    return None, text


def path_of(agent: str) -> str:
    return FAST if agent == FAST_AGENT else AGENT


@dataclass(frozen=True)
class Rule:
    agent: str
    pattern: re.Pattern[str]
    reason: str


def _rule(agent: str, pattern: str, reason: str) -> Rule:
    return Rule(agent, re.compile(pattern, re.IGNORECASE), reason)


_MEETING = r"(meeting|meet|call|sync|catch-up|1:1|one-on-one|stand-?up|appointment|interview)"
# Cues that leave no doubt, first match wins. Anything else is the model's to classify.
RULES: tuple[Rule, ...] = (
    _rule("scheduler", r"\.ics\b|\bcalendars?\b|(?<![\w/])cal:[a-z]", "it names calendars"),
    _rule(
        "scheduler",
        rf"\b(schedule|reschedule|book|arrange|set up|find (a |an )?(time|slot|hour))\b"
        rf"[^.?!\n]*\b{_MEETING}s?\b|\b{_MEETING}s?\b[^.?!\n]*\b(invite|invitation|free slots?)\b",
        "it asks for a meeting time",
    ),
    _rule(
        "scheduler",
        rf"\b(free|available)\b[^.?!\n]*\b{_MEETING}s?\b|\b{_MEETING}s?\b[^.?!\n]*\b(free|available)\b",
        "it asks when people are free to meet",
    ),
    _rule(
        "scheduler",
        r"\b(am i|are we|is \w+) (free|available|busy)\b|\bmy (schedule|agenda)\b"
        r"|\b(block|reserve)\b[^.?!\n]*\b(time|hours?|slots?|mornings?|afternoons?|evenings?)\b",
        "it asks about the person's time",
    ),
    _rule(
        "writer",
        r"^\s*(please\s+)?(turn|make|convert)\s+(these|this|my)\s+(notes|bullets|bullet points|"
        r"points|draft)\b[^\n]*\binto\b",
        "it asks to turn notes into a text",
    ),
    _rule("researcher", r"https?://\S+", "it names a web page"),
    _rule(
        "researcher",
        r"\b(cite|citations?|sources? for|according to my)\b"
        r"|\b(give|list|include|add|with|show|need)\b[^.?!\n]{0,20}\b(sources|references|links|studies)\b",
        "it asks for sources",
    ),
    _rule(
        "researcher",
        r"\b(my|our|these|the attached) (papers|notes|documents|pdfs|articles|corpus|reports)\b",
        "it asks about the person's documents",
    ),
    _rule("coder", r"```|Traceback \(most recent call last\)", "it carries code to work on"),
    _rule(
        "coder",
        r"\b(with|and|plus|including) (unit |pytest )?tests?\b|\brun (it|them|the tests)\b"
        r"|\b(debug|refactor)\b|\bfix (this|the|my) (code|bug|script|function|test)",
        "it asks for code that is run or tested",
    ),
    _rule(
        "researcher",
        r"(?:~|\$HOME)/(?![\w./-]*\.(py|js|ts|sh|rs|go|c|cpp|java|rb)\b)[\w./-]+",
        "it names the person's files",
    ),
    _rule(
        "writer",
        r"\b(write|draft|compose|create|prepare)\b[^.?!\n]*\b(readme|blog post|article|essay|"
        r"cover letter|newsletter|press release|report|post-?mortem|memo|"
        r"proposal|release notes|speech|toast|eulogy|documentation|user guide)\b",
        "it asks for a document",
    ),
    _rule(
        "writer",
        r"^\s*(please\s+)?(rewrite|proofread|copy-?edit|polish|rephrase|tighten)\b",
        "it asks to edit a text",
    ),
    _rule(
        "advisor",
        r"^\s*should (i|we|my|our)\b|^\s*is it (better|worth|wise|a good idea)\b"
        r"|\bhelp me (decide|choose)\b|\bpros and cons\b"
        r"|\btrade-?offs?\b|\bwhich (one )?(would|should) (you|i|we) (pick|choose|recommend|go "
        r"with)\b|\bwhat would you recommend\b"
        r"|\b(compare|versus|vs\.?)\b[^\n]*\b(recommend|pick|choose)\b"
        r"|\b(make|give|draw up|build)\b[^.?!\n]{0,25}\b(plan|roadmap|strategy) for\b",
        "it asks for a decision",
    ),
    _rule(
        FAST_AGENT,
        r"^(?!.*\n)[^\n]*\bone-?liner\b"
        r"|^(?!\s*(\S+\s+){20}\S)(?!.*\n)[^\n]*\b(one-line|in one (sentence|word)|"
        r"give (me )?the number)\b|^\s*(define|translate)\b",
        "it asks for a short answer",
    ),
    _rule(
        FAST_AGENT,
        r"^(?!.*\n)\s*(please\s+)?(write|draft|compose)\b[^.?!\n]{0,30}\b(short|brief|quick)\b"
        r"[^.?!\n]{0,30}\b(message|reply|note|e-?mail|text|thank-you)\b",
        "it asks for a short message",
    ),
    # Last: a short question with none of the cues above is answered in one call.
    _rule(
        FAST_AGENT,
        r"^(?!\s*(\S+\s+){15}\S)(?!.*\n)\s*(what|who|whom|whose|when|where|which|why|how|is|"
        r"are|was|were|do|does|did|can|could)\b",
        "a short question",
    ),
)


def by_rule(text: str) -> Rule | None:
    return next((rule for rule in RULES if rule.pattern.search(text)), None)


def agent_in(reply: str) -> tuple[str, str] | None:
    """(agent, the word that named it) from a router reply ('"quick"', 'code', 'Kind: sources');
    a reply that names an agent instead of a kind ('writer') is taken at its word."""
    for word in re.findall(r"[a-z]+", reply.lower()):
        if word in ROUTE_KINDS:
            return ROUTE_KINDS[word], word
        if word in WORKER_AGENTS:
            return word, word
    return None


async def classify(
    ctx: GraphContext, text: str, corrections: list[dict[str, str]], usage: dict[str, int]
) -> tuple[str, str]:
    """(agent, reason) from the router model: one word, constrained to the kinds."""
    backend, _, model = ctx.agent_backend("router")
    request = ChatRequest(
        route_messages(text, corrections),
        model=model,
        temperature=0.0,
        max_tokens=8,
        json_schema=ROUTE_SCHEMA,
    )
    result = await backend.chat(request)
    usage["prompt_tokens"] = usage.get("prompt_tokens", 0) + result.usage.prompt_tokens
    usage["completion_tokens"] = usage.get("completion_tokens", 0) + result.usage.completion_tokens
    found = agent_in(result.text)
    if found is None:
        raise ValueError(f"the router named no kind of work ({result.text.strip()[:40]!r})")
    agent, word = found
    return agent, f"the router model read it as {word}"


@dataclass(frozen=True)
class Choice:
    agent: str
    reason: str
    by: str  # "person" | "correction" | "rule" | "model" | "default"
    examples: tuple[str, ...] = ()  # past corrections the router model was shown


async def choose(
    ctx: GraphContext, text: str, usage: dict[str, int], named: str | None = None
) -> Choice:
    """Who answers `text`: the agent the person named, the one they corrected this very task
    to before, a rule's, or the router model's."""
    if named:
        return Choice(named, "chosen by the person", "person")
    if (same := _corrected(ctx, text)) is not None:
        return Choice(same, "the person routed this task so before", "correction")
    if (rule := by_rule(text)) is not None:
        return Choice(rule.agent, rule.reason, "rule")
    examples = ctx.store.route_examples(text) if ctx.store else []
    shown = tuple(ex["text"] for ex in examples)
    try:
        agent, reason = await classify(ctx, text, examples, usage)
    except (ValueError, BackendError) as exc:
        # Routing is a convenience: a task is never lost to it.
        return Choice(
            ctx.config.default_agent, f"router failed ({exc}); used the default", "default", shown
        )
    return Choice(agent, reason, "model", shown)


async def route(state: TaskState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    ctx = runtime.context
    usage: dict[str, int] = {}
    choice = await choose(ctx, state["text"], usage, state.get("agent"))
    agent, reason = choice.agent, choice.reason
    if agent == FAST_AGENT and choice.by != "person" and not ctx.config.graph.fast_path:
        agent, reason = FALLBACK_AGENT, f"{reason}; the fast path is off ([graph] fast_path)"
    path = path_of(agent)
    event = make_event(
        "routed", agent=agent, path=path, reason=reason, examples=list(choice.examples)
    )
    return {"agent": agent, "path": path, "events": [event], "usage": usage}


def _corrected(ctx: GraphContext, text: str) -> str | None:
    """The agent the person named for this very task text before (feedback --agent)."""
    if ctx.store is None:
        return None
    wanted = " ".join(text.split()).lower()
    for example in ctx.store.route_examples(text, limit=3):
        if (
            " ".join(example["text"].split()).lower() == wanted
            and example["agent"] in WORKER_AGENTS
        ):
            return example["agent"]
    return None
