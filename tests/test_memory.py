"""MemGPT-style memory with the real packaged embedding model, on a real SQLite file and on a real
PostgreSQL + pgvector server: every test that takes ``service`` or ``make_store`` runs on both."""

import sqlite3

import numpy as np
import pytest

from config.settings import MemorySettings
from memory.callers import caller_key
from memory.embeddings import Embedder
from memory.records import COMPANY_OWNER
from memory.service import MemoryLimitError, MemoryService, chunk_text
from memory.sqlite_store import SCHEMA_VERSION, SQLiteStore, StoreError

DOCS = {
    "hours.md": "# Opening hours\n\nWe are open Monday to Friday from 8 to 5, and Saturday from 9 to 12.\n\n"
    "We are closed on public holidays.",
    "prices.txt": "A check-up costs 60 dollars. A cleaning costs 95 dollars. Whitening costs 250 dollars.",
    "staff.md": "Dr. Priya Patel is our dentist. Dr. Tom Lee is the orthodontist. Sam Reyes runs the front desk.",
    "parking.txt": "Free parking is available behind the building on Harbour Street.",
}


@pytest.fixture(scope="session")
def embedder():
    return Embedder.from_reference("minilm-l6-v2")


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request, tmp_path):
    """Opens the store under test (again: as a new process would); all are closed afterwards."""
    if request.param == "sqlite":
        def factory():
            return SQLiteStore(tmp_path / "memory.sqlite3")
    else:
        from memory.postgres_store import PostgresStore

        url = request.getfixturevalue("postgres_url")

        def factory():
            return PostgresStore(url)
    opened = []

    def make():
        opened.append(factory())
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture()
def service(make_store, embedder):
    return MemoryService(make_store(), embedder, MemorySettings(human_limit=200))


@pytest.fixture()
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    (folder / "logo.png").write_bytes(b"\x89PNG")
    return folder


@pytest.mark.parametrize(
    "raw, key",
    [
        ("sip:+1 (555) 010-0142@pbx.example;user=phone", "+15550100142"),
        ("<tel:+1-555-010-0142>", "+15550100142"),
        ("+1 555 010 0142", "+15550100142"),
        ("sip:2000@192.168.1.10", "2000"),
        ("sip:Alice@Example.COM", "sip:alice@example.com"),
    ],
)
def test_caller_keys(raw, key):
    assert caller_key(raw) == key


def test_embeddings_are_unit_vectors_and_meaningful(embedder):
    vectors = embedder.embed(["When are you open?", "Our opening hours are 8 to 5.", "Whitening costs 250 dollars."])
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_core_memory_persists_across_conversations_and_processes(make_store, embedder):
    first = MemoryService(make_store(), embedder)
    maria = first.for_caller("+1 555 010 0142")
    maria.start_conversation()
    maria.core_memory_append("Name: Maria Gomez. Prefers mornings.")
    maria.record("user", "Hi, this is Maria, I'd like a cleaning.")
    first.store.close()  # as if the process ended

    second = MemoryService(make_store(), embedder)
    again = second.for_caller("sip:+15550100142@pbx")
    assert "Maria Gomez" in again.human()
    assert second.for_caller("+15559999999").human() == ""  # another caller sees nothing


def test_core_memory_replace_and_limits(service):
    memory = service.for_caller("+15550100142")
    memory.core_memory_append("Name: Maria.")
    memory.core_memory_replace("Maria", "Maria Gomez")
    assert memory.human() == "Name: Maria Gomez."
    with pytest.raises(MemoryLimitError, match="over its limit"):
        memory.core_memory_append("x" * 300)
    assert memory.human() == "Name: Maria Gomez."  # nothing truncated or lost
    with pytest.raises(MemoryLimitError, match="not in"):
        memory.core_memory_replace("Bob", "Robert")


def test_recall_memory_is_searchable_by_words_and_meaning_and_isolated(service):
    maria = service.for_caller("+15550100142")
    maria.start_conversation()
    maria.record("user", "My crown came loose while eating toffee.")
    maria.record("assistant", "I'm sorry to hear that, I'll tell Dr. Patel.")
    maria.end_conversation("Crown came loose; message for Dr. Patel.")
    bob = service.for_caller("+15550100999")
    bob.start_conversation()
    bob.record("user", "My crown is fine, I need parking information.")

    assert "toffee" in maria.conversation_search("toffee")[0].message.content
    assert any("crown" in h.message.content for h in maria.conversation_search("a dental cap fell off"))
    for hit in bob.conversation_search("toffee crown loose"):
        assert hit.message.caller == bob.key  # never Maria's messages
    assert [c.summary for c in maria.past_conversations()] == ["Crown came loose; message for Dr. Patel."]


def test_ingest_and_knowledge_search(service, docs):
    report = service.ingest(docs)
    assert report.files == 4 and report.passages >= 4 and any("logo.png" in s for s in report.skipped)
    assert "Saturday" in service.search_knowledge("when are you open on the weekend", 1)[0].text
    assert "95 dollars" in service.search_knowledge("how much is a cleaning?", 1)[0].text
    assert "Harbour" in service.search_knowledge("where can I leave my car", 1)[0].text
    assert service.ingest(docs).passages == report.passages  # re-ingest replaces, never duplicates
    assert service.store.count("passages") == report.passages + report.facts


def test_archival_memory_is_per_caller_plus_company(service, docs):
    service.ingest(docs)
    maria = service.for_caller("+15550100142")
    maria.archival_memory_insert("Maria is allergic to latex.")
    assert any("latex" in p.text for p in maria.archival_memory_search("allergies", 3))
    bob = service.for_caller("+15550100999")
    assert all("latex" not in p.text for p in bob.archival_memory_search("latex allergy", 5))
    assert all(p.owner in (bob.key, COMPANY_OWNER) for p in bob.archival_memory_search("latex allergy", 5))


def test_erasure_removes_everything_about_one_caller(service):
    maria = service.for_caller("+15550100142")
    maria.core_memory_append("Name: Maria.")
    maria.record("user", "hello")
    maria.archival_memory_insert("note")
    other = service.for_caller("+15550100999")
    other.record("user", "hi")
    assert maria.erase() >= 4
    assert maria.human() == "" and maria.conversation_search("hello") == []
    assert other.conversation_search("hi")


def test_messages_are_on_disk_as_soon_as_recorded(tmp_path, embedder):
    path = tmp_path / "memory.sqlite3"
    service = MemoryService(SQLiteStore(path), embedder)
    memory = service.for_caller("+15550100142")
    memory.record("user", "I need to cancel my appointment")
    # A second, independent connection (as after a crash) sees it without any close/flush.
    rows = sqlite3.connect(path).execute("SELECT role, content FROM messages").fetchall()
    assert rows == [("user", "I need to cancel my appointment")]


def test_schema_version_and_bad_files(tmp_path):
    path = tmp_path / "memory.sqlite3"
    SQLiteStore(path).close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable memory database"):
        SQLiteStore(junk)


def test_chunking_keeps_paragraphs_and_headings():
    text = "# Title\n\n" + "\n\n".join(f"Paragraph {i} " + "word " * 50 for i in range(5))
    chunks = chunk_text(text, max_words=120)
    assert chunks[0].startswith("# Title") and len(chunks) >= 3
    assert all(len(c.split()) <= 130 for c in chunks)
    assert chunk_text("one " * 300, max_words=100) == [" ".join(["one"] * 100)] * 3


def test_fts_query_syntax_cannot_be_injected(service):
    memory = service.for_caller("+15550100142")
    memory.record("user", "hello there")
    # FTS5 operators in caller text are quoted as plain words: no syntax error, no widened match.
    assert isinstance(memory.conversation_search('") OR 1=1 --'), list)
    assert service.search_knowledge('NEAR(" AND *') == []  # nothing ingested, nothing found
    assert [h.message.content for h in memory.conversation_search('hello" OR "x')] == ["hello there"]
