"""A document fact as a telephone voice says it: a table row as a sentence with its column names, a
directory line without its dashes, no markup, no pipes, at most a couple of short sentences."""

from __future__ import annotations

import re

from brain.prompt import DAYS, WEEKDAY
from memory.documents import Fact
from speech.sentences import split_sentences

MAX_SPOKEN_WORDS = 32
_SEPARATORS = re.compile(r"\s+[—–|]\s+|\s+-\s+|\s*\|\s*")
_MARKUP = re.compile(r"\*\*|__|`|~~|^#+\s*|^\s*[-*•▪◦‣]\s+", re.M)
_CENTS = re.compile(r"(\d)\.00\b")
_NEGATION = re.compile(r"\b(?:no|not|never|don'?t|doesn'?t|cannot|can'?t|closed|only)\b", re.I)


def tidy(text: str) -> str:
    """Markup and table punctuation out, separators as commas, whole-unit prices without their cents."""
    text = _MARKUP.sub("", text)
    text = _SEPARATORS.sub(", ", text)
    text = _CENTS.sub(r"\1", text)
    text = " ".join(text.split()).strip(" ,;")
    return text if not text or text[-1] in ".!?" else text + "."


def _row(fact: Fact) -> str:
    cells = [(h.strip(), v.strip()) for h, v in fact.cells if v.strip()]
    if not cells:
        return tidy(fact.text)
    (_, first), rest = cells[0], cells[1:]
    if not rest:
        return tidy(first)
    parts = [f"{h.lower()} {v}" if not h.lower().startswith("column") else v for h, v in rest[:4]]
    # Too long to say whole: the longest cell loses its last clauses, so the row's end (often its price)
    # is still said, not cut off mid-phrase ("fee £195 fixed fee per tax.")
    while len(f"{first}: {', '.join(parts)}".split()) > MAX_SPOKEN_WORDS:
        longest = max(range(len(parts)), key=lambda i: len(parts[i].split()))
        clauses = re.split(r",\s+(?:and\s+)?", parts[longest])
        if len(clauses) < 2:
            break
        parts[longest] = ", ".join(clauses[:-1])
    return tidy(f"{first}: " + ", ".join(parts))


def shorten(text: str, max_words: int = MAX_SPOKEN_WORDS) -> str:
    """Whole sentences up to ``max_words`` (the first one, cut at a word, if it alone is longer)."""
    kept: list[str] = []
    count = 0
    for sentence in split_sentences(text):
        words = len(sentence.split())
        if kept and count + words > max_words:
            break
        kept.append(sentence)
        count += words
    said = " ".join(kept) if kept else text
    words = said.split()
    return said if len(words) <= max_words else " ".join(words[:max_words]).rstrip(",;:") + "."


def spoken(fact: Fact, sentence: str | None = None) -> str:
    """What to say for ``fact`` (``sentence``: the one sentence of a prose fact that answers)."""
    if sentence is not None:
        return shorten(tidy(sentence))
    if fact.kind == "row":
        return shorten(_row(fact))
    if fact.kind == "field" and fact.cells:
        label, value = fact.cells[0]
        return shorten(tidy(f"{label}: {value}"))
    return shorten(tidy(fact.text))


_PLAIN_NO = re.compile(r"\b(?:exclud\w*|do not|don't|does not|doesn't|cannot|can't|is not|isn't|are not|aren't|never|no longer|"
                       r"not (?:accepted|allowed|possible|available|included|covered))\b", re.I)
_NOT_A_NO = re.compile(r"\b(?:at |with |for )?no (?:extra |additional )?(?:charge|cost|fee|obligation)\b|\bfree of charge\b"
                       r"|\bno problem\b|\bno need to book\b", re.I)
_PERMITS = re.compile(r"\b(?:can|may|are welcome|is welcome|welcome to|are able to|is possible|allowed|we accept|we take)\b",
                      re.I)
_HEDGE = re.compile(r"\b(?:only|except|unless|but|however|although|if)\b", re.I)


def days_named(text: str) -> set[str]:
    """The weekdays a text names, ranges spread ("Tuesday to Thursday" is three days)."""
    lowered = text.lower()
    days = {m.group(1) for m in re.finditer(rf"\b{WEEKDAY}\b", lowered)}
    for m in re.finditer(rf"\b{WEEKDAY}\s*(?:to|-|–|until|through)\s*{WEEKDAY}\b", lowered):
        first, last = DAYS.index(m.group(1)), DAYS.index(m.group(2))
        days |= {DAYS[(first + n) % 7] for n in range((last - first) % 7 + 1)}
    return days


def refuses(said: str) -> bool:
    """Does a fact refuse something ("We do not accept cheques", "Cash: not accepted")? "At no charge" does not."""
    return bool(_PLAIN_NO.search(_NOT_A_NO.sub(" ", said)))


def yes_or_no(question_is_yes_no: bool, coverage: float, said: str, question: str = "") -> str:
    """A yes/no question answered by a fact that plainly says what was asked starts with "Yes"; a fact that
    already starts with its yes or no, or hedges ("only", "not"), is said as it is. "Is she in on
    Thursdays?" answered by a row of the days someone works is a yes or a no by those days."""
    if not question_is_yes_no or re.match(r"^\s*(yes|no)\b", said, re.I):
        return said
    asked_days, listed = days_named(question), days_named(said)
    plain = _NOT_A_NO.sub(" ", said)  # "at no charge" refuses nothing
    if len(asked_days) == 1 and len(listed) >= 2 and re.search(r"\b(?:in|work|working|there|around|available|open)\b",
                                                               question, re.I):
        return f"{'Yes' if asked_days <= listed else 'No'}. {said}"
    if coverage >= 0.99 and not _NEGATION.search(plain):
        return f"Yes. {said}"
    if coverage >= 0.6 and _PERMITS.search(said) and not _NEGATION.search(plain) and not _HEDGE.search(said):
        return f"Yes. {said}"  # "Can I leave my car overnight?" - "Cars can stay overnight in our yard."
    if coverage >= 0.85 and _PLAIN_NO.search(said) and not _HEDGE.search(said):
        return f"No. {said}"  # "Can I pay by cheque?" - "We do not accept cheques."
    return said
