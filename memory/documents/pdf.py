"""A PDF, read with pypdf. A PDF keeps glyphs at positions, not paragraphs or tables, so the layout is
read back: pypdf's layout mode keeps each line's columns apart (a table row's cells stay in their
columns), the text runs' font sizes and weights tell headings from body text, and wrapped lines are
joined back into their sentences. A page without text (a scan) is reported, not guessed at."""

from __future__ import annotations

import io
import re
from collections import Counter

from pypdf import PdfReader

from memory.documents.blocks import Block, Heading, UnreadableDocument, blocks_from_lines, clean
from memory.documents.text import is_heading_line

_GAP = re.compile(r"\S(\s{3,})(?=\S)")
_BULLET = re.compile(r"^\s*[\x7f•●▪◦‣∙·■□–-]\s+")


class UnreadablePDF(UnreadableDocument):
    """The PDF has no text layer (scanned pages) or cannot be parsed."""


def _heading_sizes(reader: PdfReader) -> dict[str, float]:
    """Lines written larger than the body text, or in bold: text -> size."""
    runs: list[tuple[str, float, bool]] = []

    def visit(text, cm, tm, font, size) -> None:  # pypdf's visitor signature
        text = " ".join(text.split())
        if text:
            scale = abs(tm[3] * cm[3]) or 1.0
            name = str(font.get("/BaseFont", "")) if font else ""
            runs.append((text, float(size) * scale, "bold" in name.lower() or "black" in name.lower()))

    for page in reader.pages:
        page.extract_text(visitor_text=visit)
    weights = Counter()
    for text, size, _ in runs:
        weights[round(size, 1)] += len(text)
    if not weights:
        return {}
    body = weights.most_common(1)[0][0]
    return {text: size for text, size, bold in runs
            if (size > body * 1.15 or (bold and size >= body)) and is_heading_line(text, styled=True)}


def _cells(line: str) -> list[tuple[int, str]]:
    """A layout line's cells with their start columns (cells are apart by three or more spaces)."""
    return [(match.start(), match.group()) for match in re.finditer(r"\S+(?: {1,2}\S+)*", line)]


def _table_blocks(lines: list[str], path: tuple[str, ...]) -> list[Block]:
    header = _cells(lines[0])
    starts = [s for s, _ in header]
    names = [clean(t) for _, t in header]
    labelled = len(starts) == 2 and sum(_cells(line)[0][1].endswith(":") for line in lines) * 2 > len(lines)
    if labelled or any(re.search(r"\d", n) for n in names):  # no header row: columns are numbered
        names, rows = [f"Column {n + 1}" for n in range(len(header))], lines
    else:
        rows = lines[1:]
    blocks = []
    for line in rows:
        values = [""] * len(starts)
        for start, text in _cells(line):
            column = min(range(len(starts)), key=lambda n: abs(starts[n] - start))
            values[column] = f"{values[column]} {text}".strip()
        if any(values):
            if len(starts) == 2 and names[0].startswith("Column"):
                label = values[0].rstrip(":").strip()  # "Address:   27 Mill Road", a label column of its own
                blocks.append(Block("field", f"{label}: {values[1]}", path, ((label, values[1]),)))
            else:
                blocks.append(Block("row", path=path, cells=tuple(zip(names, map(clean, values)))))
    return blocks


def read_pdf(data: bytes) -> list[Block]:
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text(extraction_mode="layout") for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for damaged files
        raise UnreadablePDF(f"cannot parse the PDF ({type(exc).__name__}: {exc})") from exc
    if not "".join(pages).strip():
        raise UnreadablePDF("no text layer (a scanned PDF needs OCR first)")
    headings = _heading_sizes(reader)
    ranks = {size: rank + 1 for rank, size in enumerate(sorted(set(headings.values()), reverse=True))}
    heading = Heading()
    blocks: list[Block] = []
    prose: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if prose:
            blocks.extend(blocks_from_lines(prose, heading.path))
            prose.clear()
        if table:
            if len(table) >= 2:
                blocks.extend(_table_blocks(table, heading.path))
            else:
                blocks.extend(blocks_from_lines(["   ".join(t for _, t in _cells(table[0]))], heading.path))
            table.clear()

    for line in "\n\n".join(pages).split("\n"):
        text = " ".join(line.split())
        if not text:
            if not table:
                flush()
                prose.append("")
            continue
        if text in headings:
            flush()
            heading.enter(ranks[headings[text]], text)
            continue
        if _BULLET.match(line):
            if table:
                flush()
            prose.append("- " + _BULLET.sub("", line).strip())
            continue
        if prose and prose[-1].startswith("- ") and len(line) - len(line.lstrip()) >= 2 and not table:
            prose[-1] += " " + text  # a bullet's text wrapped onto an indented line
            continue
        if len(_GAP.findall(line.strip())) >= 1 and len(_cells(line)) >= 2:
            if prose and any(prose):
                flush()
            table.append(line)
            continue
        if table:
            flush()
        prose.append(text)
    flush()
    return blocks
