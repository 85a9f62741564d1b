"""`myninja web`: the app in a browser, one app process per tab, through textual-serve.

textual-serve trusts whoever can reach its port and whatever page opens its websocket. The app
can start tasks that run code and read files, so this server adds: a Host check on loopback
binds (DNS rebinding), an Origin check on the websocket (cross-site WebSocket hijacking), and a
token where one is given (required off loopback; the CLI enforces that)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_loopback(host: str) -> bool:
    """`host` (a name or an address, IPv6 with or without brackets) is this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_command() -> str:
    """This install's app, whatever environment `myninja web` runs from."""
    import shlex

    return shlex.join([sys.executable, "-m", "myninja"])


def _host_name(netloc: str) -> str:
    """`example.com:8000` or `[::1]:8000` -> the host alone."""
    return (urlsplit(f"//{netloc}").hostname or "").lower()


class WebServer(Server):
    """textual-serve's server on a socket bound beforehand, with the checks above."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        token: str | None = None,
        public_url: str | None = None,
    ) -> None:
        host, port = sock.getsockname()[:2]
        super().__init__(
            app_command(), host=host, port=port, title="myninja", public_url=public_url
        )
        self.sock = sock
        self.token = token
        self.fixed_public_url = public_url
        self.loopback = is_loopback(host)
        # The cookie holds a digest of the token, not the token; its name carries the port since
        # cookies are shared by every port of a host.
        self.cookie_name = f"myninja_web_{port}"
        self.cookie_value = (
            hmac.new(token.encode(), b"myninja web session", hashlib.sha256).hexdigest()
            if token
            else ""
        )
        self._sessions: set[asyncio.Task[Any]] = set()

    # --- serving -----------------------------------------------------------------------------

    def initialize_logging(self) -> None:
        # Only what goes wrong, in one-line records: no logo, no access log.
        logging.basicConfig(level=logging.WARNING, format="myninja web: %(message)s")

    async def on_startup(self, app: web.Application) -> None:
        pass  # the CLI has already said where it serves

    async def on_shutdown(self, app: web.Application) -> None:
        # Open websockets would hold the shutdown for aiohttp's 60 s grace: end each session
        # now (textual-serve then tells its app to quit).
        for task in list(self._sessions):
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)

    def serve(self, debug: bool = False) -> None:
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        web.run_app(
            self._make_app(),
            sock=self.sock,
            handle_signals=False,
            loop=loop,
            print=None,
            access_log=None,
        )

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        return app

    # --- requests ----------------------------------------------------------------------------

    async def handle_index(self, request: web.Request) -> web.StreamResponse:  # type: ignore[override]
        if self.fixed_public_url is None:
            # The page's websocket and static URLs follow the address the browser used (a
            # 0.0.0.0 bind, localhost vs 127.0.0.1). No await between this and its use.
            self.public_url = f"{request.scheme}://{request.host}"
        response: web.StreamResponse = await super().handle_index(request)
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._sessions.discard(task)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.loopback and not self._host_allowed(request.host):
            return _refuse(
                403,
                f"this server answers to localhost only, not {request.host!r} "
                "(behind a proxy, start it with --public-url)",
            )
        if self.token:
            cookie = request.cookies.get(self.cookie_name, "")
            if not hmac.compare_digest(cookie.encode(), self.cookie_value.encode()):
                if request.path == "/" and "token" in request.query:
                    return self._admit(request)
                if request.path == "/":
                    return _refuse(401, "open this page with ?token=… (the server's token)")
                return _refuse(401, "no session: open the page with ?token=… first")
        if request.path == "/ws" and not self._origin_allowed(request):
            return _refuse(403, "websocket refused: it was not opened by this server's page")
        return await handler(request)

    def _admit(self, request: web.Request) -> web.StreamResponse:
        """A valid `?token=` sets the session cookie and leaves for the bare URL."""
        assert self.token is not None
        given = request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return _refuse(403, "wrong token")
        # Nothing the request says is echoed into the page; only a numeric font size is kept.
        size = request.query.get("fontsize", "")
        target = (
            f"/?fontsize={size}" if size.isascii() and size.isdigit() and len(size) < 4 else "/"
        )
        # An HTML redirect rather than a 30x: after a cross-site link the browser withholds a
        # SameSite=Strict cookie for the rest of that redirect chain, but not from a navigation
        # this page starts itself.
        response = web.Response(
            text=f'<!doctype html><meta http-equiv="refresh" content="0;url={target}">'
            f'<script>location.replace("{target}")</script>',
            content_type="text/html",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
        response.set_cookie(
            self.cookie_name,
            self.cookie_value,
            httponly=True,
            samesite="Strict",
            secure=self._public_scheme(request) == "https",
            path="/",
        )
        return response

    def _public_scheme(self, request: web.Request) -> str:
        if self.fixed_public_url:
            return urlsplit(self.fixed_public_url).scheme
        return request.scheme

    def _host_allowed(self, host: str) -> bool:
        name = _host_name(host)
        if self.fixed_public_url and name == (urlsplit(self.fixed_public_url).hostname or ""):
            return True
        return is_loopback(name)

    def _origin_allowed(self, request: web.Request) -> bool:
        """Browsers always send Origin on a websocket: it must be the page's own host."""
        origin = request.headers.get("Origin", "")
        netloc = urlsplit(origin).netloc.lower()
        if not netloc:
            return False
        allowed = {request.host.lower()}
        if self.fixed_public_url:
            allowed.add(urlsplit(self.fixed_public_url).netloc.lower())
        return netloc in allowed


def _refuse(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=f"myninja web: {text}\n")
