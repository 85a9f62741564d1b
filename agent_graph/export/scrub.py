"""Secrets out, e-mail addresses masked: applied to every string that leaves in an export.

Secrets are the key store's own values (whatever their shape) and text shaped like the common
credentials (API keys of the big providers, cloud access keys, bearer tokens, private keys,
`api_key = …` assignments)."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

REDACTED = "[REDACTED]"
EMAIL = "[email]"

_PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{16,}"),  # OpenAI, Anthropic
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{30,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),  # Hugging Face
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWTs
]
# `Bearer x`, `api_key = "x"`, `password: x`: the name stays, the value goes.
_ASSIGNED = re.compile(
    r"(?i)(\bbearer\s+|\b(?:api[_-]?key|secret|token|password|passwd|access[_-]?key)"
    r"[\"']?\s*[:=]\s*[\"']?)([A-Za-z0-9._~+/=-]{8,})"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")


class Scrubber:
    def __init__(self, secrets: list[str] | None = None, *, keep_emails: bool = False) -> None:
        # Longest first, so a secret containing another is removed whole.
        self.secrets = sorted({s for s in secrets or [] if len(s) >= 6}, key=len, reverse=True)
        self.keep_emails = keep_emails
        self.counts: Counter[str] = Counter()

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                self.counts["secrets"] += value.count(secret)
                value = value.replace(secret, REDACTED)
        for pattern in _PATTERNS:
            value, n = pattern.subn(REDACTED, value)
            self.counts["secrets"] += n
        value, n = _ASSIGNED.subn(lambda m: m.group(1) + REDACTED, value)
        self.counts["secrets"] += n
        if not self.keep_emails:
            value, n = _EMAIL.subn(EMAIL, value)
            self.counts["emails"] += n
        return value

    def deep(self, value: Any) -> Any:
        """Every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.deep(v) for v in value]
        if isinstance(value, dict):
            return {k: self.deep(v) for k, v in value.items()}
        return value
