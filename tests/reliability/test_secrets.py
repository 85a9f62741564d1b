"""A gateway key goes into the key store and nowhere else, through a whole session of use.

A real OpenAI-compatible server on 127.0.0.1 that refuses every request without the bearer
key; `myninja keys set gw` into the file store; a coder task through `ask` and another through
`run --detach` and the background worker, each running its answer's code in the sandbox;
`backends test`, `tasks show`, `feedback`, `export sft|orpo|tasks`, `config show`, `keys list`
and a `--debug` error (a model the gateway does not have). Meanwhile a watcher reads
/proc/<pid>/cmdline and /proc/<pid>/environ of every process of ours (the CLI, the worker, the
sandbox children).
Afterwards the key is in no file under the config and data folders but the key store itself,
in no export, in no output, in no argument list and no environment; and the sandbox child's
environment carries no MYNINJA_* at all.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from myninja.agent_graph.tasks.wire import existing_socket_path
from myninja.config import AGENTS
from tests.conftest import run_myninja
from tests.local_http import serving

pytestmark = pytest.mark.heavy

MODEL = "gw-model-1"
SANDBOX_MARK = b"_sandbox_child_main"


# -- a gateway that insists on its key -------------------------------------------------------------


@dataclass
class Gateway:
    """An OpenAI-compatible chat server answering from scripted rules (the first whose regex
    is found in the request's "role: content" lines), refusing requests without the key."""

    key: str
    rules: list[tuple[str, str]]
    authorised: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def reply_for(self, messages: list[dict[str, Any]]) -> str:
        text = "\n".join(f"{m.get('role')}: {_content(m.get('content'))}" for m in messages)
        for pattern, reply in self.rules:
            if re.search(pattern, text, re.DOTALL | re.IGNORECASE):
                return reply
        return "OK."

    def handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _json(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {gateway.key}":
                    gateway.refused.append(self.path)
                    self._json(401, {"error": {"message": "invalid api key", "type": "auth"}})
                    return False
                gateway.authorised.append(self.path)
                return True

            def do_GET(self) -> None:
                if not self._authorised():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    data = [{"id": MODEL, "object": "model", "owned_by": "gw"}]
                    return self._json(200, {"object": "list", "data": data})
                self._json(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                if not self._authorised():
                    return
                if body.get("model") != MODEL:
                    message = f"The model `{body.get('model')}` does not exist"
                    return self._json(404, {"error": {"message": message, "type": "invalid"}})
                text = gateway.reply_for(body.get("messages", []))
                usage = {"prompt_tokens": 12, "completion_tokens": len(text.split())}
                if not body.get("stream"):
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                    return self._json(
                        200,
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "model": MODEL,
                            "choices": [choice],
                            "usage": usage,
                        },
                    )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": MODEL}
                pieces = re.findall(r"\S+\s*|\s+", text) or [text]
                events = [
                    {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                    *(
                        {**base, "choices": [{"index": 0, "delta": {"content": piece}}]}
                        for piece in pieces
                    ),
                    {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                    {**base, "choices": [], "usage": usage},
                ]
                for event in events:
                    self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        return Handler


def _content(content: object) -> str:
    if isinstance(content, list):  # content parts
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


# -- a watcher of our processes' argument lists and environments -----------------------------------


class ProcWatch:
    """Polls /proc for processes whose argument list or environment names `marker` (the test's
    MYNINJA_HOME: the CLI and the worker carry it in their environment, a sandbox child in the
    workspace path of its argument list) and keeps every (pid, cmdline, environ) it saw."""

    def __init__(self, marker: str, interval: float = 0.03) -> None:
        self.marker = marker.encode()
        self.interval = interval
        self.seen: set[tuple[int, bytes, bytes]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        own = os.getpid()
        while not self._stop.is_set():
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) == own:
                    continue
                try:
                    cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
                    environ = Path(f"/proc/{name}/environ").read_bytes()
                except OSError:
                    continue  # gone, or a process we may not read (not ours)
                if self.marker in cmdline or self.marker in environ:
                    self.seen.add((int(name), cmdline, environ))
            self._stop.wait(self.interval)

    @contextmanager
    def watching(self) -> Iterator[ProcWatch]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(5)

    def where(self, needle: bytes) -> list[str]:
        return [
            f"pid {pid} {what}: {cmdline[:200]!r}"
            for pid, cmdline, environ in self.seen
            for what, text in (("cmdline", cmdline), ("environ", environ))
            if needle in text
        ]


def environment(raw: bytes) -> dict[str, str]:
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, _, v in pairs}


# -- the session -----------------------------------------------------------------------------------

JUDGE = '{"score": 8, "reasons": "it does what was asked"}'
PLAN = json.dumps({"steps": [{"title": "Do", "instruction": "Do the task."}]})


def coder_answer(keys_file: Path, tag: str) -> str:
    """An answer whose code the coder's review runs: it prints its environment's names, tries
    to read the key store, and stays alive long enough for the watcher to read its /proc."""
    return (
        f"Here is the {tag} program:\n\n```python\n"
        "import json, os, time\n"
        f"print({tag!r}, 'ENV', json.dumps(sorted(os.environ)))\n"
        "try:\n"
        f"    print('KEYS', open({str(keys_file)!r}).read())\n"
        "except PermissionError as exc:\n"
        f"    print({tag!r}, 'REFUSED', exc)\n"
        "time.sleep(1.5)\n"
        "```\n"
    )


def files_containing(root: Path, needles: list[bytes]) -> list[Path]:
    return [
        path
        for path in root.rglob("*")
        if path.is_file() and any(needle in path.read_bytes() for needle in needles)
    ]


def wait_for_status(task_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = run_myninja("tasks", "show", task_id, "--json")
        assert shown.returncode == 0, shown.stderr
        task = json.loads(shown.stdout)
        if task["status"] in statuses or time.monotonic() > deadline:
            return task
        time.sleep(0.3)


def test_the_gateway_key_stays_in_the_key_store(myninja_home: Path, tmp_path: Path) -> None:
    key = f"sk-gw-{secrets.token_hex(16)}"
    core = key.removeprefix("sk-gw-").encode()  # found even if a prefix were cut off
    needles = [key.encode(), core]
    data = myninja_home / "data"
    keys_file = data / "keys.json"
    gateway = Gateway(
        key,
        rules=[
            (r"Route this task", json.dumps({"agent": "writer", "reason": "writing"})),
            (r"Task to plan", PLAN),
            (r"Candidate:", JUDGE),
            (r"from the worker.*Attempt 1\.", coder_answer(keys_file, "worker")),
            (r"from ask.*Attempt 1\.", coder_answer(keys_file, "ask")),
        ],
    )
    outputs: list[str] = []

    def myninja(*args: str, input: str | None = None, code: int | None = 0) -> Any:
        done = run_myninja(*args, input=input, timeout=180)
        outputs.extend((done.stdout, done.stderr))
        if code is not None:
            assert done.returncode == code, f"{args}: {done.returncode}\n{done.stderr}"
        return done

    exports = tmp_path / "exports"
    exports.mkdir()
    watch = ProcWatch(str(myninja_home))
    with serving(gateway.handler()) as base, watch.watching():
        (myninja_home / "config.toml").write_text(
            "worker_idle_s = 2\n"
            '[keys]\nstore = "file"\n'
            "[graph]\nbranches = 1\nmax_revisions = 0\n"
            f'[backends.gw]\ntype = "openai"\nurl = "{base}/v1"\nmodel = "{MODEL}"\n'
            "max_retries = 0\n" + "".join(f'[agents.{agent}]\nbackend = "gw"\n' for agent in AGENTS)
        )
        myninja("keys", "set", "gw", input=key + "\n")
        myninja("backends", "test", "gw")
        allow = ("--allow", "write_files", "--allow", "run_code")
        asked = myninja("ask", "@coder Write a tiny program from ask", *allow, "--json")
        events = [json.loads(line) for line in asked.stdout.splitlines()]
        started = myninja("run", "@coder Write a tiny program from the worker", *allow, "-d")
        task_id = started.stdout.strip()
        task = wait_for_status(task_id, ("done", "failed"))
        assert task["status"] == "done", task
        myninja("feedback", task_id, "--good")
        myninja("feedback", events[-1]["task_id"], "--good")
        myninja("export", "sft", "--out", str(exports / "sft.jsonl"))
        myninja("export", "orpo", "--out", str(exports / "orpo.jsonl"))
        myninja("export", "tasks", "--out", str(exports / "tasks.jsonl"))
        myninja("config", "show")
        myninja("keys", "list", "--json")
        wrong = myninja(
            "--debug", "ask", "hi", "--backend", "gw", "--model", "no-such-model", code=None
        )
        assert wrong.returncode != 0
        assert "no-such-model" in wrong.stderr
        # the worker goes when idle; wait, so that nothing of ours outlives the test
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not ((sock := existing_socket_path(data)) and sock.exists()):
                break
            time.sleep(0.2)

    # The key did its work: every model call came with it: the model list, a plan and a branch
    # for ask and for the worker (one branch is kept without a judge call), and the wrong model.
    assert gateway.refused == []
    assert gateway.authorised.count("/v1/models") >= 1
    assert gateway.authorised.count("/v1/chat/completions") >= 5

    # The coder's code ran in the sandbox, from ask and from the worker, and could not read
    # the key store.
    assert events[-1]["type"] == "task_done", events[-1]
    results = [e["result"] for e in events if e["type"] == "tool_result"]
    assert any("ask ENV" in r and "ask REFUSED sandbox: reading myninja" in r for r in results)
    worker_results = [e.get("result", "") for e in task["events"] if e["type"] == "tool_result"]
    assert any("worker REFUSED sandbox: reading myninja" in r for r in worker_results)

    # Files: only the key store holds the key (history, checkpoints, logs, workspaces do not).
    assert files_containing(myninja_home, needles) == [keys_file]
    assert (data / "worker.log").exists()
    assert len(list(exports.iterdir())) == 3
    assert files_containing(exports, needles) == []
    # Output: no command printed it.
    assert not [text for text in outputs if any(n.decode() in text for n in needles)]

    # Processes: the CLI, the worker and the sandbox children were seen, and none carried it.
    cmdlines = [cmdline for _, cmdline, _ in watch.seen]
    assert any(b"worker" in c for c in cmdlines), "the watcher never saw the worker"
    children = [(c, e) for _, c, e in watch.seen if SANDBOX_MARK in c]
    for started_by in (events[-1]["task_id"], task_id):  # ask's, and the worker's
        where = f"workspaces/{started_by}".encode()
        assert [c for c, _ in children if where in c], f"no sandbox child of {started_by} seen"
    for needle in needles:
        assert watch.where(needle) == []
    for _, raw in children:
        env = environment(raw)
        assert not [name for name in env if name.startswith("MYNINJA_")], env
        assert not [name for name in env if re.search(r"KEY|TOKEN|SECRET", name)], env
        assert set(env) <= {
            "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "PYTHONDONTWRITEBYTECODE",
            "PYTHONIOENCODING", "MALLOC_ARENA_MAX", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS",
        }, env  # fmt: skip
        assert str(data / "workspaces") in env["HOME"]
