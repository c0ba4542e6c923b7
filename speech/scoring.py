"""Word error rate between reference transcripts and recognised text, written styles reconciled.

References and Whisper disagree on style ("Mr" / "mister", "1,001" / "one thousand one",
"oh" / "zero", punctuation and case), none of which is a recognition error. Both sides are
normalised to lower-case words with numbers spelled out before jiwer scores them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jiwer
from num2words import num2words

_NUMBER = re.compile(r"\d+")
_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_EQUIVALENTS = {"mister": "mr", "oh": "zero", "o": "zero", "counselled": "counseled", "okay": "ok"}


def _spell_number(match: re.Match[str]) -> str:
    digits = match.group()
    # Short numbers are said as numbers ("ten"); long ones (phone, zip, order numbers) digit by digit.
    if len(digits) <= 2:
        return f" {num2words(int(digits))} "
    return " " + " ".join(num2words(int(d)) for d in digits) + " "


def normalize_words(text: str) -> str:
    text = text.lower().replace(",", "").replace("-", " ")
    text = _NUMBER.sub(_spell_number, text)
    text = _NON_WORD.sub(" ", text).replace("-", " ")
    words = [_EQUIVALENTS.get(w, w) for w in text.split()]
    return " ".join(words)


@dataclass(frozen=True)
class WERResult:
    wer: float
    words: int
    errors: int


def word_error_rate(references: list[str], hypotheses: list[str]) -> WERResult:
    """Corpus WER (total edits / total reference words) over normalised text."""
    refs = [normalize_words(r) for r in references]
    hyps = [normalize_words(h) for h in hypotheses]
    words = sum(len(r.split()) for r in refs)
    if words == 0:
        raise ValueError("references have no words")
    out = jiwer.process_words(refs, [h if h else "" for h in hyps])
    errors = out.substitutions + out.deletions + out.insertions
    return WERResult(errors / words, words, errors)
