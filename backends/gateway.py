"""The gateway backend: any OpenAI-compatible chat-completions server, over httpx.

Covers a remote gateway, a self-hosted vLLM / optimum-neuron server, llama.cpp's server and
our own `myninja serve`. Retries connect errors, 429 (honouring Retry-After) and 502/503/504
with exponential backoff and full jitter, but only before a reply started: once a stream has
begun, a failure ends it with the partial text kept in the error.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from myninja.backends.base import ChatRequest, ChatResult, Chunk
from myninja.backends.openai_wire import (
    StreamAssembler,
    request_payload,
    response_format_for,
    result_from_response,
)
from myninja.backends.sse import NotServerSentEvents, sse_data
from myninja.config import GatewayBackendConfig
from myninja.errors import (
    AuthError,
    BackendError,
    BackendUnreachable,
    BadResponse,
    ModelError,
    RateLimited,
)

RETRY_STATUSES = {429, 502, 503, 504}
MAX_RETRY_AFTER_S = 60.0


class GatewayBackend:
    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 8,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        max_retries: int = 4,
        json_mode: str = "auto",
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self._json_mode = json_mode
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout, pool=None),
            limits=httpx.Limits(
                max_connections=max_concurrency, max_keepalive_connections=max_concurrency
            ),
        )
        self._slots = asyncio.Semaphore(max_concurrency)

    @classmethod
    def from_config(
        cls, name: str, cfg: GatewayBackendConfig, *, api_key: str | None = None
    ) -> GatewayBackend:
        return cls(
            name,
            cfg.url,
            model=cfg.model,
            api_key=api_key,
            max_concurrency=cfg.max_concurrency,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_retries=cfg.max_retries,
            json_mode=cfg.json_mode,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # Models -------------------------------------------------------------------------------
    async def list_models(self) -> list[str]:
        response = await self._send("GET", "/models")
        try:
            return [item["id"] for item in response.json()["data"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadResponse(f"{self.name}: /models reply is not a model list") from exc

    async def _model_for(self, request: ChatRequest) -> str:
        if request.model or self.model:
            return request.model or self.model  # type: ignore[return-value]
        models = await self.list_models()
        if not models:
            raise ModelError(
                f"{self.name}: the server lists no models", hint="set a model in config"
            )
        self.model = models[0]
        return self.model

    # Chat ---------------------------------------------------------------------------------
    async def chat(self, request: ChatRequest) -> ChatResult:
        model = await self._model_for(request)
        response = await self._post_chat(request, model, stream=False)
        self._slots.release()  # the body was read whole: the server is done with us
        try:
            return result_from_response(response.json(), model)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise BadResponse(
                f"{self.name}: the reply is not a chat completion: {response.text[:200]!r}"
            ) from exc

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        model = await self._model_for(request)
        response = await self._post_chat(request, model, stream=True)
        try:
            assembler = StreamAssembler()
            partial: list[str] = []
            try:
                async for payload in sse_data(response):
                    if payload == "[DONE]":
                        break
                    try:
                        obj = json.loads(payload)
                    except ValueError as exc:
                        raise BadResponse(
                            f"{self.name}: malformed stream event: {payload[:120]!r}",
                            partial_text="".join(partial),
                        ) from exc
                    if not isinstance(obj, dict):
                        raise BadResponse(
                            f"{self.name}: malformed stream event: {payload[:120]!r}",
                            partial_text="".join(partial),
                        )
                    if "error" in obj:
                        raise BadResponse(
                            f"{self.name}: the server failed mid-stream: "
                            f"{_one_line(_error_message(obj))}",
                            partial_text="".join(partial),
                        )
                    chunk = assembler.feed(obj)
                    if chunk and chunk.text:
                        partial.append(chunk.text)
                        yield Chunk(text=chunk.text)
                else:
                    if assembler.finish_reason is None:
                        raise BadResponse(
                            f"{self.name}: the stream ended before the reply was complete",
                            partial_text="".join(partial),
                        )
            except NotServerSentEvents as exc:
                raise BadResponse(
                    f"{self.name}: malformed stream line: {exc.line[:120]!r}",
                    partial_text="".join(partial),
                ) from exc
            except httpx.ReadTimeout as exc:
                raise BackendUnreachable(
                    f"{self.name}: no data for {self._client.timeout.read:g}s mid-stream",
                    partial_text="".join(partial),
                ) from exc
            except (httpx.TransportError, httpx.StreamError) as exc:
                raise BadResponse(
                    f"{self.name}: the stream was cut: {type(exc).__name__}",
                    partial_text="".join(partial),
                ) from exc
            finally:
                await response.aclose()
            yield assembler.finish()
        finally:
            self._slots.release()

    async def _post_chat(self, request: ChatRequest, model: str, *, stream: bool) -> httpx.Response:
        body = request_payload(request, model, stream=stream)
        if request.json_schema is None:
            return await self._send("POST", "/chat/completions", body, stream=stream, slot=True)
        mode = "json_schema" if self._json_mode == "auto" else self._json_mode
        body["response_format"] = response_format_for(request.json_schema, mode)
        try:
            return await self._send("POST", "/chat/completions", body, stream=stream, slot=True)
        except BadResponse as exc:
            # Servers of the llama.cpp family reject json_schema but take json_object + schema;
            # llama-cpp-python's server reports that rejection as a 500.
            refused = exc.status in (400, 422) or (
                exc.status == 500 and "response_format" in str(exc)
            )
            if self._json_mode != "auto" or not refused:
                raise
        self._json_mode = "json_object"
        body["response_format"] = response_format_for(request.json_schema, "json_object")
        return await self._send("POST", "/chat/completions", body, stream=stream, slot=True)

    async def _send(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        stream: bool = False,
        slot: bool = False,
    ) -> httpx.Response:
        """One request with the retry rule; returns a 2xx response (open, if streaming).

        With `slot`, each attempt holds one of the backend's concurrency slots and gives it
        back before waiting to retry, so a request waiting out a 429 does not keep others
        from the server; the 2xx response comes back with its slot still held, for the caller
        to release when it has read the reply."""
        attempt = 0
        while True:
            if slot:
                await self._slots.acquire()
            try:
                response, delay = await self._attempt(method, path, body, stream, attempt)
            except BaseException:
                if slot:
                    self._slots.release()
                raise
            if response is not None:
                return response
            if slot:
                self._slots.release()
            attempt += 1
            await asyncio.sleep(delay)

    async def _attempt(
        self, method: str, path: str, body: dict[str, Any] | None, stream: bool, attempt: int
    ) -> tuple[httpx.Response | None, float]:
        """A 2xx response, or None and how long to wait before the next attempt; raises when
        the failure is final."""
        try:
            req = self._client.build_request(method, path, json=body)
            response = await self._client.send(req, stream=stream)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if attempt >= self.max_retries:
                raise BackendUnreachable(
                    f"{self.name}: cannot connect to {self.base_url}",
                    hint=f"is the server running? check `myninja backends test {self.name}`",
                ) from exc
            return None, self._backoff(attempt)
        except httpx.TimeoutException as exc:
            raise BackendUnreachable(
                f"{self.name}: no reply within {self._client.timeout.read:g}s"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendUnreachable(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return response, 0.0
        await response.aread()
        retry_after = retry_after_seconds(response)
        if (
            response.status_code not in RETRY_STATUSES
            or attempt >= self.max_retries
            or (retry_after is not None and retry_after > MAX_RETRY_AFTER_S)
        ):
            raise self._status_error(response)
        return None, retry_after if retry_after is not None else self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.retry_max_delay, self.retry_base_delay * 2**attempt)
        return random.uniform(0, ceiling)

    def _status_error(self, response: httpx.Response) -> BackendError:
        status = response.status_code
        raw = _error_message(_json_or_none(response)) or response.text[:200]
        message = _one_line(raw) or response.reason_phrase
        where = f"{self.name}: HTTP {status}: {message}"
        if status in (401, 403):
            hint = f"store a key with `myninja keys set {self.name}`"
            return AuthError(where, hint=hint, status=status)
        if status == 429:
            return RateLimited(where, hint="the server is rate-limiting; try later", status=status)
        if status in (502, 503, 504):
            return BackendUnreachable(where, status=status)
        return BadResponse(where, status=status)


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After in seconds, from either of its forms (seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
        if "detail" in body:
            return str(body["detail"])
    return ""


def _one_line(text: str) -> str:
    """A server's message as one line: error pages and tracebacks span many."""
    return " ".join(text.split())
