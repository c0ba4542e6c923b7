"""The employee's tools, bound to one call: its caller's memory, the company knowledge, the line.

Every tool validates its own arguments (the model is small and the caller may be hostile): a transfer
goes only to a target named in the job configuration, DTMF only carries dialpad digits, memory edits
respect their size limits. A refused call returns an explanation the agent can act on; it never
raises into the conversation.

(No ``from __future__ import annotations`` here: AutoGen reads the tools' annotations at run time,
and the transfer targets' Literal type is built per call from the job configuration.)
"""


import importlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal

from autogen_core.tools import FunctionTool

from brain.line import LineControl
from config.settings import JobSettings
from memory.records import Callback, StaffMessage
from memory.service import CallerMemory, MemoryLimitError, MemoryService

MAX_RESULTS_CHARS = 600
_DTMF = re.compile(r"^[0-9*#A-Da-d]{1,32}$")


@dataclass
class CallSession:
    """What the tools of one conversation act on."""

    memory: CallerMemory
    service: MemoryService
    job: JobSettings
    line: LineControl
    caller_number: str
    tool_log: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False
    transferred_to: str | None = None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_RESULTS_CHARS else text[: MAX_RESULTS_CHARS - 3] + "..."


def build_tools(session: "CallSession") -> list[FunctionTool]:
    """The standard tools plus the job's custom ones, as AutoGen FunctionTools."""
    job = session.job

    def log(name: str, arguments: dict[str, Any], result: str) -> str:
        session.tool_log.append({"tool": name, "arguments": arguments, "result": result})
        return result

    def take_message(
        for_whom: Annotated[str, "who the message is for"],
        message: Annotated[str, "the message, in the caller's words"],
        callback_number: Annotated[str, "number to call back; empty if none given"] = "",
    ) -> str:
        """Store a message for a member of staff."""
        number = callback_number.strip() or session.caller_number
        stored = session.service.store.add_staff_message(
            StaffMessage(session.memory.key, for_whom.strip() or "staff", message.strip(), number,
                         session.memory.conversation_id))
        return log("take_message", {"for_whom": for_whom, "message": message, "callback_number": number},
                   f"Message #{stored.id} for {stored.for_whom} saved; callback number {number}.")

    def search_knowledge(query: Annotated[str, "what to look up"]) -> str:
        """Look up facts in the company's documents."""
        passages = session.service.search_knowledge(query, limit=2)
        text = "\n".join(" ".join(p.text.split()) for p in passages) or "Nothing found in the documents."
        return log("search_knowledge", {"query": query}, _clip(text))

    def core_memory_append(fact: Annotated[str, "a fact about the caller worth remembering"]) -> str:
        """Remember a fact about this caller for future calls."""
        try:
            session.memory.core_memory_append(fact)
            result = "Remembered."
        except MemoryLimitError as exc:
            result = f"Not stored: {exc}."
        return log("core_memory_append", {"fact": fact}, result)

    def core_memory_replace(old: Annotated[str, "text to replace"], new: Annotated[str, "replacement text"]) -> str:
        """Correct a fact remembered about this caller."""
        try:
            session.memory.core_memory_replace(old, new)
            result = "Updated."
        except MemoryLimitError as exc:
            result = f"Not changed: {exc}."
        return log("core_memory_replace", {"old": old, "new": new}, result)

    def conversation_search(query: Annotated[str, "words to find in past conversations with this caller"]) -> str:
        """Search earlier conversations with this caller."""
        hits = session.memory.conversation_search(query, limit=3)
        text = "\n".join(f"{h.message.role}: {h.message.content}" for h in hits) or "No earlier mention."
        return log("conversation_search", {"query": query}, _clip(text))

    def archival_memory_insert(note: Annotated[str, "a longer note about this caller"]) -> str:
        """Save a note about this caller."""
        session.memory.archival_memory_insert(note)
        return log("archival_memory_insert", {"note": note}, "Saved.")

    def archival_memory_search(query: Annotated[str, "what to look for"]) -> str:
        """Search notes about this caller and the company documents."""
        passages = session.memory.archival_memory_search(query, limit=2)
        text = "\n".join(" ".join(p.text.split()) for p in passages) or "Nothing found."
        return log("archival_memory_search", {"query": query}, _clip(text))

    targets = list(job.transfers)
    Target = Literal[tuple(targets)] if targets else str  # type: ignore[valid-type]

    def transfer_call(to: Annotated[Target, "who to transfer to"]) -> str:  # type: ignore[valid-type]
        """Put the caller through to a person."""
        chosen = job.transfers.get(str(to).strip().lower()) or job.transfers.get(str(to))
        if chosen is None:
            return log("transfer_call", {"to": to}, f"Not allowed: you may only transfer to {', '.join(targets) or 'nobody'}.")
        session.transferred_to = chosen.target
        return log("transfer_call", {"to": to}, session.line.transfer(chosen.target))

    def end_call() -> str:
        """End the call after saying goodbye."""
        session.ended = True
        session.line.hang_up()
        return log("end_call", {}, "The call will end after your goodbye.")

    def send_dtmf(digits: Annotated[str, "keypad digits, 0-9 * #"]) -> str:
        """Press keys on the phone's keypad."""
        if not _DTMF.match(digits.strip()):
            return log("send_dtmf", {"digits": digits}, "Not sent: only 0-9, * and # can be pressed.")
        session.line.send_dtmf(digits.strip())
        return log("send_dtmf", {"digits": digits}, f"Pressed {digits.strip()}.")

    def schedule_callback(
        when: Annotated[str, "when to call back, as the caller said it"],
        reason: Annotated[str, "what the callback is about"],
        number: Annotated[str, "number to call; empty for the caller's number"] = "",
    ) -> str:
        """Promise to call the caller back."""
        stored = session.service.store.add_callback(
            Callback(session.memory.key, number.strip() or session.caller_number, when.strip(), reason.strip(),
                     session.memory.conversation_id))
        return log("schedule_callback", {"when": when, "reason": reason, "number": stored.number},
                   f"Callback #{stored.id} scheduled for {stored.when} to {stored.number}.")

    functions: list[Callable[..., str]] = [
        take_message, search_knowledge, transfer_call, end_call, schedule_callback, core_memory_append,
        core_memory_replace, conversation_search, archival_memory_insert, archival_memory_search, send_dtmf,
    ]
    tools = [FunctionTool(f, description=(f.__doc__ or f.__name__).strip(), name=f.__name__) for f in functions]
    tools += [load_custom_tool(name) for name in job.custom_tools]
    return tools


# Tools that only read: safe for the model to call on its own whatever it misunderstood.
LOOKUP_TOOLS = frozenset({"search_knowledge", "conversation_search", "archival_memory_search"})


def load_custom_tool(reference: str) -> FunctionTool:
    """A plain Python function named ``module:function`` in the job config, as a tool."""
    module_name, _, function_name = reference.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"job.custom_tools: cannot load {reference!r}: {exc}") from exc
    if not callable(function):
        raise ValueError(f"job.custom_tools: {reference!r} is not a function")
    return FunctionTool(function, description=(function.__doc__ or function_name).strip(), name=function_name)
