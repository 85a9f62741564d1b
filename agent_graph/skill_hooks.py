"""Running skills for a task: every tool call through the permission gate, and the skills' hooks
(skills/api.py: prepare, review, finish) at their places in the graph.

A tool runs only with every permission it declares granted to its skill: those not granted
yet become one question through LangGraph's interrupt (allow once / always allow / deny). A
model's call and a hook's `use` take the same path and leave the same `tool_call` /
`tool_result` events, so the trace shows what ran whoever asked for it."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.types import interrupt

from myninja.agent_graph import permissions
from myninja.agent_graph.context import GraphContext
from myninja.agent_graph.events import make_event
from myninja.skills.api import (
    Draft,
    Permission,
    Review,
    Skill,
    Tool,
    ToolContext,
    ToolError,
    task_workspace,
)
from myninja.skills.coder.sandbox import Workspace

Events = list[dict[str, Any]]


BRANCHES = ".branches"  # in a task's workspace: each branch's own folder


def workspace_of(task_id: str, branch_id: str | None = None) -> Path:
    """The task's workspace, or the folder of one of its branches inside it (parallel
    branches must not write over each other's files; the chosen ones are promoted)."""
    root = task_workspace(task_id)
    return root / BRANCHES / branch_id if branch_id else root


def task_files(root: Path) -> list[str]:
    """The files in a task's workspace (what prepare wrote, what was promoted), without the
    branches' own folders."""
    if not root.is_dir():
        return []
    return [f for f in Workspace(root).files() if not f.startswith(f"{BRANCHES}/")]


def promote(root: Path, branch_ids: list[str]) -> list[str]:
    """Copy the files the chosen branches wrote into the task's workspace itself, in step
    order (a later step's file replaces an earlier one's); their relative paths."""
    copied: list[str] = []
    for branch_id in branch_ids:
        folder = root / BRANCHES / branch_id
        if not folder.is_dir():
            continue
        for name in Workspace(folder).files():
            source = folder / name
            if source.is_symlink() or not source.is_file():
                continue  # a link could point anywhere; only what the branch wrote moves
            target = root / name
            try:
                if target.is_symlink():
                    target.unlink()  # never write through a link to somewhere else
                elif target.is_dir():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
            except OSError:
                continue  # a file where a folder should be, say: the branch's copy stays
            if name not in copied:
                copied.append(name)
    return copied


async def gated_call(
    ctx: GraphContext,
    skill: Skill,
    tool: Tool,
    arguments: dict[str, Any],
    *,
    task_id: str,
    step: int | None,
    branch_id: str | None,
    workspace: Path | None = None,
) -> tuple[str, str | None]:
    """(result, error) of one tool, run only once every permission it needs is granted."""
    granted = _given(ctx, skill)
    missing = {str(p) for p in tool.needed(arguments)} - granted
    if missing:
        ask = permissions.question(skill.name, tool.name, missing)
        answer = interrupt({**ask, "step": step, "branch_id": branch_id})
        choice = permissions.decision(str(answer))
        if choice == permissions.DENY:
            return "", f"the person did not allow the {skill.name} skill to do that"
        if choice == permissions.ALWAYS and ctx.grants is not None:
            ctx.grants.always(skill.name, missing)
        ctx.allow |= missing  # the rest of this task need not ask again
        granted |= missing
    context = ToolContext(
        task_id=ctx.task_id or task_id,
        config=ctx.config,
        allowed_dirs=[Path(d) for d in ctx.config.skills.allowed_dirs],  # files.py expands
        granted=frozenset(Permission(p) for p in granted),
        workspace_dir=workspace,
    )
    try:
        return await tool.call(arguments, context), None
    except ToolError as exc:
        return "", str(exc)


def tool_events(
    branch_id: str | None, call_id: str, name: str, arguments: Any, result: str, error: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        make_event(
            "tool_call", branch_id=branch_id, call_id=call_id, name=name, arguments=arguments
        ),
        make_event(
            "tool_result",
            branch_id=branch_id,
            call_id=call_id,
            name=name,
            result=result,
            error=error,
        ),
    )


def _use_for(
    ctx: GraphContext,
    skill: Skill,
    events: Events,
    *,
    hook: str,
    task_id: str,
    step: int | None,
    branch_id: str | None,
    workspace: Path,
    revision: int = 0,
) -> Callable[[str, dict[str, Any]], Awaitable[str]]:
    """A hook's `use`: its own skill's tools only, gated and traced like a model's call."""
    calls = 0

    async def use(name: str, arguments: dict[str, Any]) -> str:
        nonlocal calls
        calls += 1
        try:
            tool = skill.tool(name)
        except KeyError:
            raise ToolError(f"the {skill.name} skill has no tool named {name!r}") from None
        result, error = await gated_call(
            ctx,
            skill,
            tool,
            dict(arguments),
            task_id=task_id,
            step=step,
            branch_id=branch_id,
            workspace=workspace,
        )
        call_id = f"{hook}-{skill.name}-{branch_id or 'task'}-{revision}.{calls}"
        events.extend(tool_events(branch_id, call_id, name, arguments, result, error))
        if error:
            raise ToolError(error)
        return result

    return use


def _given(ctx: GraphContext, skill: Skill) -> set[str]:
    """The permissions `skill` holds for this task: for good (config, "always") or for now."""
    return set(ctx.allow) | (ctx.grants.of(skill.name) if ctx.grants else set())


def _granted(ctx: GraphContext, skill: Skill) -> frozenset[Permission]:
    return frozenset(
        Permission(p) for p in _given(ctx, skill) if p in Permission._value2member_map_
    )


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ToolError) else f"{type(exc).__name__}: {exc}"


def _hooked(ctx: GraphContext, agent: str, hook: str) -> list[Skill]:
    if ctx.skills is None:
        return []
    return ctx.skills.with_hook(agent, hook, ctx.config)


async def _call_hook(
    ctx: GraphContext,
    skill: Skill,
    hook: str,
    events: Events,
    *,
    step: int | None,
    workspace: Path,
    **draft: Any,
) -> tuple[Any, str | None]:
    """(what `skill`'s `hook` returned, None) or (None, why it failed). A question for the
    person (LangGraph's interrupt) passes through; any other error of a plugin's hook is
    reported, never the end of the task."""
    given = Draft(
        workspace=workspace,
        granted=_granted(ctx, skill),
        use=_use_for(
            ctx,
            skill,
            events,
            hook=hook,
            task_id=draft["task_id"],
            step=step,
            branch_id=draft.get("branch_id"),
            workspace=workspace,
            revision=draft.get("revision", 0),
        ),
        **draft,
    )
    try:
        return await getattr(skill, hook)(given), None
    except Exception as exc:
        if isinstance(exc, GraphBubbleUp):
            raise
        return None, _why(exc)


async def prepare(
    ctx: GraphContext,
    *,
    task: str,
    agent: str,
    task_id: str,
    events: Events,
    facts: dict[str, str] | None = None,
) -> str:
    """What the agent's skills prepare for its branches, once per task ("" for nothing);
    `facts` are what the agent knows of the person (agent_graph/needs.py)."""
    parts = []
    for skill in _hooked(ctx, agent, "prepare"):
        text, failed = await _call_hook(
            ctx,
            skill,
            "prepare",
            events,
            step=None,
            workspace=workspace_of(task_id),
            task=task,
            agent=agent,
            task_id=task_id,
            facts=dict(facts or {}),
        )
        if failed:
            text = f"({skill.name} could not prepare: {failed})"
        if text and text.strip():
            parts.append(text.strip())
    return "\n\n".join(parts)


async def review(
    ctx: GraphContext,
    *,
    task: str,
    agent: str,
    task_id: str,
    step: int,
    branch_id: str,
    text: str,
    revision: int,
    events: Events,
) -> list[tuple[str, Review]]:
    """Each of the agent's skills' review of one answer: (skill name, review)."""
    found = []
    for skill in _hooked(ctx, agent, "review"):
        verdict, failed = await _call_hook(
            ctx,
            skill,
            "review",
            events,
            step=step,
            workspace=workspace_of(task_id, branch_id),
            task=task,
            agent=agent,
            task_id=task_id,
            text=text,
            branch_id=branch_id,
            revision=revision,
        )
        if failed:
            verdict = Review(verdict=f"not checked: {failed}")
        if verdict is not None:
            found.append((skill.name, verdict))
    return found


async def finish(
    ctx: GraphContext,
    *,
    task: str,
    agent: str,
    task_id: str,
    branch_id: str | None,
    text: str,
    events: Events,
) -> list[str]:
    """The lines the agent's skills add under the chosen answer."""
    lines = []
    for skill in _hooked(ctx, agent, "finish"):
        line, failed = await _call_hook(
            ctx,
            skill,
            "finish",
            events,
            step=None,
            workspace=workspace_of(task_id),
            task=task,
            agent=agent,
            task_id=task_id,
            text=text,
            branch_id=branch_id,
        )
        if failed:
            line = f"({skill.name}: {failed})"
        if line and line.strip():
            lines.append(line.strip())
    return lines
