"""Plain text as people type it: a title, short heading lines, paragraphs, "- " bullets, ``Label: value``
lines and ``Q: / A:`` pairs. No library reads this better than a few rules about blank lines."""

from __future__ import annotations

import re

from memory.documents.blocks import Block, Heading, blocks_from_lines, field_of

_UNDERLINE = re.compile(r"^\s*(=+|-+)\s*$")


def is_heading_line(line: str, styled: bool = False) -> bool:
    """A short line that ends no sentence and is no field, bullet or question (``styled``: its font already
    says heading, as in a PDF or Word file: then its capitals need not)."""
    line = line.strip()
    if not line or len(line.split()) > 8 or line[-1] in ".!?,;" or field_of(line):
        return False
    if re.match(r"^(?:[-*•▪◦‣]|\d+[.)]|Q\s*[:.)]|A\s*[:.)])\s*", line, re.I):
        return False
    if not (line[0].isupper() or line[0].isdigit()):
        return False
    if styled:
        return True
    words = [w for w in re.findall(r"[A-Za-z][\w'’-]*", line) if len(w) > 3]
    capitalised = sum(w[0].isupper() for w in words)
    # "Opening Hours", "PRICES", "Parking and access": a heading; "Free parking behind the shop": a fact
    return line.isupper() or not words or capitalised / len(words) >= 0.6 or len(line.split()) <= 3


def read_text(text: str) -> list[Block]:
    heading = Heading()
    blocks: list[Block] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if _UNDERLINE.match(line) and paragraphs[-1]:
            paragraphs[-1][-1] = "# " + paragraphs[-1][-1]  # a setext-style title
            continue
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    first = True
    for paragraph in paragraphs:
        if not paragraph:
            continue
        head = paragraph[0].strip()
        if head.startswith("#"):
            level = len(head) - len(head.lstrip("#"))
            heading.enter(level, head.lstrip("# "))
            paragraph = paragraph[1:]
        elif is_heading_line(head):
            heading.enter(1 if first else 2, head)
            paragraph = paragraph[1:]
        first = False
        if paragraph:
            blocks.extend(blocks_from_lines(paragraph, heading.path))
    return blocks
