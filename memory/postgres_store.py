"""The memory store on PostgreSQL + pgvector, for several workers sharing one memory.

Same interface and behaviour as :mod:`memory.sqlite_store`: keyword search is PostgreSQL full-text
search (``simple`` configuration: no stemming, like SQLite's FTS5), meaning search is pgvector's
inner product on the unit-length embeddings (= cosine). Searches are exact (a caller's rows are
found by a B-tree index first, then ranked): an approximate HNSW index would have to post-filter
by caller and could return fewer rows than asked; ``scripts/bench_store.py`` measures the cost.
Every method is its own transaction; the connection pool makes the store safe for threads.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Callable

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import ConnectionPool

from memory.records import (
    Callback,
    Conversation,
    CoreBlock,
    MessageHit,
    Passage,
    StaffMessage,
    StoredMessage,
    TurnRecord,
    callback_from_row,
    staff_message_from_row,
)
from memory.store import MemoryStore, StoreError

SCHEMA_VERSION = 1
_SETUP_LOCK = 0x656D706C6F7961  # pg_advisory_lock key of schema set-up ("employa")
EMBEDDING_DIM = 384  # the packaged MiniLM embedder


def _migrations(dim: int) -> dict[int, str]:
    return {
        1: f"""
        CREATE TABLE core_blocks (
            owner TEXT NOT NULL, label TEXT NOT NULL, value TEXT NOT NULL, char_limit INTEGER NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (owner, label));
        CREATE TABLE conversations (
            id BIGSERIAL PRIMARY KEY, caller TEXT NOT NULL, channel TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL, ended_at DOUBLE PRECISION, summary TEXT, recording TEXT,
            call_info JSONB);
        CREATE INDEX conversations_caller ON conversations (caller, started_at);
        CREATE TABLE messages (
            id BIGSERIAL PRIMARY KEY, conversation_id BIGINT NOT NULL REFERENCES conversations(id),
            caller TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, name TEXT,
            created_at DOUBLE PRECISION NOT NULL, embedding vector({dim}),
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED);
        CREATE INDEX messages_caller ON messages (caller, id);
        CREATE INDEX messages_conversation ON messages (conversation_id, id);
        CREATE INDEX messages_tsv ON messages USING gin (tsv);
        CREATE TABLE passages (
            id BIGSERIAL PRIMARY KEY, owner TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL,
            embedding vector({dim}) NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED);
        CREATE INDEX passages_owner ON passages (owner, source);
        CREATE INDEX passages_tsv ON passages USING gin (tsv);
        CREATE TABLE staff_messages (
            id BIGSERIAL PRIMARY KEY, caller TEXT NOT NULL, conversation_id BIGINT, for_whom TEXT NOT NULL,
            text TEXT NOT NULL, callback_number TEXT, created_at DOUBLE PRECISION NOT NULL,
            done BOOLEAN NOT NULL DEFAULT FALSE);
        CREATE TABLE callbacks (
            id BIGSERIAL PRIMARY KEY, caller TEXT NOT NULL, conversation_id BIGINT, number TEXT NOT NULL,
            when_text TEXT NOT NULL, reason TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            done BOOLEAN NOT NULL DEFAULT FALSE);
        CREATE TABLE call_turns (
            id BIGSERIAL PRIMARY KEY, conversation_id BIGINT NOT NULL, caller_text TEXT NOT NULL,
            agent_text TEXT NOT NULL, tools JSONB NOT NULL, timings JSONB NOT NULL, interrupted BOOLEAN NOT NULL,
            created_at DOUBLE PRECISION NOT NULL);
        CREATE INDEX call_turns_conversation ON call_turns (conversation_id, id);
        """,
    }


TABLES = ("core_blocks", "conversations", "messages", "passages", "staff_messages", "callbacks", "call_turns")
_WORD = re.compile(r"\w+", re.UNICODE)


def _tsquery(text: str) -> str | None:
    """Caller words -> an OR tsquery of plain lexemes (only word characters: nothing can be injected)."""
    words = [w for w in _WORD.findall(text.lower()) if len(w) > 1]
    return " | ".join(words) if words else None


def _vector(value: npt.NDArray[np.float32] | None) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float32)


class PostgresStore(MemoryStore):
    def __init__(self, url: str, *, dim: int = EMBEDDING_DIM, pool_size: int = 4) -> None:
        self.url = url
        self.dim = dim
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                # Workers starting together: CREATE ... IF NOT EXISTS races in PostgreSQL (a unique
                # violation in the catalog), so the whole set-up runs under one advisory lock.
                conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    self._migrate(conn)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL memory store at {_safe(url)}: {exc}".strip()) from exc
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, configure=register_vector, open=True)

    def _migrate(self, conn: psycopg.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS employai_schema (version INTEGER NOT NULL)")
        with conn.transaction():
            row = conn.execute("SELECT max(version) FROM employai_schema").fetchone()
            version = row[0] or 0
            if version > SCHEMA_VERSION:
                raise StoreError(f"{_safe(self.url)}: schema version {version} is newer than this Employai "
                                 f"({SCHEMA_VERSION})")
            migrations = _migrations(self.dim)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in (s.strip() for s in migrations[target].split(";")):
                    if statement:
                        conn.execute(statement)
                conn.execute("INSERT INTO employai_schema (version) VALUES (%s)", (target,))

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple = ()) -> list[tuple]:
        """One statement in its own transaction, committed before returning."""
        with self._pool.connection() as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else [(cursor.rowcount,)]

    # core memory
    def get_block(self, owner: str, label: str) -> CoreBlock | None:
        rows = self._rows("SELECT value, char_limit FROM core_blocks WHERE owner=%s AND label=%s", (owner, label))
        return CoreBlock(owner, label, rows[0][0], rows[0][1]) if rows else None

    def update_block(self, owner: str, label: str, limit: int, change: Callable[[str], str]) -> str:
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("INSERT INTO core_blocks VALUES (%s,%s,'',%s,%s) ON CONFLICT (owner, label) DO NOTHING",
                         (owner, label, limit, time.time()))
            current = conn.execute("SELECT value FROM core_blocks WHERE owner=%s AND label=%s FOR UPDATE",
                                   (owner, label)).fetchone()[0]
            value = change(current)
            if len(value) > limit:
                raise ValueError(f"core block {owner}/{label}: {len(value)} chars over its limit of {limit}")
            conn.execute("UPDATE core_blocks SET value=%s, char_limit=%s, updated_at=%s WHERE owner=%s AND label=%s",
                         (value, limit, time.time(), owner, label))
        return value

    def delete_owner(self, owner: str) -> int:
        removed = 0
        with self._pool.connection() as conn, conn.transaction():
            for sql in ("DELETE FROM core_blocks WHERE owner=%s",
                        "DELETE FROM call_turns WHERE conversation_id IN (SELECT id FROM conversations WHERE caller=%s)",
                        "DELETE FROM messages WHERE caller=%s", "DELETE FROM conversations WHERE caller=%s",
                        "DELETE FROM passages WHERE owner=%s", "DELETE FROM staff_messages WHERE caller=%s",
                        "DELETE FROM callbacks WHERE caller=%s"):
                removed += conn.execute(sql, (owner,)).rowcount
        return removed

    # conversations and recall memory
    def open_conversation(self, caller: str, channel: str = "phone") -> Conversation:
        now = time.time()
        [(new_id,)] = self._write("INSERT INTO conversations (caller, channel, started_at) VALUES (%s,%s,%s) "
                                  "RETURNING id", (caller, channel, now))
        return Conversation(new_id, caller, now, channel=channel)

    def close_conversation(self, conversation_id: int, summary: str | None = None) -> None:
        self._write("UPDATE conversations SET ended_at=%s, summary=COALESCE(%s, summary) WHERE id=%s",
                    (time.time(), summary, conversation_id))

    _CONVERSATION_COLUMNS = "id, caller, started_at, ended_at, summary, channel"

    def conversations(self, caller: str, limit: int = 20) -> list[Conversation]:
        rows = self._rows(f"SELECT {self._CONVERSATION_COLUMNS} FROM conversations WHERE caller=%s "
                          "ORDER BY started_at DESC, id DESC LIMIT %s", (caller, limit))
        return [Conversation(*row) for row in rows]

    def add_message(self, conversation_id, caller, role, content, *, name=None, embedding=None) -> StoredMessage:
        now = time.time()
        [(new_id,)] = self._write(
            "INSERT INTO messages (conversation_id, caller, role, content, name, created_at, embedding) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s) RETURNING id",
            (conversation_id, caller, role, content, name, now, _vector(embedding)))
        return StoredMessage(new_id, conversation_id, caller, role, content, now, name)

    _MESSAGE_COLUMNS = "id, conversation_id, caller, role, content, created_at, name"

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._rows(f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE conversation_id=%s ORDER BY id",
                          (conversation_id,))
        return [StoredMessage(*row) for row in rows]

    def search_messages_text(self, caller: str, query: str, limit: int = 5) -> list[MessageHit]:
        match = _tsquery(query)
        if match is None:
            return []
        rows = self._rows(
            f"SELECT {self._MESSAGE_COLUMNS}, ts_rank(tsv, q) FROM messages, to_tsquery('simple', %s) q "
            "WHERE caller=%s AND tsv @@ q ORDER BY ts_rank(tsv, q) DESC, id LIMIT %s", (match, caller, limit))
        return [MessageHit(StoredMessage(*row[:7]), float(row[7])) for row in rows]

    def search_messages_vector(self, caller, vector, limit=5) -> list[MessageHit]:
        rows = self._rows(
            f"SELECT {self._MESSAGE_COLUMNS}, -(embedding <#> %s) AS score FROM messages "
            "WHERE caller=%s AND embedding IS NOT NULL ORDER BY embedding <#> %s LIMIT %s",
            (_vector(vector), caller, _vector(vector), limit))
        return [MessageHit(StoredMessage(*row[:7]), float(row[7])) for row in rows]

    # archival memory
    def add_passage(self, owner, text, source, embedding) -> Passage:
        [(new_id,)] = self._write("INSERT INTO passages (owner, source, text, embedding, created_at) "
                                  "VALUES (%s,%s,%s,%s,%s) RETURNING id",
                                  (owner, source, text, _vector(embedding), time.time()))
        return Passage(new_id, owner, text, source)

    def delete_passages(self, owner: str, source: str) -> int:
        return self._write("DELETE FROM passages WHERE owner=%s AND source=%s", (owner, source))[0][0]

    def passages(self, owner: str) -> list[Passage]:
        rows = self._rows("SELECT id, owner, text, source FROM passages WHERE owner=%s ORDER BY source, id", (owner,))
        return [Passage(*row) for row in rows]

    def search_passages(self, owners, vector, limit=5) -> list[Passage]:
        rows = self._rows("SELECT id, owner, text, source, -(embedding <#> %s) FROM passages WHERE owner = ANY(%s) "
                          "ORDER BY embedding <#> %s LIMIT %s",
                          (_vector(vector), list(owners), _vector(vector), limit))
        return [Passage(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    def search_passages_text(self, owners, query, limit=5) -> list[Passage]:
        match = _tsquery(query)
        if match is None:
            return []
        rows = self._rows("SELECT id, owner, text, source, ts_rank(tsv, q) FROM passages, to_tsquery('simple', %s) q "
                          "WHERE owner = ANY(%s) AND tsv @@ q ORDER BY ts_rank(tsv, q) DESC, id LIMIT %s",
                          (match, list(owners), limit))
        return [Passage(r[0], r[1], r[2], r[3], float(r[4])) for r in rows]

    # work for staff
    def add_staff_message(self, message: StaffMessage) -> StaffMessage:
        [(new_id,)] = self._write(
            "INSERT INTO staff_messages (caller, conversation_id, for_whom, text, callback_number, created_at) "
            "VALUES (%s,%s,%s,%s,%s,%s) RETURNING id",
            (message.caller, message.conversation_id, message.for_whom, message.text, message.callback_number,
             message.created_at))
        return replace(message, id=new_id)

    def staff_messages(self, *, open_only: bool = True, caller: str | None = None) -> list[StaffMessage]:
        sql = "SELECT id, caller, conversation_id, for_whom, text, callback_number, created_at, done FROM staff_messages"
        where, params = [], []
        if open_only:
            where.append("NOT done")
        if caller is not None:
            where.append("caller = %s")
            params.append(caller)
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [staff_message_from_row(r) for r in self._rows(sql, tuple(params))]

    def set_staff_message_done(self, message_id: int, done: bool = True) -> bool:
        return self._write("UPDATE staff_messages SET done=%s WHERE id=%s", (done, message_id))[0][0] > 0

    def add_callback(self, callback: Callback) -> Callback:
        [(new_id,)] = self._write(
            "INSERT INTO callbacks (caller, conversation_id, number, when_text, reason, created_at) "
            "VALUES (%s,%s,%s,%s,%s,%s) RETURNING id",
            (callback.caller, callback.conversation_id, callback.number, callback.when, callback.reason,
             callback.created_at))
        return replace(callback, id=new_id)

    def callbacks(self, *, open_only: bool = True) -> list[Callback]:
        sql = "SELECT id, caller, conversation_id, number, when_text, reason, created_at, done FROM callbacks"
        sql += " WHERE NOT done ORDER BY id" if open_only else " ORDER BY id"
        return [callback_from_row(r) for r in self._rows(sql)]

    # calls
    def add_turn(self, turn: TurnRecord) -> TurnRecord:
        [(new_id,)] = self._write(
            "INSERT INTO call_turns (conversation_id, caller_text, agent_text, tools, timings, interrupted, "
            "created_at) VALUES (%s,%s,%s,%s,%s,%s,%s) RETURNING id",
            (turn.conversation_id, turn.caller_text, turn.agent_text, json.dumps(turn.tools),
             json.dumps(turn.timings), turn.interrupted, turn.created_at))
        return replace(turn, id=new_id)

    def turns(self, conversation_id: int) -> list[TurnRecord]:
        rows = self._rows("SELECT id, conversation_id, caller_text, agent_text, tools, timings, interrupted, created_at "
                          "FROM call_turns WHERE conversation_id=%s ORDER BY id", (conversation_id,))
        return [TurnRecord(conversation_id=r[1], caller_text=r[2], agent_text=r[3], tools=r[4], timings=r[5],
                           interrupted=bool(r[6]), created_at=r[7], id=r[0]) for r in rows]

    def set_recording(self, conversation_id: int, path: str) -> None:
        self._write("UPDATE conversations SET recording=%s WHERE id=%s", (path, conversation_id))

    def set_call_info(self, conversation_id: int, info: dict) -> None:
        self._write("UPDATE conversations SET call_info=%s WHERE id=%s", (json.dumps(info), conversation_id))

    def call_info(self, conversation_id: int) -> dict | None:
        rows = self._rows("SELECT call_info FROM conversations WHERE id=%s", (conversation_id,))
        return rows[0][0] if rows and rows[0][0] else None

    def recording(self, conversation_id: int) -> str | None:
        rows = self._rows("SELECT recording FROM conversations WHERE id=%s", (conversation_id,))
        return rows[0][0] if rows else None

    def recent_conversations(self, limit: int = 20) -> list[Conversation]:
        rows = self._rows(f"SELECT {self._CONVERSATION_COLUMNS} FROM conversations "
                          "ORDER BY started_at DESC, id DESC LIMIT %s", (limit,))
        return [Conversation(*row) for row in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._rows(f"SELECT {self._CONVERSATION_COLUMNS} FROM conversations WHERE id=%s", (conversation_id,))
        return Conversation(*rows[0]) if rows else None

    def count(self, table: str) -> int:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return self._rows(f"SELECT count(*) FROM {table}")[0][0]

    def close(self) -> None:
        self._pool.close()


def _safe(url: str) -> str:
    """The URL without its password, for error messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
