"""MCP servers as skills: their tools listed and called through the official `mcp` SDK (2.x).

A server is configured under `[mcp.NAME]`: a command spoken to over stdio, or a streamable
HTTP URL. `list_tools` connects once to learn what a server offers (for `skills list` and the
registry); `McpPool` keeps one connection per server open for the life of a worker, so tool
calls do not start a process each time, and closes them all at the end.

A stdio server's stderr (its logs, its tracebacks) goes to `<data>/logs/mcp-NAME.log`, never to
our terminal, where it would tear through the app's screen.

An anyio connection must be entered and left by the same task, so each connection lives in a
task of its own that opens it, waits to be told to stop, and closes it; calls from any task go
through the open session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from myninja import paths
from myninja.config import McpServerConfig
from myninja.errors import BackendUnreachable, MyninjaError


class McpError(MyninjaError):
    """An MCP server could not be reached, or a tool call on it failed."""


class McpUnreachable(McpError, BackendUnreachable):
    """The server did not start, or did not answer."""


@dataclass(frozen=True)
class McpToolSpec:
    server: str
    name: str
    description: str
    input_schema: dict[str, Any]


def log_file(name: str) -> Path:
    folder = paths.data_dir() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"mcp-{name}.log"


@contextlib.asynccontextmanager
async def connect(name: str, cfg: McpServerConfig) -> AsyncIterator[Any]:
    """An open `mcp.Client` session to the server, closed on leaving."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    errlog: IO[str] | None = None
    try:
        if cfg.url:
            transport: Any = cfg.url
        else:
            errlog = log_file(name).open("a", encoding="utf-8")
            params = StdioServerParameters(
                command=str(cfg.command), args=cfg.args, env=cfg.env or None, cwd=cfg.cwd
            )
            transport = stdio_client(params, errlog=errlog)
        try:
            async with Client(transport, read_timeout_seconds=cfg.timeout_s) as client:
                yield client
        except McpError:
            raise
        except Exception as exc:  # OSError, McpError of the SDK, an ExceptionGroup from anyio
            raise McpUnreachable(
                f"MCP server {name!r} failed: {_reason(exc)}",
                hint=f"check [mcp.{name}] in the config; its log: {log_file(name)}",
            ) from None
    finally:
        if errlog is not None:
            errlog.close()


def _reason(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _spec(server: str, tool: Any) -> McpToolSpec:
    schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None) or {}
    return McpToolSpec(server, tool.name, (tool.description or "").strip(), dict(schema))


async def list_tools(name: str, cfg: McpServerConfig) -> list[McpToolSpec]:
    """What the server offers, asked over a short-lived connection."""
    async with connect(name, cfg) as client:
        listing = await asyncio.wait_for(client.list_tools(), cfg.timeout_s)
        return [_spec(name, tool) for tool in listing.tools]


def result_text(result: Any) -> str:
    """A tool result as the model reads it: the text blocks joined, else the structured
    content as JSON, else a note of what kind of content came back."""
    texts = [block.text for block in result.content if getattr(block, "type", "") == "text"]
    if texts:
        return "\n".join(texts)
    structured = getattr(result, "structured_content", None)
    if structured is not None:
        return json.dumps(structured, ensure_ascii=False)
    kinds = sorted({getattr(block, "type", "?") for block in result.content})
    return f"(the tool returned {', '.join(kinds) or 'nothing'})"


class _Connection:
    """One server's session, held open by a task of its own."""

    def __init__(self, name: str, cfg: McpServerConfig) -> None:
        self.name, self.cfg = name, cfg
        self.client: Any = None
        self.error: BaseException | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold(), name=f"mcp-{name}")

    async def _hold(self) -> None:
        try:
            async with connect(self.name, self.cfg) as client:
                self.client = client
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:
            self.error = exc
            if not isinstance(exc, MyninjaError | asyncio.CancelledError):
                self.error = McpUnreachable(f"MCP server {self.name!r} failed: {_reason(exc)}")
        finally:
            self.client = None
            self._ready.set()

    @property
    def closed(self) -> bool:
        """Done trying: it failed to open, or it was opened and has since closed."""
        return self._ready.is_set() and self.client is None

    async def ready(self) -> Any:
        await self._ready.wait()
        if self.client is None:
            raise self.error or McpUnreachable(f"MCP server {self.name!r} is closed")
        return self.client

    async def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(BaseException):
            await self._task


class McpPool:
    """Open connections to the configured servers, made on first use and kept."""

    def __init__(self, servers: dict[str, McpServerConfig]) -> None:
        self.servers = servers
        self._connections: dict[str, _Connection] = {}

    async def call(self, server: str, tool: str, arguments: dict[str, Any]) -> str:
        """The tool's result as text. A tool that reports an error raises McpError with its
        message; a server that cannot be reached raises McpUnreachable (and is retried by
        the next call, on a new connection)."""
        if server not in self.servers:
            raise McpError(f"no MCP server named {server!r} is configured")
        connection = self._connections.get(server)
        if connection is None or connection.closed:  # a failed one is tried anew
            connection = self._connections[server] = _Connection(server, self.servers[server])
        client = await connection.ready()
        cfg = self.servers[server]
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), cfg.timeout_s)
        except TimeoutError:
            raise McpError(
                f"MCP tool {server}.{tool} gave no result within {cfg.timeout_s:g} s"
            ) from None
        except MyninjaError:
            raise
        except Exception as exc:
            raise McpError(f"MCP tool {server}.{tool} failed: {_reason(exc)}") from None
        text = result_text(result)
        if getattr(result, "is_error", False):
            raise McpError(f"MCP tool {server}.{tool} reported an error: {text}")
        return text

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.close() for c in connections))


async def mcp_skills(
    servers: dict[str, McpServerConfig], pool: McpPool
) -> tuple[list[Any], list[str]]:
    """A skill per configured server, its tools calling through `pool`; and one warning per
    server that could not be listed (the others still load)."""
    from myninja.skills.api import Skill, SkillError, Tool, ToolError

    skills: list[Any] = []
    warnings: list[str] = []

    def handler(server: str, name: str) -> Any:
        async def call(arguments: dict[str, Any], context: Any) -> str:
            try:
                return await pool.call(server, name, arguments)
            except McpError as exc:
                raise ToolError(exc.one_line()) from None

        return call

    for server, cfg in servers.items():
        try:
            specs = await list_tools(server, cfg)
            tools = [
                Tool.from_schema(
                    spec.name,
                    spec.description or f"{spec.name} (MCP server {server})",
                    spec.input_schema or {"type": "object", "properties": {}},
                    handler(server, spec.name),
                    permissions=cfg.permissions,
                )
                for spec in specs
            ]
            description = f"Tools of the MCP server {server}"
            skills.append(Skill(server, description, tools=tools, agents=cfg.agents))
        except (McpError, SkillError) as exc:
            warnings.append(f"MCP server {server!r} skipped: {exc.one_line()}")
    return skills, warnings
