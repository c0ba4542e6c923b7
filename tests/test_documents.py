"""The document readers, each on a real file of its type (tests/data/documents; the PDF and DOCX were
written by reportlab and python-docx, see tests/data/make_documents.py), and ingestion's report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from memory.documents import Fact, UnreadableDocument, read_document
from memory.embeddings import Embedder
from memory.records import COMPANY_FACTS
from memory.service import MemoryService
from memory.sqlite_store import SQLiteStore

DOCS = Path(__file__).parent / "data" / "documents"


@pytest.fixture(scope="module")
def embedder():
    return Embedder.from_reference()


@pytest.fixture()
def service(tmp_path, embedder):
    store = SQLiteStore(tmp_path / "memory.sqlite3")
    yield MemoryService(store, embedder)
    store.close()


def facts_of(name: str) -> list[Fact]:
    return read_document(DOCS / name).facts


def texts(facts: list[Fact]) -> list[str]:
    return [f.text for f in facts]


def test_markdown_keeps_table_rows_with_headers_fields_lists_and_faq():
    facts = facts_of("guide.md")
    rows = [f for f in facts if f.kind == "row"]
    assert rows[0].cells == (("Service", "Spine repair"), ("Price", "$85"), ("Turnaround", "2 weeks"))
    assert rows[0].path == ("Quillfeather Bindery", "Prices")
    assert rows[1].cells == (("Service", "Box making"), ("Price", "$60"))  # an empty cell is left out
    assert "Address: 9 Tannery Row, Millbrook" in texts(facts)
    assert "Parking: two spaces in the courtyard" in texts(facts)
    assert "We accept: Cash and Debit card." in texts(facts)  # short bullets are one fact under their lead-in
    assert "Mira Olsen — master binder — ext. 211" in texts(facts)  # long bullets stay facts of their own
    qa = next(f for f in facts if f.kind == "qa")
    assert qa.question == "Do you repair paperbacks?" and qa.text.startswith("Yes, but")
    assert not any("|" in t or t.startswith(("-", "#", "*")) for t in texts(facts))


def test_html_reads_the_content_not_the_menus_scripts_or_cookie_notice():
    facts = facts_of("page.html")
    said = " ".join(texts(facts))
    assert "We repair and rebind books by hand. Every job starts with a free assessment." in texts(facts)
    assert "Address: 9 Tannery Row, Millbrook" in texts(facts)  # a <dl>
    assert "E-mail: hello@quillfeather.example" in texts(facts)
    assert "Parking: two spaces in the courtyard" in texts(facts)  # <strong>Label:</strong> value
    assert "Wheelchair access through the side door" in texts(facts)
    row = next(f for f in facts if f.kind == "row")
    assert row.cells == (("Day", "Monday"), ("Hours", "9:00-17:00")) and row.path[-1] == "Opening hours"
    for absent in ("dataLayer", "font:", "cookies", "Home"):
        assert absent not in said


def test_csv_rows_carry_their_column_names_and_quoted_commas():
    rows = facts_of("prices.csv")
    assert rows[0].cells == (("Service", "Spine repair"), ("Price", "85.00"), ("Unit", "per book"))
    assert rows[1].cells[0] == ("Service", "Gold lettering, per line")
    assert rows[1].cells[-1] == ("Notes", "Up to 20 letters")


def test_plain_text_faq_fields_and_wrapped_questions():
    facts = facts_of("notes.txt")
    qa = [f for f in facts if f.kind == "qa"]
    assert [q.question for q in qa] == ["Do you collect books from home?", "Can I watch the repair?"]
    assert qa[0].text == "Only within Millbrook, for a fee of $15."
    assert "Deposit: 30 percent on rebinding jobs" in texts(facts)
    assert all(f.path == ("Frequently asked questions",) for f in facts)


def test_pdf_layout_gives_headings_table_rows_joined_lines_and_bullets():
    facts = facts_of("handbook.pdf")
    welcome = next(f for f in facts if f.path == ("Welcome",))
    # Wrapped lines are joined back into their sentences.
    assert "by hand in a small workshop. Every job starts" in welcome.text
    rows = [f for f in facts if f.kind == "row"]
    assert rows[0].cells == (("Service", "Spine repair"), ("Price", "$85"), ("Turnaround", "2 weeks"))
    assert rows[2].cells == (("Service", "Page cleaning"), ("Price", "$4 per page"))
    assert all(r.path == ("Prices",) for r in rows)
    assert "We accept the following payment methods: Cash, Debit card and Bank transfer." in texts(facts)
    wrapped = next(f for f in facts if f.text.startswith("Wrap fragile"))
    assert wrapped.kind == "item" and wrapped.text.endswith("paper on the way here.")  # a bullet wrapped onto 2 lines
    assert wrapped.path == ("Payment", "Before you bring a book")


def test_docx_headings_tables_and_list_styles():
    facts = facts_of("directory.docx")
    rows = [f for f in facts if f.kind == "row"]
    assert rows[0].cells == (("Name", "Mira Olsen"), ("Role", "Master binder"), ("Extension", "211"))
    assert rows[0].path == ("Staff directory",)
    assert "Address: 9 Tannery Row, Millbrook" in texts(facts)
    listed = next(f for f in facts if f.kind == "list")
    assert listed.path == ("Visiting us", "What we do not take") and "Loose newspaper clippings" in listed.text


@pytest.mark.parametrize("name, reason", [
    ("scanned.pdf", "no text layer"), ("logo.png", "unknown type .png"),
])
def test_unreadable_files_say_why(name, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        read_document(DOCS / name)


def test_a_file_not_in_utf8_is_read_and_said_so():
    document = read_document(DOCS / "windows.txt")
    assert "Café" in document.facts[0].text and "Windows-1252" in document.note


def test_facts_survive_the_store_encoding():
    for fact in facts_of("guide.md") + facts_of("prices.csv") + facts_of("notes.txt"):
        back = Fact.decode(fact.encode())
        assert (back.kind, back.path, back.text, back.question) == (fact.kind, fact.path, fact.text, fact.question)
        assert back.cells == fact.cells or fact.kind not in ("row",)


def test_ingest_reports_each_file_and_replaces_on_reingest(service, tmp_path):
    folder = tmp_path / "docs"
    shutil.copytree(DOCS, folder)
    report = service.ingest(folder)
    read = {f.source: f for f in report.read}
    assert set(read) == {"guide.md", "page.html", "prices.csv", "notes.txt", "handbook.pdf", "directory.docx",
                         "windows.txt"}
    assert read["prices.csv"].facts == 2 and read["guide.md"].facts == 8 and read["guide.md"].chunks >= 1
    assert "Windows-1252" in read["windows.txt"].note
    assert sorted(s.split(":")[0] for s in report.skipped) == ["logo.png", "scanned.pdf"]
    stored = service.store.count("passages")
    (folder / "prices.csv").write_text("Service,Price\nSpine repair,90.00\n")
    again = service.ingest(folder)
    assert service.store.count("passages") == stored - 1  # the CSV's two facts became one
    assert any("90.00" in p.text for p in service.store.passages(COMPANY_FACTS))
    assert not any("85.00" in p.text for p in service.store.passages(COMPANY_FACTS))
    assert again.facts == report.facts - 1


def test_a_pdf_label_column_gives_fields_without_a_doubled_colon():
    """A 'Label:   value' block set as two columns (an eval business's guide is such a PDF)."""
    pdf = next((Path(__file__).parent.parent / "scripts" / "eval_data").glob("*/docs/customer_guide.pdf"))
    fields = {f.cells[0][0]: f.cells[0][1] for f in read_document(pdf).facts if f.kind == "field" and f.cells}
    assert fields["Address"][:1].isdigit() and "E-mail" in fields and "Phone" in fields
    assert not any("::" in f.text for f in read_document(pdf).facts)
