#!/usr/bin/env python3
"""Writes the binary document fixtures of tests/data/documents (a PDF handbook and a DOCX directory) for
the reader tests. Run once by hand with reportlab and python-docx installed; the outputs are committed,
so neither is a dependency of the project or its tests.

    pip install reportlab python-docx && python tests/data/make_documents.py
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent / "documents"


def pdf() -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import ListFlowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    story = [
        Paragraph("Quillfeather Bindery Customer Handbook", styles["Title"]),
        Paragraph("Welcome", styles["Heading1"]),
        Paragraph("Quillfeather Bindery repairs and rebinds books, journals and family bibles by hand in a small "
                  "workshop. Every job starts with a free assessment, and we will always tell you the price before "
                  "any work begins, so that there are no surprises when you collect your book.", styles["BodyText"]),
        Paragraph("Prices", styles["Heading1"]),
        Table([["Service", "Price", "Turnaround"],
               ["Spine repair", "$85", "2 weeks"],
               ["Full leather rebinding", "$340", "6 weeks"],
               ["Page cleaning", "$4 per page", ""]],
              style=TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.grey)])),
        Paragraph("Payment", styles["Heading1"]),
        Paragraph("We accept the following payment methods:", styles["BodyText"]),
        ListFlowable([Paragraph("Cash", styles["BodyText"]), Paragraph("Debit card", styles["BodyText"]),
                      Paragraph("Bank transfer", styles["BodyText"])], bulletType="bullet"),
        Paragraph("Before you bring a book", styles["Heading2"]),
        ListFlowable([Paragraph("Wrap fragile bindings in a clean cotton cloth rather than plastic, because plastic "
                                "traps moisture against old leather and paper on the way here.", styles["BodyText"]),
                      Paragraph("Tell us about earlier repairs.", styles["BodyText"])], bulletType="bullet"),
        Spacer(1, 8),
        Paragraph("A deposit of 30 percent is due when you leave a book with us for rebinding; the rest is paid "
                  "on collection.", styles["BodyText"]),
    ]
    SimpleDocTemplate(str(HERE / "handbook.pdf"), pagesize=A4).build(story)


def docx() -> None:
    from docx import Document

    document = Document()
    document.add_heading("Staff directory", level=1)
    table = document.add_table(rows=1, cols=3)
    for cell, text in zip(table.rows[0].cells, ["Name", "Role", "Extension"]):
        cell.text = text
    for row in [("Mira Olsen", "Master binder", "211"), ("Tom Reyes", "Front counter", "212")]:
        for cell, text in zip(table.add_row().cells, row):
            cell.text = text
    document.add_heading("Visiting us", level=1)
    document.add_paragraph("Address: 9 Tannery Row, Millbrook")
    document.add_paragraph("Parking: two spaces in the courtyard")
    document.add_heading("What we do not take", level=2)
    document.add_paragraph("Water-damaged books with mould", style="List Bullet")
    document.add_paragraph("Loose newspaper clippings", style="List Bullet")
    document.save(str(HERE / "directory.docx"))


def scanned_pdf() -> None:
    """A page with a picture and no text layer, as a scanner makes it."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    page = canvas.Canvas(str(HERE / "scanned.pdf"), pagesize=A4)
    page.rect(50, 50, 400, 600, fill=1)
    page.save()


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    pdf()
    docx()
    scanned_pdf()
