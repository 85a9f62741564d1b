"""`myninja acp`'s agent: the Agent Client Protocol over the task runtime.

A session is a thread of myninja tasks, run by the background worker (agent_graph/tasks/
worker.py) like `myninja run`'s: in history, resumable, rateable. A prompt starts a task (a
leading `@agent` names its agent, else the router decides), or answers the question the
session's task is waiting on. The task's feed becomes session updates (updates.py); a
permission question becomes `session/request_permission`; any other question is sent as a
message and the turn ends, so the person's next prompt answers it; `session/cancel` cancels
the task, as `myninja tasks cancel` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    RequestError,
    update_agent_message_text,
)
from acp.schema import (
    AgentCapabilities,
    AllowedOutcome,
    Implementation,
    PermissionOption,
    PromptCapabilities,
    ToolCallUpdate,
)

from myninja import __version__, paths
from myninja.agent_graph.history import HistoryStore
from myninja.agent_graph.history.statuses import FINISHED
from myninja.agent_graph.permissions import ALLOW_ONCE, ALWAYS, DENY, asks_permission
from myninja.agent_graph.tasks.client import WorkerClient
from myninja.errors import MyninjaError
from myninja.ninja_tui.acp.updates import TurnUpdates

logger = logging.getLogger(__name__)

# Our answers to a permission question, as ACP permission options.
PERMISSION_OPTIONS = [
    PermissionOption(option_id=ALLOW_ONCE, name="Allow once", kind="allow_once"),
    PermissionOption(option_id=ALWAYS, name="Always allow", kind="allow_always"),
    PermissionOption(option_id=DENY, name="Deny", kind="reject_once"),
]


@dataclass
class Session:
    session_id: str
    cwd: str
    task_id: str | None = None
    after_seq: int = 0  # the task's stored events already sent
    question: dict[str, Any] | None = None  # the question the next prompt answers
    turn: asyncio.Task[Any] | None = None  # the prompt under way
    cancelled: bool = False


def prompt_text(blocks: list[Any]) -> str:
    """The task's text from a prompt's content blocks: text as it is, resources by their
    text (embedded) or their name and address (links)."""
    parts = []
    for block in blocks:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind == "resource_link":
            parts.append(f"[{block.name}]({block.uri})")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(f"{resource.uri}:\n{text}" if text is not None else resource.uri)
    return "\n\n".join(p for p in parts if p).strip()


def _refused(exc: MyninjaError) -> RequestError:
    """A JSON-RPC error carrying our one-line message."""
    return RequestError(-32603, exc.one_line(), {"exit_code": exc.exit_code})


class MyninjaAgent:
    def __init__(self) -> None:
        self.conn: Any = None
        self.worker = WorkerClient(paths.data_dir())
        self.sessions: dict[str, Session] = {}

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(
        self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None,
        **kwargs: Any,
    ) -> InitializeResponse:  # fmt: skip
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=False,
                prompt_capabilities=PromptCapabilities(embedded_context=True),
            ),
            agent_info=Implementation(name="myninja", title="myninja", version=__version__),
            auth_methods=[],
        )

    async def authenticate(self, method_id: str, **kwargs: Any) -> None:
        return None

    async def new_session(
        self, cwd: str, mcp_servers: Any = None, **kwargs: Any
    ) -> NewSessionResponse:
        await self._worker()
        session = Session(f"s_{uuid.uuid4().hex[:12]}", cwd)
        self.sessions[session.session_id] = session
        return NewSessionResponse(session_id=session.session_id)

    async def _worker(self) -> WorkerClient:
        """The data dir's worker, started (or replaced) where needed: an idle one exits between
        prompts, and a waiting task is resumed by the next."""
        try:
            notice = await self.worker.ensure()
        except MyninjaError as exc:
            raise _refused(exc) from exc
        if notice:
            logger.warning(notice)  # stderr: stdout is the protocol's
        return self.worker

    def _session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise RequestError.invalid_params({"sessionId": f"no session {session_id!r}"})
        return session

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        session = self._session(session_id)
        if session.turn is not None and not session.turn.done():
            raise RequestError.invalid_request({"details": "a prompt is already under way"})
        text = prompt_text(prompt)
        if not text:
            raise RequestError.invalid_params({"prompt": "the prompt has no text"})
        session.cancelled = False
        session.turn = asyncio.current_task()
        try:
            stop = await self._turn(session, text)
        except MyninjaError as exc:
            raise _refused(exc) from exc
        finally:
            session.turn = None
        return PromptResponse(stop_reason=stop)

    async def _turn(self, session: Session, text: str) -> str:
        worker = await self._worker()
        question, session.question = session.question, None
        still_open = question is not None and any(
            q["id"] == question["id"] for q in self._open_questions(session.task_id)
        )
        if question is not None and still_open:
            await worker.request(
                "answer", task_id=session.task_id, question_id=question["id"], text=text
            )
        else:  # a new task (also where the question was answered elsewhere meanwhile)
            reply = await worker.request("submit", text=text)
            session.task_id, session.after_seq = reply["task_id"], 0
        updates = TurnUpdates()
        while True:
            status = await self._follow(session, updates)
            if session.cancelled or status == "cancelled":
                return "cancelled"
            if status != "waiting":
                return "end_turn"
            questions = self._open_questions(session.task_id)
            permission = next((q for q in questions if asks_permission(q.get("key"))), None)
            if permission is None:
                if not questions:  # answered meanwhile (`myninja answer`): let it go on
                    await (await self._worker()).request("resume", task_id=session.task_id)
                    continue
                session.question = questions[0]
                await self._say(session, self._question_text(questions[0]))
                return "end_turn"
            answer = await self._ask_permission(session, permission)
            if answer is None:
                await self._cancel_task(session)
                return "cancelled"
            worker = await self._worker()  # the person may have taken a while
            await worker.request(
                "answer", task_id=session.task_id, question_id=permission["id"], text=answer
            )

    async def _follow(self, session: Session, updates: TurnUpdates) -> str | None:
        """Send the task's events after `session.after_seq` as updates until it rests."""
        status = None
        async for item in self.worker.follow(session.task_id, session.after_seq):
            if "end" in item:
                status = item["end"]
                continue
            event = item["event"]
            session.after_seq = max(session.after_seq, event.get("seq") or 0)
            for update in updates.updates(event):
                await self.conn.session_update(session_id=session.session_id, update=update)
        return status

    def _open_questions(self, task_id: str | None) -> list[dict[str, Any]]:
        store = HistoryStore(paths.data_dir() / "history.db")
        try:
            return store.questions(task_id, status="open")
        finally:
            store.close()

    @staticmethod
    def _question_text(question: dict[str, Any]) -> str:
        choices = question.get("choices")
        listed = f" ({' / '.join(choices)})" if choices else ""
        return f"\n\n**Question:** {question['text']}{listed}\n\n_Your next message answers it._"

    async def _say(self, session: Session, text: str) -> None:
        await self.conn.session_update(
            session_id=session.session_id, update=update_agent_message_text(text)
        )

    async def _ask_permission(self, session: Session, question: dict[str, Any]) -> str | None:
        """Our answer to a permission question from the client's choice; None: cancelled."""
        response = await self.conn.request_permission(
            session_id=session.session_id,
            tool_call=ToolCallUpdate(
                tool_call_id=f"permission:{question['id']}",
                title=question["text"],
                kind="other",
                status="pending",
                raw_input={"question_id": question["id"], "key": question.get("key")},
            ),
            options=PERMISSION_OPTIONS,
        )
        outcome = response.outcome
        if session.cancelled or not isinstance(outcome, AllowedOutcome):
            return None
        chosen = outcome.option_id
        return chosen if chosen in (ALLOW_ONCE, ALWAYS) else DENY

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.turn is None or session.turn.done():
            return
        session.cancelled = True
        await self._cancel_task(session)

    async def _cancel_task(self, session: Session) -> None:
        """Cancel the session's task, as `myninja tasks cancel` does (one that ended meanwhile
        stays as it ended)."""
        if session.task_id is None:
            return
        with contextlib.suppress(MyninjaError):
            store = HistoryStore(paths.data_dir() / "history.db")
            try:
                task = store.get_task(session.task_id) or {}
            finally:
                store.close()
            if task.get("status") not in FINISHED:
                await (await self._worker()).request("cancel", task_id=session.task_id)
