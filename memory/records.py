"""Records that cross the memory package's boundary (to brain/ and the CLI)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

PERSONA_OWNER = "@persona"  # the employee's own core block
COMPANY_OWNER = "@company"  # knowledge documents, shared by every caller
COMPANY_FACTS = "@company-facts"  # the same documents as single facts (memory.documents.Fact, encoded)


@dataclass(frozen=True)
class CoreBlock:
    owner: str  # PERSONA_OWNER or a caller key
    label: str  # "persona" or "human"
    value: str
    limit: int


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    caller: str
    role: str  # system | user | assistant | tool
    content: str
    created_at: float
    name: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: int
    caller: str
    started_at: float
    ended_at: float | None = None
    summary: str | None = None
    channel: str = "phone"


@dataclass(frozen=True)
class Passage:
    id: int
    owner: str  # COMPANY_OWNER or a caller key
    text: str
    source: str
    score: float = 0.0


@dataclass(frozen=True)
class MessageHit:
    message: StoredMessage
    score: float


@dataclass(frozen=True)
class StaffMessage:
    """A message taken for a member of staff."""

    caller: str
    for_whom: str
    text: str
    callback_number: str | None = None
    conversation_id: int | None = None
    created_at: float = field(default_factory=time.time)
    done: bool = False
    id: int | None = None


@dataclass(frozen=True)
class Callback:
    """A promise to call someone back."""

    caller: str
    number: str
    when: str
    reason: str
    conversation_id: int | None = None
    created_at: float = field(default_factory=time.time)
    done: bool = False
    id: int | None = None


@dataclass(frozen=True)
class TurnRecord:
    """One exchange of a call as stored: what was said, tools used, per-stage timings."""

    conversation_id: int
    caller_text: str
    agent_text: str
    tools: list[str] = field(default_factory=list)
    timings: dict[str, float | int | None] = field(default_factory=dict)
    interrupted: bool = False
    created_at: float = field(default_factory=time.time)
    id: int | None = None


def staff_message_from_row(row: tuple) -> StaffMessage:
    """(id, caller, conversation_id, for_whom, text, callback_number, created_at, done), as both stores select it."""
    return StaffMessage(id=row[0], caller=row[1], conversation_id=row[2], for_whom=row[3], text=row[4],
                        callback_number=row[5], created_at=row[6], done=bool(row[7]))


def callback_from_row(row: tuple) -> Callback:
    """(id, caller, conversation_id, number, when_text, reason, created_at, done), as both stores select it."""
    return Callback(id=row[0], caller=row[1], conversation_id=row[2], number=row[3], when=row[4], reason=row[5],
                    created_at=row[6], done=bool(row[7]))
