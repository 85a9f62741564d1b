"""Continuous batching over one llama.cpp context: every request in flight is a sequence of its
own, and each decode step advances all of them in one `llama_batch` (one sequence id each).

On a CPU a decode step is bound by reading the weights, so three sequences decoded together
cost far less than three decoded in turn (2 cores, Qwen2.5-Coder-1.5B Q4_K_M: one step 87 ms
for one sequence, 144 ms for three). Requests that arrive while others decode join the next
step; a long prompt is evaluated in chunks between steps, so it never stalls a stream.

Sequences reuse each other's KV cache. A new request starts from the longest prefix of its
prompt that any sequence already holds (running, or finished and kept), copied with
`llama_memory_seq_cp`: in the unified cache the cells are shared, not duplicated. Branches that
share a system prompt and sources evaluate them once; a revision evaluates only its new turn.

A prompt's stable head (a persona's or the router's system prompt) is also kept on disk: a
fresh process (every `myninja ask`) loads its KV state in milliseconds instead of evaluating a
few hundred tokens at ~80 tokens/s.

Optionally, prompt-lookup decoding: when the last tokens generated also occur in the prompt,
the tokens that followed them there are proposed as a draft and checked in the same step
(greedy requests only, so a draft keeps only what decoding picks; the rows of a draft may
round a logit differently from a row alone, so on a near tie the reply can still change).
Off by default: on 2 cores it saved 10-15% on code that copies its prompt and cost time on
answers from sources (benchmarks/lookup.py).

Everything that touches llama.cpp runs on the engine's one thread."""

from __future__ import annotations

import codecs
import ctypes
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

N_BATCH = 512  # tokens evaluated per llama_decode call, prompts included
LOOKUP_NGRAM = 3  # tokens matched against the prompt to find a draft
MIN_DISK_PREFIX = 48  # tokens: a shorter head costs less to evaluate than to look up
DISK_FILES = 64  # prefix files kept on disk (the oldest go first)
# llama-cpp-python's `verbose=False` quiets llama.cpp by pointing the process's stdout and
# stderr at /dev/null while a model or context is made; done from a thread (a model loading
# beside a command's start-up) it swallows what the main thread prints meanwhile. Our log
# callback (embedded.quiet_llama_logs, errors only) quiets llama.cpp without touching either.
LLAMA_VERBOSE = True
# A reply whose tail repeats one block of 8 to 256 tokens LOOP_REPEATS times is a small model
# stuck in a loop: it ends there instead of at its token cap. A shorter block repeated ("hello,
# hello, ...", a row of zeros) is more often what the person asked for, and runs on.
LOOP_PERIODS = range(8, 257)
LOOP_REPEATS = 4
LOOP_SPAN = 64  # the shortest tail checked
LOOP_EVERY = 8  # tokens between checks


@dataclass(frozen=True)
class Sampling:
    """llama-cpp-python's defaults for chat completions, so replies match its own loop."""

    temperature: float = 0.2
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    seed: int = 0
    grammar: str | None = None  # GBNF, rule "root"

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0 and self.grammar is None


@dataclass
class Finished:
    """The last item of a job: why it ended, and what it cost."""

    reason: str  # "stop" | "length"
    prompt_tokens: int
    completion_tokens: int
    reused_tokens: int  # prompt tokens taken from the cache instead of evaluated
    drafted: int = 0  # prompt-lookup tokens proposed
    accepted: int = 0  # ... and kept


@dataclass
class Job:
    prompt: str  # formatted chat prompt, special tokens as text
    max_tokens: int | None
    sampling: Sampling
    stops: list[str]
    emit: Callable[[Any], None]  # text pieces, then a Finished or an exception
    cancelled: threading.Event = field(default_factory=threading.Event)
    lookup: int = 0  # most draft tokens per step from prompt lookup (0: off)
    head: str = ""  # the prompt's stable head (its system part), kept on disk when long
    tokens: list[int] = field(default_factory=list)  # the prompt, tokenized on the engine thread
    keep_at: int = 0  # prompt tokens up to which the cache is saved to disk (0: none)


@dataclass
class _Seq:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds
    job: Job | None = None
    todo: list[int] = field(default_factory=list)  # prompt tokens not yet evaluated
    next: int | None = None  # the sampled token, evaluated in the next step
    sampler: Any = None
    decoder: Any = None
    held: str = ""  # text kept back: it may be the start of a stop string
    generated: int = 0
    reply: list[int] = field(default_factory=list)  # the generated tokens
    reused: int = 0
    drafted: int = 0
    accepted: int = 0
    last_used: float = 0.0

    @property
    def busy(self) -> bool:
        return self.job is not None


def looping(tokens: list[int]) -> bool:
    """True when the tail of `tokens` is one block of LOOP_PERIODS tokens repeated."""
    n = len(tokens)
    for period in range(1, LOOP_PERIODS.stop):
        span = max(period * LOOP_REPEATS, LOOP_SPAN)
        if span > n:
            if period * LOOP_REPEATS > n:
                return False
            continue
        if tokens[-1] != tokens[-1 - period]:
            continue
        tail = tokens[-span:]
        if tail[period:] == tail[:-period]:
            # The shortest period found decides: a short block repeated is not a loop.
            return period in LOOP_PERIODS
    return False


def _common(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class BatchEngine:
    """Serves jobs on one model: `submit` from any thread, results through each job's `emit`."""

    def __init__(
        self,
        model: Any,  # llama_cpp._internals.LlamaModel
        *,
        window: int,
        threads: int,
        parallel: int = 4,
        keep: int = 4,
        cells: int | None = None,
        reuse: bool = True,
        disk: Path | None = None,
        identity: str = "",
    ) -> None:
        from llama_cpp import llama_cpp as low
        from llama_cpp._internals import LlamaBatch, LlamaContext

        self._low = low
        self.model = model
        self.window = window  # the most tokens one sequence may hold (its context)
        self.parallel = max(1, parallel)
        self.reuse = reuse
        self.disk = disk if reuse else None  # where prompt heads are kept
        self.identity = identity  # names the model file: a cached head is only ever its own
        params = low.llama_context_default_params()
        params.n_ctx = cells or window * (2 if self.parallel > 1 else 1)
        params.n_batch = params.n_ubatch = N_BATCH
        params.n_threads = params.n_threads_batch = threads
        params.n_seq_max = self.parallel + (keep if reuse else 0)
        params.kv_unified = True
        params.no_perf = True
        self._ctx = LlamaContext(model=model, params=params, verbose=LLAMA_VERBOSE)
        self._memory = low.llama_get_memory(self._ctx.ctx)
        self._vocab = model.vocab
        self._batch = LlamaBatch(n_tokens=N_BATCH, embd=0, n_seq_max=1, verbose=LLAMA_VERBOSE)
        self._seqs = [_Seq(i) for i in range(params.n_seq_max)]
        self._queue: list[Job] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._forget = False
        self.steps = 0  # decode calls, for tests and benchmarks
        self.last_reused = 0  # prompt tokens the last job started with from the cache
        self.drafted = self.accepted = 0  # prompt-lookup tokens proposed and kept, all jobs

    # -- the public side (any thread) ---------------------------------------------------------

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llama-batch", daemon=True)
                self._thread.start()
            self._cond.notify()

    def wake(self) -> None:
        """Look at the jobs again now (one was cancelled)."""
        with self._cond:
            self._cond.notify()

    def busy(self) -> int:
        """Jobs queued or running."""
        with self._cond:
            return len(self._queue) + sum(s.busy for s in self._seqs)

    def forget(self) -> None:
        """Drop what idle sequences hold, so the next job starts from nothing (benchmarks
        compare runs that must not reuse each other's prompts)."""
        with self._cond:
            self._forget = True  # done on the engine thread, before it admits another job

    def held_tokens(self) -> list[int]:
        """Tokens each sequence holds in the cache (a snapshot; for tests)."""
        return [len(s.cached) for s in self._seqs]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._batch.close()
        self._ctx.close()

    # -- the engine thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._queue and not self._running():
                    self._cond.wait()
                if self._closed:
                    for job in self._queue:
                        job.emit(RuntimeError("the model was unloaded"))
                    self._queue.clear()
                    return
                waiting, self._queue = self._queue, []
                forget, self._forget = self._forget, False
            if forget:
                self._evict_idle()
            left = self._admit(waiting)
            if left:
                with self._cond:
                    self._queue[:0] = left
            self._drop_cancelled()
            if self._running():
                try:
                    self._step()
                except Exception as exc:  # a failed decode ends the jobs in it, not the engine
                    for seq in self._seqs:
                        if seq.busy:
                            self._fail(seq, exc)
            elif left:
                time.sleep(0.001)  # every slot waits on another's prefill: let it run

    def _running(self) -> bool:
        return any(s.busy for s in self._seqs)

    def _admit(self, jobs: list[Job]) -> list[Job]:
        """Give each job a sequence, starting from the longest cached prefix of its prompt;
        the jobs that must wait (no sequence free, or another is still evaluating the same
        prompt) are returned."""
        left: list[Job] = []
        for job in jobs:
            if job.cancelled.is_set():
                continue
            if not job.tokens:
                try:
                    job.tokens = self._tokenize(job.prompt)
                    self._check_fits(job)
                    job.keep_at = self._head_length(job)
                except ValueError as exc:
                    job.emit(exc)
                    continue
            if sum(s.busy for s in self._seqs) >= self.parallel or self._wait_for_prefill(job):
                left.append(job)
                continue
            seq = self._place(job)
            if seq is None:
                left.append(job)
                continue
            self._start(seq, job)
        return left

    def _wait_for_prefill(self, job: Job) -> bool:
        """Whether a running sequence is still evaluating a longer part of this prompt than
        any cache holds: it is cheaper to wait a step or two and copy it."""
        if not self.reuse:
            return False
        have = max((_common(s.cached, job.tokens) for s in self._seqs), default=0)
        for seq in self._seqs:
            if seq.busy and seq.todo and seq.job is not None:
                if _common(seq.job.tokens, job.tokens) > have + 32:
                    return True
        return False

    def _place(self, job: Job) -> _Seq | None:
        free = [s for s in self._seqs if not s.busy]
        if not free:
            return None
        best, reuse = None, 0
        if self.reuse:
            for seq in self._seqs:
                n = _common(seq.cached, job.tokens)
                if n > reuse:
                    best, reuse = seq, n
        # The last prompt token is always evaluated: its logits give the first reply token.
        reuse = min(reuse, len(job.tokens) - 1)
        if job.keep_at > reuse and self._on_disk(job):
            target = min(
                (s for s in free if s is not best) or free,
                key=lambda s: (bool(s.cached), s.last_used),
            )
            if self._load(target, job):
                return target
        others = [s for s in free if s is not best]
        # Continue the matching sequence's own cache, unless that would throw away most of
        # it for a short match while another sequence is free to take the copy.
        mostly = reuse * 2 >= len(best.cached) if best is not None else False
        if best is not None and not best.busy and reuse > 0 and (mostly or not others):
            target = best
            self._low.llama_memory_seq_rm(self._memory, target.seq_id, reuse, -1)
            target.cached = target.cached[:reuse]
        else:
            # An empty sequence, or else the one used longest ago.
            target = min(others or free, key=lambda s: (bool(s.cached), s.last_used))
            self._low.llama_memory_seq_rm(self._memory, target.seq_id, -1, -1)
            target.cached = []
            if best is not None and reuse > 0:
                self._low.llama_memory_seq_cp(self._memory, best.seq_id, target.seq_id, 0, reuse)
                target.cached = list(job.tokens[:reuse])
        return target

    def _start(self, seq: _Seq, job: Job) -> None:
        seq.job = job
        seq.reused = self.last_reused = len(seq.cached)
        seq.todo = list(job.tokens[len(seq.cached) :])
        seq.next = None
        seq.generated = seq.drafted = seq.accepted = 0
        seq.reply = []
        seq.held = ""
        seq.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        seq.sampler = self._sampler(job.sampling)
        seq.last_used = time.monotonic()

    def _drop_cancelled(self) -> None:
        for seq in self._seqs:
            if seq.busy and seq.job is not None and seq.job.cancelled.is_set():
                self._release(seq)

    def _step(self) -> None:
        """One llama_decode: a token (or a checked draft) for every generating sequence, then
        prompt chunks for the ones still evaluating their prompts."""
        batch = self._batch.batch
        batch.n_tokens = 0
        outputs: list[tuple[_Seq, int, list[int]]] = []  # seq, first logits row, draft

        def add(token: int, seq: _Seq, pos: int, logits: bool) -> int:
            i = batch.n_tokens
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq.seq_id
            batch.logits[i] = logits
            batch.n_tokens = i + 1
            return i

        plan: list[tuple[_Seq, list[int]]] = []  # what each sequence adds to its cache
        for seq in self._seqs:
            if seq.busy and not seq.todo and seq.next is not None:
                draft = self._draft(seq)
                row = add(seq.next, seq, len(seq.cached), True)
                for k, token in enumerate(draft):
                    add(token, seq, len(seq.cached) + 1 + k, True)
                outputs.append((seq, row, draft))
                plan.append((seq, [seq.next, *draft]))
        room = N_BATCH - batch.n_tokens
        for seq in self._seqs:
            if room <= 0:
                break
            if seq.busy and seq.todo:
                take = room
                if seq.job is not None and len(seq.cached) < seq.job.keep_at:
                    take = min(room, seq.job.keep_at - len(seq.cached))  # stop there to save it
                chunk = seq.todo[:take]
                for k, token in enumerate(chunk):
                    last = k == len(chunk) - 1 and len(chunk) == len(seq.todo)
                    row = add(token, seq, len(seq.cached) + k, last)
                if len(chunk) == len(seq.todo):
                    outputs.append((seq, row, []))
                plan.append((seq, chunk))
                room -= len(chunk)
        if batch.n_tokens == 0:
            return
        code = self._low.llama_decode(self._ctx.ctx, batch)
        if code == 1 and self._evict_idle():
            code = self._low.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            raise RuntimeError(
                "the model's context is full (too many long requests at once)"
                if code == 1
                else f"llama_decode failed ({code})"
            )
        self.steps += 1
        for seq, added in plan:
            seq.cached.extend(added)
            if seq.todo:
                seq.todo = seq.todo[len(added) :]
            job = seq.job
            if job is not None and job.keep_at and len(seq.cached) == job.keep_at:
                self._save(seq, job)
        for seq, row, draft in outputs:
            self._sample(seq, row, draft)

    def _sample(self, seq: _Seq, row: int, draft: list[int]) -> None:
        """Sample from the logits at `row` (and, for a draft, check it token by token)."""
        job = seq.job
        assert job is not None
        for k in range(len(draft) + 1):
            token = self._low.llama_sampler_sample(seq.sampler, self._ctx.ctx, row + k)
            if k < len(draft):
                seq.drafted += 1
            if k < len(draft) and token == draft[k]:
                seq.accepted += 1
                if not self._take(seq, token):
                    return
                continue
            if k < len(draft):
                # The draft went wrong here: its rest is not part of this sequence.
                keep = len(seq.cached) - (len(draft) - k)
                self._low.llama_memory_seq_rm(self._memory, seq.seq_id, keep, -1)
                seq.cached = seq.cached[:keep]
            seq.next = token
            self._take(seq, token, feed=False)
            return

    def _take(self, seq: _Seq, token: int, feed: bool = True) -> bool:
        """Add one generated token to the reply; False once the job has ended. With `feed`,
        the token is already in the cache (an accepted draft token) and the one after it comes
        from the next logits row."""
        job = seq.job
        assert job is not None
        if self._low.llama_vocab_is_eog(self._vocab, token):
            self._finish(seq, "stop", evaluated=feed)
            return False
        seq.generated += 1
        seq.reply.append(token)
        if self._out(seq, self._piece(token, seq)):
            self._finish(seq, "stop", evaluated=feed)
            return False
        limit = job.max_tokens is not None and seq.generated >= job.max_tokens
        if seq.generated % LOOP_EVERY == 0 and looping(seq.reply):
            limit = True  # cut short, as at the cap
        if limit or len(seq.cached) + 1 >= self.window:
            self._finish(seq, "length", evaluated=feed)
            return False
        if feed:
            seq.next = None
        return True

    def _out(self, seq: _Seq, text: str) -> bool:
        """Emit text, holding back what may begin a stop string; True when a stop string
        ended the reply."""
        job = seq.job
        assert job is not None
        held = seq.held + text
        for stop in job.stops:
            at = held.find(stop)
            if at >= 0:
                if held[:at]:
                    job.emit(held[:at])
                seq.held = ""
                return True
        keep = 0
        for stop in job.stops:
            for n in range(min(len(stop) - 1, len(held)), 0, -1):
                if held.endswith(stop[:n]):
                    keep = max(keep, n)
                    break
        if len(held) > keep:
            job.emit(held[: len(held) - keep])
        seq.held = held[len(held) - keep :]
        return False

    def _finish(self, seq: _Seq, reason: str, evaluated: bool) -> None:
        job = seq.job
        assert job is not None
        self.drafted += seq.drafted
        self.accepted += seq.accepted
        rest = seq.held + seq.decoder.decode(b"", final=True)
        if rest:
            job.emit(rest)
        job.emit(
            Finished(
                reason,
                len(job.tokens),
                seq.generated,
                seq.reused,
                seq.drafted,
                seq.accepted,
            )
        )
        self._release(seq)

    def _fail(self, seq: _Seq, exc: Exception) -> None:
        if seq.job is not None:
            seq.job.emit(exc)
        self._release(seq)
        # Its cache may be half written: start the next job on it from nothing.
        self._low.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        seq.cached = []

    def _release(self, seq: _Seq) -> None:
        seq.job = None
        seq.todo = []
        seq.next = None
        if seq.sampler is not None:
            self._low.llama_sampler_free(seq.sampler)
            seq.sampler = None
        seq.last_used = time.monotonic()
        if not self.reuse:
            self._low.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
            seq.cached = []

    def _evict_idle(self) -> bool:
        """Free the cache of idle sequences (oldest first); whether any was freed."""
        idle = sorted((s for s in self._seqs if not s.busy and s.cached), key=lambda s: s.last_used)
        for seq in idle:
            self._low.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
            seq.cached = []
        return bool(idle)

    def _draft(self, seq: _Seq) -> list[int]:
        """Prompt lookup: the tokens that followed the last LOOKUP_NGRAM tokens where they last
        occur in the prompt."""
        job = seq.job
        if job is None or not job.lookup or not job.sampling.greedy or seq.next is None:
            return []
        tail = [*seq.cached[len(job.tokens) :], seq.next][-LOOKUP_NGRAM:]
        if len(tail) < LOOKUP_NGRAM:
            return []
        prompt = job.tokens
        for start in range(len(prompt) - LOOKUP_NGRAM, -1, -1):
            if prompt[start : start + LOOKUP_NGRAM] == tail:
                room = self.window - len(seq.cached) - 2
                left = (job.max_tokens or self.window) - seq.generated - 1
                n = max(0, min(job.lookup, room, left, N_BATCH // (2 * self.parallel)))
                return prompt[start + LOOKUP_NGRAM : start + LOOKUP_NGRAM + n]
        return []

    # -- prompt heads on disk -----------------------------------------------------------------

    def _head_length(self, job: Job) -> int:
        """How many of the prompt's tokens are its head, worth keeping on disk (0: none)."""
        if self.disk is None or not job.head:
            return 0
        head = self._tokenize(job.head)
        # The head's last token may merge with what follows it in the whole prompt.
        n = _common(head, job.tokens)
        if n < len(head) - 2 or n < MIN_DISK_PREFIX or n >= len(job.tokens):
            return 0
        return n

    def _file(self, tokens: list[int]) -> Path:
        assert self.disk is not None
        digest = hashlib.sha256(self.identity.encode())
        digest.update(b"".join(t.to_bytes(4, "little", signed=True) for t in tokens))
        return self.disk / f"{digest.hexdigest()[:32]}.kv"

    def _on_disk(self, job: Job) -> bool:
        return self.disk is not None and self._file(job.tokens[: job.keep_at]).is_file()

    def _load(self, seq: _Seq, job: Job) -> bool:
        """Fill `seq` with the job's head from disk; whether it worked."""
        head = job.tokens[: job.keep_at]
        path = self._file(head)
        low = self._low
        low.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        seq.cached = []
        out = (low.llama_token * len(head))()
        count = ctypes.c_size_t(0)
        read = low.llama_state_seq_load_file(
            self._ctx.ctx, str(path).encode(), seq.seq_id, out, len(head), ctypes.byref(count)
        )
        if not read or list(out[: count.value]) != head:
            low.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
            path.unlink(missing_ok=True)  # stale or damaged: it will be written again
            return False
        seq.cached = list(head)
        os.utime(path)  # recently used: kept longest
        return True

    def _save(self, seq: _Seq, job: Job) -> None:
        head = job.tokens[: job.keep_at]
        path = self._file(head)
        if path.is_file():
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_suffix(f".{os.getpid()}.part")
            tokens = (self._low.llama_token * len(head))(*head)
            if self._low.llama_state_seq_save_file(
                self._ctx.ctx, str(part).encode(), seq.seq_id, tokens, len(head)
            ):
                os.replace(part, path)  # whole or not at all: another process may read it
            part.unlink(missing_ok=True)
            files = sorted(path.parent.glob("*.kv"), key=lambda p: p.stat().st_mtime)
            for old in files[:-DISK_FILES]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a cache that cannot be written only costs time

    # -- llama.cpp helpers --------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        low = self._low
        size = len(data) + 16
        buf = (low.llama_token * size)()
        n = low.llama_tokenize(self._vocab, data, len(data), buf, size, True, True)
        if n < 0:
            size = -n
            buf = (low.llama_token * size)()
            n = low.llama_tokenize(self._vocab, data, len(data), buf, size, True, True)
        return list(buf[:n])

    def _check_fits(self, job: Job) -> None:
        if len(job.tokens) >= self.window:
            raise ValueError(
                f"Requested tokens ({len(job.tokens)}) exceed context window of {self.window}"
            )

    def _piece(self, token: int, seq: _Seq) -> str:
        buf = ctypes.create_string_buffer(64)
        n = self._low.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._low.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
        return seq.decoder.decode(buf.raw[:n])

    def _sampler(self, sampling: Sampling) -> Any:
        low = self._low
        chain = low.llama_sampler_chain_init(low.llama_sampler_chain_default_params())
        if sampling.grammar is not None:
            grammar = low.llama_sampler_init_grammar(
                self._vocab, sampling.grammar.encode("utf-8"), b"root"
            )
            if not grammar:
                low.llama_sampler_free(chain)
                raise ValueError("the grammar for the requested output could not be parsed")
            low.llama_sampler_chain_add(chain, grammar)
        if sampling.temperature <= 0:
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_greedy())
        else:
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_top_k(sampling.top_k))
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_typical(1.0, 1))
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_top_p(sampling.top_p, 1))
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_min_p(sampling.min_p, 1))
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_temp(sampling.temperature))
            low.llama_sampler_chain_add(chain, low.llama_sampler_init_dist(sampling.seed))
        return chain
