"""Many clients at once against a worker whose listen backlog is full: each request waits for
the worker to accept it instead of failing with "Connection lost" (asyncio takes the EAGAIN of
a Unix-socket connect for a connect in progress and returns an unconnected socket)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest

from myninja.agent_graph.tasks.client import WorkerClient
from myninja.agent_graph.tasks.wire import connect_unix, socket_path
from myninja.errors import BackendUnreachable


def listening(path: Path, backlog: int) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(backlog)
    server.setblocking(False)
    return server


async def answer(server: socket.socket, count: int) -> list[str]:
    """Accept `count` connections one by one; reply to each with the op it sent, numbered."""
    loop = asyncio.get_running_loop()
    ops = []
    for n in range(count):
        conn, _ = await asyncio.wait_for(loop.sock_accept(server), 10)
        reader, writer = await asyncio.open_unix_connection(sock=conn)
        request = json.loads(await reader.readline())
        ops.append(request["op"])
        writer.write((json.dumps({"ok": True, "n": n, "op": request["op"]}) + "\n").encode())
        await writer.drain()
        writer.close()
    return ops


async def test_requests_beyond_a_full_backlog_wait_to_be_accepted(tmp_path: Path) -> None:
    path = socket_path(tmp_path)
    server = listening(path, backlog=1)
    client = WorkerClient(tmp_path)
    try:
        requests = [asyncio.create_task(client.request(f"op{i}")) for i in range(8)]
        await asyncio.sleep(0.3)  # the backlog fills while nothing is accepted
        ops = await answer(server, 8)
        replies = await asyncio.wait_for(asyncio.gather(*requests), 10)
    finally:
        server.close()
        path.unlink()
    assert sorted(ops) == [f"op{i}" for i in range(8)]
    assert sorted(reply["n"] for reply in replies) == list(range(8))
    assert [reply["op"] for reply in replies] == [f"op{i}" for i in range(8)]


async def test_a_worker_that_never_accepts_is_one_error_naming_its_log(tmp_path: Path) -> None:
    path = tmp_path / "worker.sock"
    server = listening(path, backlog=1)
    held = []
    try:
        with pytest.raises(BackendUnreachable) as raised:
            for _ in range(8):  # fill the backlog, then one more connect must give up
                held.append(await connect_unix(str(path), tmp_path / "worker.log", wait_s=0.3))
    finally:
        for sock in held:
            sock.close()
        server.close()
    assert 1 <= len(held) < 8
    assert "accepted no connection" in str(raised.value)
    assert str(tmp_path / "worker.log") in str(raised.value.hint)
