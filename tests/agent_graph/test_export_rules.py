"""The export's building blocks on their own: secret removal, e-mail masking, near-duplicate
prompts, and the judged score of a task."""

from __future__ import annotations

import pytest

from myninja.agent_graph.export.collect import judged_score
from myninja.agent_graph.export.dedupe import clusters, keep_best
from myninja.agent_graph.export.scrub import Scrubber

SECRETS = [
    "sk-proj-4f9Qz1xY7wE3rT5yU8iO0pA2",
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt",
    "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    "AKIAIOSFODNN7EXAMPLE",
    "xoxb-1234567890-abcdefghij",
    "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_credentials_of_known_shapes_are_removed(secret: str) -> None:
    scrub = Scrubber()
    out = scrub.text(f"use {secret} for the call")
    assert secret not in out and "[REDACTED]" in out
    assert out.startswith("use ") and out.endswith(" for the call")
    assert scrub.counts["secrets"] == 1


def test_assignments_and_bearer_tokens_lose_their_values_only() -> None:
    scrub = Scrubber()
    text = (
        'api_key = "abcd1234efgh5678"\nAuthorization: Bearer zyxw9876vuts5432\n'
        "password: hunter2hunter2"
    )
    out = scrub.text(text)
    assert out == 'api_key = "[REDACTED]"\nAuthorization: Bearer [REDACTED]\npassword: [REDACTED]'


def test_a_private_key_block_goes_whole() -> None:
    block = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    assert Scrubber().text(f"key:\n{block}\nend") == "key:\n[REDACTED]\nend"


def test_key_store_values_are_removed_whatever_their_shape() -> None:
    scrub = Scrubber(["plainword-secret", "abc"])  # too short to be a key: left alone
    assert scrub.text("x plainword-secret y abc") == "x [REDACTED] y abc"


def test_emails_are_masked_unless_kept_and_ordinary_text_is_untouched() -> None:
    text = "Mail ann.lee+work@example.co.uk; the token limit: 4096; sk-short; see a@b"
    assert Scrubber().text(text) == "Mail [email]; the token limit: 4096; sk-short; see a@b"
    assert Scrubber(keep_emails=True).text(text) == text


def test_deep_scrubs_every_string_in_a_record() -> None:
    record = {"messages": [{"role": "user", "content": "to x@example.com"}], "n": 3}
    assert Scrubber().deep(record) == {
        "messages": [{"role": "user", "content": "to [email]"}],
        "n": 3,
    }


def test_near_duplicate_prompts_cluster_and_different_questions_do_not() -> None:
    prompts = [
        "What is the capital of France?",
        "what is the capital of france",  # same text once normalised
        "What is the capital of Spain?",  # a different question
        "Write a haiku about autumn leaves",
        "Write a haiku about the autumn leaves.",  # a word and a full stop more
        "Compute 2+2",
        "Compute 2+3",
        "",
        "",
        "Summarise the attached quarterly report for the board in five bullet points, "
        "keeping the numbers exact and naming the two biggest risks",
        "Summarize the attached quarterly report for the board in five bullet points, "
        "keeping the numbers exact and naming the two biggest risks",  # a spelling, in 22 words
    ]
    assert clusters(prompts) == [[0, 1], [2], [3, 4], [5], [6], [7, 8], [9, 10]]


def test_keep_best_keeps_one_per_group_and_per_part() -> None:
    items = [("ask A", 1, None), ("ask A!", 3, None), ("ask A", 2, 0), ("other", 1, None)]
    kept = keep_best(items, lambda i: i[0], lambda i: (i[1],), lambda i: i[2])
    assert kept == [("ask A!", 3, None), ("ask A", 2, 0), ("other", 1, None)]


def test_the_judged_score_is_the_weakest_kept_step_of_the_last_round() -> None:
    def branch(step: int, round_: int, score: float | None, kept: bool) -> dict:
        return {"step": step, "round": round_, "score": score, "kept": kept}

    rows = [
        branch(0, 1, 9, True),  # an earlier round, replaced
        branch(0, 2, 8, True),
        branch(1, 2, 6, True),
        branch(1, 2, 10, False),  # not chosen
    ]
    assert judged_score(rows) == 6
    assert judged_score([branch(0, 1, None, True)]) is None
    assert judged_score([]) is None
