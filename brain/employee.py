"""The employee: one AutoGen agent per conversation, sharing the model and memory across calls.

:class:`Brain` holds what is loaded once (LLM backend, memory service, job); it opens a
:class:`Conversation` per call. A conversation greets, runs turns (the caller's text in, a stream of
:class:`SpeechDelta` / :class:`ToolUsed` events out, then :class:`TurnDone`), records every message in
recall memory as it happens, and on :meth:`Conversation.end` runs the post-call work.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import AsyncIterator

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    ModelClientStreamingChunkEvent,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import CancellationToken

from brain.client import MAX_TOOL_ROUNDS, EmployeeModelClient
from brain.context import EmployeeContext
from brain.line import LineControl
from brain.llm import ChatMessage, CompletionRequest, LLMBackend, load_backend
from brain.prompt import caller_name, greeting, system_prompt
from brain.tools import CallSession, build_tools
from config.settings import Settings
from memory.service import MemoryLimitError, MemoryService, open_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechDelta:
    text: str


@dataclass(frozen=True)
class ToolUsed:
    name: str
    arguments: str
    result: str
    is_error: bool = False


@dataclass(frozen=True)
class TurnDone:
    text: str  # what the employee said this turn
    first_token_s: float | None
    total_s: float
    cancelled: bool = False


TurnEvent = SpeechDelta | ToolUsed | TurnDone


@dataclass(frozen=True)
class PostCall:
    summary: str
    action_items: list[str] = field(default_factory=list)
    remembered: list[str] = field(default_factory=list)


POST_CALL_SCHEMA = {
    "type": "object",
    "properties": {
        "caller_name": {"type": "string", "maxLength": 40},
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 120}, "maxItems": 4},
        "action_items": {"type": "array", "items": {"type": "string", "maxLength": 120}, "maxItems": 4},
    },
    "required": ["caller_name", "facts", "action_items"],
}
_WORD = re.compile(r"[a-z0-9']+")
_STOP = {"the", "a", "an", "to", "is", "and", "of", "i", "my", "me", "for", "in", "on", "at", "it", "caller", "their",
         "they", "wants", "has", "be", "with", "you", "your", "please", "would", "like", "about"}


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


class Brain:
    """What every conversation shares: the model, the memory, the job."""

    def __init__(self, settings: Settings, backend: LLMBackend | None = None, memory: MemoryService | None = None) -> None:
        self.settings = settings
        self.job = settings.job
        self.backend = backend or load_backend(settings.llm)
        self.memory = memory or open_memory(settings.memory_path, settings.memory)

    def conversation(self, caller: str, line: LineControl, channel: str = "phone") -> "Conversation":
        return Conversation(self, caller, line, channel)

    def close(self) -> None:
        self.backend.close()
        self.memory.store.close()


class Conversation:
    def __init__(self, brain: Brain, caller: str, line: LineControl, channel: str) -> None:
        self.brain = brain
        self.memory = brain.memory.for_caller(caller)
        self.memory.start_conversation(channel)
        self.session = CallSession(self.memory, brain.memory, brain.job, line, caller)
        self.client = EmployeeModelClient(brain.backend)
        human = self.memory.human()
        self._prompt = system_prompt(brain.job, human)  # stable for the whole call: the cached prefix
        self.context = EmployeeContext(
            system_prompt=lambda: self._prompt,
            count_tokens=self.client.count_tokens,
            window=brain.backend.context_window,
            summarize=self._summarize,
        )
        self.agent = AssistantAgent(
            "employee",
            model_client=self.client,
            tools=build_tools(self.session),
            model_context=self.context,
            system_message=None,
            model_client_stream=True,
            reflect_on_tool_use=True,
            max_tool_iterations=MAX_TOOL_ROUNDS,
        )
        self.turns = 0
        self._transcript: list[tuple[str, str]] = []

    @property
    def ended(self) -> bool:
        return self.session.ended

    def greeting(self) -> str:
        text = greeting(self.brain.job, self.memory.human())
        self.memory.record("assistant", text)
        self._transcript.append(("assistant", text))
        return text

    async def turn(self, caller_text: str, cancellation: CancellationToken | None = None) -> AsyncIterator[TurnEvent]:
        """One caller utterance -> the employee's streamed reply (and any tools it used)."""
        started = time.perf_counter()
        self.turns += 1
        self.memory.record("user", caller_text)
        self._transcript.append(("caller", caller_text))
        spoken: list[str] = []
        first: float | None = None
        token = cancellation or CancellationToken()
        final_text = ""
        async for event in self.agent.run_stream(task=TextMessage(content=caller_text, source="caller"),
                                                 cancellation_token=token):
            if isinstance(event, ModelClientStreamingChunkEvent):
                if first is None:
                    first = time.perf_counter() - started
                spoken.append(event.content)
                yield SpeechDelta(event.content)
            elif isinstance(event, ToolCallRequestEvent):
                for call in event.content:
                    self.memory.record("tool", f"{call.name}({call.arguments})", name=call.name)
            elif isinstance(event, ToolCallExecutionEvent):
                for result in event.content:
                    self.memory.record("tool", result.content, name=result.name)
                    yield ToolUsed(result.name, "", result.content, result.is_error)
            elif isinstance(event, TaskResult):
                last = event.messages[-1] if event.messages else None
                final_text = last.content if isinstance(last, TextMessage) else ""
        text = final_text or "".join(spoken)
        if not spoken and text:  # a reply that was not streamed (e.g. the fallback) still reaches the caller
            yield SpeechDelta(text)
        if text:
            self.memory.record("assistant", text)
            self._transcript.append(("assistant", text))
        yield TurnDone(text, first, time.perf_counter() - started, token.is_cancelled())

    def _summarize(self, text: str) -> str:
        request = CompletionRequest(
            [ChatMessage("system", "Summarise this part of a phone call in at most three sentences. Keep names, "
                                   "numbers and requests."), ChatMessage("user", text)],
            max_tokens=120, temperature=0.0, stable_prefix_messages=0,
        )
        return self.brain.backend.complete(request)[0].strip()

    async def end(self) -> PostCall:
        """Post-call work: a summary for staff, action items, and what to remember about the caller."""
        transcript = "\n".join(f"{who}: {text}" for who, text in self._transcript)
        if self.turns == 0:
            self.memory.end_conversation("No conversation (the caller said nothing).")
            return PostCall("No conversation (the caller said nothing).")
        summary = self._summarize(transcript)
        request = CompletionRequest(
            [ChatMessage("system", "Read this phone call. Give the caller's name if they said it (else empty), up to "
                                   "four facts about the caller worth remembering, and the staff's action items."),
             ChatMessage("user", transcript)],
            max_tokens=200, temperature=0.0, json_schema=POST_CALL_SCHEMA, stable_prefix_messages=0,
        )
        raw, _ = self.brain.backend.complete(request)
        try:
            extracted = json.loads(raw)
        except json.JSONDecodeError:
            extracted = {"caller_name": "", "facts": [], "action_items": []}
        remembered = self._remember(extracted)
        self.memory.end_conversation(summary)
        items = [str(a).strip() for a in extracted.get("action_items", []) if _content_words(str(a))]
        return PostCall(summary, items, remembered)

    def _remember(self, extracted: dict) -> list[str]:
        """Only facts grounded in the caller's own words are kept (small models invent names)."""
        said = _content_words(" ".join(text for who, text in self._transcript if who == "caller"))
        current = self.memory.human()
        remembered: list[str] = []
        name = str(extracted.get("caller_name", "")).strip()
        if name and not caller_name(current) and _content_words(name) and _content_words(name) <= said:
            remembered.append(f"Name: {name}")
        for fact in extracted.get("facts", []):
            words = _content_words(str(fact))
            if name and words <= _content_words(name):
                continue  # the name again, already handled
            if words and len(words & said) >= max(1, len(words) // 2) and fact not in current:
                remembered.append(str(fact).strip())
        kept = []
        for line in remembered:
            try:
                self.memory.core_memory_append(line)
                kept.append(line)
            except MemoryLimitError:
                break
        return kept
