"""Cut streamed LLM text into sentences for TTS, so the caller hears the first words early.

The language model streams arbitrary fragments ("Hel", "lo there", ". How"); the voice wants whole
sentences, because Piper's prosody needs one and because a sentence is the natural unit to stop at
when the caller barges in. :class:`SentenceChunker` buffers fragments and hands out each sentence
as soon as it is certainly complete; :func:`split_sentences` does the same for a whole text, and
both give the same pieces for the same text however it was fragmented.

A boundary is ``.``, ``!``, ``?`` or ``…`` (a run of them, plus closing quotes or brackets)
followed by whitespace, or a line break. What is *not* a boundary: a period followed by a
non-space ("3.5", "$12.50", "e.g", "example.com"), a title or initial ("Mr.", "Dr.", "St.",
"J. Smith", "e.g.", "vs."), a list number at the start of a piece ("1. "), and an abbreviation
that can end a sentence ("etc.", "a.m.", "p.m.", "U.S.") unless the next word is capitalised.
A boundary that needs text not yet received to be judged (a period at the very end of the buffer,
or "p.m. " before the next word arrives) waits for the next fragment or for :meth:`flush`.
"""

from __future__ import annotations

import re

__all__ = ["SentenceChunker", "split_sentences"]

DEFAULT_MAX_CHARS = 300

# A run of sentence-ending marks, or a line break (the end of a markdown list item or header).
_CANDIDATE = re.compile(r"[.!?…]+|\n")
# Clause boundaries for the early first piece; the dash forms need to stand apart from words so
# "well-known" and "5–10" are not cut.
_CLAUSE = re.compile(r"[,;:](?=\s)|\s[-–](?=\s)|—")
_CLOSERS = frozenset("\"')]}”’»")
# Words that open a new phrase: an unpunctuated first sentence may be cut before one of them (the
# subject before its verb, a main clause before "because ...", a noun before "in the ..."), where a
# speaker could take a breath. "that" and "the" are not among them: "I don't have | that ..." is not.
_PHRASE_STARTERS = frozenset(
    {"and", "but", "or", "so", "because", "which", "who", "when", "where", "while", "if", "unless", "until",
     "since", "although", "though", "is", "are", "was", "were", "will", "would", "can", "could", "should", "in", "on", "at", "for", "with", "from", "about", "after", "before", "during", "by", "of"}
)  # fmt: skip
# Words that "of" completes rather than follows: "a lot | of", "instead | of", "out | of" are no breath points
# ("the address | of the person" is).
_OF_BOUND = frozenset(
    {"lot", "lots", "couple", "kind", "kinds", "sort", "sorts", "type", "types", "out", "all", "some", "most", "any",
     "each", "none", "one", "both", "many", "much", "few", "because", "instead", "part", "top", "front", "end",
     "number", "piece", "bit", "rest", "aware", "sure", "afraid", "full", "ahead", "think", "thinking", "behalf",
     "terms", "case", "spite", "course", "outside", "inside", "regardless", "plenty", "first", "last", "more", "less"}
)  # fmt: skip
_WORD_START = re.compile(r"(?<=\s)([A-Za-z']+)(?=[\s,.;:!?])")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_LIST_NUMBER = re.compile(r"(?:^|\n)[ \t]*\d{1,2}$")

# Abbreviations that precede a name or a word: a period after them never ends a sentence.
_NEVER_FINAL = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "mt", "rev", "fr", "gen", "col", "capt",
     "lt", "sgt", "vs", "e.g", "i.e", "cf", "approx", "ca",
     # a directory's "ext. 301", "tel. 555 0100", "apt. 4", "dept. of": no sentence ends there
     "ext", "tel", "apt", "ste", "dept", "bldg"}
)  # fmt: skip
# Abbreviations that often do end a sentence: only a capitalised next word makes them final.
_MAYBE_FINAL = frozenset({"etc", "a.m", "p.m", "inc", "ltd", "co", "corp", "al", "no"})

_WAIT = -1  # "cannot tell yet": the boundary depends on text that has not arrived


class SentenceChunker:
    """Incremental sentence splitter: :meth:`push` fragments as they stream, :meth:`flush` at the end.

    ``first_clause_min_chars`` (when > 0) lets the *first* piece of each utterance end early at a
    clause boundary (comma, semicolon, colon, dash) once it is at least that long, so synthesis can
    start before the first sentence is finished; later pieces are whole sentences.

    ``first_phrase_min_words`` (when > 0) also lets that first piece end before a word that opens a
    phrase ("and", "is", "in", "because", ...) once it has that many words and ``first_phrase_min_chars``
    characters, for a long first sentence without a comma: synthesis time grows with the length of the
    piece, and the caller waits for all of it. Piper ends each piece with ~0.1-0.2 s of silence, so the
    cut sounds like a breath.

    ``max_chars`` bounds every piece: a longer one is cut at its last clause boundary, else its
    last space, else hard at ``max_chars``, so a run-on reply still starts speaking.
    """

    def __init__(self, *, first_clause_min_chars: int = 0, first_phrase_min_words: int = 0,
                 first_phrase_min_chars: int = 20, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if first_clause_min_chars < 0 or first_phrase_min_words < 0:
            raise ValueError("first_clause_min_chars and first_phrase_min_words must be >= 0")
        if first_phrase_min_words and not first_clause_min_chars:
            raise ValueError("first_phrase_min_words needs first_clause_min_chars")
        self.first_phrase_min_words = first_phrase_min_words
        self.first_phrase_min_chars = max(first_phrase_min_chars, first_clause_min_chars)
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.first_clause_min_chars = first_clause_min_chars
        self.max_chars = max_chars
        self._buffer = ""
        self._scan_from = 0  # candidates before this offset are already known not to be boundaries
        self._emitted_any = False

    def push(self, fragment: str) -> list[str]:
        """Add a streamed fragment; return the pieces that are now certainly complete."""
        self._buffer += fragment
        return self._drain(final=False)

    def flush(self) -> list[str]:
        """End of the reply: return everything still buffered, and get ready for the next reply
        (the early first-clause rule applies again)."""
        pieces = self._drain(final=True)
        rest = self._buffer.strip()
        if rest:
            pieces.append(rest)
        self._buffer = ""
        self._scan_from = 0
        self._emitted_any = False
        return pieces

    # --- internals --------------------------------------------------------------------------

    def _drain(self, *, final: bool) -> list[str]:
        """Emit every piece the buffer already decides."""
        pieces: list[str] = []
        while True:
            stripped = self._buffer.lstrip()
            self._scan_from = max(0, self._scan_from - (len(self._buffer) - len(stripped)))
            self._buffer = stripped
            if not self._buffer:
                return pieces
            end, resume = self._find_boundary(final)
            if end == _WAIT:
                # Only whitespace can follow an undecided candidate, so waiting never lets the
                # buffer run away, and deciding later keeps streamed and whole-text cuts identical.
                return pieces
            if end is None or end > self.max_chars:
                if len(self._buffer) <= self.max_chars:
                    return pieces  # no boundary yet; flush() takes the rest
                end = resume = self._cut_point()
            piece = self._buffer[:end].strip()
            self._buffer = self._buffer[resume:]
            self._scan_from = 0
            if piece:
                pieces.append(piece)
                self._emitted_any = True

    def _find_boundary(self, final: bool) -> tuple[int | None, int]:
        """The earliest decided boundary as (piece end, where the next piece starts).

        Returns ``(None, 0)`` when the buffer holds no boundary, and ``(_WAIT, 0)`` when the
        earliest candidate cannot be judged until more text arrives. Candidates rejected for good
        move ``_scan_from`` past them, so a character-by-character stream does not rescan the
        whole buffer on every push.
        """
        buf = self._buffer
        early = self.first_clause_min_chars > 0 and not self._emitted_any
        pos = self._scan_from
        while True:
            match = _CANDIDATE.search(buf, pos)
            limit = match.start() if match else len(buf)
            if early:
                clause = self._early_clause(pos, limit, final)
                if clause is not None:
                    return clause
            if match is None:
                # A clause mark may still gain its following whitespace: rescan the tail.
                self._scan_from = max(self._scan_from, len(buf) - 2 if early else len(buf))
                return None, 0
            verdict = self._judge(match, final)
            if verdict is not None:
                return verdict
            pos = match.end()
            self._scan_from = pos

    def _early_clause(self, start: int, limit: int, final: bool) -> tuple[int, int] | None:
        """A clause boundary in ``buf[start:limit]`` that ends a long-enough first piece."""
        buf = self._buffer
        phrase = self._early_phrase(limit)  # the earlier of a phrase cut and a clause cut wins
        for clause in _CLAUSE.finditer(buf, start, limit):
            end = clause.end()
            if len(buf[:end].strip()) >= self.first_clause_min_chars:
                return phrase if phrase is not None and phrase[0] < end else (end, end)
        if phrase is not None:
            return phrase
        # A clause mark at the very end of the buffer may become a boundary once the next
        # character (whitespace or not) arrives.
        tail = buf[limit - 1 : limit] if limit == len(buf) and limit > 0 else ""
        if tail in {",", ";", ":", "-", "–"} and not final:
            if len(buf[:limit].strip()) >= self.first_clause_min_chars:
                return _WAIT, 0
        return None

    def _early_phrase(self, limit: int) -> tuple[int, int] | None:
        """The first phrase-opening word in ``buf[:limit]`` with enough text before it (cut before the word).

        Scanned from the start every time (the first piece is short): a word is judged only once it is
        complete, so a streamed text and the whole text are cut at the same place.
        """
        if not self.first_phrase_min_words:
            return None
        buf = self._buffer
        for word in _WORD_START.finditer(buf, 0, limit):
            if word.group(1).lower() not in _PHRASE_STARTERS:
                continue
            before = buf[: word.start()].strip()
            if re.search(r"(\bnot|n't|\bto)$", before, re.I):
                continue  # "I do not | have", "I'd like to | ..." are no breath points
            if word.group(1).lower() == "of" and before.rsplit(None, 1)[-1].lower().strip(",.;:") in _OF_BOUND:
                continue
            if len(before) >= self.first_phrase_min_chars and len(before.split()) >= self.first_phrase_min_words:
                return word.start(), word.start()
        return None

    def _judge(self, match: re.Match[str], final: bool) -> tuple[int, int] | None:
        """Decide one candidate: a boundary ``(end, resume)``, ``(_WAIT, 0)``, or ``None`` (not one)."""
        buf = self._buffer
        if match.group(0) == "\n":
            return match.start(), match.end()
        end = match.end()
        while end < len(buf) and buf[end] in _CLOSERS:
            end += 1
        if end == len(buf):
            return (end, end) if final else (_WAIT, 0)
        if not buf[end].isspace():
            return None  # "3.5", "e.g", "example.com", "Hello.World"
        if match.group(0) != ".":
            return end, end  # "!", "?", "?!", "...", "…"
        before = buf[: match.start()]
        if _LIST_NUMBER.search(before):
            return None  # "1. Call us" at the start of a piece is a list marker
        word = _WORD_BEFORE.search(before)
        if word is None:
            return end, end
        token = word.group(1)
        lowered = token.lower()
        if lowered in _NEVER_FINAL or (len(token) == 1 and token.isupper()):
            return None  # "Dr. Smith", "J. Smith"
        if lowered in _MAYBE_FINAL or re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", token):
            rest = buf[end:].lstrip()
            if not rest:
                return (end, end) if final else (_WAIT, 0)
            return (end, end) if rest[0].isupper() else None
        return end, end

    def _cut_point(self) -> int:
        """Where to cut a piece that outgrew ``max_chars``: after its last clause mark, else at
        its last space, else hard at ``max_chars``."""
        window = self._buffer[: self.max_chars + 1]
        best = None
        for clause in _CLAUSE.finditer(window):
            if 0 < clause.end() <= self.max_chars:
                best = clause.end()
        if best is None:
            space = window.rfind(" ", 1)
            best = space if space > 0 else self.max_chars
        return best


def split_sentences(text: str) -> list[str]:
    """Split a whole text into sentences, exactly as :class:`SentenceChunker` would stream it."""
    chunker = SentenceChunker()
    return chunker.push(text) + chunker.flush()
