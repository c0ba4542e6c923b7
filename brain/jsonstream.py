"""Streaming the value of one JSON string while the model is still writing it.

The employee answers with a schema-constrained JSON action; when the action is ``send_message``
its ``message`` must reach the text-to-speech as it is generated, not after the closing brace.
No JSON library decodes a string incrementally, hence this small decoder of JSON string escapes.
"""

from __future__ import annotations

import re

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


_HEX4 = re.compile(r"[0-9a-fA-F]{4}")


class JSONStringStreamer:
    """Feed raw JSON text that starts *inside* a string; get decoded characters until the closing quote.

    ``lenient``: the text was written without a grammar, so it may not be valid JSON. A quote then closes
    the string only when what follows it closes the object (``}`` or ``,`` after optional spaces, or the end
    of the text); ``our "Gold" plan`` keeps its quotes. A malformed escape is kept as written.
    """

    def __init__(self, *, lenient: bool = False) -> None:
        self._pending = ""
        self.lenient = lenient
        self.done = False
        self.value = ""

    def finish(self) -> str:
        """The writer stopped: what was held back to be judged (a final quote, a cut escape) is settled."""
        text, self._pending = self._pending, ""
        if self.done or not text:
            return ""
        if text.lstrip().startswith('"'):
            self.done = True
            return ""
        self.value += text
        return text

    def feed(self, raw: str) -> str:
        if self.done:
            return ""
        text = self._pending + raw
        self._pending = ""
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char == '"':
                if self.lenient:
                    after = text[i + 1 :].lstrip()
                    if not after:
                        self._pending = text[i:]  # judged by what comes next
                        break
                    if after[0] not in "},":
                        out.append(char)
                        i += 1
                        continue
                self.done = True
                break
            if char != "\\":
                out.append(char)
                i += 1
                continue
            if i + 1 >= len(text):
                self._pending = text[i:]
                break
            kind = text[i + 1]
            if kind == "u":
                if i + 6 > len(text):
                    self._pending = text[i:]
                    break
                if not _HEX4.fullmatch(text[i + 2 : i + 6]):
                    out.append(text[i : i + 2])  # not an escape after all: kept as written
                    i += 2
                    continue
                code = int(text[i + 2 : i + 6], 16)
                if 0xD800 <= code < 0xDC00:  # a surrogate pair needs the second half
                    if i + 12 > len(text):
                        self._pending = text[i:]
                        break
                    low_hex = text[i + 8 : i + 12]
                    if text[i + 6 : i + 8] != "\\u" or not _HEX4.fullmatch(low_hex) or not 0xDC00 <= int(low_hex, 16) < 0xE000:
                        i += 6  # half a pair cannot be spoken: dropped
                        continue
                    low = int(low_hex, 16)
                    out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                    i += 12
                    continue
                if 0xDC00 <= code < 0xE000:
                    i += 6
                    continue
                out.append(chr(code))
                i += 6
                continue
            out.append(_ESCAPES.get(kind, kind))
            i += 2
        decoded = "".join(out)
        self.value += decoded
        return decoded


def message_start(prefix: str, tool: str = "send_message", field: str = "message") -> int | None:
    """Where the string value of ``{"tool": tool, "arguments": {field: "`` begins in ``prefix`` (None: not yet/not this)."""
    pattern = rf'^\s*\{{\s*"tool"\s*:\s*"{re.escape(tool)}"\s*,\s*"arguments"\s*:\s*\{{\s*"{re.escape(field)}"\s*:\s*"'
    match = re.match(pattern, prefix)
    return match.end() if match else None
