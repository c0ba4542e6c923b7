"""Answering from the company's documents, one fact at a time.

Documents arrive as facts (memory.documents: a table row with its headers, a bullet, a ``Label: value``
line, a FAQ answer with its question, a sentence of prose), each under its heading path. A question is
matched against every fact two ways — by words (BM25 over stems: names, figures and rare words that
embeddings blur) and by meaning (MiniLM cosine) — and the two rankings are fused (reciprocal rank).
Whether the best fact *answers* the question, rather than talks about something near it, needs two
signals to agree: meaning and coverage (most of the question's content words, stemmed, appear in the
fact or its headings). Passages were too coarse for that test (measured: top passage similarity
overlapped for answerable and unanswerable questions); facts with their headings are sharp enough.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from typing import Callable

import bm25s
import numpy as np
import snowballstemmer

try:
    from wordfreq import zipf_frequency as _zipf
except ImportError:  # pragma: no cover - a dependency; the weighting degrades to document rarity alone
    _zipf = None

from brain.prompt import DAYS, WEEKDAY
from brain.speakable import refuses, spoken, yes_or_no
from memory.documents import Fact
from memory.documents.text import read_text
from memory.documents.blocks import facts_from_blocks
from memory.records import COMPANY_FACTS, COMPANY_OWNER
from memory.service import MemoryService
from speech.sentences import split_sentences

MIN_SIMILARITY = 0.45
MIN_COVERAGE = 0.5
FULL_COVERAGE_SIMILARITY = 0.3
SEVERAL_COVERED_SIMILARITY = 0.2
NEEDED_SIMILARITY = 0.4
NEEDED_COVERAGE = 0.4
# the "every telling word is known" rule: the rarest unknown word's weight, and the floors beside it
KNOWN_ABSENT = 0.6
KNOWN_SIMILARITY = 0.35
KNOWN_COVERAGE = 0.3
# A rare word of the asked sentence that no fact has ("conservatory", "terracotta", "infrared") names what is asked
# for, and the documents do not have it: the nearest fact is a neighbour, said as such, not as the answer.
# (Measured on the knowledge probe, 2026-12-08: a plain veto at this level made 6 of its 48 near misses
# honest and cost no answerable question there, but cost 6 of 121 first turns of the tuned calls - "a full
# service on my little <car model>" - which the hedged neighbour still answers.)
ASKED_ABSENT = 0.9
_FIGURE = re.compile(r"\d")
MODIFIER_REACH = 3  # words between a thing and its variant word: "gutter clearing on a conservatory"
INSTEAD_SIMILARITY = 0.5  # a refusal's neighbour this near in meaning says what is done instead
RRF_K = 60  # reciprocal-rank fusion's damping, the value of the original paper (Cormack et al. 2009)
CANDIDATES = 8
_STOP = set(
    "the a an to is and of i my me for in on at it you your do does did what whats how much many is are can we our "
    "with from who whos where wheres when which any there have has be this that will would could should about get "
    "need want hi hello please roughly if or by tell know like us exactly actually just really again also still "
    "he she they him her his hers their theirs anywhere somewhere anything something suppose supposed going gonna "
    "reckon okay alright ballpark think thinking goes sort kind anyone someone somebody anybody everyone "
    "whereabouts usually currently right sorry okay ok anyway well um uh oh thing more whole btw confirm check say those these them".split()
    # words for the business itself: "your practice", "the company" name no fact
    + "practice company office business shop clinic firm place here".split()
)
_STEMMER = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[a-z0-9]+")
_WHO = re.compile(r"^\W*(?:and\s+|so\s+)?who\b", re.I)
_PERSON = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z'’-]+\b")
FOLLOW_UP = re.compile(r"\b(those|these|that one|this one|them|it|the same|one of those|each|for that|do that|twice as many|"
                       r"double that|as many|"
                       r"that (?:job|work|service|repair|treatment|option|package))\b", re.I)
_YES_NO = re.compile(r"^\s*(?:and\s+|so\s+|also\s+)?(do|does|is|are|can|could|will|would|have|has|may|should)\b", re.I)
# Words a caller uses for what documents call otherwise: a question's "cost" is a table's "price".
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cost": ("price",), "charg": ("price",), "fee": ("price",), "pay": ("payment", "price"), "paid": ("pay", "payment"),
    "car": ("park",), "locat": ("address",), "street": ("address",), "email": ("mail",), "long": ("durat",),
    "number": ("phone",), "old": ("age",), "young": ("age",), "kid": ("child",), "daughter": ("child",), "son": ("child",), "boy": ("child",), "girl": ("child",), "children": ("child",),
    "extens": ("ext",), "take": ("accept",), "direct": ("address",), "find": ("address",), "youngest": ("minimum", "age"),
    "oldest": ("maximum", "age"), "cheapest": ("price",), "earliest": ("open",), "latest": ("close",),
    "pick": ("collect",), "tomorrow": ("next",), "regular": ("routin",), "routin": ("regular",), "littl": ("small",), "tini": ("small",), "big": ("larg",), "huge": ("larg",),
    "cover": ("serv", "area", "guarante", "warranti"), "warn": ("notic",), "deal": ("discount", "offer"), "settl": ("pay",), "offer": ("discount",), "notic": ("warn",), "serv": ("cover", "area"), "own": ("owner",), "send": ("mail", "email", "upload"),
    # irregular forms the stemmer leaves apart
    "bound": ("bind",), "sent": ("send", "mail"), "took": ("take",), "gave": ("give",), "bought": ("buy",),
    "brought": ("bring",), "built": ("build",), "kept": ("keep",), "left": ("leav",), "made": ("make",),
}
# Questions whose asking words carry the meaning: "where are you?" asks for the address, "how long" for a
# duration. Each names the word to look for when the question has few words of its own, and what the
# answer must hold: a fact without a duration does not answer "how long" (however near its words are).
_DURATION = r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|fifteen|twenty|thirty|forty|forty-five|sixty|" \
            r"ninety|half an?|an?)\s*(-\s*)?(?:working |business |clear |full |calendar )?(min|mins|minutes?|hours?|hrs?|days?|weeks?|months?|years?)\b" \
            r"|\bduration\b|\b(?:all|whole|full|half|same|next)[ -](?:day|morning|afternoon)\b|\bovernight\b|\bwhile you wait\b"
_ADDRESS = re.compile(r"\b\d+\s+\w+.*\b(road|street|st|avenue|ave|lane|ln|row|way|drive|dr|place|court|square|park|"
                      r"boulevard|blvd|highway|hwy|crescent|close|terrace|wynd|parade|mall)\b|\baddress\b|\blocated\b|"
                      r"\bnext to\b|\bbehind\b|\bfloor\b|\bcorner\b|\bunit\b", re.I)
_STREET = re.compile(r"\b\d+\s+\w+.*\b(road|street|st|avenue|ave|lane|ln|row|way|drive|dr|place|court|square|"
                     r"boulevard|blvd|highway|hwy|crescent|close|terrace|wynd|parade)\b", re.I)
# "What's the damage?", "what will it set me back?": the words ask a price and name nothing of the fact.
_PRICE_IDIOM = re.compile(r"\bwhat'?s the damage\b|\bwhat (?:is|was) the damage\b|\bset (?:me|us) back\b"
                          r"|\bwhat (?:do|would|will|did) you (?:charge|want|ask)\b|\bhow much (?:would|will|do) you (?:want|ask)\b", re.I)
_PRICE_IDIOM_STEMS = frozenset(_STEMMER.stemWords(["damage", "set", "back", "want", "ask"]))
# "What's the best number to ring you on?", "can I take down your main office number?": a phone number is asked
# for, and "ring", "best" and "take down" name nothing of the fact.
_PHONE_ASKED = re.compile(r"\b(?:number|ring|call|phone|reach|contact|get hold of|get through to) (?:you|the office|your office)\b"
                          r"|\b(?:your|the|main|office|contact|best|direct) (?:phone |telephone |office |contact )?number\b"
                          r"|\bwhich extension\b|\bextension (?:for|do|is)\b", re.I)
_PHONE_ASKED_STEMS = frozenset(_STEMMER.stemWords(["ring", "call", "phone", "reach", "contact", "best", "main", "take",
                                                   "down", "dial", "next", "time", "get", "hold", "through"]))
_NAMED = re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z'’-]+\b")  # a person's name (a heading's capitals are not looked at)
_ASKS = [(re.compile(r"\bwhere(?:abouts)?\b(?!.*\b(park|parking)\b)", re.I), "address", _ADDRESS),
         (re.compile(r"(?<!mail )(?<!e-mail )\baddress\b", re.I), "address", _ADDRESS),
         (re.compile(r"\bhow long\b|\bhow much (?:notice|time|warning)\b", re.I), "duration", re.compile(_DURATION, re.I)),
         (re.compile(r"\bhow much\b(?!\s+(?:notice|time|longer|later|earlier|warning|space|room|weight))|\bwhat (does|do|would|will) .*\bcost\b|\bprice of\b"
                     r"|" + _PRICE_IDIOM.pattern, re.I), "price",
          re.compile(r"[$€£¥]\s?\d|\d\s?(€|£|dollars?|euros?|pounds?)\b|\bfree\b|\bprice\b|\bfee\b|\bcosts?\b|"
                     r"\bno charge\b|\d+(\.\d\d)\b|\bpercent\b|%", re.I)),
         (re.compile(r"\bhow old\b|\bwhat age\b|\b(youngest|oldest|minimum|maximum) age\b", re.I), "age",
          re.compile(r"\bages?\b|\byears?\b|\bmonths?\b|\bold\b|\d+\s*\+", re.I)),
         (re.compile(r"\bwhen(?:'s| is| are| was)? (?:the |my |your )?(?:deadlines?|due date|cut-?off|last date)\b|\bby when\b"
                     r"|\bwhat(?:'s| is) the (?:deadline|due date|cut-?off|last date)\b", re.I), "date",
          re.compile(r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b"
                     r"|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\s+\d{1,2}\b|\bthe \d{1,2}(?:st|nd|rd|th)\b"
                     r"|\b(?:mon|tues|wednes|thurs|fri|satur|sun)day\b|\bnoon\b|\b\d{1,2}(?::\d\d)?\s*(?:am|pm)\b|\bwithin\b"
                     r"|\b(?:before|after)\b", re.I)),
         (_PHONE_ASKED, "phone", re.compile(r"\d{3,}[\s.-]?\d{3,}|\bext(?:ension|\.)?\s*\d+", re.I)),
         (re.compile(r"^\W*who\b", re.I), "name", _NAMED)]


_SUBORDINATE = re.compile(r"\b(?:when|if|because|since|while|before|after|so that|as soon as|once)\b[^,?.]*", re.I)


def main_clause(question: str) -> str:
    """The question without its "when I come to pick up a big order" part (its words say little of the fact).
    "Is it okay if I pay by cheque?" keeps its if-clause: that clause is what is asked."""
    if re.match(r"^\W*(?:and\s+|so\s+)?(?:is it|would it be|will it be|is that) (?:ok(?:ay)?|alright|all right|fine|possible|"
                r"a problem|allowed) if\b", question, re.I):
        return question
    return _SUBORDINATE.sub(" ", question)


def asked_sentences(turn: str) -> str:
    """The sentences of a turn that ask ("I split logs for the village. How much to replace a chain?" -> the second):
    what the caller tells around a question helps find the fact, but the fact need not repeat it."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", turn.strip()) if s]
    asking = [s for s in sentences if s.endswith("?")]
    if not asking or len(asking) == len(sentences):
        return turn
    # "I was hoping to see Ida on a Thursday. Is she in on Thursdays?": the name "she" stands for goes along
    names = [w for s in sentences if s not in asking for w in re.findall(r"(?<=\s)[A-Z][a-z]+\b", s)
             if w.lower() not in _STOP and w.lower() not in DAYS]
    return " ".join(asking + names)


def asked_for(question: str) -> list[str]:
    """What a question's asking words ask for ("where are you?" -> address), when its own words are few."""
    question = asked_sentences(question)
    stems = wanted_stems(question)  # "the best number to ring you on" has one word of its own
    if len(stems) >= 2:
        return []
    return [word for pattern, word, _ in _ASKS if pattern.search(question) and not (stems & content_stems(word))]


def _asked_words(question: str) -> list[str]:
    return [word for pattern, word, _ in _ASKS if pattern.search(question)]


# "Who teaches the adult classes?", "who sorts out fleet accounts?": a person is asked for, and the verbs
# that say so ("teach", "look after", "talk to", "guy") are no words of the fact (a staff row says
# "adult coach", not "teaches").
_WHO_NOT_A_PERSON = re.compile(r"\bwho (?:do|should|can) (?:i|we) (?:make|pay|write|address|send)\b", re.I)
_WHO_STEMS = frozenset(_STEMMER.stemWords(
    "sort sorts sorting look looks looking after talk speak teach teaches teaching handle handles handling deal deals "
    "dealing charge guy guys person people someone somebody responsible run runs manage manages contact ask see "
    "best does would should normally usually".split()))


# Asking words and the stems of theirs a fact need not have ("how long" asks a duration, not "long").
_HOW_ASKED = [(re.compile(r"\bhow long\b", re.I), ("long",)), (re.compile(r"\bhow old\b", re.I), ("old",)),
              (re.compile(r"\bhow early\b", re.I), ("earli",)), (re.compile(r"\bhow late\b", re.I), ("late",)),
              (re.compile(r"\bhow far\b", re.I), ("far",)),
              (re.compile(r"\bhow much (?:notice|warning)\b", re.I), ("notic", "warn")),
              (re.compile(r"\bset aside\b", re.I), ("set", "asid")), (re.compile(r"\bhow long\b.*\ballow\b", re.I), ("allow",))]


_IN_ON_DAY = re.compile(r"\b(?:is|are|will|does|do)\s+(?:\w+\s+){0,2}(?:in|working|work|around|available|there|about)\s+"
                        r"(?:on\s+)?(?:a\s+|the\s+)?" + WEEKDAY + r"\b", re.I)
_WEEKDAY_STEMS = frozenset(_STEMMER.stemWords(list(DAYS)))


def wanted_stems(question: str) -> set[str]:
    """The stems a fact must cover to answer the question: a who-question's asking verbs and the "long" of
    "how long" left out (what the answer must hold, a duration or a name, stands for them)."""
    stems = content_stems(question)
    if _WHO.search(asked_sentences(question)) and stems - _WHO_STEMS:  # "I run a shop. Who would I deal with?"
        stems = stems - _WHO_STEMS
    asked = {stem for pattern, stems_asked in _HOW_ASKED if pattern.search(question) for stem in stems_asked}
    if _PRICE_IDIOM.search(question):
        asked |= _PRICE_IDIOM_STEMS
    if _IN_ON_DAY.search(question):  # "is she in on Thursdays?": the fact lists the days, the day is what is asked
        asked |= {stem for stem in stems if stem in _WEEKDAY_STEMS}
    if _PHONE_ASKED.search(question):
        asked |= _PHONE_ASKED_STEMS
    return stems - asked if stems - asked else stems


def required_in_answer(question: str) -> list[re.Pattern[str]]:
    """What an answer to the question must hold (a duration for "how long", an amount for "how much"; an
    address for "where are you?" and a name for "who?" only when the question has few words of its own)."""
    question = asked_sentences(question)
    few = set(asked_for(question))
    needed = []
    for pattern, word, pattern_needed in _ASKS:
        asked = pattern.search(question)
        if asked and (word not in ("address", "name") or word in few or asked.group(0).lower() == "address"
                      or word == "name" and not _WHO_NOT_A_PERSON.search(question)):
            needed.append(pattern_needed)
    return needed


_NUMBER_WORDS = {w: str(n) for n, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty".split())} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
                                            "hundred": "100"}


_HUNDREDS = re.compile(r"\b(one|two|three|four|five|six|seven|eight|nine|ten|a) (hundred|thousand)\b")


_BY = re.compile(r"\b(\d+|two|three|four|five|six|eight|ten|twelve)\s*(?:by|x)\s*(\d+|two|three|four|five|six|eight|ten|twelve)\b",
                 re.I)


_STEM_ZIPF: dict[str, float] = {}  # a stem -> how common its word is in English (wordfreq's Zipf scale, 0-8)


def english_rarity(stem: str) -> float:
    """How much a word tells apart one fact from another, judged by English at large: "go", "back" and
    "done" are in every sentence a caller says, "gasket" and "invoice" name a thing. wordfreq's Zipf
    scale (a word's log frequency per billion words) is a well-kept measure; without it every word counts 1."""
    zipf = _STEM_ZIPF.get(stem)
    if zipf is None:
        return 1.0
    return min(1.0, max(0.15, (7.0 - zipf) / 3.0))


def english_zipf(word: str) -> float:
    """How common a word is in English (wordfreq's Zipf scale, 0-8; 0 without wordfreq): "delivery" 4.6, "Solberg" 2."""
    return _zipf(word.lower(), "en") if _zipf is not None else 0.0


_STEM_ZIPF_LIMIT = 200_000  # callers' words are not ours to keep without bound


def _remember_zipf(words: list[str], stems: list[str]) -> None:
    if _zipf is None:
        return
    for word, stem in zip(words, stems):
        if stem not in _STEM_ZIPF and len(_STEM_ZIPF) < _STEM_ZIPF_LIMIT and not any(c.isdigit() for c in word):
            _STEM_ZIPF[stem] = _zipf(word, "en")


def content_stems(text: str) -> set[str]:
    """The stemmed content words of a text (numbers as digits: "five hundred" is 500)."""
    text = re.sub(r"\b(?:US|U\.S\.|USA)\b", "usa", text)  # the country, not the stop word "us"
    # a cheque, in either spelling, is a payment; the verb "check" ("can you check ...") is a stop word
    text = re.sub(r"\bcheques?\b", "checks", text, flags=re.I)
    text = re.sub(r"\b(by|a|an|personal|your|my) checks?\b", r"\1 checks", text, flags=re.I)
    text = re.sub(r"\bwrite (?:you |us )?(a|an|personal) checks\b", r"pay by \1 checks", text, flags=re.I)
    text = _BY.sub(lambda m: f"{_NUMBER_WORDS.get(m.group(1).lower(), m.group(1))}x"
                             f"{_NUMBER_WORDS.get(m.group(2).lower(), m.group(2))}", text)  # "four by four" is "4x4"
    lowered = _HUNDREDS.sub(lambda m: str((1 if m.group(1) == "a" else int(_NUMBER_WORDS[m.group(1)]))
                                          * (100 if m.group(2) == "hundred" else 1000)), text.lower())
    words = [_NUMBER_WORDS.get(w, w) for w in _WORD.findall(lowered.replace("'s", "").replace("e-mail", "email"))]
    words = [w for w in words if w not in _STOP and (len(w) > 2 or any(c.isdigit() for c in w)) and w not in ("1", "one")]
    stems = [s[:-1] if len(s) > 2 and s.endswith("s") and s[-2].isdigit() else s  # "4x4s" is "4x4"
             for s in _STEMMER.stemWords(words)]
    _remember_zipf(words, stems)
    return set(stems)


def _variants(stem: str) -> set[str]:
    """A stem and what it may meet in a fact: its usual synonym, and its agent noun's root (Snowball keeps
    "owner" whole while "own" is "own")."""
    out = {stem, *_SYNONYMS.get(stem, ())}
    if stem.endswith("er") and len(stem) > 4:
        out.add(stem[:-2])
    if stem.startswith("un") and len(stem) > 5:  # "unclog" meets "clogged", "unblock" "blockage"
        out.add(stem[2:])
    return out


def _expanded(stems: set[str]) -> set[str]:
    return {v for s in stems for v in _variants(s)}


def _meets(stem: str, stems: set[str]) -> bool:
    """Does a question's stem meet one of a fact's (itself, a synonym, or one the other begins: Snowball
    stems "deliver" and "delivery" apart)?"""
    variants = _variants(stem)
    if variants & stems:
        return True
    return len(stem) >= 5 and any(len(s) >= 5 and (s.startswith(stem) or stem.startswith(s)) for s in stems)


def coverage_of(wanted: set[str], stems: set[str], weight: Callable[[str], float] = lambda s: 1.0,
                heading: set[str] = frozenset()) -> float:
    """The share of the question's content stems a fact has (itself or its usual synonym), each stem weighted
    by its rarity in the documents ("cash" says more than "order" in a shop's); a stem only its
    heading has counts half (every fact under "Parking and contact" has "parking" there)."""
    if not wanted:
        return 0.0
    total = sum(weight(s) for s in wanted)
    found = 0.0
    for s in wanted:
        if _meets(s, stems):
            found += weight(s)
        elif _meets(s, heading):
            found += 0.5 * weight(s)
    return found / total


_CODE = re.compile(r"\b([A-Z])(\d{1,2})\b")  # a size or grade: A4, B2
_COUNT_WORDS = {"thousand": 1000, "hundred": 100, "dozen": 12}
_NUMBER_UNIT = re.compile(r"\b(\d+(?:\.\d+)?)(?:\s*(?:or|to|and|-|–)\s*(\d+(?:\.\d+)?))?[\s-]?([a-z]{3,})\b", re.I)
_PER = re.compile(r"\bper (\d+)\b|\b(?:pack|box|set) of (\d+)\b", re.I)
_NOT_UNITS = frozenset("and or per each for over under plus off from than the a an to in on at of with is are was".split())
_TIME_UNITS = frozenset(_STEMMER.stemWords("minute minutes hour hours day days week weeks month months year years am pm "
                                           "mile miles metre metres meter meters percent".split()))


def _numbers_with_units(text: str) -> list[tuple[float, float, str, str]]:
    lowered = re.sub(r"\b(a|one) (thousand|hundred|dozen)\b", lambda m: str(_COUNT_WORDS[m.group(2)]), text.lower())
    lowered = re.sub(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: _NUMBER_WORDS[m.group(1)], lowered)
    out = []
    lowered = re.sub(r"\b([2-9]0)[- ]([1-9])\b", lambda m: str(int(m.group(1)) + int(m.group(2))), lowered)  # "seventy-two"
    for m in _NUMBER_UNIT.finditer(lowered):
        if m.group(3) in _NOT_UNITS:
            continue  # "65 and over": no thing counted
        if m.start() > 0 and lowered[m.start() - 1] in "$£€":
            continue  # an amount of money is what is asked or quoted, no variant
        low, high = float(m.group(1)), float(m.group(2) or m.group(1))
        out.append((min(low, high), max(low, high), _STEMMER.stemWord(m.group(3)), lowered[max(0, m.start() - 14):m.start()]))
    return out


# Two sides of one distinction: a question about one side is not answered by a fact about the other only.
_CONTRASTS = [(re.compile(a, re.I), re.compile(b, re.I)) for a, b in [
    (r"\bfront\b", r"\b(?:back|rear)\b"), (r"\b(?:small|little|smaller)\b", r"\b(?:large|big|larger)\b"),
    (r"\bsingle[- ]sided\b|\bone side\b", r"\bdouble[- ]sided\b|\bboth sides\b"),
    (r"\bindoors?\b", r"\boutdoors?\b"), (r"\bupstairs\b", r"\bdownstairs\b"), (r"\bmanual\b", r"\bautomatic\b"),
    (r"\bpetrol\b", r"\bdiesel\b"), (r"\bweekdays?\b", r"\bweekends?\b"), (r"\bupper\b", r"\blower\b")]]


def _ranges(text: str) -> list[tuple[float, float, str]]:
    """Numbers with the word they count, widened by "up to", "under", "over", "from"."""
    out = []
    for low, high, unit, before in _numbers_with_units(text):
        if re.search(r"\b(?:up to|under|within|less than|fewer than|below|max(?:imum)?)\s*$", before):
            low = 0.0
        elif re.search(r"\b(?:over|more than|from|at least|above|min(?:imum)?)\s*$", before):
            high = float("inf")
        out.append((low, high, unit))
    return out


def other_variant(question: str, fact: str, asking: str | None = None) -> bool:
    """Does the fact state another variant of what was asked ("B5 notebooks" answered by the B4 row, "a 90-litre
    drum" by "40 or 60 litre drums", "a thousand labels" by the price per 200)? Then it does not answer it:
    the documents have no such variant, and its figures would be the wrong ones."""
    asking = asking or question
    for one, other in _CONTRASTS:
        for said, unsaid in ((one, other), (other, one)):
            if said.search(asking) and not said.search(fact) and unsaid.search(fact) and not unsaid.search(asking):
                return True
    for letter, number in _CODE.findall(question):
        if not re.search(rf"\b{letter}{number}\b", fact) and re.search(rf"\b{letter}\d{{1,2}}\b", fact):
            return True
    stated, asked = _ranges(fact), _ranges(question)
    for low, high, unit in asked:
        same_unit = [(l, h) for l, h, u in stated if u == unit]
        if same_unit and not any(l <= low and high <= h for l, h in same_unit):
            return True
    per = [int(next(g for g in m.groups() if g)) for m in _PER.finditer(fact)]
    counted = asked if asking == question else _ranges(asking)
    counts = [low for low, high, unit in counted if low == high and low >= 2 and unit not in _TIME_UNITS]
    return bool(per) and any(c not in per for c in counts)


@dataclass(frozen=True)
class AnswerFeatures:
    """What decided whether the best fact answers the question (for tools that study the decision).
    A logistic gate fitted over these (2026-12-07, six tuned businesses) did no better than the rules on a
    business left out of its fit (76 % against 77 % of 154 questions), so the rules decide."""

    similarity: float
    coverage: float
    rule: bool  # the rules' verdict
    absent: float  # the rarest question word that no fact has (english_rarity), 0 when none
    missing: str = ""  # the rare word of the asked sentence that no fact has, as the caller said it

    def accepted(self) -> bool:
        return self.rule


@dataclass(frozen=True)
class Answer:
    text: str  # what to say
    similarity: float
    coverage: float
    source: str
    support: str = ""  # the whole fact it came from (what the fact guard checks figures against)
    missing: str = ""  # what was asked that the documents lack: the text says so and gives the nearest fact


@dataclass(frozen=True)
class _Unit:
    """One answerable thing: a fact, or one sentence of a prose fact."""

    fact: Fact
    say: str
    match: str  # what is compared with the question: headings, question, text
    source: str


_PRONOUN_START = re.compile(r"^(?:he|she|they|his|her|their|it|its|this|these|that)\b", re.I)


def _sentence_units(fact: Fact, source: str, sentences: list[str], lead: str = "") -> list[_Unit]:
    """One unit per sentence; a question's unit says its answer, a sentence starting with "He"/"This" is
    said after the sentence it refers to ("Lee Ortega is our bookkeeper. She handles refunds.")."""
    heading = fact.heading
    units = []
    for index, sentence in enumerate(sentences):
        if sentence.endswith("?"):
            if index + 1 < len(sentences):
                answer = sentences[index + 1]
                units.append(_Unit(fact, spoken(fact, answer), f"{heading} {sentence} {answer}".strip(), source))
            continue
        said = sentence
        if index and _PRONOUN_START.match(sentence) and not sentences[index - 1].endswith("?"):
            said = f"{sentences[index - 1]} {sentence}"
        elif index == 0 and lead:
            said = f"{lead}: {sentence}"
        units.append(_Unit(fact, spoken(fact, said), f"{heading} {lead} {said}".strip(), source))
    return units


def _units(fact: Fact, source: str) -> list[_Unit]:
    if fact.kind == "text":
        sentences = [s.strip() for s in split_sentences(fact.text) if len(s.split()) >= 3]
        return _sentence_units(fact, source, sentences)
    if fact.kind == "field" and fact.cells:
        label, value = fact.cells[0]
        sentences = [s.strip() for s in split_sentences(value) if s.strip()]
        if len(sentences) > 1:  # "Cancellations: please give 24 hours notice. Late ones cost $40."
            return _sentence_units(fact, source, sentences, lead=label)
    return [_Unit(fact, spoken(fact), fact.search_text(), source)]


class KnowledgeIndex:
    """Every fact of the company documents, indexed twice (words and meaning); rebuilt when they change."""

    def __init__(self, service: MemoryService, company: str = "") -> None:
        self.service = service
        self.company = company
        self._lock = threading.Lock()
        self._version: int | None = None
        self._units: list[_Unit] = []
        self._matrix = np.zeros((0, 1), dtype=np.float32)
        self._stems: list[set[str]] = []
        self._heading_stems: list[set[str]] = []
        self._bm25: bm25s.BM25 | None = None
        self._df: dict[str, int] = {}

    def _stored_facts(self) -> list[tuple[Fact, str]]:
        stored = [(Fact.decode(p.text), p.source) for p in self.service.store.passages(COMPANY_FACTS)]
        if stored:
            return stored
        # A store filled before facts were kept: read its chunks as plain text.
        return [(fact, p.source) for p in self.service.store.passages(COMPANY_OWNER)
                for fact in facts_from_blocks(read_text(p.text))]

    def _refresh(self) -> None:
        version = self.service.store.count("passages")
        if version == self._version:
            return
        units = [unit for fact, source in self._stored_facts() for unit in _units(fact, source)]
        self._units = units
        self._stems = [_expanded(content_stems(u.match.removeprefix(u.fact.heading))) for u in units]
        self._heading_stems = [_expanded(content_stems(u.fact.heading)) for u in units]
        self._matrix = self.service.embedder.embed([u.match for u in units]) if units else self._matrix
        self._bm25 = None
        self._df = {}
        for stems, heading in zip(self._stems, self._heading_stems):
            for s in stems | heading:
                self._df[s] = self._df.get(s, 0) + 1
        if units:
            self._bm25 = bm25s.BM25()
            self._bm25.index([sorted(s | h) or ["_"] for s, h in zip(self._stems, self._heading_stems)],
                             show_progress=False)
        self._version = version

    def facts(self) -> list[Fact]:
        """Every fact (for flows that read the documents themselves, e.g. hours exceptions)."""
        with self._lock:
            self._refresh()
            seen: dict[int, Fact] = {}
            for unit in self._units:
                seen.setdefault(id(unit.fact), unit.fact)
            return list(seen.values())

    def _names_it(self, index: int, wanted: set[str]) -> bool:
        """Does the fact's name (a row's first cell, a field's label) consist of the question's words? ("single
        room" is the Single room row, not the Twin single room row.)"""
        fact = self._units[index].fact
        name = fact.cells[0][1] if fact.kind == "row" and fact.cells else (
            fact.cells[0][0] if fact.kind == "field" and fact.cells else "")
        stems = content_stems(re.sub(r"\(.*?\)", " ", name))
        return bool(stems) and all(_variants(s) & _expanded(wanted) for s in stems)

    def _holds(self, index: int) -> str:
        """What a unit says, for the check of what the answer must hold (the company's own name is no person)."""
        return self._holds_unit(self._units[index])

    def _said(self, index: int) -> str:
        """What a unit says without the company's name (its capitals are no person's)."""
        return self._without_company(self._units[index].say)

    def _holds_unit(self, unit: _Unit) -> str:
        return self._without_company(f"{unit.say} {unit.fact.heading}")

    def _without_company(self, text: str) -> str:
        return text.replace(self.company, " ") if self.company else text

    def _idf(self, stem: str) -> float:
        """A stem's rarity among the facts (a stem no fact has weighs most: it is what the question is about)."""
        count = max(self._df.get(v, 0) for v in _variants(stem))
        # A word no fact has weighs as one that a single fact has: it may be the caller's own word for a
        # documented thing ("unblock" for "clearing a blockage"), or what the documents lack (a service not offered).
        return math.log(1.0 + (len(self._units) + 1) / (max(count, 1) + 0.5)) * english_rarity(stem)

    def _in_no_fact(self, stem: str) -> bool:
        """No fact has this stem, nor its usual synonym (the caller's own word, or a thing the documents lack)."""
        return not any(self._df.get(v) for v in _variants(stem))

    def _missing_thing(self, question: str, index: int) -> str:
        """The caller's own word for the kind of thing asked that no fact has and English rarely uses ("gutter
        clearing on a conservatory", "infrared sauna"), as the caller said it; "" when there is none. It must stand
        in one phrase with a word the best fact has (it is that thing's variant): a word of what the caller
        tells around the question ("I slipped on the ice last week", "what I rang about: ...") does not count."""
        asked = asked_sentences(question)
        rare = {w for w in wanted_stems(main_clause(asked))
                if english_rarity(w) >= ASKED_ABSENT and self._in_no_fact(w)}
        if not rare:
            return ""
        has = self._stems[index] | self._heading_stems[index]
        for phrase in re.split(r"[,;:.!?()]", asked):
            tokens = re.findall(r"[\w'’-]+", phrase)
            stems = [content_stems(t) for t in tokens]
            for at, token in enumerate(tokens):
                if not stems[at] & rare:
                    continue
                # "eavestroughs, you know, gutter clearing": the caller says it again in the documents' words
                if re.search(re.escape(token) + r"\b[^?.]*?,\s*(?:you know|i mean|that is|i\.e\.|or rather)\b", asked, re.I):
                    continue
                near = stems[max(0, at - MODIFIER_REACH): at] + stems[at + 1: at + 1 + MODIFIER_REACH]
                if any(_meets(s, has) for group in near for s in group - rare):
                    return token
        return ""

    def _told_wanted(self, question: str) -> set[str]:
        """The stems a fact must cover, less the words of what the caller tells around the question that no
        fact has: "The dealer told me my timing belt needs doing" - "dealer" and "told" are the caller's
        story, and a fact cannot be expected to hold them (a word of the asked sentence stays: it may be
        what is asked, see _missing_thing)."""
        wanted = wanted_stems(question)
        asked = content_stems(asked_sentences(question))
        story = {w for w in wanted - asked if self._in_no_fact(w)}
        return wanted - story if wanted - story else wanted

    def knows(self, stem: str) -> bool:
        """Whether the documents have this word in a few of their facts: it names one thing of theirs (a
        word in many of them, a bakery's "bread", names none)."""
        with self._lock:
            self._refresh()
            count = max((self._df.get(v, 0) for v in _variants(stem)), default=0)
            return 0 < count <= max(3, 0.06 * len(self._units))

    def top_texts(self, question: str, limit: int = 3) -> list[str]:
        """What the best ``limit`` facts say, with their whole text (the eval's recall@k reads it)."""
        with self._lock:
            return [f"{self._units[i].say} {self._units[i].fact.text}" for i, _, _ in self.candidates(question, limit)]

    def candidates(self, question: str, limit: int = CANDIDATES) -> list[tuple[int, float, float]]:
        """(unit index, similarity, coverage) of the best facts by fused rank, best first."""
        self._refresh()
        if not self._units:
            return []
        return [(i, s, c) for i, s, c, _ in self._scored(question, limit)]

    def _scored(self, question: str, limit: int) -> list[tuple[int, float, float, float]]:
        # an idiom's words ("set me back") mean nothing to the embedding: it is given the plain word
        plain = _PRICE_IDIOM.sub("cost", question)
        asked_words = asked_for(question)
        similarity = self._matrix @ self.service.embedder.embed_one(" ".join([plain, *asked_words]))
        # What the question's asking words ask for is looked up, but not required in coverage: the address
        # sentence of a prose document need not say "address".
        wanted = self._told_wanted(question)
        looked_up = _expanded(wanted | content_stems(" ".join(asked_words)))
        lexical = (np.asarray(self._bm25.get_scores(sorted(looked_up)), dtype=np.float32)
                   if self._bm25 is not None and looked_up else np.zeros(len(self._units), dtype=np.float32))
        fused = np.zeros(len(self._units))
        for ranking in (np.argsort(-similarity), np.argsort(-lexical)):
            for rank, index in enumerate(ranking[: limit * 4]):
                fused[index] += 1.0 / (RRF_K + rank + 1)
        lexical_hits = lexical > 0
        fused[~lexical_hits] *= 0.999  # ties: a fact that shares a word wins
        main = main_clause(asked_sentences(question))
        main_wanted = wanted_stems(main) if main != question else set()
        top_lexical = float(lexical.max()) if len(lexical) and lexical.max() > 0 else 1.0
        out = []
        for i in np.argsort(-fused)[:limit].tolist():
            stems, heading = self._stems[i], self._heading_stems[i]
            coverage = max(coverage_of(wanted, stems, self._idf, heading),
                           coverage_of(main_wanted, stems, self._idf, heading) if main_wanted else 0.0)
            out.append((i, float(similarity[i]), coverage, float(lexical[i]) / top_lexical))
        return out

    def judge(self, question: str, candidates: int = CANDIDATES) -> tuple[_Unit, AnswerFeatures] | None:
        """The best fact for the question and what the gate weighs, or None when no fact holds what is asked.

        Among the fused candidates that hold what the question asks for (a duration for "how long"), the
        one with the best meaning plus coverage (plus a little BM25, which prefers the shorter of two facts
        that both cover the words: "single room" over "twin single room") wins; it is accepted when
        meaning and coverage agree, or when every content word of the question is covered and the meaning
        is at least related (the rules, one of the gate's features)."""
        needed = required_in_answer(question)
        with self._lock:
            self._refresh()
            if not self._units:
                return None
            # What the answer must hold narrows a wider pool (the address sentence of a prose page may rank low).
            pool = [c for c in self._scored(question, candidates * (3 if needed else 1))
                    if all(n.search(self._said(c[0]) if n is _NAMED else self._holds(c[0])) for n in needed)]
            if not pool:
                return None
            who = bool(_WHO.match(asked_sentences(question)))
            wanted = self._told_wanted(question)
            asked_stems = _expanded(content_stems(" ".join(_asked_words(question))))
            if needed and not {s for s in wanted if not (_variants(s) & asked_stems)}:
                # "where are you?", "what's your address?": what the answer must hold is all it asks
                pool = [(i, s, 1.0, lex) for i, s, _, lex in pool]
            def rank(c: tuple[int, float, float, float]) -> float:
                return c[1] + 0.3 * c[2] + 0.1 * c[3] + (0.3 if who and _PERSON.search(self._holds(c[0])) else 0.0) \
                    + 0.1 * self._names_it(c[0], wanted) \
                    + (0.2 if needed and all(n.search(self._units[c[0]].say) for n in needed) else 0.0) \
                    + (0.25 if _ADDRESS in needed and _STREET.search(self._holds(c[0])) else 0.0)

            index, similarity, coverage, _ = max(pool, key=rank)
            unit = self._units[index]
            # A word of the question that no fact has, and that English does not use everywhere ("softback",
            # "refurbish"): the documents may not answer it (or the caller used a word of their own).
            absent = max((english_rarity(w) for w in wanted if self._in_no_fact(w)),
                         default=0.0)
            missing = self._missing_thing(question, index)
        # "Where are you?" answered by an "Address:" line: the label is what was asked for.
        asked = content_stems(" ".join(asked_for(question)))
        label_hit = bool(asked) and unit.fact.kind == "field" and bool(
            asked & _expanded(content_stems(unit.fact.cells[0][0] if unit.fact.cells else ""))) and similarity >= 0.2
        agree = similarity >= MIN_SIMILARITY and coverage >= MIN_COVERAGE
        fully_covered = coverage >= 0.99 and similarity >= FULL_COVERAGE_SIMILARITY
        # Two or more content words, every one found in one fact ("Dana" and "extension"): names and rare
        # words that MiniLM scores low are still that fact.
        several_covered = coverage >= 0.99 and len(wanted) >= 2 and similarity >= SEVERAL_COVERED_SIMILARITY
        # "Where are you?" answered by the sentence with the street address in it.
        street_hit = _ADDRESS in needed and bool(_STREET.search(self._holds_unit(unit))) and coverage >= 0.99
        # "What's the best number to ring you on?": the fact holds what was asked (a phone number) and every
        # word the question has of its own; the asking words' idiom is what the embedding scores low.
        asked_hit = bool(needed) and coverage >= 0.99 and similarity >= SEVERAL_COVERED_SIMILARITY
        # "How much is an interim service going to set me back?": the fact holds what the asking words want
        # (an amount, a duration, an address, a name) and is near in both meaning and words.
        holds_asked = bool(needed) and similarity >= NEEDED_SIMILARITY and coverage >= NEEDED_COVERAGE
        # Every telling word of the question is a word of the documents, and the best fact is near in
        # meaning and words: the caller asked about something the business wrote about.
        known_words = absent <= KNOWN_ABSENT and similarity >= KNOWN_SIMILARITY and coverage >= KNOWN_COVERAGE
        rule = agree or fully_covered or several_covered or label_hit or street_hit or asked_hit or holds_asked or known_words
        rule = rule and not other_variant(question, self._holds_unit(unit), asked_sentences(question))
        features = AnswerFeatures(similarity, coverage, rule, absent, missing)
        return unit, features

    def answer(self, question: str, candidates: int = CANDIDATES) -> Answer | None:
        """The fact that answers the question, as it is said, or None when the documents do not answer it
        (the gate over the best fact's features says no)."""
        judged = self.judge(question, candidates)
        if judged is None or not judged[1].accepted():
            return None
        unit, features = judged
        asking = asked_sentences(question)
        support = f"{unit.fact.heading} {unit.fact.question} {unit.fact.text}"
        if features.missing and _FIGURE.search(unit.say):
            # "How much is gutter clearing on a conservatory?" next to "Gutter clearing, two storeys: $140": the
            # neighbour is no answer, and said as one its figure would be taken for the answer; said as the
            # nearest thing the documents have, after saying what they lack, it is what a receptionist would
            # say. A neighbour without a figure ("Yes. Tell us who they are and we write to them") is said as it is.
            said = f"I don't have anything on {features.missing}, I'm afraid. The closest I have: {unit.say}"
            return Answer(said, features.similarity, features.coverage, unit.source, support, features.missing)
        said = yes_or_no(bool(_YES_NO.match(asking)), features.coverage, unit.say, asking)
        instead = self._instead(unit) if refuses(unit.say) else None
        if instead is not None:
            # "Can I pay cash?" - "No. We do not accept cash. We take bank transfer and cards.": a
            # receptionist says what is done instead, and the documents say it beside the refusal.
            said = f"{said} {instead.say}"
            support = f"{support} {instead.fact.heading} {instead.fact.text}"
        return Answer(said, features.similarity, features.coverage, unit.source, support)

    def _instead(self, unit: _Unit) -> _Unit | None:
        """The fact beside a refusal that says what is done instead: the sentence or line just before or
        after it, from the same file and heading, near in meaning, and no refusal itself."""
        with self._lock:
            index = next((i for i, u in enumerate(self._units) if u is unit), None)
            if index is None:
                return None
            best, best_similarity = None, INSTEAD_SIMILARITY
            for other in (index - 1, index + 1):
                if not 0 <= other < len(self._units):
                    continue
                neighbour = self._units[other]
                if neighbour.source != unit.source or neighbour.fact.heading != unit.fact.heading \
                        or refuses(neighbour.say) or neighbour.say in unit.say or unit.say in neighbour.say:
                    continue
                similarity = float(self._matrix[index] @ self._matrix[other])
                if similarity >= best_similarity:
                    best, best_similarity = neighbour, similarity
            return best
