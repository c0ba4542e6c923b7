"""What a document is made of once read, whatever its format, and the facts taken from it.

Every reader (markdown, HTML, PDF, DOCX, CSV, plain text) turns a file into the same list of
:class:`Block` — a heading path plus a paragraph, a list item, a table row with its column headers, a
``Label: value`` field or a question with its answer — and :func:`facts_from_blocks` turns blocks into
:class:`Fact` records: each one self-contained (a table row carries its headers, a short bullet list
is one fact under its lead-in), so that retrieval can find the one line that answers a caller and the
voice can say it without the markup it came in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

BlockKind = Literal["paragraph", "item", "row", "field", "qa"]
FactKind = Literal["text", "item", "list", "row", "field", "qa"]
PATH_SEPARATOR = " › "
SHORT_ITEM_WORDS = 6  # items this short ("Aetna", "Free parking") mean nothing alone: the list is one fact
_FIELD = re.compile(r"^\s*([A-Z][\w'’ /&()-]{0,38}?)\s*:\s+(\S.*)$")
_QUESTION_LINE = re.compile(r"^\s*(?:Q|Question)\s*[:.)-]\s*(.+)$", re.I)
_ANSWER_LINE = re.compile(r"^\s*(?:A|Answer)\s*[:.)-]\s*(.+)$", re.I)
_SENTENCE_END = re.compile(r"[.!?…]$")
_MARKUP = re.compile(r"(\*\*|__|`|~~|^#+\s*|^\s*(?:[-*•▪◦‣]|\d+[.)])\s+)", re.M)


class UnreadableDocument(ValueError):
    """A file that cannot be read as a document; the message says why, for the person who gave it."""


@dataclass(frozen=True)
class Block:
    """One unit of a document as its author laid it out."""

    kind: BlockKind
    text: str = ""
    path: tuple[str, ...] = ()  # the headings above it, outermost first
    cells: tuple[tuple[str, str], ...] = ()  # a row's (header, value) pairs; a field's (label, value)
    answer: str = ""  # a qa block's answer


@dataclass(frozen=True)
class Fact:
    """One thing the documents say, ready to be found and spoken."""

    kind: FactKind
    text: str  # plain text, no markup: what may be said
    path: tuple[str, ...] = ()
    cells: tuple[tuple[str, str], ...] = ()
    question: str = ""  # a FAQ's question (the text is its answer)

    @property
    def heading(self) -> str:
        return PATH_SEPARATOR.join(self.path)

    def search_text(self) -> str:
        """What retrieval reads: the heading path, the question, then the fact."""
        return " ".join(p for p in (self.heading, self.question, self.text) if p)

    def encode(self) -> str:
        """The fact as one stored passage text (the store keeps text; this keeps the structure)."""
        head = f"[{self.kind}|{self.heading}]"
        if self.kind == "row":
            body = "; ".join(f"{h}: {v}" for h, v in self.cells)
        elif self.kind == "qa":
            body = f"Q: {self.question} A: {self.text}"
        else:
            body = self.text
        return f"{head} {body}"

    @classmethod
    def decode(cls, stored: str) -> "Fact":
        match = re.match(r"^\[(\w+)\|([^\]]*)\] (.*)$", stored, re.S)
        if not match:
            return cls("text", stored.strip())
        kind, heading, body = match.groups()
        path = tuple(p for p in heading.split(PATH_SEPARATOR) if p)
        if kind == "row":
            cells = tuple(tuple(c.split(": ", 1)) for c in body.split("; ") if ": " in c)  # type: ignore[misc]
            return cls("row", body, path, cells)  # type: ignore[arg-type]
        if kind == "qa":
            q, _, a = body.partition(" A: ")
            return cls("qa", a.strip(), path, question=q.removeprefix("Q: ").strip())
        if kind == "field":
            label, _, value = body.partition(": ")
            return cls("field", body, path, ((label, value),))
        return cls(kind if kind in ("text", "item", "list") else "text", body, path)  # type: ignore[arg-type]


def clean(text: str) -> str:
    """Inline text without markup or stray whitespace."""
    text = _MARKUP.sub("", text)
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # [label](url)
    return " ".join(text.split()).strip()


def field_of(line: str) -> tuple[str, str] | None:
    """A ``Label: value`` line's parts, or None (a sentence with a colon in it is not a field)."""
    match = _FIELD.match(line)
    if not match:
        return None
    label, value = match.group(1).strip(), match.group(2).strip()
    if len(label.split()) > 5 or re.search(r"\d{1,2}$", label):  # "Open 9:30" is a time, not a label
        return None
    return label, value


def blocks_from_lines(lines: list[str], path: tuple[str, ...]) -> list[Block]:
    """Plain lines of one paragraph-ish run (plain text, a PDF's page): fields, Q/A pairs, bullets, prose.

    A question is a ``Q:`` line (its answer the ``A:`` line after it), or a line ending in "?" that starts
    a run (the lines after it, up to a blank line or the next question, are its answer)."""
    blocks: list[Block] = []
    prose: list[str] = []
    question, answer, explicit = "", [], False

    def flush() -> None:
        nonlocal question, answer, explicit
        if question and answer:
            blocks.append(Block("qa", question, path, answer=" ".join(answer)))
        elif question:
            prose.insert(0, question)
        question, answer, explicit = "", [], False
        if prose:
            blocks.append(Block("paragraph", " ".join(prose), path))
            prose.clear()

    for raw in lines:
        line = raw.strip()
        if not line:
            flush()
            continue
        if q := _QUESTION_LINE.match(line):
            flush()
            question, explicit = q.group(1).strip(), True
            continue
        if question and (a := _ANSWER_LINE.match(line)):
            answer.append(a.group(1).strip())
            explicit = False
            continue
        if question and explicit and not answer:  # a Q: question's text wrapped onto a second line
            question = f"{question} {line}"
            continue
        if question:
            if line.endswith("?") and len(line.split()) <= 25 and answer:
                flush()
                question = line
            else:
                answer.append(line)
            continue
        if line.endswith("?") and not prose and len(line.split()) <= 25:
            question = line
            continue
        if re.match(r"^\s*(?:[-*•▪◦‣]|\d+[.)])\s+", raw):
            flush()
            blocks.append(Block("item", clean(line), path))
            continue
        if (found := field_of(line)) and (not prose or _SENTENCE_END.search(prose[-1])):
            flush()
            blocks.append(Block("field", f"{found[0]}: {found[1]}", path, (found,)))
            continue
        prose.append(line)
    flush()
    return blocks


def _lead_in(blocks: list[Block], index: int) -> str:
    """What a list is about: the paragraph ending in ':' just before it, else its heading."""
    if index > 0 and blocks[index - 1].kind == "paragraph" and blocks[index - 1].text.rstrip().endswith(":"):
        return blocks[index - 1].text.rstrip().rstrip(":").strip()
    return blocks[index].path[-1] if blocks[index].path else ""


def facts_from_blocks(blocks: list[Block]) -> list[Fact]:
    """Self-contained facts: rows with their headers, short lists joined, FAQ answers with their questions."""
    facts: list[Fact] = []
    i = 0
    while i < len(blocks):
        block = blocks[i]
        if block.kind == "item":
            run = [block]
            while i + len(run) < len(blocks) and blocks[i + len(run)].kind == "item" and blocks[i + len(run)].path == block.path:
                run.append(blocks[i + len(run)])
            short = [b for b in run if len(b.text.split()) <= SHORT_ITEM_WORDS and not field_of(b.text)]
            lead = _lead_in(blocks, i)
            if len(short) >= 2 and len(short) == len(run):
                names = [b.text.rstrip(".;,") for b in run]
                joined = ", ".join(names[:-1]) + " and " + names[-1]
                facts.append(Fact("list", f"{lead}: {joined}." if lead else f"{joined}.", block.path))
            else:
                for item in run:
                    found = field_of(item.text)
                    if found:
                        facts.append(Fact("field", f"{found[0]}: {found[1]}", item.path, (found,)))
                    else:
                        facts.append(Fact("item", item.text, item.path))
            i += len(run)
            continue
        if block.kind == "row":
            cells = tuple((h, v) for h, v in block.cells if v.strip())
            if cells:
                facts.append(Fact("row", "; ".join(f"{h}: {v}" for h, v in cells), block.path, cells))
        elif block.kind == "field":
            facts.append(Fact("field", block.text, block.path, block.cells))
        elif block.kind == "qa":
            facts.append(Fact("qa", block.answer, block.path, question=block.text))
        elif block.kind == "paragraph":
            text = clean(block.text)
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            if text.endswith("?") and len(text.split()) <= 25 and nxt is not None and nxt.kind == "paragraph":
                facts.append(Fact("qa", clean(nxt.text), block.path, question=text))  # a FAQ without Q:/A:
                i += 2
                continue
            asked = re.match(r"^([^?.!]{3,200}\?)\s+(\S.*)$", text)
            if asked:  # "Do you see children? Yes, from age 3." in one paragraph
                facts.append(Fact("qa", asked.group(2), block.path, question=asked.group(1)))
            elif text and not text.endswith(":"):
                facts.append(Fact("text", text, block.path))
        i += 1
    return facts


def plain_text(blocks: list[Block]) -> str:
    """The document as clean paragraphs (for the chunks the model's search tool reads)."""
    out: list[str] = []
    last_path: tuple[str, ...] = ()
    for block in blocks:
        if block.path != last_path and block.path:
            out.append(block.path[-1])
            last_path = block.path
        if block.kind == "row":
            out.append("; ".join(f"{h}: {v}" for h, v in block.cells if v.strip()) + ".")
        elif block.kind == "qa":
            out.append(f"{block.text} {block.answer}")
        else:
            text = clean(block.text)
            out.append(text if _SENTENCE_END.search(text) or text.endswith(":") else text + ".")
    return "\n\n".join(out)


@dataclass
class Heading:
    """The heading path while a reader walks a document (level 1 = outermost)."""

    levels: list[tuple[int, str]] = field(default_factory=list)

    def enter(self, level: int, title: str) -> None:
        while self.levels and self.levels[-1][0] >= level:
            self.levels.pop()
        title = clean(title).rstrip(":")
        if title:
            self.levels.append((level, title))

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(title for _, title in self.levels)
