"""ColBERTv2 retrieval: a remote search endpoint, or a local colbert-ai index.

Both are `Retriever`s (skills/research/retrievers.py) named "colbert", so the researcher, `index
search` and `eval` use them as they use BM25. Neither searches a local corpus: ColBERT has its
own index, built with colbert-ai from a ColBERTv2 checkpoint (no weights ship with myninja).

The remote endpoint speaks the API of ColBERT's own `server.py`, which DSPy's `ColBERTv2` client
calls: `GET URL?query=…&k=…` answers `{"topk": [{"text", "pid", "rank", "score", "prob"}, …]}`
best first. Its texts, like the passages of a local index's collection, are "Title | body" when
the collection had titles (colbert-ai's `load_collection` joins them so), and are split back on
the first " | ".

colbert-ai (the `colbert` extra) pulls in torch and faiss: it is imported only when a local
index is first searched, and `colbert_available()` says whether it can be.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from myninja.errors import BackendUnreachable, BadResponse, ConfigError, ModelError, UsageError

from .passages import Hit, Passage

if TYPE_CHECKING:
    from myninja.config import ColbertConfig

NAME = "colbert"
# ColBERTv2 reads only the first query_maxlen (32) tokens of a query, so a pasted page loses
# nothing past this, and the URL stays well under the 8 KB request line servers accept.
MAX_QUERY_CHARS = 1000
CONFIGURE_HINT = (
    'set [research.colbert] url = "http://HOST:PORT/api/search" for a ColBERT server, or '
    "pip install 'myninja[colbert]' and set [research.colbert] checkpoint, index_root and index"
)


def split_title(text: str) -> tuple[str, str]:
    """(title, body) of a ColBERT collection entry: "Title | body" split on the first " | ";
    an entry without one is all body."""
    title, sep, body = text.partition(" | ")
    return (title.strip(), body.strip()) if sep else ("", text.strip())


def _passage(pid: Any, text: str, source: str) -> Passage:
    title, body = split_title(text)
    if pid is None:  # an endpoint that sends no pid: an id that is stable for the same text
        pid = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return Passage(id=f"{NAME}:{pid}", title=title, text=body, source=source)


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class RemoteColbertRetriever:
    """A ColBERT search endpoint over HTTP (see the module docstring for its API). One
    connection pool per retriever; `close()` it, or use `with`."""

    name = NAME

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"research.colbert.url must start with http:// or https://, got {url!r}",
                hint='e.g. url = "http://localhost:8893/api/search"',
            )
        self.url = url
        self.timeout_s = timeout_s
        self._client = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RemoteColbertRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, query: str, k: int = 10) -> list[Hit]:
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query or k < 1:
            return []  # nothing to ask: a blank query is no hits, as BM25 gives
        # httpx percent-encodes the parameters, so quotes, &, # and any Unicode arrive intact.
        try:
            response = self._client.get(self.url, params={"query": query, "k": k})
        except httpx.TimeoutException:
            raise BackendUnreachable(
                f"the ColBERT endpoint {self.url} did not answer within {self.timeout_s:g}s",
                hint="is the server up? [research.colbert] timeout_s sets the wait",
            ) from None
        except httpx.TransportError as exc:
            reason = _one_line(str(exc)) or type(exc).__name__
            raise BackendUnreachable(
                f"cannot reach the ColBERT endpoint {self.url}: {reason}",
                hint="is the server up? check [research.colbert] url",
            ) from None
        if response.status_code >= 400:
            raise BadResponse(
                f"the ColBERT endpoint {self.url} answered HTTP {response.status_code}: "
                f"{_one_line(response.text) or response.reason_phrase}",
                hint="check [research.colbert] url",
                status=response.status_code,
            )
        return self._hits(response, k)

    def _hits(self, response: httpx.Response, k: int) -> list[Hit]:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponse(
                f"the ColBERT endpoint {self.url} did not answer JSON: "
                f"{_one_line(response.text, 80)!r}",
                hint="check [research.colbert] url: it should answer ?query=&k= with a topk list",
            ) from None
        topk = body.get("topk") if isinstance(body, dict) else None
        if not isinstance(topk, list):
            raise BadResponse(
                f"the ColBERT endpoint {self.url} answered JSON without a 'topk' list",
                hint="check [research.colbert] url: it should answer ?query=&k= with a topk list",
            )
        hits = []
        # The server ranks best first (ColBERT's server.py sorts by score); kept as sent.
        for position, item in enumerate(topk[:k], 1):
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str):
                raise BadResponse(
                    f"the ColBERT endpoint {self.url} sent a topk entry without a text: "
                    f"{_one_line(json.dumps(item, ensure_ascii=False), 80)}"
                )
            score = item.get("score")
            if isinstance(score, bool) or not isinstance(score, int | float):
                score = -position  # no score given: the rank, negated so higher is better
            hits.append(Hit(_passage(item.get("pid"), text, self.url), float(score)))
        return hits


@functools.cache
def colbert_available() -> bool:
    """Whether colbert-ai (and the torch it needs) imports here. Cached: the import is slow."""
    try:
        import colbert  # noqa: F401
        from colbert.infra import Run, RunConfig  # noqa: F401
    except Exception:  # ImportError, or a broken torch/faiss install failing on load
        return False
    return True


def _local_path(path: str) -> str:
    """`path` made absolute where it names something on disk; else as given (a checkpoint may
    be a Hugging Face repo id colbert-ai finds in its cache). Absolute paths also keep
    colbert-ai from resolving them against its experiment folder under the working directory."""
    expanded = Path(path).expanduser()
    return str(expanded.resolve()) if expanded.exists() else path


class LocalColbertRetriever:
    """A prebuilt colbert-ai index, searched in this process. The index and checkpoint are
    loaded on the first search; searches run one at a time (the searcher's config is shared)."""

    name = NAME

    def __init__(self, checkpoint: str | None, index_root: str | None, index: str) -> None:
        self.checkpoint = _local_path(checkpoint) if checkpoint else None
        # With no index_root, `index` is a path: os.path.join(root, "/abs") is "/abs".
        root = Path(index_root).expanduser() if index_root else None
        self.index_path = ((root / index) if root else Path(index).expanduser()).resolve()
        if not any((self.index_path / f).is_file() for f in ("metadata.json", "plan.json")):
            raise UsageError(
                f"no colbert-ai index at {self.index_path}",
                hint="set [research.colbert] index_root and index to an index colbert-ai built",
            )
        self._lock = threading.Lock()
        self._searcher: Any = None

    def _load(self) -> Any:
        if self._searcher is None:
            from colbert import Searcher
            from colbert.infra import Run, RunConfig

            # colbert-ai prints progress to stdout; stdout is for results (`--json`).
            try:
                with (
                    contextlib.redirect_stdout(sys.stderr),
                    Run().context(RunConfig(nranks=1)),
                ):
                    self._searcher = Searcher(
                        index=str(self.index_path),
                        checkpoint=self.checkpoint,
                        verbose=0,
                    )
            except Exception as exc:  # its errors are asserts and file errors, deep inside
                raise ModelError(
                    f"colbert-ai could not load {self.index_path}: "
                    f"{_one_line(str(exc)) or type(exc).__name__}",
                    hint="check [research.colbert] checkpoint and index",
                ) from exc
        return self._searcher

    def search(self, query: str, k: int = 10) -> list[Hit]:
        query = query.strip()
        if not query or k < 1:
            return []
        with self._lock:
            searcher = self._load()
            with contextlib.redirect_stdout(sys.stderr):
                pids, _ranks, scores = searcher.search(query, k=k)
            source = str(self.index_path)
            return [
                Hit(_passage(int(pid), str(searcher.collection[pid]), source), float(score))
                for pid, score in zip(pids, scores, strict=False)
            ]

    def close(self) -> None:
        self._searcher = None


ColbertRetriever = RemoteColbertRetriever | LocalColbertRetriever


def make_colbert_retriever(config: ColbertConfig) -> ColbertRetriever:
    """The ColBERT retriever `config` describes: the remote endpoint when `url` is set, else the
    local index when `index` (or `checkpoint`) is. Neither, or a local index without colbert-ai,
    is a usage error that says how to configure one."""
    if config.url:
        return RemoteColbertRetriever(config.url, config.timeout_s)
    if config.index or config.checkpoint:
        if not colbert_available():
            raise UsageError(
                "the colbert retriever needs colbert-ai for a local index",
                hint="pip install 'myninja[colbert]', or set [research.colbert] url to a server",
            )
        if not config.index:
            raise UsageError(
                "[research.colbert] names a checkpoint but no index",
                hint="set index_root and index to an index colbert-ai built with it",
            )
        return LocalColbertRetriever(config.checkpoint, config.index_root, config.index)
    raise UsageError("the colbert retriever is not configured", hint=CONFIGURE_HINT)
