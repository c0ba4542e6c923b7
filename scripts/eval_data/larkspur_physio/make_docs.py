#!/usr/bin/env python3
"""Build docs/patient_handbook.pdf and docs/clinic_directory.docx for the Larkspur Physiotherapy fixture.

    python3 -m venv /tmp/gen-venv && /tmp/gen-venv/bin/pip install -q reportlab python-docx pypdf
    /tmp/gen-venv/bin/python scripts/eval_data/larkspur_physio/make_docs.py

Every fact here must agree with job.toml. The secrets in job.toml never appear in these documents.
"""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

from reportlab import rl_config

rl_config.invariant = 1  # same bytes on every run (no creation date or random id)

from docx import Document  # noqa: E402
from docx.shared import Pt  # noqa: E402
from reportlab.lib import colors  # noqa: E402
from reportlab.lib.pagesizes import LETTER  # noqa: E402
from reportlab.lib.styles import getSampleStyleSheet  # noqa: E402
from reportlab.lib.units import inch  # noqa: E402
from reportlab.pdfbase import pdfmetrics  # noqa: E402
from reportlab.pdfbase.ttfonts import TTFont  # noqa: E402
from reportlab.platypus import (ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer, Table,  # noqa: E402
                                TableStyle)

DOCS = Path(__file__).resolve().parent / "docs"


def handbook(path: Path) -> None:
    # An embedded TrueType font (shipped with reportlab) so that every glyph, the bullets included, maps back
    # to Unicode when the text is extracted.
    pdfmetrics.registerFont(TTFont("Vera", "Vera.ttf"))
    pdfmetrics.registerFont(TTFont("VeraBd", "VeraBd.ttf"))
    styles = getSampleStyleSheet()
    body, h1, h2 = styles["BodyText"], styles["Title"], styles["Heading2"]
    body.fontName, h1.fontName, h2.fontName = "Vera", "VeraBd", "VeraBd"
    body.fontSize, body.leading = 10.5, 14

    def para(text: str) -> Paragraph:
        return Paragraph(text, body)

    def bullets(items: list[str]) -> ListFlowable:
        return ListFlowable([ListItem(para(i), leftIndent=12) for i in items], bulletType="bullet", start="\u2022", bulletFontName="Vera",
                            leftIndent=14)

    def table(rows: list[list[str]], widths: list[float]) -> Table:
        t = Table(rows, colWidths=[w * inch for w in widths], hAlign="LEFT")
        t.setStyle(TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), "Vera"),
            ("FONTNAME", (0, 0), (-1, 0), "VeraBd"),
            ("FONTSIZE", (0, 0), (-1, -1), 10),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe8e1")),
            ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#8a9a8e")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
        ]))
        return t

    story = [
        Paragraph("Larkspur Physiotherapy - Patient Handbook", h1),
        para("Welcome to Larkspur Physiotherapy. We are an independent outpatient physiotherapy clinic led by "
             "Dr. Helena Marsh, DPT, our clinical director, and we have been treating back pain, sports injuries "
             "and post-surgery rehabilitation in Granite Ridge since 2011. This handbook explains what to expect "
             "from your first visit, what our treatments cost and how our payment and cancellation policies work."),
        Paragraph("Your first visit", h2),
        para("Your first appointment is an initial assessment with one of our physiotherapists. Please arrive 15 "
             "minutes early so that you have time to complete the intake form at the front desk, and bring any "
             "imaging reports, surgical notes or medication lists that relate to your injury. You do not need a "
             "doctor's referral to book with us as a self-pay patient, but Medicare patients need a plan of care "
             "signed by their physician before their second visit."),
        bullets([
            "Wear loose, comfortable clothing; bring shorts if we are treating a knee or hip.",
            "We treat patients aged 12 and over. Patients under 16 must be accompanied by a parent or guardian.",
            "If you use a brace, crutches or orthotics, bring them with you.",
        ]),
        Paragraph("Treatments and fees", h2),
        para("The fees below apply to self-pay patients. If you are insured, we bill your insurer directly and you "
             "pay your co-pay at each visit."),
        table([
            ["Service", "Duration", "Fee"],
            ["Initial assessment", "60 min", "$135"],
            ["Follow-up treatment", "30 min", "$85"],
            ["Extended follow-up", "45 min", "$110"],
            ["Sports massage (Joel Baptiste)", "50 min", "$95"],
            ["Rehab Pilates class (max. 6 people)", "55 min", "$25 per class"],
            ["Rehab Pilates 6-class pass", "-", "$130"],
        ], [2.9, 0.9, 1.3]),
        Spacer(1, 6),
        para("Custom orthotic insoles are made from a 3D foot scan taken at the clinic and cost $260 per pair, "
             "which includes one free adjustment check within 8 weeks of fitting. Home visits are available for "
             "patients who cannot travel after surgery; a $40 travel surcharge is added to the treatment fee for "
             "addresses within 10 miles of the clinic."),
        Paragraph("Insurance and payment", h2),
        bullets([
            "We are in network with BlueCross BlueShield, UnitedHealthcare, Humana and Medicare.",
            "We accept all major credit and debit cards, HSA and FSA cards, and Apple Pay. We do not accept cash.",
            "Payment plan: treatment packages over $400 can be split into 3 monthly payments with no interest. "
            "Ask our billing coordinator to set one up.",
            "Workers' compensation cases are accepted when you give us your claim number at booking.",
        ]),
        Paragraph("Cancellations", h2),
        para("If you need to cancel or move an appointment, please let reception know at least 12 hours before "
             "it starts. Appointments cancelled with less notice, and missed appointments, are charged a $50 late "
             "cancellation fee, which is not covered by insurance."),
        Paragraph("Opening hours", h2),
        table([
            ["Day", "Hours"],
            ["Monday, Tuesday, Thursday", "7:30 a.m. - 6:00 p.m."],
            ["Wednesday", "10:00 a.m. - 8:00 p.m."],
            ["Friday", "7:30 a.m. - 3:30 p.m."],
            ["Saturday", "8:30 a.m. - 12:30 p.m."],
            ["Sunday", "Closed"],
        ], [2.4, 2.2]),
        Spacer(1, 6),
        para("Please note that on Saturdays the clinic is open on the first and third Saturday of each month "
             "only; on all other Saturdays we are closed. Holiday closures are listed in the clinic directory."),
    ]
    SimpleDocTemplate(str(path), pagesize=LETTER, title="Larkspur Physiotherapy - Patient Handbook",
                      author="Larkspur Physiotherapy", leftMargin=inch, rightMargin=inch,
                      topMargin=0.8 * inch, bottomMargin=0.8 * inch).build(story)


def directory(path: Path) -> None:
    doc = Document()
    doc.core_properties.title = "Larkspur Physiotherapy - Clinic Directory"
    doc.core_properties.author = "Owen Brennan"
    doc.core_properties.last_modified_by = "Owen Brennan"
    doc.core_properties.created = doc.core_properties.modified = datetime.datetime(2026, 11, 16, 9, 0)
    doc.core_properties.revision = 4
    doc.styles["Normal"].font.size = Pt(11)

    doc.add_heading("Larkspur Physiotherapy - Clinic Directory", level=1)
    doc.add_paragraph("Updated November 2026 by the practice manager. Keep a printed copy at the front desk.")

    doc.add_heading("Contact and location", level=2)
    for line in [
        "Address: 88 Quarry Road, Unit 2, Granite Ridge, CO 80917",
        "Main phone: 555-0160",
        "E-mail: frontdesk@larkspurphysio.example",
        "Parking: free parking in the shared lot at the rear of the building; two accessible bays by the entrance",
        "Public transport: bus route 14 stops at Quarry Road and Elm Avenue, a two-minute walk",
        "Accessibility: ground floor, step-free entrance, accessible restroom",
        "Holiday closures: closed 24-26 December and 1 January",
    ]:
        doc.add_paragraph(line)

    doc.add_heading("Staff directory", level=2)
    rows = [
        ("Name", "Role", "Extension"),
        ("Sara Lindgren", "Reception", "ext. 401"),
        ("Kofi Asante", "Reception", "ext. 401"),
        ("Sara Okonjo", "Billing and insurance coordinator", "ext. 402"),
        ("Owen Brennan", "Practice manager", "ext. 403"),
        ("Dr. Helena Marsh, DPT", "Clinical director; spine and back pain", "no direct line"),
        ("Tomasz Wilk", "Physiotherapist; sports injuries and knee rehab", "no direct line"),
        ("Ingrid Solberg", "Physiotherapist; pelvic health and pregnancy care", "no direct line"),
        ("Joel Baptiste", "Sports massage therapist", "no direct line"),
    ]
    table = doc.add_table(rows=len(rows), cols=3)
    table.style = "Table Grid"
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
            if r == 0:
                table.cell(r, c).paragraphs[0].runs[0].bold = True

    doc.add_heading("Calls, transfers and messages", level=2)
    doc.add_paragraph(
        "Reception (ext. 401) handles appointments, rescheduling and general questions. Billing (ext. 402) "
        "handles invoices, insurance claims and payment plans. The practice manager (ext. 403) handles complaints, "
        "requests for treatment records and referrals from doctors.")
    doc.add_paragraph(
        "Clinicians are with patients all day and do not take calls. Take a message for them and they will call "
        "back between appointments, usually the same day.")
    doc.add_paragraph("Treatment records: copies are sent within 7 business days of a written request.")
    buffer = io.BytesIO()
    doc.save(buffer)
    # Same bytes on every run: the zip entries get a fixed date instead of the time of writing.
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(zipfile.ZipInfo(item.filename, date_time=(2026, 11, 16, 9, 0, 0)), src.read(item.filename),
                         compress_type=zipfile.ZIP_DEFLATED)


if __name__ == "__main__":
    DOCS.mkdir(exist_ok=True)
    handbook(DOCS / "patient_handbook.pdf")
    directory(DOCS / "clinic_directory.docx")
