"""The default memory store: one SQLite file in WAL mode, FTS5 for keywords, NumPy for vectors.

Why vectors in BLOBs and a NumPy scan rather than sqlite-vec: this Python's sqlite3 may be built
without loadable extensions (pyenv's is), and a dot product over one caller's few thousand 384-float
vectors takes milliseconds. The scale-out issue measures 10k/100k rows and adds pgvector.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
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
    callback_from_row,
    staff_message_from_row,
)
from memory.store import MemoryStore, StoreError

SCHEMA_VERSION = 4
_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE core_blocks (
        owner TEXT NOT NULL, label TEXT NOT NULL, value TEXT NOT NULL, char_limit INTEGER NOT NULL,
        updated_at REAL NOT NULL, PRIMARY KEY (owner, label));
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY, caller TEXT NOT NULL, channel TEXT NOT NULL, started_at REAL NOT NULL,
        ended_at REAL, summary TEXT);
    CREATE INDEX conversations_caller ON conversations (caller, started_at);
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL REFERENCES conversations(id),
        caller TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, name TEXT,
        created_at REAL NOT NULL, embedding BLOB);
    CREATE INDEX messages_caller ON messages (caller, id);
    CREATE INDEX messages_conversation ON messages (conversation_id, id);
    CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id');
    CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END;
    CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END;
    CREATE TABLE passages (
        id INTEGER PRIMARY KEY, owner TEXT NOT NULL, source TEXT NOT NULL, text TEXT NOT NULL,
        embedding BLOB NOT NULL, created_at REAL NOT NULL);
    CREATE INDEX passages_owner ON passages (owner, source);
    CREATE VIRTUAL TABLE passages_fts USING fts5(text, content='passages', content_rowid='id');
    CREATE TRIGGER passages_ai AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text); END;
    CREATE TRIGGER passages_ad AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text); END;
    """,
    2: """
    CREATE TABLE staff_messages (
        id INTEGER PRIMARY KEY, caller TEXT NOT NULL, conversation_id INTEGER, for_whom TEXT NOT NULL,
        text TEXT NOT NULL, callback_number TEXT, created_at REAL NOT NULL, done INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE callbacks (
        id INTEGER PRIMARY KEY, caller TEXT NOT NULL, conversation_id INTEGER, number TEXT NOT NULL,
        when_text TEXT NOT NULL, reason TEXT NOT NULL, created_at REAL NOT NULL, done INTEGER NOT NULL DEFAULT 0);
    """,
    3: """
    CREATE TABLE call_turns (
        id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL, caller_text TEXT NOT NULL,
        agent_text TEXT NOT NULL, tools TEXT NOT NULL, timings TEXT NOT NULL, interrupted INTEGER NOT NULL,
        created_at REAL NOT NULL);
    CREATE INDEX call_turns_conversation ON call_turns (conversation_id, id);
    ALTER TABLE conversations ADD COLUMN recording TEXT;
    """,
    4: """
    ALTER TABLE conversations ADD COLUMN call_info TEXT;
    """,
}
_TABLES = {"core_blocks", "conversations", "messages", "passages", "staff_messages", "callbacks", "call_turns"}
_WORD = re.compile(r"\w+", re.UNICODE)


def _fts_query(text: str) -> str | None:
    """Caller words -> an FTS5 OR-query of quoted terms (no FTS syntax can be injected)."""
    words = [w for w in _WORD.findall(text.lower()) if len(w) > 1]
    return " OR ".join(f'"{w}"' for w in words) if words else None


def _blob(vector: npt.NDArray[np.float32] | None) -> bytes | None:
    return None if vector is None else np.asarray(vector, dtype=np.float32).tobytes()


class SQLiteStore(MemoryStore):
    """Thread-safe: one connection, serialised by a lock (SQLite writes are serialised anyway)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: not a usable memory database ({exc})") from exc

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version} is newer than this Employai ({SCHEMA_VERSION})")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx():
                for statement in _split_sql(_MIGRATIONS[target]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {target}")

    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self):
                store._lock.acquire()
                store._db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind, value, tb):
                try:
                    store._db.execute("ROLLBACK" if kind else "COMMIT")
                finally:
                    store._lock.release()

        return _Tx()

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # core memory
    def get_block(self, owner: str, label: str) -> CoreBlock | None:
        rows = self._query("SELECT value, char_limit FROM core_blocks WHERE owner=? AND label=?", (owner, label))
        return CoreBlock(owner, label, rows[0][0], rows[0][1]) if rows else None

    def update_block(self, owner: str, label: str, limit: int, change: Callable[[str], str]) -> str:
        with self._tx():  # BEGIN IMMEDIATE: other processes' writers wait until this commits
            rows = self._db.execute("SELECT value FROM core_blocks WHERE owner=? AND label=?", (owner, label)).fetchall()
            value = change(rows[0][0] if rows else "")
            if len(value) > limit:
                raise ValueError(f"core block {owner}/{label}: {len(value)} chars over its limit of {limit}")
            self._db.execute(
                "INSERT INTO core_blocks VALUES (?,?,?,?,?) ON CONFLICT(owner, label) DO UPDATE SET "
                "value=excluded.value, char_limit=excluded.char_limit, updated_at=excluded.updated_at",
                (owner, label, value, limit, time.time()))
        return value

    def delete_owner(self, owner: str) -> int:
        with self._tx():
            removed = self._db.execute("DELETE FROM core_blocks WHERE owner=?", (owner,)).rowcount
            removed += self._db.execute(
                "DELETE FROM call_turns WHERE conversation_id IN (SELECT id FROM conversations WHERE caller=?)",
                (owner,)).rowcount
            removed += self._db.execute("DELETE FROM messages WHERE caller=?", (owner,)).rowcount
            removed += self._db.execute("DELETE FROM conversations WHERE caller=?", (owner,)).rowcount
            removed += self._db.execute("DELETE FROM passages WHERE owner=?", (owner,)).rowcount
            removed += self._db.execute("DELETE FROM staff_messages WHERE caller=?", (owner,)).rowcount
            removed += self._db.execute("DELETE FROM callbacks WHERE caller=?", (owner,)).rowcount
        return removed

    # conversations and recall memory
    def open_conversation(self, caller: str, channel: str = "phone") -> Conversation:
        now = time.time()
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO conversations (caller, channel, started_at) VALUES (?,?,?)", (caller, channel, now)
            )
        return Conversation(cursor.lastrowid, caller, now, channel=channel)

    def close_conversation(self, conversation_id: int, summary: str | None = None) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE conversations SET ended_at=?, summary=COALESCE(?, summary) WHERE id=?",
                (time.time(), summary, conversation_id),
            )

    def conversations(self, caller: str, limit: int = 20) -> list[Conversation]:
        rows = self._query(
            "SELECT id, caller, started_at, ended_at, summary, channel FROM conversations WHERE caller=? "
            "ORDER BY started_at DESC, id DESC LIMIT ?", (caller, limit))
        return [Conversation(*row) for row in rows]

    def add_message(self, conversation_id, caller, role, content, *, name=None, embedding=None) -> StoredMessage:
        now = time.time()
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO messages (conversation_id, caller, role, content, name, created_at, embedding) "
                "VALUES (?,?,?,?,?,?,?)", (conversation_id, caller, role, content, name, now, _blob(embedding)))
        return StoredMessage(cursor.lastrowid, conversation_id, caller, role, content, now, name)

    _MESSAGE_COLUMNS = "id, conversation_id, caller, role, content, created_at, name"

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._query(f"SELECT {self._MESSAGE_COLUMNS} FROM messages WHERE conversation_id=? ORDER BY id",
                           (conversation_id,))
        return [StoredMessage(*row) for row in rows]

    def search_messages_text(self, caller: str, query: str, limit: int = 5) -> list[MessageHit]:
        match = _fts_query(query)
        if match is None:
            return []
        rows = self._query(
            f"SELECT {', '.join('m.' + c for c in self._MESSAGE_COLUMNS.split(', '))}, bm25(messages_fts) "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "WHERE messages_fts MATCH ? AND m.caller = ? ORDER BY bm25(messages_fts) LIMIT ?",
            (match, caller, limit))
        return [MessageHit(StoredMessage(*row[:7]), -float(row[7])) for row in rows]

    def search_messages_vector(self, caller, vector, limit=5) -> list[MessageHit]:
        rows = self._query(
            f"SELECT {self._MESSAGE_COLUMNS}, embedding FROM messages WHERE caller=? AND embedding IS NOT NULL",
            (caller,))
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[7] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-scores)[:limit]
        return [MessageHit(StoredMessage(*rows[i][:7]), float(scores[i])) for i in best]

    # archival memory
    def add_passage(self, owner, text, source, embedding) -> Passage:
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO passages (owner, source, text, embedding, created_at) VALUES (?,?,?,?,?)",
                (owner, source, text, _blob(embedding), time.time()))
        return Passage(cursor.lastrowid, owner, text, source)

    def delete_passages(self, owner: str, source: str) -> int:
        with self._tx():
            return self._db.execute("DELETE FROM passages WHERE owner=? AND source=?", (owner, source)).rowcount

    def passages(self, owner: str) -> list[Passage]:
        rows = self._query("SELECT id, owner, text, source FROM passages WHERE owner=? ORDER BY source, id", (owner,))
        return [Passage(*row) for row in rows]

    def search_passages(self, owners, vector, limit=5) -> list[Passage]:
        marks = ",".join("?" * len(owners))
        rows = self._query(f"SELECT id, owner, text, source, embedding FROM passages WHERE owner IN ({marks})",
                           tuple(owners))
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-scores)[:limit]
        return [Passage(rows[i][0], rows[i][1], rows[i][2], rows[i][3], float(scores[i])) for i in best]

    def search_passages_text(self, owners, query, limit=5) -> list[Passage]:
        match = _fts_query(query)
        if match is None:
            return []
        marks = ",".join("?" * len(owners))
        rows = self._query(
            "SELECT p.id, p.owner, p.text, p.source, bm25(passages_fts) FROM passages_fts "
            f"JOIN passages p ON p.id = passages_fts.rowid WHERE passages_fts MATCH ? AND p.owner IN ({marks}) "
            "ORDER BY bm25(passages_fts) LIMIT ?", (match, *owners, limit))
        return [Passage(r[0], r[1], r[2], r[3], -float(r[4])) for r in rows]

    # work for staff
    def add_staff_message(self, message: StaffMessage) -> StaffMessage:
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO staff_messages (caller, conversation_id, for_whom, text, callback_number, created_at) "
                "VALUES (?,?,?,?,?,?)",
                (message.caller, message.conversation_id, message.for_whom, message.text, message.callback_number,
                 message.created_at))
        return replace(message, id=cursor.lastrowid)

    def staff_messages(self, *, open_only: bool = True, caller: str | None = None) -> list[StaffMessage]:
        sql = "SELECT id, caller, conversation_id, for_whom, text, callback_number, created_at, done FROM staff_messages"
        where, params = [], []
        if open_only:
            where.append("done = 0")
        if caller is not None:
            where.append("caller = ?")
            params.append(caller)
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [staff_message_from_row(r) for r in self._query(sql, tuple(params))]

    def set_staff_message_done(self, message_id: int, done: bool = True) -> bool:
        with self._tx():
            return self._db.execute("UPDATE staff_messages SET done=? WHERE id=?", (int(done), message_id)).rowcount > 0

    def add_callback(self, callback: Callback) -> Callback:
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO callbacks (caller, conversation_id, number, when_text, reason, created_at) VALUES (?,?,?,?,?,?)",
                (callback.caller, callback.conversation_id, callback.number, callback.when, callback.reason,
                 callback.created_at))
        return replace(callback, id=cursor.lastrowid)

    def callbacks(self, *, open_only: bool = True) -> list[Callback]:
        sql = "SELECT id, caller, conversation_id, number, when_text, reason, created_at, done FROM callbacks"
        sql += " WHERE done = 0 ORDER BY id" if open_only else " ORDER BY id"
        return [callback_from_row(r) for r in self._query(sql)]

    # calls: per-turn records and recordings
    def add_turn(self, turn: TurnRecord) -> TurnRecord:
        with self._tx():
            cursor = self._db.execute(
                "INSERT INTO call_turns (conversation_id, caller_text, agent_text, tools, timings, interrupted, "
                "created_at) VALUES (?,?,?,?,?,?,?)",
                (turn.conversation_id, turn.caller_text, turn.agent_text, json.dumps(turn.tools),
                 json.dumps(turn.timings), int(turn.interrupted), turn.created_at))
        return replace(turn, id=cursor.lastrowid)

    def turns(self, conversation_id: int) -> list[TurnRecord]:
        rows = self._query(
            "SELECT id, conversation_id, caller_text, agent_text, tools, timings, interrupted, created_at "
            "FROM call_turns WHERE conversation_id=? ORDER BY id", (conversation_id,))
        return [TurnRecord(conversation_id=r[1], caller_text=r[2], agent_text=r[3], tools=json.loads(r[4]),
                           timings=json.loads(r[5]), interrupted=bool(r[6]), created_at=r[7], id=r[0]) for r in rows]

    def set_recording(self, conversation_id: int, path: str) -> None:
        with self._tx():
            self._db.execute("UPDATE conversations SET recording=? WHERE id=?", (path, conversation_id))

    def set_call_info(self, conversation_id: int, info: dict) -> None:
        with self._tx():
            self._db.execute("UPDATE conversations SET call_info=? WHERE id=?", (json.dumps(info), conversation_id))

    def call_info(self, conversation_id: int) -> dict | None:
        rows = self._query("SELECT call_info FROM conversations WHERE id=?", (conversation_id,))
        return json.loads(rows[0][0]) if rows and rows[0][0] else None

    def recording(self, conversation_id: int) -> str | None:
        rows = self._query("SELECT recording FROM conversations WHERE id=?", (conversation_id,))
        return rows[0][0] if rows else None

    def recent_conversations(self, limit: int = 20) -> list[Conversation]:
        rows = self._query(
            "SELECT id, caller, started_at, ended_at, summary, channel FROM conversations "
            "ORDER BY started_at DESC, id DESC LIMIT ?", (limit,))
        return [Conversation(*row) for row in rows]

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._query("SELECT id, caller, started_at, ended_at, summary, channel FROM conversations WHERE id=?",
                           (conversation_id,))
        return Conversation(*rows[0]) if rows else None

    def count(self, table: str) -> int:
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}")
        return self._query(f"SELECT count(*) FROM {table}")[0][0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script; trigger bodies (BEGIN ... END;) stay whole."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        joined = "\n".join(current).strip()
        in_trigger = joined.upper().startswith("CREATE TRIGGER")
        if joined.endswith(";") and (not in_trigger or joined.upper().endswith("END;")):
            statements.append(joined)
            current = []
    return statements
