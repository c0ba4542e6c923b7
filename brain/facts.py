"""The fact guard: no figure reaches the caller unless the configuration, the company's documents or
the caller themselves said it.

Small models invent prices, hours and phone numbers fluently. Before a sentence is spoken, its
figures (amounts, times, counts, phone numbers, extensions, percentages) are extracted and each must
be *supported*: present in the job configuration, in the passages retrieved for this turn, in the
caller's memory or in what the caller said in this call. A sentence with an unsupported figure is
replaced by an honest one. Figures are compared as numbers, so "$95", "95 dollars" and "ninety-five"
are the same figure, and "17:00" supports "5 pm".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WORD_NUMBERS = {
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "noon": 12, "midnight": 0,
}
# "one" is left out on purpose: "one moment", "anyone", "the one who..." are not figures.
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_COMPOUND = re.compile(r"\b(" + "|".join(_TENS) + r")[- ](" + "|".join(_UNITS) + r")\b", re.IGNORECASE)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_PHONE = re.compile(r"(?<![\w.])\+?\d(?:[\d().\s-]{5,}\d)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORDS = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)


def _values_of_number(text: str) -> set[str]:
    digits = text.replace(",", "")
    try:
        value = float(digits)
    except ValueError:
        return set()
    out = {str(int(value))} if value == int(value) else {str(value), str(int(value))}
    return out


def figures(text: str) -> set[str]:
    """The figures in a text, canonicalised: numbers as their integer strings, phone numbers as digits."""
    found: set[str] = set()
    rest = text
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if len(digits) >= 6:
            found.add(digits)
            rest = rest.replace(match.group(), " ")
    for match in _TIME.finditer(rest):
        hour, minute = int(match.group(1)), int(match.group(2))
        found.add(f"{hour % 12 or 12}:{minute:02d}")
        found.add(str(hour % 12 or 12))
    rest = _TIME.sub(" ", rest)
    for match in _NUMBER.finditer(rest):
        found |= _values_of_number(match.group())
    spelled = _COMPOUND.sub(lambda m: str(_TENS[m.group(1).lower()] + _UNITS[m.group(2).lower()]), rest)
    for match in _NUMBER.finditer(spelled):
        if match.group() not in rest:
            found |= _values_of_number(match.group())
    for match in _WORDS.finditer(_COMPOUND.sub(" ", rest)):
        found.add(str(_WORD_NUMBERS[match.group(1).lower()]))
    return found


def support_figures(text: str) -> set[str]:
    """Figures a source text supports: every figure, plus each time's hour on the 12-hour clock."""
    found = figures(text)
    for match in _TIME.finditer(text):
        hour = int(match.group(1))
        found |= {str(hour), str(hour % 12 or 12)}
    # Phone numbers may be read in groups ("555 0100"): their groups are supported too.
    for match in _PHONE.finditer(text):
        found |= {g for g in re.split(r"\D+", match.group()) if g}
    return found


@dataclass
class FactGuard:
    """Checks sentences against what is known; counts its interventions."""

    base_support: set[str] = field(default_factory=set)  # from the job configuration
    checked: int = 0
    fired: int = 0

    @classmethod
    def from_texts(cls, *texts: str) -> "FactGuard":
        support: set[str] = set()
        for text in texts:
            support |= support_figures(text)
        return cls(support)

    def unsupported(self, sentence: str, extra_support: set[str]) -> set[str]:
        allowed = self.base_support | extra_support
        missing = set()
        for figure in figures(sentence):
            if figure in allowed:
                continue
            if len(figure) >= 6 and any(figure in a or a in figure for a in allowed if len(a) >= 6):
                continue  # a phone number said with or without its country code
            missing.add(figure)
        return missing

    def check(self, sentence: str, extra_support: set[str]) -> bool:
        """True when every figure in ``sentence`` is supported (and counts the check)."""
        self.checked += 1
        if self.unsupported(sentence, extra_support):
            self.fired += 1
            return False
        return True
