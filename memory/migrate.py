"""Copy a memory store from SQLite to PostgreSQL without loss: rows, ids, embeddings; then prove it.

Why SQL and not the store interface: the interface creates new ids and timestamps, while a copy must
keep both (conversations are referred to by id in recordings, campaigns and the call list). The proof
is a row count and a SHA-256 over every row of every table, computed the same way on both sides.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

from memory.postgres_store import PostgresStore
from memory.sqlite_store import SQLiteStore
from memory.store import StoreError

# table -> columns, in the order both sides are read and hashed
COLUMNS: dict[str, list[str]] = {
    "core_blocks": ["owner", "label", "value", "char_limit", "updated_at"],
    "conversations": ["id", "caller", "channel", "started_at", "ended_at", "summary", "recording", "call_info"],
    "messages": ["id", "conversation_id", "caller", "role", "content", "name", "created_at", "embedding"],
    "passages": ["id", "owner", "source", "text", "embedding", "created_at"],
    "staff_messages": ["id", "caller", "conversation_id", "for_whom", "text", "callback_number", "created_at", "done"],
    "callbacks": ["id", "caller", "conversation_id", "number", "when_text", "reason", "created_at", "done"],
    "call_turns": ["id", "conversation_id", "caller_text", "agent_text", "tools", "timings", "interrupted",
                   "created_at"],
}
_ORDER = {"core_blocks": "owner, label"}
_JSON = {("conversations", "call_info"), ("call_turns", "tools"), ("call_turns", "timings")}
_BOOL = {("staff_messages", "done"), ("callbacks", "done"), ("call_turns", "interrupted")}


@dataclass
class TableReport:
    table: str
    rows: int
    checksum: str


def _canonical(table: str, column: str, value):
    """One value as both databases' rows must agree on it."""
    if value is None:
        return None
    if column == "embedding":
        if isinstance(value, bytes):  # SQLite: float32 BLOB
            value = np.frombuffer(value, np.float32)
        elif hasattr(value, "to_numpy"):  # pgvector's Vector
            value = value.to_numpy()
        return np.asarray(value, np.float32).round(6).tolist()
    if (table, column) in _JSON:
        return json.loads(value) if isinstance(value, str) else value
    if (table, column) in _BOOL:
        return bool(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


def _digest(table: str, rows) -> TableReport:
    digest = hashlib.sha256()
    count = 0
    for row in rows:
        values = [_canonical(table, c, v) for c, v in zip(COLUMNS[table], row)]
        digest.update(json.dumps(values, sort_keys=True, default=str).encode())
        count += 1
    return TableReport(table, count, digest.hexdigest())


def _sqlite_rows(db: sqlite3.Connection, table: str):
    order = _ORDER.get(table, "id")
    return db.execute(f"SELECT {', '.join(COLUMNS[table])} FROM {table} ORDER BY {order}")


def _postgres_rows(conn: psycopg.Connection, table: str):
    order = _ORDER.get(table, "id")
    return conn.execute(f"SELECT {', '.join(COLUMNS[table])} FROM {table} ORDER BY {order}")


def migrate_sqlite_to_postgres(sqlite_path: Path, url: str) -> list[TableReport]:
    """Copy every table; raise StoreError when the target is not empty or the copy does not match."""
    sqlite_path = Path(sqlite_path)
    if not sqlite_path.is_file():
        raise StoreError(f"{sqlite_path}: no such memory file")
    SQLiteStore(sqlite_path).close()  # brings an older file to the current schema first
    PostgresStore(url).close()  # creates the schema on the target
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        with psycopg.connect(url) as conn:
            register_vector(conn)
            busy = [t for t in COLUMNS if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {t})").fetchone()[0]]
            if busy:
                raise StoreError(f"the PostgreSQL store is not empty ({', '.join(busy)} hold rows); "
                                 "migrate into a new database")
            with conn.transaction():  # all or nothing
                for table, columns in COLUMNS.items():
                    marks = ", ".join(["%s"] * len(columns))
                    with conn.cursor() as cursor:
                        rows = [_for_postgres(table, columns, row) for row in _sqlite_rows(source, table)]
                        if rows:
                            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
                    if "id" in columns:
                        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
            reports = []
            for table in COLUMNS:
                before = _digest(table, _sqlite_rows(source, table))
                after = _digest(table, _postgres_rows(conn, table))
                if (before.rows, before.checksum) != (after.rows, after.checksum):
                    raise StoreError(f"{table}: the copy differs ({before.rows} rows -> {after.rows}; "
                                     f"checksum {before.checksum[:12]} -> {after.checksum[:12]})")
                reports.append(after)
    finally:
        source.close()
    return reports


def _for_postgres(table: str, columns: list[str], row: tuple) -> tuple:
    out = []
    for column, value in zip(columns, row):
        if value is not None and column == "embedding":
            value = np.frombuffer(value, np.float32)
        elif value is not None and (table, column) in _BOOL:
            value = bool(value)
        out.append(value)
    return tuple(out)
