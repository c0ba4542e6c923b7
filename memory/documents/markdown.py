"""Markdown, read with markdown-it-py (CommonMark plus tables): its token stream already knows what a
heading, a list item and a table cell are, which a regex over lines gets wrong (nested lists, pipes
inside cells, setext headings)."""

from __future__ import annotations

from markdown_it import MarkdownIt

from memory.documents.blocks import Block, Heading, blocks_from_lines, clean

_PARSER = MarkdownIt("commonmark").enable("table")


def read_markdown(text: str) -> list[Block]:
    tokens = _PARSER.parse(text)
    heading = Heading()
    blocks: list[Block] = []
    depth = 0  # list nesting
    row: list[str] = []
    headers: list[str] = []
    in_head = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        kind = token.type
        if kind == "heading_open":
            heading.enter(int(token.tag[1]), tokens[i + 1].content)
            i += 3
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif kind == "thead_open":
            in_head, headers = True, []
        elif kind == "thead_close":
            in_head = False
        elif kind == "tr_open":
            row = []
        elif kind in ("th_open", "td_open"):
            row.append(clean(tokens[i + 1].content))
        elif kind == "tr_close":
            if in_head:
                headers = row
            elif any(row):
                names = headers if len(headers) == len(row) else [f"Column {n + 1}" for n in range(len(row))]
                blocks.append(Block("row", path=heading.path, cells=tuple(zip(names, row))))
        elif kind == "inline" and tokens[i - 1].type == "paragraph_open":
            lines = token.content.split("\n")
            if depth:
                blocks.append(Block("item", clean(" ".join(lines)), heading.path))
            else:
                blocks += blocks_from_lines(lines, heading.path)
        i += 1
    return blocks
