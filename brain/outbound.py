"""An outbound call with a goal (a campaign call): the opening, the callee's answer, the voicemail message.

Why a deterministic flow and not the model: measured here, the embedded 135M model neither keeps to a
goal nor tells "yes" from "no" reliably, and a campaign's result must be trustworthy. The flow decides
whether the goal was achieved from the callee's own words (yes / no / wrong person / not now); a
question about the company is answered from the documents, then the goal is asked again.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Callable

from config.settings import JobSettings


class GoalTemplateError(ValueError):
    """The goal names a ``{column}`` the contact list does not have."""


def goal_fields(template: str) -> list[str]:
    """The ``{column}`` names a goal text uses."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as exc:  # an unmatched brace
        raise GoalTemplateError(f"goal {template!r}: {exc}") from exc


def fill_goal(template: str, variables: dict[str, str]) -> str:
    """``confirm your appointment at {time}`` + the contact's columns -> the sentence for this callee."""
    missing = [name for name in goal_fields(template) if not str(variables.get(name, "")).strip()]
    if missing:
        raise GoalTemplateError(f"goal needs {', '.join(missing)}, which this contact does not have")
    return template.format_map({k: str(v).strip() for k, v in variables.items()})


@dataclass
class OutboundTask:
    """Why the employee is calling this person: the goal (a template) and the contact's columns."""

    goal: str
    contact: dict[str, str] = field(default_factory=dict)
    campaign: str = ""

    @property
    def purpose(self) -> str:
        text = fill_goal(self.goal, self.contact).strip().rstrip(".")
        return re.sub(r"^(to|i'?m calling to|calling to)\s+", "", text, flags=re.I)

    @property
    def name(self) -> str:
        for key in ("name", "first_name", "firstname", "contact", "full_name"):
            for column, value in self.contact.items():
                if column.strip().lower() == key and str(value).strip():
                    return str(value).strip()
        return ""


# Answers to "can you confirm?", most specific first: "no problem" is a yes, "not sure" is not a no.
_WRONG_PERSON = re.compile(r"\b(wrong (number|person)|no one (here )?(by|called|named)|nobody (here )?(by|called|named)|"
                           r"(doesn'?t|does not) live here|you have the wrong|who\?? is that\b.*\bnever heard)", re.I)
_NOT_NOW = re.compile(r"\b(call (me )?(back )?later|not a good time|(i'?m|i am) (busy|driving|at work)|"
                      r"can you call (me )?back|call again)\b", re.I)
_AFFIRMATIVE_PHRASES = re.compile(r"\b(no problem|no worries|why not|of course|that'?s (right|correct|fine|good|perfect)|"
                                  r"sounds good|i'?ll be there|i will be there|see you (then|there)|works for me)\b", re.I)
_NEGATIVE = re.compile(r"\b(no|nope|nah|not|can'?t|cannot|won'?t|wouldn'?t|unable|cancel|reschedule|"
                       r"don'?t|isn'?t|doesn'?t)\b", re.I)
_AFFIRMATIVE = re.compile(r"\b(yes|yeah|yep|yup|yes please|sure|correct|right|confirm(ed)?|ok(ay)?|fine|good|great|"
                          r"perfect|absolutely|definitely|certainly|alright|all right)\b", re.I)
_UNSURE = re.compile(r"\b(not sure|maybe|perhaps|i don'?t know|let me check)\b", re.I)

# What an answering machine says (and a person does not) in its greeting.
_MACHINE_CUES = re.compile(
    r"\b(leave (me |us )?(a|your) (message|name)|after the (tone|beep)|at the (tone|beep)|voice ?mail|mailbox|"
    r"(is|are) not available|isn'?t available|can'?t (take|come to|get to) (your|the) (call|phone)|"
    r"unable to (take|answer)|record your message|you have reached|you'?ve reached)\b", re.I)


def sounds_like_answering_machine(text: str) -> bool:
    return bool(_MACHINE_CUES.search(text))


def classify_answer(text: str) -> str:
    """``yes`` | ``no`` | ``wrong-person`` | ``not-now`` | ``unclear`` for the callee's answer to the goal."""
    if _WRONG_PERSON.search(text):
        return "wrong-person"
    if _NOT_NOW.search(text):
        return "not-now"
    if _UNSURE.search(text):
        return "unclear"
    if _AFFIRMATIVE_PHRASES.search(text):
        return "yes"
    if _NEGATIVE.search(text):
        return "no"
    if _AFFIRMATIVE.search(text):
        return "yes"
    return "unclear"


@dataclass
class GoalResult:
    achieved: bool | None = None  # None: the callee never answered the question
    answer: str = ""  # yes | no | wrong-person | not-now | unclear | voicemail
    summary: str = ""


class GoalFlow:
    """The conversation of one campaign call, decided on the callee's words (see the module docstring)."""

    MAX_UNCLEAR = 2

    def __init__(self, task: OutboundTask, job: JobSettings,
                 answer_question: Callable[[str], str | None] | None = None) -> None:
        self.task = task
        self.job = job
        self.answer_question = answer_question  # a question about the company -> an answer from the documents
        self.opened = False
        self.done = False
        self.unclear = 0
        self.result = GoalResult()

    def _question(self) -> str:
        return "Can you confirm that?" if self.task.purpose.lower().startswith("confirm") else "Is that all right with you?"

    def opening(self) -> str:
        """Who is calling and why, then the question; said once the callee has picked up and said hello."""
        self.opened = True
        name = self.task.name
        hello = f"Hello {name}" if name else "Hello"
        return (f"{hello}, this is {self.job.name} from {self.job.company}. "
                f"I'm calling to {self.task.purpose}. {self._question()}")

    def voicemail_message(self) -> str:
        """A short message for an answering machine, built from the goal."""
        self.done = True
        name = self.task.name
        hello = f"Hello {name}" if name else "Hello"
        self.result = GoalResult(None, "voicemail", f"Left a voicemail: calling to {self.task.purpose}.")
        return (f"{hello}, this is {self.job.name} from {self.job.company}. I'm calling to {self.task.purpose}. "
                f"Please call us back when you can. Thank you, goodbye.")

    def handle(self, text: str) -> tuple[str, bool] | None:
        """The reply to the callee's words and whether the call should end; None when done already."""
        if self.done:
            return None
        if not self.opened:  # "Hello?" -> who we are and why we call
            return self.opening(), False
        kind = classify_answer(text)
        name = f", {self.task.name}" if self.task.name else ""
        quoted = " ".join(text.split())
        if kind == "yes":
            self._finish(True, kind, f"Goal achieved ({self.task.purpose}): the callee said \"{quoted}\".")
            return f"Thank you{name}, that's noted. Have a good day. Goodbye.", True
        if kind == "no":
            self._finish(False, kind, f"Goal not achieved ({self.task.purpose}): the callee said \"{quoted}\".")
            return "Understood, I'll let the team know, and someone will follow up with you. Thank you, goodbye.", True
        if kind == "wrong-person":
            self._finish(False, kind, f"Wrong person or number: \"{quoted}\".")
            return "I'm sorry for the trouble. Goodbye.", True
        if kind == "not-now":
            self._finish(False, kind, f"The callee asked to be called back later: \"{quoted}\".")
            return "Of course, we'll try again later. Goodbye.", True
        self.unclear += 1
        answer = self.answer_question(text) if self.answer_question else None
        if self.unclear > self.MAX_UNCLEAR:
            self._finish(None, "unclear", f"No clear answer after {self.unclear} tries; last: \"{quoted}\".")
            return "I'll let the team know you'd like to talk to them. Thank you, goodbye.", True
        again = f"I'm calling to {self.task.purpose}. {self._question()}"
        return (f"{answer} {again}" if answer else f"Sorry, I didn't quite catch that. {again}"), False

    def _finish(self, achieved: bool | None, answer: str, summary: str) -> None:
        self.done = True
        self.result = GoalResult(achieved, answer, summary)
