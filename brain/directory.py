"""Who a caller may be put through to, matched as a person would match it.

Callers ask for a transfer target by its name ("billing"), by a word of its description ("someone
about my invoice"), by a person's full name, first name or surname, or by a first name with a role
("Dana at the front desk"). People come from the ``[[job.staff]]`` directory and from the documents (a
staff table's rows, a "Name — role — ext. 301" line, "Lee Ortega is our bookkeeper"); a person reaches
the transfer target their directory entry names, or whose name or description their role mentions.
Two people who fit → ask which one; a person no target reaches → say so and offer every target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from brain.knowledge import content_stems
from config.settings import JobSettings
from memory.documents import Fact

_TITLE = re.compile(r"^(?:dr|doctor|mr|mrs|ms|miss|prof)\.?\s+", re.I)
_NAME = r"(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+)?[A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){1,2}"
_LINE = re.compile(rf"^({_NAME})\s*(?:[—–|:(]|\s-\s|,)\s*(.+)$")
_PROSE = re.compile(rf"\b({_NAME}),?\s+(?:is|works as|heads|runs|leads|,)\s+(?:our|the|a|an)\s+([^.;]+)")
_NAME_HEADERS = re.compile(r"^(name|staff|person|who|contact|team member|employee)s?$", re.I)
# Words of any transfer request: they say nothing about whom.
_REQUEST_WORDS = set(
    "speak talk put through transfer connect someone somebody anyone person please could would can may like "
    "want need get line phone call directly direct with to in at from the a an there available whoever".split())
_REQUEST_STEMS = content_stems(" ".join(_REQUEST_WORDS))
# "put me through to the BBC", "straight to Barclays": the capitalised name a transfer asks for
_DESTINATION = re.compile(r"\b(?:through|straight|directly|direct|transfer me|connect me|patch me|put me)\s+(?:through\s+)?to\s+"
                          r"(?:the\s+)?((?:[A-Z][\w&'-]*)(?:\s+[A-Z][\w&'-]*)*)")
_NOT_NAMES = {"Front", "Desk", "Billing", "Reception", "Accounts", "Office", "Manager", "Team", "Our", "The",
              "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}


def _same_word(a: str, b: str) -> bool:
    """Two stems of one word ("test" and "tester"): the stemmer leaves agent nouns apart."""
    return a == b or len(a) >= 4 and len(b) >= 4 and (a.startswith(b) or b.startswith(a))


@dataclass(frozen=True)
class Person:
    name: str  # as written, without a title
    about: str  # role, department, extension: the words that place them
    transfer: str | None  # the [job.transfers] key that reaches them, if any

    @property
    def first(self) -> str:
        return self.name.split()[0]

    @property
    def last(self) -> str:
        return self.name.split()[-1]

    def role(self) -> str:
        """The role words of ``about``, without extensions or numbers."""
        return re.sub(r"\bext(?:ension)?\b\.?|\d+", " ", self.about, flags=re.I)

    def described(self) -> str:
        role = re.sub(r"\s*(?:,\s*)?\bext(?:ension)?\.?\s*\d+.*$", "", self.about, flags=re.I).strip(" ,;—–-")
        return f"{self.name}, {role}" if role else self.name


@dataclass(frozen=True)
class TransferMatch:
    kind: Literal["target", "ambiguous", "person_unreachable", "none"]
    target: str | None = None
    people: tuple[Person, ...] = field(default_factory=tuple)


def _people_in(fact: Fact) -> list[tuple[str, str]]:
    """(name, about) pairs a fact states."""
    if fact.kind == "row" and fact.cells:
        names = [v for h, v in fact.cells if _NAME_HEADERS.match(h.strip())]
        if names and re.fullmatch(_NAME, names[0].strip()):
            about = "; ".join(v for h, v in fact.cells if v != names[0])
            return [(names[0], about)]
        return []
    found = []
    if match := _LINE.match(fact.text.strip()):
        found.append((match.group(1), match.group(2)))
    else:
        found += [(m.group(1), m.group(2)) for m in _PROSE.finditer(fact.text)]
    return [(n, a) for n, a in found if _TITLE.sub("", n).split()[0] not in _NOT_NAMES]


class Directory:
    """The transfer targets and the people behind them."""

    def __init__(self, job: JobSettings, facts: list[Fact]) -> None:
        self.job = job
        self.targets = list(job.transfers)
        self._target_stems = {key: content_stems(f"{key} {t.description}") for key, t in job.transfers.items()}
        people: dict[str, Person] = {}
        for member in job.staff:
            name = _TITLE.sub("", member.name).strip()
            about = ", ".join(p for p in (member.role, member.department) if p)
            people[name.lower()] = Person(name, about, member.transfer or None)
        for fact in facts:
            for raw_name, about in _people_in(fact):
                name = _TITLE.sub("", raw_name).strip()
                if name.lower() not in people and name.lower() != job.name.lower():
                    people[name.lower()] = Person(name, about.strip(), self._reaches(name, about))
        self.people = list(people.values())

    def _reaches(self, name: str, about: str) -> str | None:
        """The target whose description names the person, else the one their role words point to."""
        for key, target in self.job.transfers.items():
            if re.search(rf"\b{re.escape(name.split()[0])}\b", target.description) or name.lower() in target.description.lower():
                return key
        stems = content_stems(about)
        if not stems:
            return None
        lowered = about.lower()
        best, best_score = None, 0.0
        for key, target_stems in self._target_stems.items():
            score = 2.0 * (key.lower() in lowered) + len(stems & content_stems(key)) + 0.5 * len(stems & target_stems)
            if score > best_score:
                best, best_score = key, score
        return best if best_score >= 1.0 else None

    def named(self, text: str) -> list[Person]:
        """People the request names: full name, else surname, else first name."""
        words = {w.lower() for w in re.findall(r"[A-Za-z'’-]+", text)}
        lowered = text.lower()
        full = [p for p in self.people if p.name.lower() in lowered]
        if full:
            return full
        last = [p for p in self.people if len(p.name.split()) > 1 and p.last.lower() in words]
        if last:
            return last
        # a short first name ("Jo", "Al") only as the caller capitalised it: "jo" or "al" may be no name at all
        return [p for p in self.people if p.first.lower() in words and p.first[0].isupper()
                and (len(p.first) > 2 or re.search(rf"\b{re.escape(p.first)}\b", text))]

    def _by_role(self, text: str) -> list[Person]:
        """"The bookkeeper": people whose role the request's words name (or who have only those words); else
        "whoever does the foil testing": the one person whose role shares the most of them ("foil tester")."""
        asked = content_stems(text) - _REQUEST_STEMS
        exact = [p for p in self.people if asked and (role := content_stems(p.role())) and (asked <= role or role <= asked)]
        if exact or not asked:
            return exact
        scored = [(sum(any(_same_word(a, r) for r in content_stems(p.role())) for a in asked), p) for p in self.people]
        top = max((score for score, _ in scored), default=0)
        best = [p for score, p in scored if score == top]
        return best if top >= 2 and len(best) == 1 else []

    def outside(self, text: str) -> str | None:
        """"Transfer me straight to the BBC": a body the request names right after "to" that is none of ours
        (no person, target or the company): no line of ours reaches it, whatever a description mentions."""
        found = _DESTINATION.search(text)
        if not found:
            return None
        words = found.group(1).split()
        ours = {w.lower() for p in self.people for w in p.name.split()} | {
            w.lower() for key in self.targets for w in key.split()} | {w.lower() for w in re.findall(r"[\w']+", self.job.company)}
        if any(w.lower() in ours or w in _NOT_NAMES for w in words):
            return None
        if not any(w.isupper() and len(w) > 1 for w in words):
            # a capitalised word of our own descriptions ("Bookings") is a department of ours; an acronym
            # ("BBC") is a body, even where a description says what we do about its programmes
            described = " ".join([t.description for t in self.job.transfers.values()] + [p.about for p in self.people])
            if any(re.search(rf"\b{re.escape(w)}\b", described, re.I) for w in words):
                return None
        return found.group(1)

    def match(self, text: str) -> TransferMatch:
        named = self.named(text)
        lowered = text.lower()
        keyed = [key for key in self.targets if re.search(rf"\b{re.escape(key.lower())}\b", lowered)]
        if not named and not keyed:
            by_role = self._by_role(text)
            named = [p for p in by_role if p.transfer] or by_role
        if len(named) > 1:  # "Sam in accounts": the role words choose
            wanted = content_stems(text) - content_stems(" ".join(p.name for p in named))
            scored = [(len(wanted & content_stems(f"{p.about} {p.transfer or ''}")), p) for p in named]
            top = max(score for score, _ in scored)
            best = [p for score, p in scored if score == top]
            named = best if top > 0 else named
        if len(named) > 1:
            return TransferMatch("ambiguous", people=tuple(named))
        if named:
            person = named[0]
            if person.transfer:
                return TransferMatch("target", person.transfer, (person,))
            return TransferMatch("person_unreachable", people=(person,))
        if keyed:
            return TransferMatch("target", keyed[0])
        wanted = content_stems(text) - _REQUEST_STEMS
        scores = {key: len(wanted & stems) + 2 * len(wanted & content_stems(key)) for key, stems in self._target_stems.items()}
        if scores and (top := max(scores.values())) > 0:
            best = [k for k, s in scores.items() if s == top]
            if len(best) == 1:
                return TransferMatch("target", best[0])
        return TransferMatch("none")

    def alternatives(self) -> str:
        """Every target, said as a list ("front desk, billing or the office manager")."""
        names = self.targets
        if not names:
            return ""
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
