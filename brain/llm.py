"""The employee's language model: one streaming interface, two backends.

- :class:`LlamaCppBackend` runs a GGUF in-process with llama-cpp-python (default: the packaged
  SmolLM2-135M-Instruct). The chat template comes from the GGUF itself.
- :class:`OpenAICompatBackend` talks to any OpenAI-compatible server (``python -m llama_cpp.server``,
  vLLM) at a local ``base_url``, so several workers can share one big model.

Both stream text deltas, can constrain output to a JSON schema (for reliable tool calls on small
models), and can be cancelled between tokens (barge-in). The in-process backend keeps the stable
prefix of the prompt (system prompt + core memory) as a saved llama.cpp state, so a turn only pays
for the new tokens even when calls from different callers interleave.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import contextmanager
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Literal, Sequence

from brain.sampling import TokenSampler
from config.models import resolve_llm_model
from config.settings import LLMSettings

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        data = {"role": self.role, "content": self.content}
        if self.name:
            data["name"] = self.name
        return data


@dataclass
class CompletionStats:
    """What one completion cost; filled in as the stream runs, final when it ends."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens not evaluated again (prefix reuse)
    completion_tokens: int = 0
    first_token_s: float | None = None
    total_s: float = 0.0
    finish_reason: str = ""  # stop | length | cancelled | error

    def observe(self, text: str, finish_reason: str | None, started: float) -> bool:
        """Account one streamed piece (both backends stream the same way); True if it carries text."""
        if finish_reason:
            self.finish_reason = finish_reason
        if not text:
            return False
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - started
        self.completion_tokens += 1
        return True

    @property
    def tokens_per_second(self) -> float:
        gen = self.total_s - (self.first_token_s or 0.0)
        return self.completion_tokens / gen if gen > 0 and self.completion_tokens > 1 else 0.0


@dataclass
class CompletionRequest:
    messages: Sequence[ChatMessage]
    max_tokens: int = 256
    temperature: float = 0.3
    json_schema: dict[str, Any] | None = None
    stop: list[str] = field(default_factory=list)
    # How many leading messages are stable across turns (system prompt + core memory): cached.
    stable_prefix_messages: int = 1
    # Work nobody waits for (post-call notes): it gives the model up to any live turn that wants it.
    background: bool = False
    # The reply starts with this text, given rather than generated (not streamed back): the backend
    # continues it. Only for backends with ``continues_assistant_prefix``.
    assistant_prefix: str = ""


class CompletionStream:
    """Iterate to get text deltas; :meth:`cancel` (from any thread) stops at the next token."""

    def __init__(self, chunks: Iterator[str], stats: CompletionStats) -> None:
        self._chunks = chunks
        self.stats = stats
        self._cancelled = threading.Event()
        self.text = ""

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __iter__(self) -> Iterator[str]:
        try:
            for chunk in self._chunks:
                if self._cancelled.is_set():
                    self.stats.finish_reason = "cancelled"
                    break
                self.text += chunk
                yield chunk
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()  # ends the generator: llama.cpp stops decoding, the HTTP stream is closed

    def read(self) -> str:
        """Consume the whole stream and return the text."""
        for _ in self:
            pass
        return self.text


class LLMBackend(ABC):
    """A chat model that streams."""

    name: str
    # Can continue a reply from ``CompletionRequest.assistant_prefix`` (the in-process model can; a chat
    # API server cannot be handed the start of the assistant's message).
    continues_assistant_prefix: bool = False
    # Called between generated tokens by an in-process model: the voice loop makes it wait while work
    # a caller is waiting to hear (a reply's first audio) uses the cores.
    yield_to: Callable[[], None] | None = None

    @abstractmethod
    def stream(self, request: CompletionRequest) -> CompletionStream: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (never tiktoken: it downloads its tables)."""

    @property
    @abstractmethod
    def context_window(self) -> int: ...

    def complete(self, request: CompletionRequest) -> tuple[str, CompletionStats]:
        """The whole completion. A ``background`` request preempted by a live turn starts again once the model
        has been free a moment; its last try (of ``BACKGROUND_TRIES``) is not preempted, so it always ends.

        Why: post-call notes took 6 s of the model on 2 cores, and a live call's turn waited for all of it
        (measured: 6.8 s voice to voice with two calls)."""
        tries = self.BACKGROUND_TRIES if request.background else 1
        for attempt in range(tries):
            stream = self.stream(replace(request, background=request.background and attempt < tries - 1))
            text = stream.read()
            if stream.stats.finish_reason != "preempted":
                break
            self.wait_until_idle()
        return text, stream.stats

    BACKGROUND_TRIES = 3

    def wait_until_idle(self, quiet_s: float = 0.5, timeout_s: float = 10.0) -> None:  # noqa: B027
        """Block until no live turn has wanted the model for ``quiet_s`` (backends that preempt)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connection."""

    def warm_prefix(self, messages: Sequence[ChatMessage]) -> float:  # noqa: B027 - optional hook
        """Prepare ``messages`` as a cached prompt prefix ahead of use; returns the seconds spent."""
        return 0.0

    def prefill(self, messages: Sequence[ChatMessage], *, open_last: bool = False,  # noqa: B027
                answer_prefix: str | None = None, likely: str = "", write: int = 0, temperature: float = 0.0,
                until: Callable[[], bool] | None = None, defer: Callable[[], bool] | None = None) -> int:
        """Evaluate the prompt of ``messages`` ahead of the request that will start with it; returns the tokens
        evaluated (0: skipped, or not supported). ``answer_prefix`` (not None): the whole prompt of a reply that
        begins with it, as :meth:`choose_continuation` will ask for it (with ``likely`` read ahead); ``write``:
        up to that many tokens of the reply after ``likely`` are written ahead too (at ``temperature``), and a
        request for that very prompt (``assistant_prefix`` = ``answer_prefix + likely``) begins with them; the
        writing stops early when ``until`` returns True (the turn came, and may not need the model), and pauses
        while ``defer`` does (a caller waits for their answer: theirs comes first)."""
        return 0

    def written_ahead(self, messages: Sequence[ChatMessage], assistant_prefix: str) -> str:
        """The reply's first words written ahead by :meth:`prefill` for this prompt and start ("": none kept)."""
        return ""

    def choose_continuation(self, request: CompletionRequest, options: Sequence[str], likely: str = "") -> str | None:
        """Which of ``options`` the model would begin to write after the prompt and its ``assistant_prefix``;
        None when the backend cannot tell cheaply (the caller then lets the model write it under a grammar).
        ``likely``: the text that probably follows the prefix, worth reading ahead in the same pass."""
        return None


def _byte_pointer(array: Any) -> Any:
    """A numpy byte array as the ``uint8_t *`` llama.cpp's state functions take."""
    import ctypes

    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))


@dataclass(eq=False)
class _Written:
    """A reply's first tokens written ahead in one context (:meth:`LlamaCppBackend.prefill` with ``write``): the
    prompt they follow, the tokens and their text, the sampler that drew them (it goes on drawing), and whether
    the model ended the reply there. The context's KV cache holds the prompt and every token but the last (a
    stream evaluates a token after yielding it), or all of them when the reply ended."""

    prompt: tuple[int, ...]
    tokens: list[int]
    text: str
    sampler: Any
    temperature: float
    ended: bool

    @property
    def cached(self) -> int:
        return len(self.prompt) + len(self.tokens) - (0 if self.ended else 1)


@dataclass(eq=False)
class _Context:
    """One llama.cpp context (its own KV cache), used by one request at a time."""

    llm: Any
    busy: bool = False
    live: bool = False  # held by a live turn: background work yields
    last_used: float = 0.0
    wanted: bool = False  # a live turn waits for what this busy context reads ahead: the read-ahead stops soon
    reading: tuple[int, ...] = ()  # the prompt a read-ahead (a prefill) is making this context hold


class LlamaCppBackend(LLMBackend):
    """A GGUF model in this process, in ``parallel`` contexts: that many requests decode at once, each in its own
    context (and KV cache); more wait for one. Prefix and conversation states are kept in RAM and restore into
    any context."""

    continues_assistant_prefix = True

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int = 1,
        n_threads_batch: int | None = None,
        n_gpu_layers: int = 0,
        flash_attn: bool | None = None,
        parallel: int = 1,
        prefix_cache_entries: int = 16,
        conversation_cache_entries: int = 8,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        if flash_attn is None:  # "auto": see LLMSettings.flash_attn
            flash_attn = n_gpu_layers != 0
        self._contexts = [
            _Context(Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads_batch or n_threads,
                n_gpu_layers=n_gpu_layers,
                flash_attn=flash_attn,
                verbose=False,
            ))
            for _ in range(parallel)
        ]
        self._llm = self._contexts[0].llm  # the tokenizer, metadata and window (the same in every context)
        self._threads, self._batch_threads = n_threads, n_threads_batch or n_threads
        self.load_seconds = time.perf_counter() - started
        self.name = model_path.rsplit("/", 1)[-1]
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path}: the GGUF has no chat template (tokenizer.chat_template)")
        eos = self._token_text(self._llm.token_eos())
        bos = self._token_text(self._llm.token_bos())
        self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        self._prefix_formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=False)
        # Guards the contexts' busy flags and the live-turn counters; waiting requests wait on it.
        self._free = threading.Condition()
        # Live turns waiting for a context, and when one last got one: background work yields to them.
        self._live_waiting = 0
        self._waiting = 0  # requests of any kind waiting for a context right now
        self._live_last = 0.0
        self._cache_lock = threading.Lock()  # the two state caches below, shared by the contexts
        self._prefix_states: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._prefix_capacity = prefix_cache_entries
        # Each conversation's KV cache as its last reply left it (sequence data only: ~14 MB and ~11 ms to
        # save for 600 tokens, 4 ms to restore; llama-cpp-python's save_state also copies every logit row
        # and took 220 / 440 ms). Calls taking turns then pay for their new words, not their whole history.
        self._conversations: OrderedDict[tuple[int, ...], tuple[Any, int]] = OrderedDict()
        self._conversation_capacity = conversation_cache_entries
        # Per context (by id of its Llama): a turn prefill's prompt tokens and the next-token logits after them.
        self._turn_logits: dict[int, tuple[tuple[int, ...], Any]] = {}
        self._written: dict[int, _Written] = {}  # per context (id of its Llama): a reply's start written ahead
        self.prefix_cache_enabled = True
        self._closed = False
        log.info("llama.cpp loaded %s in %.2fs (n_ctx=%d, threads=%d, batch threads=%d, %d context(s), gpu layers=%d, "
                 "flash attention %s)", self.name, self.load_seconds, n_ctx, n_threads, n_threads_batch or n_threads,
                 parallel, n_gpu_layers, "on" if flash_attn else "off")

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> "LlamaCppBackend":
        return cls(
            str(resolve_llm_model(settings.model)),
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            n_threads_batch=settings.n_threads_batch,
            n_gpu_layers=settings.n_gpu_layers,
            flash_attn={"auto": None, "on": True, "off": False}[settings.flash_attn],
            parallel=settings.parallel,
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    @property
    def context_window(self) -> int:
        return self._llm.n_ctx()

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, messages: Sequence[ChatMessage], *, generation_prompt: bool = True) -> tuple[str, list[str]]:
        """The prompt text for ``messages`` by the GGUF's chat template, and its stop strings."""
        formatter = self._formatter if generation_prompt else self._prefix_formatter
        response = formatter(messages=[m.as_dict() for m in messages])
        stop = response.stop if isinstance(response.stop, list) else [response.stop] if response.stop else []
        return response.prompt, stop

    def tokenize_prompt(self, prompt: str) -> list[int]:
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    @staticmethod
    def _snapshot(llm: Any) -> tuple[Any, int]:
        """The context's KV cache as sequence data (no logits: llama-cpp-python's save_state copies every
        logit row and took 220 ms to save, 440 ms to load here; this takes ~11 ms and ~4 ms for 600 tokens)."""
        import llama_cpp
        import numpy as np

        size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
        # Uninitialised memory, so its pages are first touched by llama.cpp, with the GIL released. A ctypes
        # array is zero-filled under the GIL: with three calls that held it for ~30 ms (py-spy) and every call's
        # RTP sender missed two packets.
        buffer = np.empty(size, dtype=np.uint8)
        return buffer, llama_cpp.llama_state_seq_get_data(llm.ctx, _byte_pointer(buffer), size, 0)

    @staticmethod
    def _restore(llm: Any, tokens: tuple[int, ...], snapshot: tuple[Any, int]) -> bool:
        """Load a snapshot of ``tokens`` (taken in any of the contexts) into ``llm``."""
        import llama_cpp

        llm._ctx.kv_cache_clear()
        if not llama_cpp.llama_state_seq_set_data(llm.ctx, _byte_pointer(snapshot[0]), snapshot[1], 0):
            llm.reset()
            return False
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
        llm._requires_eval = True  # no logits came with the state
        return True

    def _use_prefix(self, llm: Any, prefix_tokens: list[int]) -> None:
        """Make the context's KV cache start with ``prefix_tokens``: reuse, restore a saved state, or build one."""
        if self._held_by(llm, prefix_tokens) == len(prefix_tokens):
            return  # already there (the same conversation continuing)
        key = tuple(prefix_tokens)
        with self._cache_lock:
            snapshot = self._prefix_states.get(key)
            if snapshot is not None:
                self._prefix_states.move_to_end(key)
        if snapshot is not None and self._restore(llm, key, snapshot):
            return
        llm.reset()
        llm.eval(prefix_tokens)
        snapshot = self._snapshot(llm)
        with self._cache_lock:
            self._prefix_states[key] = snapshot
            while len(self._prefix_states) > self._prefix_capacity:
                self._prefix_states.popitem(last=False)

    def _save_conversation(self, llm: Any, key: tuple[int, ...] | None = None) -> None:
        """Keep the KV cache as it stands (a conversation after its reply) for that conversation's next turn
        (``key``: the start of what it holds that the state stands for; a restore evaluates from its end)."""
        key = key if key is not None else tuple(llm._input_ids.tolist())
        snapshot = self._snapshot(llm)
        with self._cache_lock:
            for older in [k for k in self._conversations if key[: len(k)] == k]:
                del self._conversations[older]  # the same conversation, earlier: superseded
            self._conversations[key] = snapshot
            while len(self._conversations) > self._conversation_capacity:
                self._conversations.popitem(last=False)

    def _keep_turn_state(self, llm: Any, request: CompletionRequest, tokens: list[int]) -> None:
        """After a live turn's reply: keep the KV cache up to the end of the turn's messages, unless a saved state
        already holds about that much. The conversation's next turn starts with those messages.

        Why: the state is normally saved after the reply by the conversation's own prefill, but that prefill only
        finds the state in this context if no other call took it meanwhile; under 4 calls, 8 of 25 turns then
        read 100-200 prompt tokens again (1-2 s there)."""
        if not self.prefix_cache_enabled:
            return
        prompt, _ = self.render(request.messages, generation_prompt=False)
        turn = self.tokenize_prompt(prompt)
        if tokens[: len(turn)] != turn or self._held_by(llm, turn) < len(turn):
            return
        with self._cache_lock:
            best = max((len(k) for k in self._conversations if tuple(turn[: len(k)]) == k), default=0)
        if best < len(turn) - self.FEW_TOKENS:
            self._save_conversation(llm, tuple(turn))

    def _use_best_state(self, llm: Any, tokens: list[int], prefix_tokens: list[int]) -> None:
        """Start from the longest saved conversation state that ``tokens`` continue, if it beats what the
        context's KV cache holds now; else make sure the stable prefix is there. Without the prefix cache: from
        nothing."""
        if not self.prefix_cache_enabled:
            llm.reset()
            return
        held = self._held_by(llm, tokens)
        with self._cache_lock:
            best = max((k for k in self._conversations if len(k) > held and tuple(tokens[: len(k)]) == k),
                       key=len, default=None)
            if best is not None:
                snapshot = self._conversations[best]
                self._conversations.move_to_end(best)
        if best is not None and self._restore(llm, best, snapshot):
            return
        if prefix_tokens:
            self._use_prefix(llm, prefix_tokens)

    def warm_prefix(self, messages: Sequence[ChatMessage]) -> float:
        """Evaluate ``messages`` into every idle context (and keep their state) so the next request starting with
        them skips it, whichever context serves it."""
        if not self.prefix_cache_enabled:
            return 0.0
        started = time.perf_counter()
        prompt, _ = self.render(messages, generation_prompt=False)
        tokens = self.tokenize_prompt(prompt)
        for context in self._contexts:
            with self._context(tokens, timeout=0, only=context) as llm:
                if llm is not None:  # a busy context is left alone: it restores the prefix when needed
                    self._use_prefix(llm, tokens)
        return time.perf_counter() - started

    @staticmethod
    def _held_by(llm: Any, tokens: Sequence[int]) -> int:
        """How many of ``tokens`` the context's KV cache already holds."""
        return llm.longest_token_prefix(llm._input_ids.tolist(), tokens)

    @contextmanager
    def _context(self, tokens: Sequence[int] = (), *, live: bool = True, timeout: float | None = None,
                 only: _Context | None = None) -> Iterator[Any | None]:
        """A free context for a request (None if none freed up within ``timeout``): the one already holding
        most of ``tokens``, else the least recently used (or ``only`` that one). A live turn counts as waiting
        while it queues."""
        candidates = self._contexts if only is None else [only]
        if self._closed:
            raise RuntimeError("the model was closed")
        with self._free:
            if live:
                self._live_waiting += 1
            try:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not (free := [c for c in candidates if not c.busy]) or (live and self._worth_waiting(free, tokens)):
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    self._waiting += 1  # a writer pausing on a context gives it up (_write_ahead)
                    try:
                        self._free.wait(remaining)
                    finally:
                        self._waiting -= 1
                chosen = max(free, key=lambda c: (self._held_by(c.llm, tokens), -c.last_used)) if free else None
                if chosen is not None:
                    chosen.busy, chosen.live = True, live
                    alone = not any(c.busy for c in self._contexts if c is not chosen)
            finally:
                if live:
                    self._live_waiting -= 1
                    self._live_last = time.monotonic()
                    self._free.notify_all()
        if chosen is None:
            yield None
            return
        if self._batch_threads != self._threads:
            # Batches use the extra threads only while no other context works: beside another request's decode,
            # a two-thread batch waits on its descheduled second thread at every barrier.
            chosen.llm._ctx.set_n_threads(self._threads, self._batch_threads if alone else self._threads)
        try:
            yield chosen.llm
        finally:
            with self._free:
                chosen.busy = chosen.live = chosen.wanted = False
                chosen.reading = ()
                chosen.last_used = time.monotonic()
                if live:
                    self._live_last = chosen.last_used
                self._free.notify_all()

    # Fewer tokens than this are not worth a wait for a context reading ahead, nor a saved state of their own.
    FEW_TOKENS = 8

    def _worth_waiting(self, free: list[_Context], tokens: Sequence[int]) -> bool:
        """Whether a live turn should wait for a busy context that is reading its prompt ahead (a prefill, or a
        reply's start written ahead: told to stop, it is free within a token or a batch) rather than take a free
        one, which would evaluate again what the read-ahead evaluates. Called under ``self._free``.

        Why: the turn came while its own read-ahead ran (the caller's pause did end the turn); taking the other
        context cost the prompt again (~100-200 ms here) and lost the reply's start written ahead."""
        if not tokens:
            return False
        reading = [c for c in self._contexts if c.busy and not c.live and c.reading]
        if not reading:
            return False
        shared = lambda c: self._llm.longest_token_prefix(c.reading, tokens)  # noqa: E731
        best = max(reading, key=shared)
        with self._cache_lock:  # any saved state that starts the prompt (another call's turn restores its own)
            saved = max((len(k) for k in (*self._conversations, *self._prefix_states) if tuple(tokens[: len(k)]) == k),
                        default=0)
        elsewhere = max([saved, *(self._held_by(c.llm, tokens) for c in free)])
        if shared(best) < elsewhere + self.FEW_TOKENS:
            return False
        if not best.wanted:
            log.debug("llm: a live turn waits for the context reading its prompt ahead (%d tokens shared, %d elsewhere)",
                      shared(best), elsewhere)
        best.wanted = True
        return True

    def _holder(self, llm: Any) -> _Context:
        return next(c for c in self._contexts if c.llm is llm)

    def _reading(self, llm: Any, tokens: Sequence[int]) -> None:
        """Say which prompt a read-ahead in this context is making it hold (a live turn may wait for it)."""
        with self._free:
            self._holder(llm).reading = tuple(tokens)

    def _live_turns(self) -> int:
        """Live turns using or waiting for the model (background work gives way to them: on 2 cores, notes
        written beside a turn slow its words down)."""
        return self._live_waiting + sum(c.live for c in self._contexts)

    def wait_until_idle(self, quiet_s: float = 0.5, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._free:
            while time.monotonic() < deadline:
                quiet = time.monotonic() - self._live_last
                if not self._live_turns() and quiet >= quiet_s:
                    return
                self._free.wait(timeout=max(0.05, quiet_s - quiet))

    def _prompt_tokens(self, request: CompletionRequest) -> tuple[str, list[str], list[int]]:
        """The request's prompt text, the template's stop strings, and its tokens (with the given start of the
        reply), refused when they cannot fit the window."""
        prompt, stop = self.render(request.messages)
        tokens = self.tokenize_prompt(prompt + request.assistant_prefix)
        if len(tokens) + 8 > self.context_window:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit the {self.context_window}-token window")
        return prompt, stop, tokens

    def _stable_prefix(self, request: CompletionRequest, tokens: list[int]) -> list[int]:
        """The tokens of the request's stable leading messages, if the prompt starts with them (cacheable)."""
        if self.prefix_cache_enabled and 0 < request.stable_prefix_messages < len(request.messages):
            prefix_prompt, _ = self.render(request.messages[: request.stable_prefix_messages], generation_prompt=False)
            candidate = self.tokenize_prompt(prefix_prompt)
            if tokens[: len(candidate)] == candidate:
                return candidate
        return []

    PREFILL_MAX_NEW_TOKENS = 96

    def prefill(self, messages: Sequence[ChatMessage], *, open_last: bool = False,
                answer_prefix: str | None = None, likely: str = "", write: int = 0, temperature: float = 0.0,
                until: Callable[[], bool] | None = None, defer: Callable[[], bool] | None = None) -> int:
        """Extend a KV cache with the prompt of ``messages`` while nobody waits: the caller's words so far
        (``open_last``: the last message is cut after its text, so the longer final text reuses the work),
        the conversation after a reply, or (``answer_prefix``) a whole turn's prompt before the turn is sure
        to come: the next-token logits :meth:`choose_continuation` reads are kept with it.

        Opportunistic: skipped when no context is free, and when the free context holds another conversation
        (then more than ``PREFILL_MAX_NEW_TOKENS`` would be needed): a prefill must never keep a turn waiting
        long. Measured on 2 cores: each prompt token evaluated at the end of the caller's turn costs ~6 ms.
        """
        if not self.prefix_cache_enabled or not messages:
            return 0
        if answer_prefix is not None:
            return self._prefill_turn(messages, answer_prefix, likely, write, temperature, until, defer)
        prompt, _ = self.render(messages, generation_prompt=False)
        if open_last:
            text = messages[-1].content
            at = prompt.rfind(text)
            if not text or at < 0:
                return 0
            prompt = prompt[: at + len(text)]
        tokens = self.tokenize_prompt(prompt)[:-1]  # the last token may still grow ("mid" -> "middle")
        # The caller's partial words are worth reading only if a context is free now; the conversation after a
        # reply is worth a short wait (its state is then kept for the next turn).
        with self._context(tokens, live=False, timeout=0 if open_last else 2.0) as llm:
            if llm is None:
                return 0
            keep = self._held_by(llm, tokens)
            new = len(tokens) - keep
            if new < 0 or new > self.PREFILL_MAX_NEW_TOKENS or len(tokens) + 8 > self.context_window:
                return 0
            self._reading(llm, tokens)
            if new:
                llm.n_tokens = keep
                llm.eval(tokens[keep:])
            else:  # the cache may hold more (the reply's last generated tokens): cut it to the prompt
                llm._ctx.kv_cache_seq_rm(-1, len(tokens), -1)
                llm.n_tokens = len(tokens)
                llm._requires_eval = True  # the logits held are a later token's
            if not open_last:  # a conversation after its reply: kept for its next turn
                self._save_conversation(llm)
            return new

    def _read_ahead(self, text: str, tokens: list[int], likely: str) -> list[int]:
        """``tokens`` (those of ``text``, a turn's prompt with the start of the answer) with ``likely`` read ahead."""
        ahead = self.tokenize_prompt(text + likely) if likely else tokens
        if ahead[: len(tokens)] != tokens or len(ahead) + 8 > self.context_window:
            ahead = tokens  # the likely text merges with the prefix's last token: no reading ahead
        return ahead

    def _prefill_turn(self, messages: Sequence[ChatMessage], answer_prefix: str, likely: str, write: int,
                      temperature: float, until: Callable[[], bool] | None, defer: Callable[[], bool] | None) -> int:
        """Evaluate a whole turn's prompt (the caller's words may still be their final ones) and keep the logits
        after it, so the turn, if it comes with these words, chooses its action without evaluating anything;
        with ``write``, the reply's first tokens after ``likely`` are written ahead as well."""
        prompt, _ = self.render(messages)
        tokens = self.tokenize_prompt(prompt + answer_prefix)
        if len(tokens) + 8 > self.context_window:
            return 0
        ahead = self._read_ahead(prompt + answer_prefix, tokens, likely)
        write = write if len(ahead) > len(tokens) and len(ahead) + write + 8 <= self.context_window else 0
        with self._context(ahead, live=False, timeout=0) as llm:
            if llm is None or self._live_waiting:  # a turn already wants a context: it reads its own prompt
                return 0
            held = self._held_by(llm, ahead)
            if len(ahead) - held > self.PREFILL_MAX_NEW_TOKENS:
                return 0
            keep = min(held, len(tokens) - 1)
            self._reading(llm, ahead)
            with self._cache_lock:
                self._written.pop(id(llm), None)
            logits = self._eval_reading(llm, ahead, keep, at=len(tokens) - 1, last=bool(write))
            with self._cache_lock:
                self._turn_logits[id(llm)] = (tuple(tokens), logits)
            if write:
                self._write_ahead(llm, ahead, write, temperature, until, defer)
            return len(ahead) - keep

    def _write_ahead(self, llm: Any, prompt: list[int], limit: int, temperature: float,
                     until: Callable[[], bool] | None = None, defer: Callable[[], bool] | None = None) -> None:
        """Write up to ``limit`` tokens of the reply after ``prompt`` (whose last logits the context holds), as
        :meth:`_generate` would draw them. Kept for the request that comes with this prompt (:meth:`_take_written`).

        Optional work, so it gives way: it stops at a closing quote (a spoken action's end), when any request
        waits for a context (a turn, or a conversation's state to be saved after its reply: a writer pausing on
        a context under 4 calls kept those from being saved, and turns then read 100-200 tokens again) or for
        this one's prompt (:meth:`_worth_waiting`), or when ``until()``; it pauses while ``defer()`` (a caller
        waits for their answer). Another call's reply already playing has its audio's length to be written:
        writing ahead beside it is fair.

        Why: when the caller's pause does end the turn, the reply's first piece is then already written (on 2
        cores ~10 tokens took 100-150 ms after the endpoint, on top of the choice), and its speech can be made
        before the end of the turn is sure (the voice loop does that with :meth:`written_ahead`)."""
        import codecs

        import llama_cpp

        def stop() -> bool:
            return bool(self._live_waiting or self._waiting or context.wanted or (until and until())
                        or time.perf_counter() - started > self.WRITE_AHEAD_MAX_S)

        def give_way() -> bool:
            """Wait while others' urgent work runs; False: stop instead."""
            while defer and defer():
                if stop():
                    return False
                time.sleep(0.01)
            return not stop()

        started = time.perf_counter()
        context = self._holder(llm)
        sampler = self._new_sampler(llm, temperature)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        vocab = llm._model.vocab
        tokens: list[int] = []
        text, ended = "", False
        while give_way():
            token = sampler.sample()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                ended = True
                break
            tokens.append(token)
            text += decoder.decode(llm.detokenize([token]))
            if len(tokens) >= limit or '"' in text or not give_way():
                break
            llm.eval([token])  # (no yield_to: give_way already defers, and stops when the turn comes)
        if tokens or ended:
            with self._cache_lock:
                self._written[id(llm)] = _Written(tuple(prompt), tokens, text, sampler, temperature, ended)
        log.debug("llm: wrote %d token(s) ahead in %.0f ms: %r", len(tokens), (time.perf_counter() - started) * 1000,
                  text)

    # A reply's start is written ahead for at most this long (pauses included): no hang-over lasts longer, and a
    # pause that ended in a cough brings no turn to stop it.
    WRITE_AHEAD_MAX_S = 1.5

    @staticmethod
    def _new_sampler(llm: Any, temperature: float, grammar: Any = None) -> TokenSampler:
        import random

        llm.set_seed(random.Random(llm._seed).randint(0, 2**32))  # as create_completion seeds the sampler
        return TokenSampler(llm, temperature=temperature, grammar=grammar)

    def _take_written(self, llm: Any, tokens: Sequence[int], request: CompletionRequest) -> _Written | None:
        """The reply's start written ahead in this context for exactly this request's prompt, if its KV cache
        still holds it (used once)."""
        with self._cache_lock:
            written = self._written.pop(id(llm), None)
        if (written is None or written.prompt != tuple(tokens) or written.temperature != request.temperature
                or request.json_schema is not None or not self._still_held(llm, written)):
            return None
        return written

    def _still_held(self, llm: Any, written: _Written) -> bool:
        """Whether the context's KV cache still holds exactly the prompt and the tokens written ahead after it."""
        held = [*written.prompt, *written.tokens][: written.cached]
        return llm.n_tokens == written.cached and self._held_by(llm, held) == written.cached

    def written_ahead(self, messages: Sequence[ChatMessage], assistant_prefix: str) -> str:
        prompt, _ = self.render(messages)
        key = tuple(self.tokenize_prompt(prompt + assistant_prefix))
        with self._cache_lock:
            return next((w.text for c in self._contexts if (w := self._written.get(id(c.llm))) is not None
                         and w.prompt == key and self._still_held(c.llm, w)), "")

    def _ready_logits(self, llm: Any, tokens: list[int]) -> Any | None:
        """The logits after ``tokens`` kept by a turn prefill of this context, if its cache still holds them."""
        with self._cache_lock:
            kept = self._turn_logits.get(id(llm))
        if kept is None or kept[0] != tuple(tokens) or self._held_by(llm, tokens) < len(tokens):
            return None
        return kept[1]

    def choose_continuation(self, request: CompletionRequest, options: Sequence[str], likely: str = "") -> str | None:
        """One evaluation of the new prompt tokens, then the next token's logits: the option whose first token
        scores highest (the model's own preference, no sampling). None when that token begins several options.

        Why: letting the model write the option under a grammar costs a request and a few constrained
        decoding steps (~60-90 ms on 2 cores); this costs nothing beyond the prompt evaluation, which the
        completion that follows (same prompt, longer ``assistant_prefix``) then finds in the KV cache.
        ``likely`` (e.g. the rest of the spoken action's JSON header) is evaluated in the same batch, its
        logits unread: when it is what follows, the completion finds it in the cache too (~60 ms saved);
        when it is not, the completion re-evaluates from where it differs.
        """
        prompt, _, tokens = self._prompt_tokens(request)
        ahead = self._read_ahead(prompt + request.assistant_prefix, tokens, likely)
        by_first: dict[int, list[str]] = {}
        for option in options:
            # The option's first token as it follows this prefix (a SentencePiece vocabulary tokenizes a word
            # alone differently: "▁send"), else as a word alone.
            ids = self.tokenize_prompt(prompt + request.assistant_prefix + option)
            if ids[: len(tokens)] == tokens and len(ids) > len(tokens):
                first = ids[len(tokens)]
            else:
                alone = self._llm.tokenize(option.encode("utf-8"), add_bos=False, special=False)
                if not alone:
                    continue
                first = alone[0]
            by_first.setdefault(first, []).append(option)
        prefix_tokens = self._stable_prefix(request, tokens)
        started = time.perf_counter()
        with self._context(tokens) as llm:
            self._use_best_state(llm, tokens, prefix_tokens)
            logits = self._ready_logits(llm, tokens)
            if logits is not None:  # a turn prefill evaluated this very prompt (the speculative transcript was final)
                keep = len(tokens)
                held = self._held_by(llm, ahead)
                if held < len(ahead):
                    llm.n_tokens = held
                    llm.eval(ahead[held:])
            else:
                # Keep what the KV cache already holds of this prompt; the last token is evaluated again for its logits.
                keep = min(self._held_by(llm, tokens), len(tokens) - 1)
                logits = self._eval_reading(llm, ahead, keep, at=len(tokens) - 1)
            best = max(by_first, key=lambda token: float(logits[token]))
        log.debug("llm: chose among %d options after %d new prompt tokens (+%d read ahead) in %.0f ms", len(options),
                  len(tokens) - keep, len(ahead) - len(tokens), (time.perf_counter() - started) * 1000)
        chosen = by_first[best]
        return chosen[0] if len(chosen) == 1 else None

    @staticmethod
    def _eval_reading(llm: Any, tokens: list[int], keep: int, at: int, last: bool = False):
        """Evaluate ``tokens[keep:]`` (the cache keeps the first ``keep``) and return the logits after token ``at``
        (``last``: the context keeps those after the last token too, for sampling what follows).

        llama-cpp-python's ``eval`` only keeps the last token's logits; reading those of an earlier token of
        the same batch needs the batch built by hand (llama.cpp computes logits only where asked).
        """
        import llama_cpp
        import numpy as np

        new = tokens[keep:]
        if at == len(tokens) - 1 or len(new) > llm.n_batch:
            llm.n_tokens = keep
            llm.eval(tokens[keep : at + 1])
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits(llm.ctx), shape=(llm.n_vocab(),)).copy()
            if at + 1 < len(tokens):
                llm.eval(tokens[at + 1 :])
            return logits
        llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        batch = llm._batch
        batch.batch.n_tokens = len(new)
        for i, token in enumerate(new):
            batch.batch.token[i] = token
            batch.batch.pos[i] = keep + i
            batch.batch.seq_id[i][0] = 0
            batch.batch.n_seq_id[i] = 1
            batch.batch.logits[i] = keep + i == at or (last and i == len(new) - 1)
        llm._ctx.decode(batch)
        llm.input_ids[keep : len(tokens)] = new
        llm.n_tokens = len(tokens)
        llm._requires_eval = True  # llama-cpp-python's scores do not hold the last token's logits
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, at - keep), shape=(llm.n_vocab(),)).copy()

    def stream(self, request: CompletionRequest) -> CompletionStream:
        from llama_cpp import LlamaGrammar

        stats = CompletionStats()
        _, template_stop, tokens = self._prompt_tokens(request)
        stats.prompt_tokens = len(tokens)
        prefix_tokens = self._stable_prefix(request, tokens)
        grammar = LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False) if request.json_schema else None
        max_tokens = min(request.max_tokens, self.context_window - len(tokens) - 1)

        def generate() -> Iterator[str]:
            started = time.perf_counter()
            with self._context(tokens, live=not request.background) as llm:
                # A live turn that just had the model may come back for its next step (choice, then message):
                # background work only starts when none has wanted it for a moment.
                if request.background and (self._live_turns() or time.monotonic() - self._live_last < 0.3):
                    stats.finish_reason = "preempted"
                    return
                self._use_best_state(llm, tokens, prefix_tokens)
                stats.cached_tokens = self._held_by(llm, tokens)
                written = self._take_written(llm, tokens, request)
                if written is not None:
                    log.debug("llm: the reply begins with %d token(s) written ahead", len(written.tokens))
                pieces = self._generate(llm, tokens, held=stats.cached_tokens, max_tokens=max_tokens,
                                        temperature=request.temperature, stop=[*template_stop, *request.stop],
                                        grammar=grammar, written=written)
                try:
                    for text, finish_reason in pieces:
                        if stats.observe(text, finish_reason, started):
                            yield text
                        if request.background and self._live_turns():
                            stats.finish_reason = "preempted"  # a live turn wants the model: start again later
                            break
                        if self.yield_to is not None:
                            self.yield_to()
                finally:
                    pieces.close()
                    if not request.background and stats.completion_tokens:
                        self._keep_turn_state(llm, request, tokens)
                    stats.total_s = time.perf_counter() - started
                    log.debug("llm: %d prompt tokens (%d cached), first token %.0f ms, %d tokens in %.0f ms (%s)",
                              stats.prompt_tokens, stats.cached_tokens, (stats.first_token_s or 0) * 1000,
                              stats.completion_tokens, stats.total_s * 1000, stats.finish_reason or "stop")

        return CompletionStream(generate(), stats)

    def _generate(self, llm: Any, tokens: list[int], *, held: int, max_tokens: int, temperature: float,
                  stop: Sequence[str], grammar: Any, written: _Written | None = None) -> Iterator[tuple[str, str | None]]:
        """The reply's text as it is sampled, as (text, finish reason) pairs; the last pair has the reason.
        ``held``: how many of ``tokens`` the context's KV cache already holds; ``written``: the reply's first
        tokens, written ahead (:meth:`_write_ahead`): given out first, then its sampler goes on.

        What llama-cpp-python's ``create_completion(stream=True)`` does, with its sampling defaults (and the
        grammar asked lazily: :mod:`brain.sampling`), less its per-token cost: after every token it decodes the
        whole reply so far to look for stop strings, so a 60-token reply makes 1,830 ``token_to_piece`` calls,
        each one releasing and re-taking the GIL that every call's audio and RTP threads need (py-spy: a third
        of a replying thread's GIL time). Here each token is decoded once; text that may be the start of a stop
        string is held back until it is known not to be.
        """
        import codecs

        import llama_cpp

        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")  # a character split across tokens
        vocab = llm._model.vocab
        if written is None:
            sampler = self._new_sampler(llm, temperature, grammar)
            # What the KV cache holds of the prompt is kept; at least its last token is evaluated, for fresh logits.
            keep = min(held, len(tokens) - 1)
            llm.n_tokens = keep
            llm.eval(tokens[keep:])
            given: list[int] = []
        else:
            sampler, given = written.sampler, list(written.tokens)
        in_cache = len(given) - (0 if written is not None and written.ended else 1)
        text, count = "", 0
        while True:
            if given:
                token = given.pop(0)
            elif written is not None and written.ended:
                yield text, "stop"
                return
            else:
                token = sampler.sample()
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                yield text, "stop"
                return
            count += 1
            text += decoder.decode(llm.detokenize([token]))
            found = [at for at in (text.find(s) for s in stop if s) if at >= 0]
            if found:
                yield text[: min(found)], "stop"
                return
            if count >= max_tokens:
                yield text, "length"
                return
            hold = max((n for s in stop for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])),
                       default=0)
            if len(text) > hold:
                yield text[: len(text) - hold], None
                text = text[len(text) - hold:]
            if count > in_cache:  # a token written ahead is in the KV cache already, except the last
                llm.eval([token])

    def close(self) -> None:
        """Free each context once its request is done. A context still busy after a few seconds (a stream
        nobody finished reading) is left to the process's end: freeing it under a decode crashes the process."""
        self._closed = True
        for context in self._contexts:
            with self._free:
                if not self._free.wait_for(lambda c=context: not c.busy, timeout=5.0):
                    log.warning("llama.cpp context still in use at close: left open")
                    continue
                context.busy = True  # never handed out again
            context.llm.close()


class OpenAICompatBackend(LLMBackend):
    """Any OpenAI-compatible chat server on this machine or the LAN (``llama_cpp.server``, vLLM)."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "local",
        api_key: str | None = None,
        context_window: int = 4096,
        timeout_s: float = 60.0,
    ) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.name = model
        self._context_window = context_window
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)
        self._tokenize_path: str | None = None

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> "OpenAICompatBackend":
        assert settings.base_url is not None  # validated by LLMSettings
        return cls(
            settings.base_url,
            model=settings.model,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            context_window=settings.n_ctx,
        )

    @property
    def context_window(self) -> int:
        return self._context_window

    def count_tokens(self, text: str) -> int:
        """Counted by the server's own tokenizer (llama_cpp.server's /extras/tokenize or vLLM's /tokenize)."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        paths = [self._tokenize_path] if self._tokenize_path else [f"{root}/extras/tokenize", f"{root}/tokenize"]
        for path in paths:
            body = {"input": text} if path.endswith("/extras/tokenize") else {"model": self.name, "prompt": text}
            response = self._http.post(path, json=body)
            if response.status_code == 200:
                self._tokenize_path = path
                data = response.json()
                return len(data["tokens"]) if "tokens" in data else int(data["count"])
        raise RuntimeError(f"{self.base_url}: the server offers no tokenize endpoint")

    def stream(self, request: CompletionRequest) -> CompletionStream:
        if request.assistant_prefix:
            raise ValueError("an OpenAI-compatible chat server cannot continue a given start of the reply")
        stats = CompletionStats()
        body: dict[str, Any] = {
            "model": self.name,
            "messages": [m.as_dict() for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.stop:
            body["stop"] = request.stop
        if request.json_schema:
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}

        def generate() -> Iterator[str]:
            started = time.perf_counter()
            try:
                with self._http.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        raise RuntimeError(f"{self.base_url}: HTTP {response.status_code}: {response.text[:200]}")
                    for line in response.iter_lines():
                        if not line.startswith("data:"):
                            continue
                        data = line[5:].strip()
                        if data == "[DONE]":
                            break
                        event = json.loads(data)
                        usage = event.get("usage")
                        if usage:
                            stats.prompt_tokens = usage.get("prompt_tokens", 0)
                        for choice in event.get("choices", []):
                            text = (choice.get("delta") or {}).get("content") or ""
                            if stats.observe(text, choice.get("finish_reason"), started):
                                yield text
            finally:
                stats.total_s = time.perf_counter() - started

        return CompletionStream(generate(), stats)

    def close(self) -> None:
        self._http.close()


def load_backend(settings: LLMSettings) -> LLMBackend:
    """The backend the configuration asks for."""
    if settings.backend == "openai":
        return OpenAICompatBackend.from_settings(settings)
    return LlamaCppBackend.from_settings(settings)
