"""The shared memory store for several workers: PostgreSQL + pgvector on a real server, concurrent
writers from separate processes, schema migrations, and the SQLite -> PostgreSQL copy."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import psycopg
import pytest

from memory.migrate import migrate_sqlite_to_postgres
from memory.postgres_store import SCHEMA_VERSION, PostgresStore
from memory.records import COMPANY_OWNER, Callback, StaffMessage, TurnRecord
from memory.service import MemoryService
from memory.sqlite_store import SQLiteStore
from memory.store import StoreError

REPO = Path(__file__).resolve().parent.parent
LINES = 40


def _append_lines(kind: str, where: str, worker: str) -> None:
    """One worker process appending to caller X's memory, each line its own transaction."""
    store = SQLiteStore(where) if kind == "sqlite" else PostgresStore(where)
    for i in range(LINES):
        store.update_block("+15550100142", "human", 100_000, lambda v, i=i: f"{v}\n{worker} line {i}".strip())
    store.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_workers_writing_one_callers_memory_lose_no_update(kind, tmp_path, request):
    where = str(tmp_path / "memory.sqlite3") if kind == "sqlite" else request.getfixturevalue("postgres_url")
    (SQLiteStore(where) if kind == "sqlite" else PostgresStore(where)).close()  # schema in place first
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_lines, args=(kind, where, f"w{n}")) for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    store = SQLiteStore(where) if kind == "sqlite" else PostgresStore(where)
    lines = store.get_block("+15550100142", "human").value.splitlines()
    store.close()
    assert sorted(lines) == sorted(f"w{n} line {i}" for n in (1, 2) for i in range(LINES))


def test_a_recorded_message_is_on_the_server_at_once(postgres_url):
    store = PostgresStore(postgres_url)
    conversation = store.open_conversation("+15550100142")
    store.add_message(conversation.id, "+15550100142", "user", "I need to cancel my appointment")
    with psycopg.connect(postgres_url) as other:  # as a second worker, or after a crash
        assert other.execute("SELECT role, content FROM messages").fetchall() == [
            ("user", "I need to cancel my appointment")]
    store.close()


def test_schema_version_newer_schema_and_an_unreachable_server(postgres_url, tmp_path):
    PostgresStore(postgres_url).close()
    PostgresStore(postgres_url).close()  # a second start migrates nothing
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT max(version) FROM employai_schema").fetchone()[0] == SCHEMA_VERSION
        conn.execute("INSERT INTO employai_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(postgres_url)
    with pytest.raises(StoreError, match=r"postgresql://employai:\*\*\*@127\.0\.0\.1:1/none"):
        PostgresStore("postgresql://employai:secret@127.0.0.1:1/none?connect_timeout=2")


def _fill(store, embedder) -> MemoryService:
    service = MemoryService(store, embedder)
    maria = service.for_caller("+15550100142")
    conversation = maria.start_conversation()
    maria.core_memory_append("Name: Maria Gomez.")
    maria.record("user", "My crown came loose while eating toffee.")
    maria.record("assistant", "I'm sorry to hear that, I'll tell Dr. Patel.")
    maria.archival_memory_insert("Maria is allergic to latex.")
    store.set_call_info(conversation, {"direction": "inbound", "status": "completed", "sip_code": 200})
    store.set_recording(conversation, "/var/lib/employai/recordings/call-1.wav")
    store.add_turn(TurnRecord(conversation_id=conversation, caller_text="hello", agent_text="Hi!",
                              tools=["search_knowledge"], timings={"stt_wait_s": 0.1}, interrupted=True))
    store.add_staff_message(StaffMessage(caller=maria.key, for_whom="Dr. Patel", text="crown loose",
                                         callback_number="+15550100142", conversation_id=conversation))
    store.add_callback(Callback(caller=maria.key, number="+15550100142", when="tomorrow", reason="crown"))
    maria.end_conversation("Crown came loose.")
    store.add_passage(COMPANY_OWNER, "A cleaning costs 95 dollars.", "prices.txt",
                      service.embedder.embed_one("A cleaning costs 95 dollars."))
    return service


def test_a_sqlite_memory_is_copied_to_postgresql_without_loss(tmp_path, postgres_url):
    from memory.embeddings import Embedder

    embedder = Embedder.from_reference("minilm-l6-v2")
    path = tmp_path / "memory.sqlite3"
    _fill(SQLiteStore(path), embedder).store.close()
    reports = migrate_sqlite_to_postgres(path, postgres_url)
    assert {r.table: r.rows for r in reports} == {
        "core_blocks": 1, "conversations": 1, "messages": 2, "passages": 2, "staff_messages": 1, "callbacks": 1,
        "call_turns": 1}
    copied = MemoryService(PostgresStore(postgres_url), embedder)
    maria = copied.for_caller("+15550100142")
    assert maria.human() == "Name: Maria Gomez."
    assert any("crown" in h.message.content for h in maria.conversation_search("a dental cap fell off"))
    assert "95 dollars" in copied.search_knowledge("how much is a cleaning", 1)[0].text
    [conversation] = maria.past_conversations()
    assert copied.store.call_info(conversation.id)["sip_code"] == 200
    assert copied.store.turns(conversation.id)[0].tools == ["search_knowledge"]
    new = copied.for_caller("+15550100999").start_conversation()  # ids continue after the copied ones
    assert new > conversation.id
    copied.store.close()
    with pytest.raises(StoreError, match="not empty"):
        migrate_sqlite_to_postgres(path, postgres_url)


def test_employai_memory_migrate_from_the_command_line(tmp_path, postgres_url):
    path = tmp_path / "memory.sqlite3"
    store = SQLiteStore(path)
    conversation = store.open_conversation("+15550100142")
    store.add_message(conversation.id, "+15550100142", "user", "hello", embedding=np.ones(384, np.float32) / 384**0.5)
    store.close()
    run = subprocess.run([sys.executable, "-m", "telephony.cli", "memory", "migrate", "--from", f"sqlite:{path}",
                          "--to", postgres_url], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "messages               1 rows" in run.stdout and "identical" in run.stdout
    again = subprocess.run([sys.executable, "-m", "telephony.cli", "memory", "migrate", "--from", f"sqlite:{path}",
                            "--to", postgres_url], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "not empty" in again.stderr


def test_the_store_is_chosen_in_config_and_postgresql_needs_its_url(postgres_url, tmp_path):
    from pydantic import ValidationError

    from config.settings import MemorySettings
    from memory.service import open_store

    with pytest.raises(ValidationError, match="needs url"):
        MemorySettings(store="postgresql")
    store = open_store(tmp_path / "unused.sqlite3", MemorySettings(store="postgresql", url=postgres_url))
    assert isinstance(store, PostgresStore) and not (tmp_path / "unused.sqlite3").exists()
    store.close()
    assert isinstance(open_store(tmp_path / "memory.sqlite3", MemorySettings()), SQLiteStore)


def test_workers_starting_together_set_the_schema_up_once(postgres_url):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url), range(4)))
    for store in stores:
        store.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM employai_schema").fetchone()[0] == SCHEMA_VERSION
