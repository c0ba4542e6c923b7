"""The storage interface of MemGPT-style memory. brain/ talks to this, never to SQL.

SQLite implements it by default (one file, WAL); PostgreSQL + pgvector (``memory/postgres_store.py``)
implements the same methods for several workers sharing one memory. Every write is its own transaction, committed before the
method returns: a process killed mid-turn loses nothing that was already said.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import numpy as np
import numpy.typing as npt

from memory.records import (
    Callback,
    Conversation,
    CoreBlock,
    MessageHit,
    Passage,
    StaffMessage,
    StoredMessage,
    TurnRecord,
)


class StoreError(RuntimeError):
    """The memory store cannot be used (wrong schema, not a database, server unreachable)."""


class MemoryStore(ABC):
    # core memory
    @abstractmethod
    def get_block(self, owner: str, label: str) -> CoreBlock | None: ...

    def put_block(self, block: CoreBlock) -> None:
        """Set a block's whole value (the store raises ValueError when it is over the block's limit)."""
        self.update_block(block.owner, block.label, block.limit, lambda _current: block.value)

    @abstractmethod
    def update_block(self, owner: str, label: str, limit: int, change: Callable[[str], str]) -> str:
        """Read-modify-write of one block in one transaction (the block locked meanwhile), so two workers
        appending to one caller's memory at once both keep their line. ``change`` gets the current value
        ("" for a new block) and returns the new one; an exception from it changes nothing."""

    @abstractmethod
    def delete_owner(self, owner: str) -> int:
        """Erase everything stored for one caller (right to erasure); returns rows removed."""

    # conversations and recall memory
    @abstractmethod
    def open_conversation(self, caller: str, channel: str = "phone") -> Conversation: ...

    @abstractmethod
    def close_conversation(self, conversation_id: int, summary: str | None = None) -> None: ...

    @abstractmethod
    def conversations(self, caller: str, limit: int = 20) -> list[Conversation]: ...

    @abstractmethod
    def add_message(
        self, conversation_id: int, caller: str, role: str, content: str, *, name: str | None = None,
        embedding: npt.NDArray[np.float32] | None = None,
    ) -> StoredMessage: ...

    @abstractmethod
    def messages(self, conversation_id: int) -> list[StoredMessage]: ...

    @abstractmethod
    def search_messages_text(self, caller: str, query: str, limit: int = 5) -> list[MessageHit]: ...

    @abstractmethod
    def search_messages_vector(self, caller: str, vector: npt.NDArray[np.float32], limit: int = 5) -> list[MessageHit]: ...

    # archival memory
    @abstractmethod
    def add_passage(self, owner: str, text: str, source: str, embedding: npt.NDArray[np.float32]) -> Passage: ...

    @abstractmethod
    def delete_passages(self, owner: str, source: str) -> int: ...

    @abstractmethod
    def passages(self, owner: str) -> list[Passage]: ...

    @abstractmethod
    def search_passages(self, owners: list[str], vector: npt.NDArray[np.float32], limit: int = 5) -> list[Passage]: ...

    @abstractmethod
    def search_passages_text(self, owners: list[str], query: str, limit: int = 5) -> list[Passage]: ...

    # work for staff
    @abstractmethod
    def add_staff_message(self, message: StaffMessage) -> StaffMessage: ...

    @abstractmethod
    def staff_messages(self, *, open_only: bool = True, caller: str | None = None) -> list[StaffMessage]: ...

    @abstractmethod
    def set_staff_message_done(self, message_id: int, done: bool = True) -> bool:
        """Mark a message for staff as dealt with (or not); False when there is no such message."""

    @abstractmethod
    def add_callback(self, callback: Callback) -> Callback: ...

    @abstractmethod
    def callbacks(self, *, open_only: bool = True) -> list[Callback]: ...

    # calls
    @abstractmethod
    def add_turn(self, turn: TurnRecord) -> TurnRecord: ...

    @abstractmethod
    def turns(self, conversation_id: int) -> list[TurnRecord]: ...

    @abstractmethod
    def set_recording(self, conversation_id: int, path: str) -> None: ...

    @abstractmethod
    def set_call_info(self, conversation_id: int, info: dict) -> None:
        """How the call went on the line (direction, remote party, SIP outcome, who ended it): JSON."""

    @abstractmethod
    def call_info(self, conversation_id: int) -> dict | None: ...

    @abstractmethod
    def recording(self, conversation_id: int) -> str | None: ...

    @abstractmethod
    def recent_conversations(self, limit: int = 20) -> list[Conversation]: ...

    @abstractmethod
    def conversation(self, conversation_id: int) -> Conversation | None: ...

    @abstractmethod
    def count(self, table: str) -> int: ...

    @abstractmethod
    def close(self) -> None: ...
