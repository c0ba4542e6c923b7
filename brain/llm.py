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
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Iterator, Literal, Sequence

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

    @abstractmethod
    def stream(self, request: CompletionRequest) -> CompletionStream: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` by the model's own tokenizer (never tiktoken: it downloads its tables)."""

    @property
    @abstractmethod
    def context_window(self) -> int: ...

    def complete(self, request: CompletionRequest) -> tuple[str, CompletionStats]:
        stream = self.stream(request)
        return stream.read(), stream.stats

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connection."""

    def warm_prefix(self, messages: Sequence[ChatMessage]) -> float:  # noqa: B027 - optional hook
        """Prepare ``messages`` as a cached prompt prefix ahead of use; returns the seconds spent."""
        return 0.0


class LlamaCppBackend(LLMBackend):
    """A GGUF model in this process. One decode at a time (a lock); prefix states are kept in RAM."""

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        n_gpu_layers: int = 0,
        prefix_cache_entries: int = 16,
    ) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        self._llm = Llama(
            model_path=model_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_gpu_layers=n_gpu_layers,
            verbose=False,
        )
        self.load_seconds = time.perf_counter() - started
        self.name = model_path.rsplit("/", 1)[-1]
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path}: the GGUF has no chat template (tokenizer.chat_template)")
        eos = self._token_text(self._llm.token_eos())
        bos = self._token_text(self._llm.token_bos())
        self._formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        self._prefix_formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos, add_generation_prompt=False)
        self._lock = threading.Lock()
        self._prefix_states: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._prefix_capacity = prefix_cache_entries
        self.prefix_cache_enabled = True
        log.info("llama.cpp loaded %s in %.2fs (n_ctx=%d, threads=%d)", self.name, self.load_seconds, n_ctx, n_threads)

    @classmethod
    def from_settings(cls, settings: LLMSettings) -> "LlamaCppBackend":
        return cls(
            str(resolve_llm_model(settings.model)),
            n_ctx=settings.n_ctx,
            n_threads=settings.n_threads,
            n_gpu_layers=settings.n_gpu_layers,
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

    def _use_prefix(self, prefix_tokens: list[int]) -> None:
        """Make the model's KV cache start with ``prefix_tokens``: reuse, restore a saved state, or build one."""
        key = tuple(prefix_tokens)
        current = self._llm._input_ids
        if len(current) >= len(key) and tuple(current[: len(key)].tolist()) == key:
            return  # already there (the same conversation continuing)
        state = self._prefix_states.get(key)
        if state is not None:
            self._llm.load_state(state)
            self._prefix_states.move_to_end(key)
            return
        self._llm.reset()
        self._llm.eval(prefix_tokens)
        self._prefix_states[key] = self._llm.save_state()
        while len(self._prefix_states) > self._prefix_capacity:
            self._prefix_states.popitem(last=False)

    def warm_prefix(self, messages: Sequence[ChatMessage]) -> float:
        """Evaluate and save the KV state of ``messages`` so the next request starting with them skips it."""
        if not self.prefix_cache_enabled:
            return 0.0
        started = time.perf_counter()
        prompt, _ = self.render(messages, generation_prompt=False)
        tokens = self.tokenize_prompt(prompt)
        if tuple(tokens) in self._prefix_states:
            return 0.0
        with self._lock:
            self._use_prefix(tokens)
        return time.perf_counter() - started

    def stream(self, request: CompletionRequest) -> CompletionStream:
        from llama_cpp import LlamaGrammar

        stats = CompletionStats()
        prompt, template_stop = self.render(request.messages)
        tokens = self.tokenize_prompt(prompt)
        if len(tokens) + 8 > self.context_window:
            raise ValueError(f"prompt of {len(tokens)} tokens does not fit the {self.context_window}-token window")
        stats.prompt_tokens = len(tokens)
        prefix_tokens: list[int] = []
        if self.prefix_cache_enabled and 0 < request.stable_prefix_messages < len(request.messages):
            prefix_prompt, _ = self.render(request.messages[: request.stable_prefix_messages], generation_prompt=False)
            candidate = self.tokenize_prompt(prefix_prompt)
            if tokens[: len(candidate)] == candidate:
                prefix_tokens = candidate
        grammar = LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False) if request.json_schema else None
        max_tokens = min(request.max_tokens, self.context_window - len(tokens) - 1)

        def generate() -> Iterator[str]:
            started = time.perf_counter()
            with self._lock:
                if prefix_tokens:
                    self._use_prefix(prefix_tokens)
                elif not self.prefix_cache_enabled:
                    self._llm.reset()
                current = self._llm._input_ids.tolist()
                stats.cached_tokens = self._llm.longest_token_prefix(current, tokens)
                pieces = self._llm.create_completion(
                    prompt=tokens,
                    max_tokens=max_tokens,
                    temperature=request.temperature,
                    stop=[*template_stop, *request.stop],
                    grammar=grammar,
                    stream=True,
                )
                try:
                    for piece in pieces:
                        choice = piece["choices"][0]
                        text = choice.get("text") or ""
                        if stats.observe(text, choice.get("finish_reason"), started):
                            yield text
                finally:
                    pieces.close()
                    stats.total_s = time.perf_counter() - started

        return CompletionStream(generate(), stats)


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
