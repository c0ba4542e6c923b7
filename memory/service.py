"""MemGPT's memory hierarchy on top of a :class:`MemoryStore`.

- Core memory: the persona block and one "human" block per caller, size-limited, always in the
  prompt, changed only through :meth:`CallerMemory.core_memory_append` / ``_replace``.
- Recall memory: every message of every conversation, written as it happens, searchable by
  keywords (FTS5) and by meaning (embeddings).
- Archival memory: passages with embeddings: the company's documents (shared) and notes about
  one caller (theirs alone).

Isolation is structural: brain/ only ever gets a :class:`CallerMemory` bound to one caller key,
and every query it can make is filtered by that key (plus the shared company documents).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from config.settings import MemorySettings
from memory.callers import caller_key
from memory.embeddings import Embedder
from memory.documents import UnreadableDocument, read_document
from memory.records import COMPANY_FACTS, COMPANY_OWNER, PERSONA_OWNER, CoreBlock, MessageHit, Passage
from memory.store import MemoryStore

CHUNK_WORDS = 120
_EMBEDDED_ROLES = {"user", "assistant"}


class MemoryLimitError(ValueError):
    """A core-memory edit would overflow its block: the agent is told, nothing is truncated."""


@dataclass(frozen=True)
class IngestedFile:
    source: str
    facts: int
    chunks: int
    note: str = ""


@dataclass(frozen=True)
class IngestReport:
    read: list[IngestedFile]
    skipped: list[str]  # "path: why", for the person who gave the files

    @property
    def files(self) -> int:
        return len(self.read)

    @property
    def passages(self) -> int:
        return sum(f.chunks for f in self.read)

    @property
    def facts(self) -> int:
        return sum(f.facts for f in self.read)


def chunk_text(text: str, max_words: int = CHUNK_WORDS) -> list[str]:
    """Paragraph-aligned chunks of at most ~max_words words; a heading stays with what follows it."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for paragraph in paragraphs:
        words = paragraph.split()
        while len(words) > max_words:  # a huge paragraph is cut at word boundaries
            if current:
                chunks.append("\n\n".join(current))
                current, size = [], 0
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if size + len(words) > max_words and current and not current[-1].lstrip().startswith("#"):
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(" ".join(words))
        size += len(words)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


class MemoryService:
    """Memory for the whole service; hand out :class:`CallerMemory` views, one per caller."""

    def __init__(self, store: MemoryStore, embedder: Embedder, settings: MemorySettings | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings or MemorySettings()

    def for_caller(self, raw_caller: str) -> "CallerMemory":
        return CallerMemory(self, caller_key(raw_caller))

    # persona (the employee's own block; set from the job configuration, not by callers)
    def persona(self) -> str:
        block = self.store.get_block(PERSONA_OWNER, "persona")
        return block.value if block else ""

    def set_persona(self, text: str) -> None:
        self.store.put_block(CoreBlock(PERSONA_OWNER, "persona", text, self.settings.persona_limit))

    # company knowledge
    def ingest(self, folder: Path) -> IngestReport:
        """Read every document in ``folder`` (see memory.documents for the types) into chunks, for the
        model's search, and single facts, for answers; re-ingesting a file replaces both. A file that cannot
        be read is reported with the reason and the others are still taken."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder")
        read, skipped = [], []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            source = str(path.relative_to(folder))
            try:
                document = read_document(path)
            except UnreadableDocument as exc:
                skipped.append(f"{source}: {exc}")
                continue
            chunks = chunk_text(document.text)
            self.store.delete_passages(COMPANY_OWNER, source)
            self.store.delete_passages(COMPANY_FACTS, source)
            for chunk, vector in zip(chunks, self.embedder.embed(chunks)):
                self.store.add_passage(COMPANY_OWNER, chunk, source, vector)
            vectors = self.embedder.embed([fact.search_text() for fact in document.facts])
            for fact, vector in zip(document.facts, vectors):
                self.store.add_passage(COMPANY_FACTS, fact.encode(), source, vector)
            read.append(IngestedFile(source, len(document.facts), len(chunks), document.note))
        return IngestReport(read, skipped)

    def search_knowledge(self, query: str, limit: int = 3) -> list[Passage]:
        return self._hybrid_passages([COMPANY_OWNER], query, limit)

    def _hybrid_passages(self, owners: list[str], query: str, limit: int) -> list[Passage]:
        """Meaning first, keywords second (exact names/numbers that embeddings blur), de-duplicated."""
        by_meaning = self.store.search_passages(owners, self.embedder.embed_one(query), limit)
        by_words = self.store.search_passages_text(owners, query, limit)
        merged: dict[int, Passage] = {}
        for passage in [*by_meaning, *by_words]:
            merged.setdefault(passage.id, passage)
        return list(merged.values())[:limit]


class CallerMemory:
    """Everything the employee may know and change about one caller — and nothing about others."""

    def __init__(self, service: MemoryService, key: str) -> None:
        self._service = service
        self._store = service.store
        self.key = key
        self.conversation_id: int | None = None

    # core memory
    def human(self) -> str:
        block = self._store.get_block(self.key, "human")
        return block.value if block else ""

    def persona(self) -> str:
        return self._service.persona()

    def core_memory_append(self, text: str) -> str:
        """Add a line to this caller's block (the only block a conversation may edit)."""
        text = text.strip()
        return self._update(lambda current: f"{current}\n{text}".strip() if current else text)

    def core_memory_replace(self, old: str, new: str) -> str:
        def replace_in(current: str) -> str:
            if not old or old not in current:
                raise MemoryLimitError(f"{old!r} is not in this caller's memory")
            return current.replace(old, new.strip(), 1).strip()

        return self._update(replace_in)

    def _update(self, change) -> str:
        """One transaction in the store: two workers writing to one caller's memory never lose a line."""
        limit = self._service.settings.human_limit

        def checked(current: str) -> str:
            value = change(current)
            if len(value) > limit:
                raise MemoryLimitError(f"caller memory would be {len(value)} characters, over its limit of {limit}")
            return value

        return self._store.update_block(self.key, "human", limit, checked)

    # recall memory
    def start_conversation(self, channel: str = "phone") -> int:
        self.conversation_id = self._store.open_conversation(self.key, channel).id
        return self.conversation_id

    def record(self, role: str, content: str, *, name: str | None = None) -> None:
        """Persist one message now (a crash after this loses nothing of it)."""
        if self.conversation_id is None:
            self.start_conversation()
        assert self.conversation_id is not None
        vector = self._service.embedder.embed_one(content) if role in _EMBEDDED_ROLES and content.strip() else None
        self._store.add_message(self.conversation_id, self.key, role, content, name=name, embedding=vector)

    def end_conversation(self, summary: str | None = None) -> None:
        if self.conversation_id is not None:
            self._store.close_conversation(self.conversation_id, summary)
            self.conversation_id = None

    def conversation_search(self, query: str, limit: int = 5) -> list[MessageHit]:
        by_words = self._store.search_messages_text(self.key, query, limit)
        by_meaning = self._store.search_messages_vector(self.key, self._service.embedder.embed_one(query), limit)
        merged: dict[int, MessageHit] = {}
        for hit in [*by_words, *by_meaning]:
            merged.setdefault(hit.message.id, hit)
        return list(merged.values())[:limit]

    def past_conversations(self, limit: int = 5):
        return self._store.conversations(self.key, limit)

    # archival memory
    def archival_memory_insert(self, text: str) -> Passage:
        return self._store.add_passage(self.key, text, "conversation", self._service.embedder.embed_one(text))

    def archival_memory_search(self, query: str, limit: int = 3) -> list[Passage]:
        """This caller's notes and the company's documents; never another caller's."""
        return self._service._hybrid_passages([self.key, COMPANY_OWNER], query, limit)

    def erase(self) -> int:
        """Right to erasure: everything stored about this caller."""
        return self._store.delete_owner(self.key)


def open_store(sqlite_path: Path, memory_settings: MemorySettings) -> MemoryStore:
    """The configured store: the SQLite file at ``sqlite_path``, or PostgreSQL at ``memory.url``."""
    if memory_settings.store == "postgresql":
        from memory.postgres_store import PostgresStore

        assert memory_settings.url is not None  # the settings validator requires it
        return PostgresStore(memory_settings.url.get_secret_value())
    from memory.sqlite_store import SQLiteStore

    return SQLiteStore(sqlite_path)


def open_memory(settings_path: Path, memory_settings: MemorySettings) -> MemoryService:
    """The configured store and embedder."""
    store = open_store(settings_path, memory_settings)
    return MemoryService(store, Embedder.from_reference(memory_settings.embedding_model), memory_settings)
