"""Whether a backend answers: its models, one tiny completion, latency and decode speed.

One probe serves `myninja backends test` and the app's settings screen, so both report the
same numbers for the same backend."""

from __future__ import annotations

import time
from typing import Any

from myninja.backends.base import Backend, ChatRequest
from myninja.errors import MyninjaError

PROBE_PROMPT = "Reply with one word: hello."
PROBE_MAX_TOKENS = 16


async def probe(backend: Backend) -> dict[str, Any]:
    """Run the check and close the backend. The report has `ok`; when ok, `models`, `reply`,
    `first_token_s`, `total_s`, `completion_tokens` and `tokens_per_s`; otherwise `error` (one
    line) and the `exit_code` the CLI would use. Only our own errors are caught: anything else
    is a bug and should say so."""
    report: dict[str, Any] = {"backend": backend.name, "ok": False}
    try:
        started = time.perf_counter()
        report["models"] = await backend.list_models()
        report["models_s"] = round(time.perf_counter() - started, 4)
        report.update(ok=True, **await _timed_reply(backend))
    except MyninjaError as exc:
        report.update(ok=False, error=exc.one_line(), exit_code=exc.exit_code)
    finally:
        await backend.aclose()
    return report


async def _timed_reply(backend: Backend) -> dict[str, Any]:
    request = ChatRequest(
        [{"role": "user", "content": PROBE_PROMPT}], max_tokens=PROBE_MAX_TOKENS, temperature=0.0
    )
    started = time.perf_counter()
    first, parts, tokens = None, [], 0
    async for chunk in backend.stream(request):
        if chunk.text:
            first = first or time.perf_counter()
            parts.append(chunk.text)
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    ended = time.perf_counter()
    decode = ended - (first or ended)
    # The first token's time is latency, not decoding: speed counts the tokens after it.
    return {
        "reply": "".join(parts).strip(),
        "first_token_s": round((first or ended) - started, 4),
        "total_s": round(ended - started, 4),
        "completion_tokens": tokens,
        "tokens_per_s": round((tokens - 1) / decode, 2) if decode > 0 and tokens > 1 else 0.0,
    }
