"""The agent's model context: token accounting, memory pressure, recursive summary and eviction.

As in MemGPT: the prompt is system prompt (with core memory) + a running summary + the most recent
messages. At 75 % of the context window a memory-pressure note asks the agent to save what matters;
at 90 % the oldest messages are folded into the summary (recursively: the old summary is part of
what is summarised) and leave the prompt. They are not lost: every message is already in recall
memory. A tool call is never separated from its result.
"""

from __future__ import annotations

import asyncio
from typing import Callable, List

from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import AssistantMessage, FunctionExecutionResultMessage, LLMMessage, SystemMessage

PRESSURE_AT = 0.75
EVICT_AT = 0.90
EVICT_TO = 0.60
PRESSURE_NOTE = (
    "Memory pressure: this conversation is getting long. Save anything important about the caller with "
    "core_memory_append now; older messages will be summarised."
)


def _render(messages: List[LLMMessage]) -> str:
    lines = []
    for message in messages:
        if isinstance(message, FunctionExecutionResultMessage):
            lines += [f"tool {r.name}: {r.content}" for r in message.content]
        elif isinstance(message, AssistantMessage) and not isinstance(message.content, str):
            lines += [f"assistant called {c.name}({c.arguments})" for c in message.content]
        else:
            role = "caller" if message.type == "UserMessage" else "assistant" if message.type == "AssistantMessage" else "note"
            lines.append(f"{role}: {message.content}")
    return "\n".join(lines)


class EmployeeContext(ChatCompletionContext):
    def __init__(
        self,
        system_prompt: Callable[[], str],
        count_tokens: Callable[[List[LLMMessage]], int],
        window: int,
        summarize: Callable[[str], str],
    ) -> None:
        super().__init__()
        self._system_prompt = system_prompt
        self._count = count_tokens
        self.window = window
        self._summarize = summarize
        self.summary = ""
        self.evictions = 0
        self.pressure_notes = 0

    def _assemble(self) -> List[LLMMessage]:
        messages: List[LLMMessage] = [SystemMessage(content=self._system_prompt())]
        if self.summary:
            messages.append(SystemMessage(content=f"Summary of the call so far: {self.summary}"))
        return messages + list(self._messages)

    def _evictable_prefix(self, target_tokens: int) -> int:
        """How many of the oldest messages to evict to get under ``target_tokens`` (tool pairs kept whole)."""
        cut = 0
        while cut < len(self._messages) - 1:
            cut += 1
            # never end the cut between an assistant's tool call and the tool's result
            while cut < len(self._messages) and isinstance(self._messages[cut], FunctionExecutionResultMessage):
                cut += 1
            head = self._assemble()[: 2 if self.summary else 1]
            if self._count(head + list(self._messages[cut:])) <= target_tokens:
                break
        return min(cut, len(self._messages) - 1)

    def current_messages(self) -> List[LLMMessage]:
        """The prompt as it stands, without eviction or notes (what the next request will most likely start with)."""
        return self._assemble()

    async def get_messages(self) -> List[LLMMessage]:
        messages = self._assemble()
        tokens = self._count(messages)
        if tokens > EVICT_AT * self.window and len(self._messages) > 1:
            cut = self._evictable_prefix(int(EVICT_TO * self.window))
            evicted = self._messages[:cut]
            text = (f"Earlier summary: {self.summary}\n" if self.summary else "") + _render(evicted)
            self.summary = await asyncio.to_thread(self._summarize, text)
            del self._messages[:cut]
            self.evictions += 1
            messages = self._assemble()
            tokens = self._count(messages)
        if tokens > PRESSURE_AT * self.window:
            self.pressure_notes += 1
            messages.append(SystemMessage(content=PRESSURE_NOTE))
        return messages

    async def clear(self) -> None:
        await super().clear()
        self.summary = ""
