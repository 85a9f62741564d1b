"""`myninja web`: the app in a browser (textual-serve), one app per tab on the same worker."""

from __future__ import annotations

import os
import socket

import click

from myninja.errors import UsageError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="0: any free one.",
)
@click.option(
    "--token-env",
    metavar="VAR",
    help="Require the token held in this environment variable (?token=… on the first visit). "
    "Needed for any address other than loopback.",
)
@click.option(
    "--public-url",
    metavar="URL",
    help="The address browsers use, where a proxy stands between (e.g. https://ninja.example); "
    "by default each page uses the address it was opened at.",
)
def web(host: str, port: int, token_env: str | None, public_url: str | None) -> None:
    """Open the app in a browser: serve it over HTTP, each tab its own app on the same
    background worker and tasks as the terminal."""
    from myninja.ninja_tui.web import WebServer

    host = host.strip("[]")
    token = _token(token_env, host)
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise UsageError(f"--public-url {public_url!r} is not an http(s) URL")
    sock = _bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    public_url = public_url.rstrip("/") if public_url else None
    url = f"{public_url}/" if public_url else f"http://{shown}:{sock.getsockname()[1]}/"
    how = f" (first visit: {url}?token=… with the token in ${token_env})" if token else ""
    click.echo(f"myninja web: {url}{how}; Ctrl+C stops it", err=True)
    WebServer(sock, token=token, public_url=public_url).serve()


def _token(token_env: str | None, host: str) -> str | None:
    from myninja.ninja_tui.web import is_loopback

    if token_env:
        token = os.environ.get(token_env, "")
        if not token:
            raise UsageError(
                f"environment variable {token_env} is empty or not set",
                hint=f"set it to a secret, e.g. {token_env}=$(openssl rand -hex 16)",
            )
        return token
    if not is_loopback(host):
        raise UsageError(
            f"--host {host} lets other machines drive the app: a token is required",
            hint="e.g. MYNINJA_WEB_TOKEN=$(openssl rand -hex 16) myninja web "
            f"--host {host} --token-env MYNINJA_WEB_TOKEN",
        )
    return None


def _bind(host: str, port: int) -> socket.socket:
    """Bind before announcing, so a taken port is one line here and `--port 0` is known."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="choose another --port (0: any free one)",
        ) from exc
    return sock
