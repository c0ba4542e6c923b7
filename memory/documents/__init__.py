"""The business's documents as they are kept — markdown, plain text, web pages, CSV exports, PDFs and
Word files — read into :class:`Block` lists and :class:`Fact` records (see ``blocks``)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from memory.documents.blocks import Block, Fact, UnreadableDocument, facts_from_blocks, plain_text

SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm", ".csv", ".pdf", ".docx")


@dataclass(frozen=True)
class ReadDocument:
    blocks: list[Block]
    facts: list[Fact]
    text: str  # clean paragraphs, for chunked passages
    note: str = ""  # e.g. how an unusual encoding was read


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "read as UTF-16"
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        if b"\x00" in data:
            raise UnreadableDocument("binary data, not text") from exc
        try:
            return data.decode("cp1252"), "not UTF-8: read as Windows-1252"
        except UnicodeDecodeError:
            raise UnreadableDocument(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def read_blocks(path: Path) -> tuple[list[Block], str]:
    """A file's blocks, by its type; raises :class:`UnreadableDocument` with the reason."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UnreadableDocument(f"unknown type {suffix or '(no suffix)'}; readable: {' '.join(SUFFIXES)}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(str(exc)) from exc
    try:
        if suffix == ".pdf":
            from memory.documents.pdf import read_pdf

            return read_pdf(data), ""
        if suffix == ".docx":
            from memory.documents.word import read_docx

            return read_docx(data), ""
        text, note = _decode(data)
        if suffix in (".md", ".markdown"):
            from memory.documents.markdown import read_markdown

            return read_markdown(text), note
        if suffix in (".html", ".htm"):
            from memory.documents.html import read_html

            return read_html(text), note
        if suffix == ".csv":
            from memory.documents.table import read_csv

            return read_csv(text, path.stem.replace("_", " ").replace("-", " ").strip().capitalize()), note
        from memory.documents.text import read_text

        return read_text(text), note
    except UnreadableDocument:
        raise
    except Exception as exc:  # a damaged file of a known type: say so, keep the other files
        raise UnreadableDocument(f"cannot read it as {suffix[1:].upper()}: {type(exc).__name__}: {exc}") from exc


def read_document(path: Path) -> ReadDocument:
    blocks, note = read_blocks(path)
    facts = facts_from_blocks(blocks)
    if not facts:
        raise UnreadableDocument("no text found in it")
    return ReadDocument(blocks, facts, plain_text(blocks), note)


__all__ = ["Block", "Fact", "ReadDocument", "SUFFIXES", "UnreadableDocument", "read_document"]
