"""A Word document, read with python-docx: paragraph styles say which lines are headings and list
items, and tables come with their cells (the body is walked in order, so a table stays under its
heading)."""

from __future__ import annotations

import io

from docx import Document
from docx.table import Table
from docx.text.paragraph import Paragraph

from memory.documents.blocks import Block, Heading, blocks_from_lines, clean
from memory.documents.text import is_heading_line


def _heading_level(paragraph: Paragraph) -> int | None:
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style == "Title":
        return 1
    if style.startswith("Heading"):
        digits = "".join(ch for ch in style if ch.isdigit())
        return int(digits) + 1 if digits else 2
    runs = [r for r in paragraph.runs if r.text.strip()]
    if runs and all(r.bold for r in runs) and is_heading_line(paragraph.text, styled=True):
        return 3  # a bold line used as a heading
    return None


def _is_list_item(paragraph: Paragraph) -> bool:
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    numbered = paragraph._p.pPr is not None and paragraph._p.pPr.numPr is not None  # python-docx has no public API
    return style.startswith("List") or numbered


def read_docx(data: bytes) -> list[Block]:
    document = Document(io.BytesIO(data))
    heading = Heading()
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            level = _heading_level(item)
            if level is not None:
                heading.enter(level, text)
            elif _is_list_item(item):
                blocks.append(Block("item", clean(text), heading.path))
            else:
                blocks.extend(blocks_from_lines(item.text.split("\n"), heading.path))
        elif isinstance(item, Table):
            blocks.extend(_table(item, heading.path))
    return blocks


def _table(table: Table, path: tuple[str, ...]) -> list[Block]:
    rows = [[clean(cell.text) for cell in row.cells] for row in table.rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return []
    if len(rows[0]) == 2 and not all(rows[0]):
        rows = rows[1:]
    if len(rows[0]) == 2 and len(rows) > 1 and not _looks_like_header(rows[0]):
        return [Block("field", f"{a.rstrip(':')}: {b}", path, ((a.rstrip(":"), b),)) for a, b in rows if a and b]
    headers = rows[0]
    return [Block("row", path=path, cells=tuple(zip(headers, row))) for row in rows[1:]]


def _looks_like_header(row: list[str]) -> bool:
    return all(cell and len(cell.split()) <= 3 and not any(ch.isdigit() for ch in cell) for cell in row)
