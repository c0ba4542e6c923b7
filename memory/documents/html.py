"""A web page, read with BeautifulSoup (Python's own html.parser underneath: no compiled dependency,
and it forgives the broken markup saved pages have). Menus, scripts, styles, forms and cookie notices
are not the business's facts; headings, paragraphs, list items, tables and definition lists are."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag

from memory.documents.blocks import Block, Heading, blocks_from_lines, clean

_SKIP = {"script", "style", "noscript", "template", "nav", "form", "button", "svg", "iframe", "select", "head"}
_BLOCK_TEXT = {"p", "address", "blockquote", "figcaption", "pre", "dd", "dt", "caption"}
_HEADING = re.compile(r"^h([1-6])$")


def _skipped(tag: Tag) -> bool:
    if tag.name in _SKIP or tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    marks = " ".join([tag.get("id") or "", *(tag.get("class") or [])]).lower()
    return any(word in marks for word in ("cookie", "consent", "skip-link", "breadcrumb"))


def _text_lines(tag: Tag) -> list[str]:
    """The element's text, one entry per line its author broke (``<br>``)."""
    for br in tag.find_all("br"):
        br.replace_with("\n")
    return [" ".join(line.split()) for line in tag.get_text(" ").split("\n")]


def read_html(text: str) -> list[Block]:
    soup = BeautifulSoup(text, "html.parser")
    root = soup.body or soup
    heading = Heading()
    blocks: list[Block] = []

    def table(tag: Tag) -> None:
        rows = [r for r in tag.find_all("tr") if r.find_parent("table") is tag]
        headers: list[str] = []
        for row in rows:
            cells = row.find_all(["th", "td"], recursive=False)
            values = [clean(c.get_text(" ")) for c in cells]
            if not headers and cells and all(c.name == "th" for c in cells):
                headers = values
                continue
            if not any(values):
                continue
            if headers and len(headers) == len(values):
                blocks.append(Block("row", path=heading.path, cells=tuple(zip(headers, values))))
            elif len(values) == 2:  # a two-column table without headers: label and value
                blocks.append(Block("field", f"{values[0].rstrip(':')}: {values[1]}", heading.path,
                                    ((values[0].rstrip(":"), values[1]),)))
            else:
                blocks.append(Block("paragraph", ", ".join(v for v in values if v), heading.path))

    def walk(tag: Tag) -> None:
        loose: list[str] = []  # text sitting directly in a container (a <div> with words in it)
        for child in tag.children:
            if isinstance(child, NavigableString):
                if child.strip() and type(child) is NavigableString:
                    loose.append(str(child))
                continue
            if not isinstance(child, Tag) or _skipped(child):
                continue
            if child.name in ("b", "strong", "em", "i", "span", "a", "small", "u", "time", "abbr"):
                loose.append(child.get_text(" "))
                continue
            if loose:
                blocks.extend(blocks_from_lines([" ".join(" ".join(loose).split())], heading.path))
                loose = []
            if match := _HEADING.match(child.name):
                heading.enter(int(match.group(1)), child.get_text(" "))
            elif child.name == "table":
                table(child)
            elif child.name == "li":
                nested = child.find(["ul", "ol"])
                if nested is not None:
                    nested.extract()
                text = clean(child.get_text(" "))
                if text:
                    blocks.append(Block("item", text, heading.path))
                if nested is not None:
                    walk(nested)
            elif child.name == "dl":
                term = ""
                for part in child.find_all(["dt", "dd"]):
                    if part.name == "dt":
                        term = clean(part.get_text(" ")).rstrip(":")
                    elif term:
                        value = clean(part.get_text(" "))
                        blocks.append(Block("field", f"{term}: {value}", heading.path, ((term, value),)))
            elif child.name in _BLOCK_TEXT:
                blocks.extend(blocks_from_lines(_text_lines(child), heading.path))
            else:
                walk(child)
        if loose:
            blocks.extend(blocks_from_lines([" ".join(" ".join(loose).split())], heading.path))

    walk(root)
    return blocks
