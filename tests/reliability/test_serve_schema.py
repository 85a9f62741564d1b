"""`myninja serve` fuzzed from its own OpenAPI document with schemathesis: bodies valid and
invalid by the published schema, in-process over ASGI, on a scripted engine (the app is what is
under test, not a model). No request may get a 5xx, and every response must be one the document
declares: its status, its content type and its body schema; a streamed reply is chunk objects
and then `[DONE]`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection

from myninja.backends.scripted import Rule, ScriptedBackend
from myninja.backends.serve.app import create_app

MODEL = "tiny"
TOKEN = "sk-serve-fuzz"
# A few rules so that replies take each shape the document declares: text, JSON, tool calls.
ENGINE = ScriptedBackend(
    "scripted",
    [
        Rule(match=r"weather", tool_calls=[{"name": "forecast", "arguments": {"city": "Oslo"}}]),
        Rule(match=r"json", json={"ok": True}),
        Rule(match=r"\d", reply="A number, then more words."),
    ],
)
STATUSES: Counter[str] = Counter()


def fuzzed(api_key: str | None, examples: int) -> schemathesis.schemas.BaseSchema:
    app = create_app(ENGINE, MODEL, api_key=api_key, max_body_bytes=64_000)
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=auth)
    schema.config.generation.update(max_examples=examples)
    return schema


open_server = fuzzed(None, 80)
locked_server = fuzzed(TOKEN, 30)
soak_server = fuzzed(None, 600)

FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    print(f"\nserve fuzzing: responses by status {dict(sorted(STATUSES.items()))}", file=sys.stderr)


def sse_is_chunks_then_done(ctx: object, response: schemathesis.Response, case: object) -> None:
    """A streamed reply: every event a chunk (or an error object), the last one `[DONE]`."""
    if not response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
        return None
    events = [e.removeprefix("data: ") for e in response.text.split("\n\n") if e.strip()]
    assert events and events[-1] == "[DONE]", events[-3:]
    for event in events[:-1]:
        body = json.loads(event)
        if "error" in body:
            continue
        assert body["object"] == "chat.completion.chunk" and body["model"] == MODEL, body
        assert isinstance(body["choices"], list), body
    return None


def check(case: schemathesis.Case, headers: dict[str, str] | None = None) -> int:
    """Call the server with a generated request and validate the reply; its status."""
    ENGINE.calls.clear()  # the scripted engine keeps every request; keep memory flat
    # The server validates in pydantic's lax mode on purpose (`"max_tokens": "5"` and
    # `"seed": false` are read as 5 and 0, as many OpenAI-compatible servers do), so a body the
    # schema calls invalid may still be served: that one check is left out.
    response = case.call_and_validate(
        headers=headers,
        excluded_checks=[negative_data_rejection],
        additional_checks=[sse_is_chunks_then_done],
    )
    STATUSES[f"{case.method} {response.status_code}"] += 1
    return int(response.status_code)


@open_server.parametrize()
@FUZZ
def test_serve_answers_every_generated_request_as_its_schema_says(
    case: schemathesis.Case,
) -> None:
    assert check(case) < 500


@locked_server.parametrize()
@FUZZ
def test_serve_with_a_token_answers_generated_requests_as_its_schema_says(
    case: schemathesis.Case,
) -> None:
    assert check(case, {"Authorization": f"Bearer {TOKEN}"}) < 500


@pytest.mark.heavy
@soak_server.parametrize()
@FUZZ
def test_serve_soak_many_generated_requests(case: schemathesis.Case) -> None:
    assert check(case) < 500
