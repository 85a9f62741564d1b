"""MCP servers through the official SDK: a real stdio server (written with MCPServer, the SDK's
FastMCP) started by the test, its tools listed and called, its failures made one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from myninja.config import McpServerConfig
from myninja.skills.mcp_bridge import McpError, McpPool, McpUnreachable, list_tools, log_file
from tests.local_http import free_port

SERVER = '''
import os, sys
from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")

@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b

@server.tool()
def whoami() -> str:
    """The server's process id."""
    return str(os.getpid())

@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    print("about to fail", file=sys.stderr)
    raise RuntimeError(reason)

if __name__ == "__main__":
    server.run("stdio")
'''


@pytest.fixture
def server(tmp_path: Path) -> McpServerConfig:
    script = tmp_path / "notes_server.py"
    script.write_text(SERVER)
    return McpServerConfig(command=sys.executable, args=[str(script)], timeout_s=20)


async def test_a_stdio_servers_tools_are_listed_with_their_schemas(
    server: McpServerConfig,
) -> None:
    tools = {t.name: t for t in await list_tools("notes", server)}
    assert sorted(tools) == ["add", "fail", "whoami"]
    assert tools["add"].description == "Add two numbers."
    assert tools["add"].input_schema["required"] == ["a", "b"]
    assert tools["add"].input_schema["properties"]["a"]["type"] == "integer"


async def test_the_pool_calls_tools_on_one_kept_connection(server: McpServerConfig) -> None:
    pool = McpPool({"notes": server})
    try:
        assert await pool.call("notes", "add", {"a": 2, "b": 40}) == "42"
        first = await pool.call("notes", "whoami", {})
        assert await pool.call("notes", "whoami", {}) == first  # no new process per call
        with pytest.raises(McpError, match=r"MCP tool notes\.fail reported an error"):
            await pool.call("notes", "fail", {"reason": "disk full"})
        assert await pool.call("notes", "add", {"a": 1, "b": 1}) == "2"  # still usable
    finally:
        await pool.aclose()
    # The server's own stderr went to its log, not to ours.
    assert "about to fail" in log_file("notes").read_text()


async def test_a_server_that_cannot_start_is_one_clear_error(tmp_path: Path) -> None:
    missing = McpServerConfig(command=str(tmp_path / "no-such-server"), timeout_s=5)
    with pytest.raises(McpUnreachable) as caught:
        await list_tools("ghost", missing)
    line = caught.value.one_line()
    assert "MCP server 'ghost' failed" in line and "\n" not in line
    pool = McpPool({"ghost": missing})
    with pytest.raises(McpUnreachable, match="MCP server 'ghost' failed"):
        await pool.call("ghost", "anything", {})
    with pytest.raises(McpError, match="no MCP server named 'other'"):
        await pool.call("other", "anything", {})
    await pool.aclose()


def test_a_server_needs_exactly_one_transport() -> None:
    with pytest.raises(ValueError, match="exactly one of command"):
        McpServerConfig(command="x", url="http://127.0.0.1:1/mcp")
    with pytest.raises(ValueError, match="exactly one of command"):
        McpServerConfig()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """The same server over streamable HTTP, in its own process on a free port."""
    script = tmp_path / "notes_http.py"
    port = free_port()
    script.write_text(
        SERVER.replace('server.run("stdio")', f'server.run("streamable-http", port={port})')
    )
    log = (tmp_path / "http.log").open("w")
    process = subprocess.Popen([sys.executable, str(script)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def test_a_streamable_http_server_works_the_same(http_server: str) -> None:
    cfg = McpServerConfig(url=http_server, timeout_s=20)
    assert "add" in {t.name for t in await list_tools("web", cfg)}
    pool = McpPool({"web": cfg})
    try:
        assert await pool.call("web", "add", {"a": 20, "b": 22}) == "42"
    finally:
        await pool.aclose()
