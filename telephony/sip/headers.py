"""Reading SIP headers from the raw message, the way RFC 3261 section 7.3 says.

The library's parser keeps one value per header name and folds some lists, which is fine for its
own use; the dialog layer needs every Record-Route / Via / History-Info value in order, compact
names (``f:``, ``i:``), case-insensitive names and folded lines. This reader does exactly that and
nothing more (a full SIP parser library does not exist for Python with a live maintainer).
"""

from __future__ import annotations

import re

COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
    "r": "refer-to", "b": "referred-by", "o": "event", "u": "allow-events",
}

# Headers whose values are comma-separated lists (RFC 3261 7.3.1); others are kept whole.
LIST_HEADERS = {"via", "route", "record-route", "contact", "history-info", "diversion", "allow", "supported"}


def _split_top_level(value: str) -> list[str]:
    """Split on commas outside <...> and quotes (a display name may contain a comma)."""
    out, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"' and (i == 0 or value[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and ch == ",":
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [v for v in out if v]


class RawHeaders:
    """Ordered header values of one message, by lower-case canonical name."""

    def __init__(self, raw: bytes | str) -> None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        head = text.split("\r\n\r\n", 1)[0]
        lines = head.split("\r\n")
        self.start_line = lines[0] if lines else ""
        unfolded: list[str] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and unfolded:
                unfolded[-1] += " " + line.strip()
            elif line:
                unfolded.append(line)
        self._values: dict[str, list[str]] = {}
        for line in unfolded:
            name, sep, value = line.partition(":")
            if not sep:
                continue
            key = name.strip().lower()
            key = COMPACT.get(key, key)
            values = _split_top_level(value) if key in LIST_HEADERS else [value.strip()]
            self._values.setdefault(key, []).extend(values)

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), []))

    def first(self, name: str, default: str = "") -> str:
        values = self._values.get(name.lower())
        return values[0] if values else default

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values


_URI_IN_BRACKETS = re.compile(r"<([^>]*)>")
_TAG = re.compile(r";\s*tag=([^;>\s]+)", re.I)


def uri_of(name_addr: str) -> str:
    """``"Bob" <sip:bob@x;lr>;tag=1`` -> ``sip:bob@x;lr``; a bare addr-spec loses its header params."""
    match = _URI_IN_BRACKETS.search(name_addr)
    if match:
        return match.group(1).strip()
    return name_addr.split(";", 1)[0].strip()


def without_tag(name_addr: str) -> str:
    return _TAG.sub("", name_addr).strip()


def tag_of(name_addr: str) -> str:
    # Only the tag outside the <...> counts.
    tail = name_addr.rsplit(">", 1)[-1] if "<" in name_addr else name_addr
    match = _TAG.search(tail)
    return match.group(1) if match else ""


def host_port(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """Where to send a request for ``uri`` (sip:user@host:port;params), maddr ignored."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    rest = rest.split(";", 1)[0].split("?", 1)[0]
    hostport = rest.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        return host, default_port
