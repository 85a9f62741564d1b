"""`myninja serve` as its clients see it: the official `openai` SDK for the happy paths, plain
httpx for the requests a careless or hostile client sends.

Every bad request must get a 4xx with an OpenAI-style error object, never a 5xx or a traceback.
The tiny model is weak, so replies are judged on structure (JSON validity, required keys,
finish reasons, usage), never on wording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.backends.shapes import PERSON_SCHEMA, WEATHER_TOOL
from tests.conftest import TINY_MODEL, ServerProcess, run_myninja, start_serve, stop

pytestmark = pytest.mark.slow

TOKEN = "s3cret-serve-token"
BODY_LIMIT = 2048


def hello(text: str = "Say hello in three words.") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def assert_client_error(response: httpx.Response, status: int) -> dict:
    """A 4xx with `{"error": {"message", "type", ...}}` and nothing that leaks internals."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert "code" in error and "param" in error
    return error


@pytest.fixture(scope="module")
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the servers this module starts itself: their own MYNINJA_HOME."""
    home = tmp_path_factory.mktemp("serve-home")
    return {"MYNINJA_HOME": str(home)}


@pytest.fixture(scope="module")
def limited_server(tiny_model_path: Path, isolated_env: dict[str, str]) -> Iterator[ServerProcess]:
    server = start_serve(
        TINY_MODEL, env={**isolated_env, "MYNINJA_SERVE__MAX_BODY_BYTES": str(BODY_LIMIT)}
    )
    yield server
    stop(server)


@pytest.fixture(scope="module")
def token_server(tiny_model_path: Path, isolated_env: dict[str, str]) -> Iterator[ServerProcess]:
    server = start_serve(
        TINY_MODEL, "--api-key-env", "SERVE_TOKEN", env={**isolated_env, "SERVE_TOKEN": TOKEN}
    )
    yield server
    stop(server)


@pytest.fixture
def client(serve_tiny: ServerProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=serve_tiny.base_url, api_key="unused", max_retries=0) as sdk:
        yield sdk


# The openai SDK --------------------------------------------------------------------------------


def test_models_list(client: openai.OpenAI) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [TINY_MODEL]
    assert models.data[0].object == "model"


def test_chat_not_streamed(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TINY_MODEL, messages=hello(), temperature=0, max_tokens=16
    )
    assert reply.object == "chat.completion"
    assert reply.id.startswith("chatcmpl-")
    assert reply.model == TINY_MODEL
    assert len(reply.choices) == 1
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert 0 < reply.usage.completion_tokens <= 16
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TINY_MODEL,
        messages=hello("Write a long story about a dragon who learns to bake bread."),
        temperature=0,
        max_tokens=4,
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens <= 4
    assert reply.choices[0].message.content


async def test_chat_streamed_with_usage(serve_tiny: ServerProcess) -> None:
    async with openai.AsyncOpenAI(
        base_url=serve_tiny.base_url, api_key="unused", max_retries=0
    ) as sdk:
        stream = await sdk.chat.completions.create(
            model=TINY_MODEL,
            messages=hello(),
            temperature=0,
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert chunks, "the stream carried no chunks"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text.strip()
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    assert with_choices[-1].choices[0].finish_reason == finishes[0]
    # With include_usage the last chunk has no choices and carries the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens > 0
    assert 0 < last.usage.completion_tokens <= 16
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_streamed_without_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=TINY_MODEL, messages=hello(), temperature=0, max_tokens=8, stream=True
    )
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_json_schema_output(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TINY_MODEL,
        messages=hello("Describe a person named Ann who is 30 years old, as JSON."),
        temperature=0,
        max_tokens=96,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON_SCHEMA, "strict": True},
        },
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    data = json.loads(choice.message.content or "")
    assert isinstance(data, dict)
    assert set(PERSON_SCHEMA["required"]) <= data.keys()
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int)


def test_json_schema_output_streamed(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=TINY_MODEL,
        messages=hello("Describe a person named Bob who is 41 years old, as JSON."),
        temperature=0,
        max_tokens=96,
        stream=True,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON_SCHEMA},
        },
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop", text
    data = json.loads(text)
    assert set(PERSON_SCHEMA["required"]) <= data.keys()


def test_json_object_output(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model=TINY_MODEL,
        messages=[
            {"role": "system", "content": "You answer only with a small JSON object."},
            {"role": "user", "content": 'Give {"color": <a color name>} for the sky.'},
        ],
        temperature=0,
        max_tokens=64,
        response_format={"type": "json_object"},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(json.loads(choice.message.content or ""), dict)


def test_sdk_sees_http_errors_as_its_exceptions(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=hello(), max_tokens=4)
    assert caught.value.status_code == 404
    with pytest.raises(openai.BadRequestError) as caught_400:
        client.chat.completions.create(model=TINY_MODEL, messages=[], max_tokens=4)
    assert caught_400.value.status_code == 400


# Bad requests, over plain HTTP -----------------------------------------------------------------


def test_malformed_json_is_400(serve_tiny: ServerProcess) -> None:
    response = httpx.post(
        f"{serve_tiny.base_url}/chat/completions",
        content=b'{"messages": [{"role": "user", "content": "hi"}',
        headers={"content-type": "application/json"},
    )
    error = assert_client_error(response, 400)
    assert "json" in error["message"].lower()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        pytest.param({"model": TINY_MODEL}, "messages", id="missing-messages"),
        pytest.param({"messages": []}, "messages", id="empty-messages"),
        pytest.param({"messages": "hi"}, "messages", id="messages-not-a-list"),
        pytest.param({"messages": [{"content": "hi"}]}, "messages", id="message-without-role"),
        pytest.param(
            {"messages": [{"role": "wizard", "content": "hi"}]}, "messages", id="unknown-role"
        ),
        pytest.param({"messages": hello(), "temperature": "hot"}, "temperature", id="temp-hot"),
        pytest.param({"messages": hello(), "temperature": 7}, "temperature", id="temp-range"),
        pytest.param({"messages": hello(), "max_tokens": 0}, "max_tokens", id="max-tokens-0"),
        pytest.param({"messages": hello(), "stream": "often"}, "stream", id="stream-not-bool"),
        pytest.param(
            {"messages": hello(), "response_format": {"type": "yaml"}},
            "response_format",
            id="unknown-response-format",
        ),
        pytest.param(
            {"messages": hello(), "tools": [{"type": "function"}]}, "tools", id="tool-no-function"
        ),
        pytest.param(
            {"messages": hello(), "tools": [{"type": "function", "function": {"x": 1}}]},
            "tools",
            id="tool-no-name",
        ),
        pytest.param(
            {"messages": hello(), "tools": [WEATHER_TOOL], "tool_choice": "sometimes"},
            "tool_choice",
            id="tool-choice-unknown-word",
        ),
        pytest.param([{"role": "user", "content": "hi"}], None, id="body-is-a-list"),
        pytest.param("hello", None, id="body-is-a-string"),
    ],
)
def test_invalid_requests_are_400(
    serve_tiny: ServerProcess, body: object, param: str | None
) -> None:
    response = httpx.post(f"{serve_tiny.base_url}/chat/completions", json=body)
    error = assert_client_error(response, 400)
    assert error["type"] == "invalid_request_error"
    if param:
        assert param in error["message"]
        assert (error["param"] or "").startswith(param)


def test_deeply_nested_json_is_400(serve_tiny: ServerProcess) -> None:
    response = httpx.post(
        f"{serve_tiny.base_url}/chat/completions",
        content=b"[" * 100_000 + b"]" * 100_000,
        headers={"content-type": "application/json"},
    )
    assert_client_error(response, 400)


def test_prompt_longer_than_the_context_is_400(serve_tiny: ServerProcess) -> None:
    """The server runs with a 4096-token context; this prompt is about 6000 tokens."""
    body = {"messages": hello("hello " * 6000), "max_tokens": 4}
    error = assert_client_error(
        httpx.post(f"{serve_tiny.base_url}/chat/completions", json=body, timeout=60), 400
    )
    assert "context" in error["message"]
    streamed = httpx.post(
        f"{serve_tiny.base_url}/chat/completions", json={**body, "stream": True}, timeout=60
    )
    assert_client_error(streamed, 400)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_tool_choice_naming_no_tool_is_400(serve_tiny: ServerProcess, stream: bool) -> None:
    body = {
        "messages": hello(),
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "function": {"name": "launch_rockets"}},
        "max_tokens": 8,
        "stream": stream,
    }
    response = httpx.post(f"{serve_tiny.base_url}/chat/completions", json=body, timeout=60)
    error = assert_client_error(response, 400)
    assert "launch_rockets" in error["message"]


def test_empty_body_is_400(serve_tiny: ServerProcess) -> None:
    response = httpx.post(
        f"{serve_tiny.base_url}/chat/completions", headers={"content-type": "application/json"}
    )
    assert_client_error(response, 400)


def test_unknown_model_is_404(serve_tiny: ServerProcess) -> None:
    response = httpx.post(
        f"{serve_tiny.base_url}/chat/completions",
        json={"model": "gpt-17-ultra", "messages": hello(), "max_tokens": 4},
    )
    error = assert_client_error(response, 404)
    assert "gpt-17-ultra" in error["message"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"


def test_unknown_route_and_wrong_method_are_4xx(serve_tiny: ServerProcess) -> None:
    assert_client_error(httpx.get(f"{serve_tiny.base_url}/nothing-here"), 404)
    assert_client_error(httpx.get(f"{serve_tiny.base_url}/chat/completions"), 405)


def test_body_without_json_content_type_is_read_as_json(serve_tiny: ServerProcess) -> None:
    """`curl -d '{...}'` (the README's example) sends application/x-www-form-urlencoded."""
    response = httpx.post(
        f"{serve_tiny.base_url}/chat/completions",
        content=json.dumps({"messages": hello(), "max_tokens": 4, "temperature": 0}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_model_may_be_omitted(serve_tiny: ServerProcess) -> None:
    response = httpx.post(
        f"{serve_tiny.base_url}/chat/completions",
        json={"messages": hello(), "max_tokens": 4, "temperature": 0},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == TINY_MODEL


# Body limit ------------------------------------------------------------------------------------


def oversized_body() -> bytes:
    body = json.dumps({"messages": hello("x" * (BODY_LIMIT * 2)), "max_tokens": 4}).encode()
    assert len(body) > BODY_LIMIT
    return body


def test_oversized_body_is_413(limited_server: ServerProcess) -> None:
    response = httpx.post(
        f"{limited_server.base_url}/chat/completions",
        content=oversized_body(),
        headers={"content-type": "application/json"},
    )
    error = assert_client_error(response, 413)
    assert str(BODY_LIMIT) in error["message"]


def test_oversized_chunked_body_is_413(limited_server: ServerProcess) -> None:
    """No Content-Length: the limit is enforced on the bytes as they arrive."""
    body = oversized_body()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = httpx.post(
        f"{limited_server.base_url}/chat/completions",
        content=pieces(),
        headers={"content-type": "application/json"},
    )
    assert "content-length" not in response.request.headers
    assert_client_error(response, 413)


def test_body_under_the_limit_is_served(limited_server: ServerProcess) -> None:
    response = httpx.post(
        f"{limited_server.base_url}/chat/completions",
        json={"messages": hello(), "max_tokens": 4, "temperature": 0},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


# Bearer token ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="longer"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
        pytest.param({"Authorization": "Bearer"}, id="empty"),
    ],
)
def test_missing_or_wrong_token_is_401(
    token_server: ServerProcess, headers: dict[str, str]
) -> None:
    for response in (
        httpx.get(f"{token_server.base_url}/models", headers=headers),
        httpx.post(
            f"{token_server.base_url}/chat/completions",
            json={"messages": hello(), "max_tokens": 4},
            headers=headers,
        ),
    ):
        error = assert_client_error(response, 401)
        assert TOKEN not in response.text
        assert error["code"] == "invalid_api_key"


def test_right_token_is_200(token_server: ServerProcess) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    models = httpx.get(f"{token_server.base_url}/models", headers=headers)
    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == [TINY_MODEL]
    with openai.OpenAI(base_url=token_server.base_url, api_key=TOKEN, max_retries=0) as sdk:
        reply = sdk.chat.completions.create(
            model=TINY_MODEL, messages=hello(), temperature=0, max_tokens=4
        )
    assert reply.choices[0].message.content


def test_sdk_with_wrong_token_gets_authentication_error(token_server: ServerProcess) -> None:
    with (
        openai.OpenAI(base_url=token_server.base_url, api_key="nope", max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.models.list()
    assert caught.value.status_code == 401


def test_api_key_env_unset_is_a_usage_error() -> None:
    result = run_myninja(
        "serve",
        "--model",
        TINY_MODEL,
        "--port",
        "0",
        "--api-key-env",
        "NO_SUCH_SERVE_TOKEN",
        timeout=60,
    )
    assert result.returncode == 2
    assert "NO_SUCH_SERVE_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
