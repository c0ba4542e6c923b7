"""A CSV price list or directory, read with the csv module (its Sniffer finds the delimiter and quote
style of what spreadsheets export): the first row names the columns, every other row is one fact."""

from __future__ import annotations

import csv
import io

from memory.documents.blocks import Block, clean


def read_csv(text: str, title: str) -> list[Block]:
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = [[clean(cell) for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    rows = [row for row in rows if any(row)]
    if len(rows) < 2:
        raise ValueError("a CSV file needs a header row and at least one row of data")
    headers = [h or f"Column {n + 1}" for n, h in enumerate(rows[0])]
    blocks = []
    for row in rows[1:]:
        cells = tuple((headers[n] if n < len(headers) else f"Column {n + 1}", value) for n, value in enumerate(row))
        blocks.append(Block("row", path=(title,), cells=cells))
    return blocks
