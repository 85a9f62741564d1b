"""Near-duplicate prompts: the same request asked again with small changes ("… in Paris?" /
"… in Paris"), which would weigh one task many times in a training set.

Prompts are compared by the Jaccard similarity of their character 5-gram sets (after case,
punctuation and spacing are normalised): MinHash LSH proposes the candidates, so a history of
many thousands of tasks is not compared pair by pair; the exact similarity, and the words that
differ (see same_request), decide."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from datasketch import MinHash, MinHashLSH

T = TypeVar("T")
THRESHOLD = 0.7
NUM_PERM = 128
_SHINGLE = 5


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _shingles(text: str) -> set[str]:
    norm = normalise(text)
    if len(norm) <= _SHINGLE:
        return {norm}
    return {norm[i : i + _SHINGLE] for i in range(len(norm) - _SHINGLE + 1)}


# Words whose presence does not change a request.
FILLER = frozenset(
    "a an the please pls kindly can could would will you me my i for to of in on and just now "
    "quickly thanks thank hi hello hey some this that".split()
)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def same_request(a: str, b: str) -> bool:
    """Besides looking alike, two requests must not differ in what they ask: a short one only
    in filler words ("the", "please"), a long one (12 words or more) in at most a tenth of its
    words. "Compute 2+2" and "Compute 2+3" look alike and are different questions."""
    words_a, words_b = set(normalise(a).split()), set(normalise(b).split())
    different = (words_a ^ words_b) - FILLER
    longest = max(len(normalise(a).split()), len(normalise(b).split()))
    return not different or (longest >= 12 and len(different) <= longest / 10)


def clusters(prompts: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """Groups of indexes whose prompts are near-duplicates (each index in exactly one group,
    groups in order of their first member)."""
    # LSH finds candidates generously (a pair just above the threshold can slip through its
    # bands); the exact Jaccard of the shingle sets then decides.
    lsh = MinHashLSH(threshold=max(threshold - 0.25, 0.1), num_perm=NUM_PERM)
    shingles = [_shingles(p) for p in prompts]
    parent = list(range(len(prompts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    exact: dict[str, int] = {}
    for i, prompt in enumerate(prompts):
        key = normalise(prompt)
        if key in exact:  # the same text: no need for an estimate
            parent[root(i)] = root(exact[key])
            continue
        exact[key] = i
        signature = MinHash(num_perm=NUM_PERM)
        for shingle in shingles[i]:
            signature.update(shingle.encode("utf-8"))
        for j in map(int, lsh.query(signature)):
            if jaccard(shingles[i], shingles[j]) >= threshold and same_request(prompt, prompts[j]):
                parent[root(i)] = root(j)
        lsh.insert(str(i), signature)
    groups: dict[int, list[int]] = {}
    for i in range(len(prompts)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def keep_best(
    items: Sequence[T],
    prompt: Callable[[T], str],
    rank: Callable[[T], tuple],
    part: Callable[[T], object] = lambda item: None,
) -> list[T]:
    """One item per group of near-duplicate prompts (and per `part` within a group, e.g. the
    step of a plan: two steps of one task are different prompts): the highest-ranked."""
    best: dict[tuple[int, object], T] = {}
    for n, group in enumerate(clusters([prompt(item) for item in items])):
        for i in group:
            key = (n, part(items[i]))
            if key not in best or rank(items[i]) > rank(best[key]):
                best[key] = items[i]
    order = {id(item): n for n, item in enumerate(items)}
    return sorted(best.values(), key=lambda item: order[id(item)])
