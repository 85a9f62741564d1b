"""A fault-injecting OpenAI-compatible server on 127.0.0.1, for the reliability suites.

It plays a small deterministic model for the agent graph's calls, told apart by the fixed words
of agent_graph/prompts.py (as tests/agent_graph/scripts.py matches them): route, plan and judge
get JSON (asked for with response_format), a branch gets a streamed note. Each task names
itself "note #N" in its text, so a fault can be aimed at one task, one call, one attempt.

Scenarios are served side by side, each under its own prefix (`/<scenario>/v1`), each with a
policy: a function of the `Call` (what the graph asked, which task, which attempt of this exact
request, seconds on the scenario's clock, which the caller starts once every task is in) that
returns the `Fault` to inject, or None for a good reply. The server logs every request it read
with the fault it got, and keeps the complete reply it meant for every branch call, so a caller
can tell a whole answer from part of one.

Raw HTTP/1.1 over asyncio streams, in a thread of its own (one connection per request,
`Connection: close`): every fault is exactly the bytes a broken gateway sends, and any number of
clients are served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from myninja.agent_graph.prompts import BRANCH_STYLES

HANG_MAX_S = 60.0  # a hang ends when the client hangs up, or after this
MODEL = "fault-model"


# What the graph asked -------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    scenario: str
    kind: str  # models | route | plan | branch | judge | other
    task: int | None  # N of "note #N", where the prompt names the task
    style: str | None  # a branch's style (direct, careful, alternative, concise)
    round: int  # the graph's attempt ("Attempt 2." after a replan)
    attempt: int  # 0 the first time this exact request came, 1 its first retry, ...
    elapsed: float  # seconds since the scenario's clock started (0 before: see start_clock)
    stream: bool
    json: bool  # a response_format asked for JSON
    repair: bool  # a structured-output repair: the previous reply was not usable JSON
    candidate: str = ""  # what a judge call is asked to score


# Faults ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Status:
    """An HTTP error reply (JSON error body), with Retry-After if given."""

    code: int
    retry_after: str | None = None
    message: str = "the upstream model is overloaded"


@dataclass(frozen=True)
class Hang:
    """Read the request, send nothing until the client hangs up."""


@dataclass(frozen=True)
class Stall:
    """Stream headers and `after` chunks (a non-streamed reply: half its body), then nothing
    until the client hangs up."""

    after: int = 3


@dataclass(frozen=True)
class Cut:
    """Close the connection after `after` chunks, before [DONE]. Chunked framing (the client
    sees a broken body) or, with chunked=False, a body that ends when the connection closes
    (well framed, but with no finish_reason and no [DONE]). A non-streamed reply is cut halfway
    through its Content-Length."""

    after: int = 3
    chunked: bool = True


@dataclass(frozen=True)
class BadJson:
    """A `data:` line whose payload is not JSON, after `after` chunks."""

    after: int = 3


@dataclass(frozen=True)
class NoDataPrefix:
    """One chunk (the one after `after`) sent as a bare JSON line without `data: `."""

    after: int = 3


@dataclass(frozen=True)
class Garbage:
    """Where JSON was asked for, this text instead (a well-formed completion)."""

    text: str = "Sure! Here is what you asked for, in a few words: write it well."


Fault = Status | Hang | Stall | Cut | BadJson | NoDataPrefix | Garbage
Policy = Callable[[Call], Fault | None]
RETRYABLE = {429, 502, 503, 504}  # what backends/gateway.py retries (connect errors aside)


def fault_name(fault: Fault | None) -> str | None:
    if fault is None:
        return None
    if isinstance(fault, Status):
        return f"HTTP {fault.code}" + (" Retry-After" if fault.retry_after is not None else "")
    if isinstance(fault, Cut) and not fault.chunked:
        return "Cut until-close"
    return type(fault).__name__


@dataclass
class Served:
    """One request the server read, and what it got."""

    call: Call
    fault: Fault | None
    at: float  # time.monotonic() when it was read
    digest: str  # identifies the exact request: its retries share it


# The model ------------------------------------------------------------------------------------
STYLES = {hint: name for name, _, hint in BRANCH_STYLES}
# A lenient judge, as small models are: it likes the direct note best and anything it cannot
# place (a note cut short, say) better than the careful one.
SCORES = {"direct": 9, "careful": 7, "alternative": 5, "concise": 6}
UNPLACED_SCORE = 8
# "Task: ..." at the start of a line (or of a message): not "A similar past task: ...".
_TASK = re.compile(r"(?:^|\n)(?:user: )?Task(?: to plan)?: [^\n]*?note #(\d+)")
_ROUND = re.compile(r"Attempt (\d+)\. ")


def branch_reply(task: int | None, style: str | None, round_: int) -> str:
    """The complete note a branch call is answered with."""
    return (
        f"Note #{task} ({style or 'plain'} draft, attempt {round_}): panes split in two, "
        "sessions stay alive, and tmux keeps the work going while you are away."
    )


def _text(body: dict[str, Any]) -> str:
    return "\n".join(
        f"{m.get('role')}: {m.get('content') or ''}" for m in body.get("messages") or []
    )


def classify(body: dict[str, Any] | None, path: str) -> dict[str, Any]:
    """What kind of call a request is (without attempt and timing)."""
    if path.endswith("/models"):
        return {"kind": "models", "task": None, "style": None, "round": 1}
    body = body or {}
    text = _text(body)
    found = _TASK.search(text)
    task = int(found.group(1)) if found else None
    rounds = _ROUND.findall(text)
    round_ = int(rounds[-1]) if rounds else 1
    style = None
    candidate = ""
    if "Candidate:\n" in text:
        kind = "judge"
        candidate = text.split("Candidate:\n", 1)[1].split("\nAnswer with JSON", 1)[0]
    elif "Route this task" in text:
        kind = "route"
    elif "Task to plan" in text:
        kind = "plan"
    elif rounds:
        kind = "branch"
        style = next((name for words, name in STYLES.items() if words in text), None)
    else:
        kind = "other"
    return {"kind": kind, "task": task, "style": style, "round": round_, "candidate": candidate}


def good_content(call: Call) -> str:
    """The reply a well-behaved model gives."""
    if call.kind == "route":
        return json.dumps({"agent": "writer", "reason": "it asks for a text"})
    if call.kind == "plan":
        return json.dumps({"steps": [{"title": "Draft", "instruction": "Write the note."}]})
    if call.kind == "judge":
        style = next((s for s in SCORES if f"({s} draft" in call.candidate), None)
        score = SCORES[style] if style else UNPLACED_SCORE
        return json.dumps({"score": score, "reasons": f"a {style or 'plain'} note"})
    if call.kind == "branch":
        return branch_reply(call.task, call.style, call.round)
    return "OK."


def pieces(text: str) -> list[str]:
    """A reply as a model streams it: a word (and its space) at a time."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


# Scenarios ------------------------------------------------------------------------------------
@dataclass
class ScenarioLog:
    policy: Policy
    served: list[Served] = field(default_factory=list)
    started: float | None = None
    seen: Counter[str] = field(default_factory=Counter)
    replies: dict[int | None, set[str]] = field(default_factory=dict)  # complete branch notes


class FaultServer:
    """`with FaultServer() as server: server.add("storm", policy); server.url("storm")`."""

    def __init__(self) -> None:
        self._scenarios: dict[str, ScenarioLog] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.port = 0
        self.errors: list[str] = []  # the server's own failures (never the faults it injects)

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FaultServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=512)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fault-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault server did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in list(self._conns):
                task.cancel()
            await asyncio.gather(*self._conns, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Scenarios ---------------------------------------------------------------------------------
    def add(self, name: str, policy: Policy) -> str:
        """Serve scenario `name` with `policy`; returns its base URL (ending in /v1)."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"scenario names are URL path segments: {name!r}")
        with self._lock:
            self._scenarios[name] = ScenarioLog(policy)
        return self.url(name)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}/v1"

    def start_clock(self, name: str) -> None:
        """Start the scenario's clock (`Call.elapsed`): a storm of N seconds can then last N
        seconds after the last task came in, whatever came before."""
        with self._lock:
            self._scenarios[name].started = time.monotonic()

    def served(self, name: str) -> list[Served]:
        with self._lock:
            return list(self._scenarios[name].served)

    def replies(self, name: str) -> dict[int | None, set[str]]:
        """The complete branch notes served (or meant to be) per task number."""
        with self._lock:
            return {k: set(v) for k, v in self._scenarios[name].replies.items()}

    # Serving ------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            request = await _read_request(reader)
            if request is not None:
                await self._answer(*request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away (after a timeout, say): what it saw is the test's
        except Exception as exc:  # the server's own bug: report it, never hide it
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()  # after what was written: a cut is a clean close, mid-body
            self._conns.discard(task)

    async def _answer(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        parts = path.split("?", 1)[0].strip("/").split("/")
        name = parts[0] if parts else ""
        endpoint = "/" + "/".join(parts[1:])
        with self._lock:
            scenario = self._scenarios.get(name)
        known = {("GET", "/v1/models"), ("POST", "/v1/chat/completions")}
        if scenario is None or (method, endpoint) not in known:
            await _reply(writer, 404, _error_body(f"no route {method} {path}"))
            return
        now = time.monotonic()
        facts = classify(body, endpoint)
        digest = hashlib.sha1(
            json.dumps([method, endpoint, body], sort_keys=True).encode()
        ).hexdigest()
        with self._lock:
            attempt = scenario.seen[digest]
            scenario.seen[digest] += 1
        text = _text(body or {})
        call = Call(
            scenario=name,
            kind=facts["kind"],
            task=facts["task"],
            style=facts["style"],
            round=facts["round"],
            attempt=attempt,
            elapsed=now - (scenario.started or now),
            stream=bool((body or {}).get("stream")),
            json=bool((body or {}).get("response_format")),
            repair="valid JSON only" in text,
            candidate=facts.get("candidate", ""),
        )
        fault = scenario.policy(call)
        with self._lock:
            scenario.served.append(Served(call, fault, now, digest))
            if call.kind == "branch":
                scenario.replies.setdefault(call.task, set()).add(good_content(call))
        if call.kind == "models":
            await self._models(writer, fault, reader)
        else:
            await self._chat(call, fault, reader, writer)

    async def _models(
        self, writer: asyncio.StreamWriter, fault: Fault | None, reader: asyncio.StreamReader
    ) -> None:
        if isinstance(fault, Status):
            await _status(writer, fault)
        elif isinstance(fault, Hang):
            await _until_gone(reader)
        else:
            body = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "t"}]}
            await _reply(writer, 200, body)

    async def _chat(
        self,
        call: Call,
        fault: Fault | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        if isinstance(fault, Status):
            await _status(writer, fault)
            return
        if isinstance(fault, Hang):
            await _until_gone(reader)
            return
        content = good_content(call)
        if isinstance(fault, Garbage) and call.json:
            content = fault.text
        if not call.stream:
            body = _completion(content)
            if isinstance(fault, Cut | Stall):
                data = json.dumps(body).encode()
                head = {"Content-Type": "application/json", "Content-Length": str(len(data))}
                writer.write(_head(200, head) + data[: len(data) // 2])
                await writer.drain()
                if isinstance(fault, Stall):
                    await _until_gone(reader)
                return  # closed with half the body sent
            await _reply(writer, 200, body)
            return
        await self._stream(content, fault, reader, writer)

    async def _stream(
        self,
        content: str,
        fault: Fault | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        chunked = not (isinstance(fault, Cut) and not fault.chunked)
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        writer.write(_head(200, headers))

        def send(raw: str) -> None:
            data = raw.encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)

        send(f"data: {json.dumps(_delta(role='assistant'))}\n\n")
        for i, piece in enumerate(pieces(content)):
            if isinstance(fault, Stall | Cut | BadJson | NoDataPrefix) and i == fault.after:
                if isinstance(fault, Stall):
                    await writer.drain()
                    await _until_gone(reader)
                    return
                if isinstance(fault, Cut):
                    await writer.drain()
                    return  # the connection is closed: no more chunks, no [DONE]
                if isinstance(fault, BadJson):
                    send('data: {"id": "chatcmpl-x", "choices": [{"delta": {"content": "oo\n\n')
                    continue
                send(f"{json.dumps(_delta(content=piece))}\n\n")  # NoDataPrefix
                continue
            send(f"data: {json.dumps(_delta(content=piece))}\n\n")
            await writer.drain()
        send(f"data: {json.dumps(_delta(finish='stop'))}\n\n")
        usage = {"prompt_tokens": 20, "completion_tokens": len(pieces(content))}
        send(f"data: {json.dumps({**_delta(), 'choices': [], 'usage': usage})}\n\n")
        send("data: [DONE]\n\n")
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()


# The wire --------------------------------------------------------------------------------------
async def _read_request(
    reader: asyncio.StreamReader,
) -> tuple[str, str, dict[str, Any] | None] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    first, *lines = head.decode("latin-1").split("\r\n")
    method, path, _ = first.split(" ", 2)
    length = 0
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    raw = await reader.readexactly(length) if length else b""
    return method, path, json.loads(raw) if raw else None


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _reply(
    writer: asyncio.StreamWriter,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(body).encode()
    fields = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    fields.update(headers or {})
    writer.write(_head(status, fields) + data)
    await writer.drain()


async def _status(writer: asyncio.StreamWriter, fault: Status) -> None:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    await _reply(writer, fault.code, _error_body(fault.message), headers)


async def _until_gone(reader: asyncio.StreamReader) -> None:
    """Wait until the client closes its end (or HANG_MAX_S passes)."""
    with contextlib.suppress(TimeoutError, ConnectionError):
        while await asyncio.wait_for(reader.read(1024), HANG_MAX_S):
            pass


def _error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "server_error"}}


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30},
    }


def _delta(
    *, role: str | None = None, content: str | None = None, finish: str | None = None
) -> dict[str, Any]:
    piece: dict[str, Any] = {}
    if role:
        piece["role"] = role
    if content is not None:
        piece["content"] = content
    return {
        "id": "chatcmpl-fault",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": piece, "finish_reason": finish}],
    }


@contextlib.contextmanager
def serving(**policies: Policy) -> Iterator[FaultServer]:
    """A started server with the given scenarios (name=policy)."""
    with FaultServer() as server:
        for name, policy in policies.items():
            server.add(name, policy)
        yield server
