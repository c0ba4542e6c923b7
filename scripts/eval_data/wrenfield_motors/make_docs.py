#!/usr/bin/env python3
"""Build the PDF customer guide and the DOCX team list of the fictional garage Wrenfield Motor Works.

    /tmp/pv/bin/python scripts/eval_data/wrenfield_motors/make_docs.py   # needs reportlab and python-docx

Writes docs/customer_guide.pdf (2 pages) and docs/team_and_contacts.docx next to this script.
The plain-text documents (faq.md, policies.txt) are kept by hand.
"""

from __future__ import annotations

from pathlib import Path

from docx import Document
from docx.shared import Pt
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import ListFlowable, ListItem, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

DOCS = Path(__file__).resolve().parent / "docs"

PRICES = [
    ("Service", "Price", "Time taken"),
    ("Interim service (oil, filter and 40-point check)", "£129", "1.5 hours"),
    ("Full service, small and medium cars", "£219", "3 hours"),
    ("Full service, large cars, 4x4s and vans", "£259", "3.5 hours"),
    ("MOT test", "£49", "1 hour"),
    ("Cambelt (timing belt) replacement", "from £395", "a full day"),
    ("Front brake pads", "£145", "1.5 hours"),
    ("Front brake discs and pads", "£265", "2.5 hours"),
    ("Diagnostic check (warning lights and faults)", "£65", "1 hour"),
    ("Air conditioning re-gas", "£79", "45 minutes"),
    ("Tyre fitting and balancing, per tyre (tyre extra)", "£18", "20 minutes"),
    ("Four-wheel alignment", "£75", "1 hour"),
    ("Puncture repair", "£25", "30 minutes"),
]

HOURS = [
    ("Monday to Wednesday:", "8:00am to 5:30pm"),
    ("Thursday:", "8:00am to 7:00pm"),
    ("Friday:", "8:00am to 5:00pm"),
    ("Saturday:", "8:30am to 12:30pm"),
    ("Sunday:", "closed"),
]

CONTACT = [
    ("Address:", "27 Ferris Road, Holbeck Cross, HC4 9RT"),
    ("Landmark:", "opposite the Holbeck Cross fire station"),
    ("Phone:", "555-0147"),
    ("E-mail:", "bookings@wrenfieldmotors.example"),
    ("Parking:", "six customer spaces in our yard; please keep the workshop doors clear"),
    ("Bus:", "route 14, stop Ferris Road (Fire Station)"),
]

STAFF = [
    ("Name", "Role", "Department", "Extension", "Calls put through"),
    ("Gordon Pryce", "Owner and master technician", "Management", "none", "No, messages only"),
    ("Dana Whitlock", "Service advisor", "Service desk", "201", "Yes"),
    ("Tomasz Bielecki", "Service advisor (Saturdays)", "Service desk", "201", "Yes"),
    ("Rhys Okonjo", "Workshop foreman", "Workshop", "202", "Yes"),
    ("Aisha Marchetti", "MOT tester and diagnostics technician", "Workshop", "202", "Yes"),
    ("Sam Kilbride", "Tyre and brake technician", "Workshop", "202", "Yes"),
    ("Sam Teversham", "Accounts and fleet accounts", "Accounts", "203", "Yes"),
]


def build_pdf(path: Path) -> None:
    styles = getSampleStyleSheet()
    title = ParagraphStyle("title", parent=styles["Title"], fontSize=20, leading=24, spaceAfter=10)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=14, leading=18, spaceBefore=10, spaceAfter=4)
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=10, leading=13.5)
    cell = ParagraphStyle("cell", parent=body, fontSize=9.5, leading=12)
    width = A4[0] - 40 * mm

    def label_block(rows):
        t = Table([[Paragraph(f"<b>{k}</b>", cell), Paragraph(v, cell)] for k, v in rows],
                  colWidths=[48 * mm, width - 48 * mm])
        t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                               ("TOPPADDING", (0, 0), (-1, -1), 2)]))
        return t

    story = [
        Paragraph("Wrenfield Motor Works: Customer Guide", title),
        Paragraph("About the garage", h2),
        Paragraph("Wrenfield Motor Works is an independent, family-run garage that has looked after the cars of "
                  "Holbeck Cross since 1994. We service and repair all makes of car and light van, and every job "
                  "is checked by a senior technician before the car goes back to its owner. Every service "
                  "includes a video health check, sent to your phone, so you can see for yourself what we found.",
                  body),
        Paragraph("Prices and how long each job takes", h2),
        Paragraph("Prices include VAT, parts and labour unless stated. The time is how long your car spends in "
                  "the workshop; on busy days please allow a little longer.", body),
        Spacer(1, 4),
    ]
    table = Table([[Paragraph(c if r else f"<b>{c}</b>", cell) for c in row] for r, row in enumerate(PRICES)],
                  colWidths=[width * 0.58, width * 0.18, width * 0.24], repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe7ef")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#8a99a8")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    story += [
        table,
        Paragraph("Courtesy cars", h2),
        Paragraph("We keep three courtesy cars for customers whose car is with us for the day. They are free of "
                  "charge, and you only pay for the fuel you use. Drivers must be 25 or over and must have held a "
                  "full driving licence for at least two years. Please ask for a courtesy car when you book your "
                  "job, at least two working days ahead, because they go quickly.", body),
        PageBreak(),
        Paragraph("Dropping off and collecting", h2),
        ListFlowable([ListItem(Paragraph(t, body), leftIndent=12) for t in (
            "Early drop-off: leave your car in the yard the evening before and post the keys through the "
            "letterbox in the blue office door. Cars can stay overnight in our locked yard at no charge.",
            "Waiting: for jobs under 90 minutes you are welcome to wait in the customer lounge, which has a "
            "coffee machine, a TV and phone chargers.",
            "Locking wheel nuts: please leave the key in the glovebox.",
            "Collection: we ring you as soon as your car is ready. Thursday is our late evening, for "
            "collections up to 7pm.",
            "Collection and delivery service: free within 5 miles of the garage, £10 for 5 to 10 miles.",
        )], bulletType="bullet", start="\u2022", leftIndent=12),
        Paragraph("Opening hours", h2),
        label_block(HOURS),
        Spacer(1, 4),
        Paragraph("We are closed on the last Saturday of every month for staff training. All times are UK time.",
                  body),
        Paragraph("Finding us", h2),
        label_block(CONTACT),
    ]
    SimpleDocTemplate(str(path), pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                      bottomMargin=18 * mm, title="Wrenfield Motor Works - Customer Guide",
                      author="Wrenfield Motor Works").build(story)


def build_docx(path: Path) -> None:
    doc = Document()
    doc.styles["Normal"].font.size = Pt(11)
    doc.add_heading("Wrenfield Motor Works: Team and contacts", level=1)
    doc.add_paragraph("Call the main number, 555-0147, and ask for the person or department you need. Elsie, our "
                      "virtual receptionist, answers every call, puts you through to the service desk, the "
                      "workshop or accounts, and takes messages for anyone on the team.")
    doc.add_heading("Our team", level=2)
    table = doc.add_table(rows=0, cols=len(STAFF[0]))
    table.style = "Table Grid"
    for r, row in enumerate(STAFF):
        cells = table.add_row().cells
        for cell, text in zip(cells, row):
            cell.text = text
            if r == 0:
                for run in cell.paragraphs[0].runs:
                    run.bold = True
    doc.add_heading("Departments", level=2)
    doc.add_paragraph("Service desk (ext. 201): bookings, MOTs, quotes, courtesy cars and collection times.")
    doc.add_paragraph("Workshop (ext. 202): progress on a car that is in with us, and technical questions for the "
                      "mechanics. The workshop phone is answered between jobs, so you may be asked to hold.")
    doc.add_paragraph("Accounts (ext. 203): invoices, payments, fleet and business accounts, and warranty claims.")
    doc.add_heading("Who does what", level=2)
    doc.add_paragraph("Hybrid and electric cars: Rhys Okonjo and Aisha Marchetti both hold the IMI Level 3 "
                      "qualification for working on high-voltage vehicles.")
    doc.add_paragraph("Fleet and business accounts, for three vehicles or more, are looked after by Sam Teversham.")
    doc.add_paragraph("Gordon Pryce does not take calls during the working day. Leave a message and he will ring "
                      "you back, usually after 4pm.")
    doc.core_properties.title = "Team and contacts"
    doc.save(str(path))


if __name__ == "__main__":
    DOCS.mkdir(exist_ok=True)
    build_pdf(DOCS / "customer_guide.pdf")
    build_docx(DOCS / "team_and_contacts.docx")
    print("wrote", DOCS / "customer_guide.pdf", "and", DOCS / "team_and_contacts.docx")
