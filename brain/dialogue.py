"""Deterministic dialogue for the receptionist's core work, in front of the model.

Why: measured with the embedded 135M model, the agent chose a tool in 5 of 64 turns that needed one,
and invented figures when it answered from documents. The reliable parts of the job therefore run as
small state machines driven by intent detection (keyword rules first, then nearest exemplar by
sentence embedding), and questions about the company are answered from the documents themselves:

- leave a message: who for, what, callback number (the caller ID unless they give one), read back;
- transfer: only to a configured target (matched by name or description), else a polite refusal;
- callback: when, on which number, stored for staff;
- opening hours: from the configuration; goodbye: thanks and hang up;
- "do you know who I am": from the caller's core memory only;
- questions: the best-matching sentences of the retrieved passages (extractive), or "I don't have
  that" with an offer, when nothing relevant is found.

Nothing here names a business, a person or a question: exemplars are generic receptionist phrases,
targets and facts come from the job configuration and the company's documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from typing import Any, Callable

import numpy as np

from brain.directory import Directory, Person
from brain.hours import HoursAnswerer
from brain.knowledge import FOLLOW_UP, Answer, content_stems, english_rarity, english_zipf, wanted_stems
from brain.prompt import caller_name
from config.settings import JobSettings
from memory.embeddings import Embedder

INTENT_EXEMPLARS: dict[str, list[str]] = {
    "leave_message": [
        "I'd like to leave a message", "can you take a message", "please tell him I called",
        "can you let her know that I called", "pass on a message to the doctor", "tell them my appointment changed",
    ],
    "transfer": [
        "can I speak to someone in billing", "put me through to the front desk", "transfer me please",
        "connect me with a person", "I want to talk to a human", "can I talk to the manager",
    ],
    "callback": [
        "can someone call me back", "please call me back tomorrow morning", "have someone return my call",
        "I'd like a callback",
    ],
    "goodbye": ["thanks, bye", "that's all, goodbye", "no, that's everything, thank you", "bye now", "have a nice day"],
    "hours": [
        "when are you open", "what are your opening hours", "are you open on saturday", "what time do you close today",
        "are you open right now",
    ],
    "identity": ["do you remember my name", "do you know who I am", "who am I", "what's my name"],
    "question": [
        "how much does it cost", "where are you located", "do you accept insurance", "who is the dentist",
        "what services do you offer", "is there parking", "what is your address", "how long does it take",
    ],
}
# An hours question names opening/closing with a time or day, or says "hours"; "opening a new account" does not.
_DAY_WORDS = r"(today|tonight|tomorrow|now|monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekends?|holidays?|" \
             r"christmas|new year'?s?|morning|evening|lunch|later)"
HOURS_QUESTION = re.compile(
    r"\b(opening|business|office|working) hours\b|\byour hours\b|\bhours (of|on|for|are|today|tomorrow)\b|^\W*hours\W*$"
    r"|\b(are|is) (you|it|the \w+|your \w+) (still )?(open|closed)\b|\bwhat time\b[^?]*\b(open|close|closing|shut)\b"
    r"|\bwhen (do|are|will|does) (you|it|the \w+) (open|close|shut)\b|\bwhen (are|is) (you|it) (open|closed)\b"
    r"|\b(open|close|closing|closed|shut)\b[^?.]*\b" + _DAY_WORDS + r"\b"
    r"|\b(how late|until when|till when)\b"
    # "Could I pick my car up after work tomorrow, about half six?": a visit at a clock time asks the hours
    r"|\b(?:can|could|may) (?:i|we) (?:come|pop|drop|pick|collect|call|bring|get)\b[^?]*\b(?:at|about|around|by|after|before)\s+"
    r"(?:half (?:past )?|quarter (?:past|to) )?(?:\d{1,2}(?::\d\d)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
    r"twelve)\b(?!\s*(?:days?|weeks?|hours?|minutes?|copies|pages))",
    re.I)
# Conversation mechanics: words about the call itself, not the business.
_PRESENCE = re.compile(r"^\W*(hello|hi|hey)?\W*(are you (still )?there|can you hear me|is anyone there|anybody there|"
                       r"are you still with me|hello)\W*$", re.I)
_BAD_LINE = r"(?:(?:sorry|pardon|excuse me)\W+)?(?:(?:the |this )?line'?s? (?:is |was )?(?:terrible|awful|bad|breaking up|rubbish|" \
            r"poor|crackly)|you(?:'re| are) breaking up|it'?s (?:a )?(?:bad|terrible|awful|noisy) (?:line|here))\W*"
_REPEAT = re.compile(r"^\W*(sorry|pardon|excuse me)?\W*(?:" + _BAD_LINE + r")?(?:(?:sorry|so)\W+)?(what was that|say that again|could you (please )?(say|repeat) that"
                     r"( again)?|can you (please )?(say|repeat) that( again)?|repeat that|come again|pardon|sorry|"
                     r"i didn'?t (catch|get|hear) (that|you)|what did you say)\W*(please)?\W*(again)?\W*$", re.I)
_GOOD = r"(?:great|perfect|lovely|brilliant|helpful|fine|grand|spot on|really helpful|very helpful|useful)"
_THANKS = re.compile(r"^\W*(ok(ay)?|great|perfect|lovely|brilliant|cool|good|all right|alright)?[\s,.!]*"
                     r"(?:that'?s " + _GOOD + r"[\s,.!]+)?"
                     r"(thanks?|thank you|cheers)( (so|very) much)?( for that| for your help)?"
                     r"(?:[\s,.!]+(?:that'?s|that is|that was) (?:really |very )?" + _GOOD + r")?\W*$", re.I)
_AFFIRM = re.compile(r"^\W*(yes|yeah|yep|yup|correct|right|exactly|perfect|that'?s (right|correct|it)|sounds good)"
                     r"[\s,.!]*((yes|yeah|that'?s|it'?s) (right|correct|it|fine|good)|thanks?|thank you|perfect|great)?\W*$",
                     re.I)
# More of the call's mechanics: a greeting alone, "hang on", "is this <company>?", "are you a robot?", "can I ask
# you something?", "wrong number", "no thanks".
_HELLO = r"(?:hi|hello|hey|hiya|morning|afternoon|evening|good (?:morning|afternoon|evening))"  # a greeting's words
_HELLO_ONLY = re.compile(r"^\W*" + _HELLO + r"(?: there)?"
                         r"[\s,!.]*(?:(?:how are you|how'?s it going|(?:are )?you all? ?right|are you well)(?: today)?\W*)?$", re.I)
_HOLD = re.compile(r"^\W*(?:(?:sorry|oh|um|er)[\s,]+)?(?:hang on|hold on|one (?:moment|sec(?:ond)?|minute)|just a (?:moment|sec(?:ond)?|minute)"
                   r"|bear with me|give me a (?:moment|sec(?:ond)?|minute)|wait a (?:moment|sec(?:ond)?|minute))"
                   r"(?: (?:a|one) (?:sec(?:ond)?|moment|minute))?(?: please)?\W*(?:(?:let me|i'?ll) (?:just )?(?:find|get|grab|check)[^.?!]*)?\W*$",
                   re.I)
_IS_THIS = re.compile(r"^\W*(?:(?:hi|hello|hey|hiya|morning|afternoon)[\s,!.]+)?(?:is (?:this|that)|have i (?:got|reached)|am i through to"
                      r"|is this the number for)\s+(?:the\s+)?(.+?)\W*$", re.I)
_ARE_YOU_A_MACHINE = re.compile(r"\b(?:are you|am i (?:speaking|talking) (?:to|with)|is this) (?:a |an )?(?:real )?(?:robot|bot|machine|"
                                r"computer|ai|a\.i\.|person|human|recording|answering machine)\b|\bare you real\b", re.I)
_MAY_I_ASK = re.compile(r"^\W*(?:(?:hi|hello|ok(?:ay)?|right)[\s,!.]+)?(?:can|could|may) i (?:just )?ask (?:you )?(?:something|a (?:quick )?question"
                        r"|a couple of (?:things|questions))\W*$|^\W*i(?:'ve| have) (?:got )?a (?:quick )?question\W*$", re.I)
_WRONG_NUMBER = re.compile(r"^\W*(?:(?:oh|sorry|oops)[\s,!.]+)*(?:i think )?(?:i'?ve got |i have |i dialled |i dialed |it'?s )?"
                           r"(?:the |a )?wrong number\W*(?:sorry\W*)?$", re.I)
_NO_THANKS = re.compile(r"^\W*(?:no|nope|nah)[\s,!.]+(?:thanks?|thank you|that'?s (?:fine|it|all|everything)|i'?m (?:fine|good|ok(?:ay)?)"
                        r"|nothing else)(?:[\s,!.]+(?:thanks?|thank you|bye|goodbye))*\W*$|^\W*nothing else\W*(?:thanks?|thank you)?\W*$",
                        re.I)
_REPEAT_WHAT = re.compile(r"\b(?:you cut out|you broke up|i missed that|didn'?t catch (?:that|the \w+)|(?:could|can) you (?:repeat|say) "
                          r"(?:the|that) \w+(?: again)?|what (?:was|did you say) (?:the|that) \w+ again|what did you say (?:the|that) \w+ (?:was|is))\b",
                          re.I)
_CORRECTION = re.compile(r"^\W*(no|nope|sorry|actually|wait|hang on|hold on|oops|not quite|that'?s wrong|wrong number)\b"
                         r"|\b(?:old|wrong|previous) number\b|\bmy mistake\b|\bi(?:'ve| have)? given you (?:the |my )?(?:old|wrong)\b",
                         re.I)
KEYWORDS: list[tuple[str, re.Pattern[str]]] = [
    ("goodbye", re.compile(r"^\W*(ok(ay)?|no|thanks?|thank you|great|perfect)?[\s,.!]*(that'?s (all|it|everything)[\s,.!]*)?"
                           r"(thanks?( you)?( so much)?[\s,.!]*)?(good)?bye\b"
                           r"|^\W*(no[\s,.!]*)?that'?s (all|it|everything)([\s,.!]*(thanks?|thank you)( so much)?)?\W*$"
                           r"|(?:^|[.!,]\s*)(?:(?:ok(?:ay)?|right|cheers|thanks?|thank you|lovely|great)[\s,!.]+)*(?:good)?bye(?:[\s-]?bye)?"
                           r"(?: for now| then)?[\s.!]*$", re.I)),
    ("callback", re.compile(r"\b(call|ring|phone|bell) (me )?back\b|\bcallback\b|\breturn (my|the) call\b"
                            r"|\bgive me a (ring|call|bell|buzz)( back)?\b", re.I)),
    ("leave_message", re.compile(r"\b(leave|take|pass on|pass|give|send|get)( \w+)? (message|note)\b|\b(tell|let)\s+(\w+\.?\s+){1,3}(know\b|that\b)"
                                 r"|\bmessage for\b|\bleave (something|a note|word) (for|with)\b"
                                 r"|\b(can|could|would|will) you (please )?(tell|let|remind) (?!me\b)[A-Z]", re.I)),
    ("leave_message", re.compile(r"(?:^|(?<=[.!?])\s)\W*(?:(?:and|also|oh|so)[\s,]+)?(?:please\s+)?tell\s+(?:the\s+)?(?:dr\.?\s+|doctor\s+)?[A-Z]",
                                 re.I)),
    ("transfer", re.compile(r"\b((?<!bank )(?<!wire )(?<!money )(?<!balance )transfer(?! fee)|put me through|connect me|patch me)\b|\b(speak|talk) (to|with)\b"
                             r"|\b(have|get|like|want|need) a (quick )?word with\b|\b(?:i need|i want|get me|i'?d like|find me) (?:to (?:speak|talk) to )?"
                             r"(?:whoever|someone who|somebody who|the person who)\b|\b(can|could|may) i (have|get) (?!a\b|an\b|the\b|some\b|your\b)(?-i:[A-Z])", re.I)),
    ("identity", re.compile(r"\b(remember|know) (my name|who i am|me)\b|\bwhat'?s my name\b|\bwho am i\b"
                            r"|\b(?:any idea|know|guess|tell) who(?:'s| is) (?:calling|speaking|this)\b|\bwho (?:it|this) is\b", re.I)),
    ("hours", HOURS_QUESTION),
]
_PRICE_WORDS = re.compile(r"\b(cost|costs|price|prices|fee|fees|charge|charges|how much|pay)\b", re.I)
_NAME_INTRO = re.compile(r"\b(?i:my name is|this is|i am|i'm|it'?s)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)(?![\w']*'s)\b(?!')")
# Weaker forms, used only when the words are not the business's own and not everyday English: "Oskar Thorvaldsen
# here", "Hi, Teodora Vasquez.", "the name's Okonkwo", "Yusra speaking".
_NAME_HERE = re.compile(r"(?:^|(?<=[.!?,])\s)\W*([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\s+(?:here|speaking)\b(?!\s+(?:is|are|was|in|at|for))")
_NAME_AFTER_GREETING = re.compile(r"^\W*(?i:" + _HELLO + r")"
                                  r"[\s,!.]+(?:(?i:there)[\s,!.]+)?([A-Z][a-z]+\s+[A-Z][a-z]+)\s*(?:[.,!]|$)")
_NAME_IS = re.compile(r"\b(?i:the name'?s|name'?s|call me)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)\b")
_NOT_NAMES = {"Calling", "Me", "Just", "Here", "Not", "Fine", "Good", "Interested", "Looking", "Sorry", "The", "Again",
              "Ringing", "Phoning", "Back", "Hoping", "After", "Wondering", "Still", "Only", "So", "Yes", "No", "Well",
              "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "Today", "Tomorrow",
              "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December", "Everyone", "Someone", "Nobody", "Anyone", "Hi", "Hello", "Morning", "Thanks"}
_PHONE = re.compile(r"(\+?\d[\d\s().-]{5,}\d)")
_TITLE = r"(?i:dr\.?|doctor|mr\.?|mrs\.?|ms\.?|miss)"
_RECIPIENT = re.compile(
    r"\b(?i:for|tell|let|ask)\s+((?i:the\s+)?(?:" + _TITLE + r"\s*)?[A-Za-z][\w'-]*(?:\s+[A-Z][a-z][\w'-]*)?)"
    r"|\bto\s+((?:" + _TITLE + r"\s*)?[A-Z][\w'-]*(?:\s+[A-Z][a-z][\w'-]*)?)"
)
_SELF_ID = re.compile(r"^\s*(?:hi|hello|hey)?[\s,]*(?:this is|i'?m|i am|it'?s|my name is)\s+[A-Z][a-z]+(?:\s+[A-Z][a-z]+)?"
                      r"\s*(?:,|$|\.)", re.I)
_CALL_ME = re.compile(r"^\s*(?:(?:you can )?(?:call|reach|ring|phone|text) me (?:back )?(?:at|on)|my number is|i'?m at|at)?\s*[\d\s().+-]*$", re.I)
_PREFERENCE = re.compile(
    r"\b(?:i|we) ?(?:really )?(?:prefer|like|'d prefer|would prefer|always|usually|never|live in|'ve got|get really|"
    r"get nervous|am allergic|'m allergic|am nervous|'m nervous|run|own|can only|can't|cannot|only ever|make|sell|drive|"
    r"only want|would rather|'d rather|'d much rather|would much rather|rent|let out|work|keep|teach|'m retired|am retired|"
    r"'m self-employed|am self-employed|'m a|am a|'m an|am an)\b|\bplease (?:always|make sure|remember|tell|knock|"
    r"don't|do not)\b|\bis my \w+|\b(?:i|we)(?:'ve| have) got\b|\b(?:i'?m|i am|we'?re|we are) (?:only |usually |mostly )?"
    r"(?:free|available|around|reachable|busy|at work|away)\b|\bjust so you know\b|\bfor your (?:information|records)\b"
    r"|\b(?:best|easiest) (?:time|way) to (?:reach|call|get hold of|contact) me\b", re.I)
# Words of any question about oneself: they say nothing about which fact is asked for.
_ASK_STEMS = content_stems("what which whats was were is are my me tell told give gave did do you have remind again "
                           "please the that")
# the words of a follow-up that name nothing new: its price, its time, "those", "that one"
_FOLLOW_STEMS = content_stems("cost costs price charge fee much long take takes time those these one same each two three "
                              "four also too then what about")
_PHONE_STEMS = content_stems("number phone mobile cell contact callback call ring reach got down moment use using get "
                             "hold back read current latest")
_COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}  # said, not figures the fact guard looks for
ANYTHING_ELSE = "Is there anything else I can help you with?"
YOURE_WELCOME = f"You're welcome. {ANYTHING_ELSE}"
_SELF_QUESTION = re.compile(r"\bdid i\b|\bhave i (?:told|given|said|mentioned)\b|\bdo i (?:like|prefer|usually|always|normally)\b|\bi (?:told|said|asked|mentioned|gave)\b|\bmy (?:usual|preference)"
                            r"|\bwhat(?:'s| is| was| were| are)? my\b|\bwhich (?:\w+ )?(?:is|was) mine\b|\bremind me\b"
                            r"|\b(?:do|did) you (?:have|keep|remember|still have) my\b"
                            r"|\b(?:do you have|have you got|you have) (?:\w+ ){0,4}(?:for|of|on)\b.*\bme\b"
                            r"|\b(?:do|did) you (?:still )?(?:remember|recall) (?:what|whose|which|who|when|where|how)\b"
                            r"|\bread (?:back|out|me) (?:\w+ ){0,3}(?:my|number|name|reference)\b|\b(?:number|name) (?:you'?d|you would|you'?ll|you will|"
                            r"you) (?:use|have|call)\b|\bwhat (?:\w+ ){0,2}(?:have|did) you (?:got|get|put|take|write|note)\b", re.I)
# A caller's own facts, worth keeping for their next call: "my booking reference is ...", "my son's name is
# Tom", "please use my new number ... from now on".
_OWN_FACT = re.compile(r"\bmy (?:[\w'’-]+ ){0,6}(?:is|are|was)\b\s+\S"
                       r"|\bmy (?:son|daughter|child|kid|husband|wife|partner|dog|cat|pet|mother|father|mum|mom|dad)(?:'s)?\s+[A-Z][a-z]+"
                       r"|\bmy (?:\w+ )?(?:son|daughter|child|kid|dog|cat|"
                       r"pet|husband|wife|partner)(?:'s| is)?\b.*\b(?:called|named)\b|\b(?:use|call me on|reach me on|"
                       r"try me on)\b.*\d{3}|\bnew (?:phone |mobile |cell )?number\b|\b(?:call|ring|reach|contact|get hold of) me\b.*\d{3}", re.I)
_PRIVACY = re.compile(
    r"\b(?:last|previous|other|another|earlier) (?:caller|person|customer|patient)\b|\bwho (?:else )?called\b"
    r"|\b(?:did|has) (?:someone|anyone|somebody|\w+ \w+) (?:call|phone|ring)\b|\bwhat did (?!i\b|you\b)(?:\w+ ){1,2}(?:say|tell|want)\b"
    r"|\b(?:personal|private|home|cell|mobile) (?:number|phone|address|cell)\b|\bneighbou?r\b"
    r"|\b(?:message|note)s? (?:that )?(?:she|he|they|someone|somebody|\w+ \w+) (?:left|gave|sent)\b"
    r"|\bmy (?:husband|wife|partner|son|daughter|mother|father|boss) (?:\w+ )?(?:called|rang|phoned)\b"
    r"|\b(?:when|where|what) does (?:he|she) (?:live|like)\b",
    re.I,
)
PRIVACY_REPLY = "I'm sorry, I can't share information about other callers or our staff's private details."
_WHEN = re.compile(r"\b((?:tomorrow|today|tonight|this|next|on|at|in|after|before|around|monday|tuesday|wednesday|"
                   r"thursday|friday|saturday|sunday)\b[^.?!,]*)", re.I)
_WHEN_DAY = re.compile(r"\b((?:(?:on|this|next|by|after|before|around|at)\s+)?(?:tomorrow|today|tonight|monday|tuesday|"
                       r"wednesday|thursday|friday|saturday|sunday|\d{1,2}(?::\d\d)?\s*(?:am|pm|o'?clock))\b[^.?!,]*)", re.I)
_GREETING = re.compile(r"^\s*" + _HELLO + r"\b[\s,!.]*", re.I)
# "Can you make a note of my reg?", "hang on to that for me", "keep it on file": the caller asks to be remembered.
_NOTE_REQUEST = re.compile(r"\b(?:make a note|take a note|note (?:it|that|this|down|my)|keep (?:it|that|this) on (?:file|record)|"
                           r"hang on to|hold on to|keep hold of|put (?:it|that) on (?:file|record|my file)|"
                           r"remember (?:it|that|this|my)|save (?:it|that|my)|keep (?:a )?record of)\b", re.I)
_FILLER = re.compile(r"^\W*(?:(?:anyway|anyhow|so|and|also|oh|right|ok(?:ay)?|well|now|but|then|while i'?ve got you|"
                     r"by the way|before (?:i forget|you go))\b[\s,.!-]*)+", re.I)
_QUESTION_START = re.compile(r"^\W*(what|when|where|who|which|why|how|do|does|did|is|are|can|could|will|would)\b", re.I)
_SWAPS = [(r"\bmy\b", "your"), (r"\bI'm\b", "you're"), (r"\bI am\b", "you are"), (r"\bI\b", "you"), (r"\bme\b", "you"),
          (r"\bmine\b", "yours")]
GENERIC = {"someone", "somebody", "anyone", "a", "them", "him", "her", "you", "me", "us", "it", "that", "person",
           "human", "message", "please", "leave", "speak", "talk", "know", "my", "your", "whoever", "all"}


@dataclass
class Reply:
    """What the dialogue layer says, and the tool it used (run through the agent's tool functions)."""

    text: str
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    intent: str = ""


@dataclass
class DialogueState:
    pending: str | None = None  # "message_recipient" | "message_content" | "callback_when" | "transfer_which"
    recipient: str = ""
    content: str = ""
    number: str = ""
    choices: tuple[Person, ...] = ()  # "transfer_which": the people the caller may have meant


def to_second_person(text: str) -> str:
    for pattern, replacement in _SWAPS:
        if pattern in (r"\bmy\b", r"\bmine\b"):  # "My old mobile's ..." -> "Your old mobile's ..."
            text = re.sub(pattern, lambda m, r=replacement: r.capitalize() if m.group(0)[0].isupper() else r, text,
                          flags=re.I)
        else:
            text = re.sub(pattern, replacement, text)
    return text.strip().rstrip(".!?")


class IntentRouter:
    """Keyword rules first (precise), then the nearest generic exemplar by embedding (broad)."""

    def __init__(self, embedder: Embedder, threshold: float = 0.55) -> None:
        self.embedder = embedder
        self.threshold = threshold
        labels, texts = [], []
        for intent, examples in INTENT_EXEMPLARS.items():
            labels += [intent] * len(examples)
            texts += examples
        self._labels = labels
        self._matrix = embedder.embed(texts)

    def classify(self, text: str, vector: np.ndarray | None = None) -> tuple[str, float]:
        for intent, pattern in KEYWORDS:
            if pattern.search(text):
                return intent, 1.0
        vector = self.embedder.embed_one(text) if vector is None else vector
        scores = self._matrix @ vector
        best = int(np.argmax(scores))
        if scores[best] < self.threshold:
            return "other", float(scores[best])
        return self._labels[best], float(scores[best])


class Receptionist:
    """One call's deterministic dialogue. ``handle`` returns a Reply, or None to let the model answer."""

    def __init__(
        self,
        job: JobSettings,
        router: IntentRouter,
        answer: Callable[[str], "Answer | None"],
        caller_number: str,
        human_block: Callable[[], str],
        remember: Callable[[str], None],
        min_passage_score: float = 0.45,
        *,
        hours: HoursAnswerer | None = None,
        directory: Directory | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        forget: Callable[[str], None] | None = None,
        knows: Callable[[str], bool] = lambda stem: False,
    ) -> None:
        self.job = job
        self.router = router
        self.answer = answer
        self.caller_number = caller_number
        self.human_block = human_block
        self.remember = remember
        self.forget = forget or (lambda line: None)
        self.knows = knows  # whether the documents have a word (a follow-up that names a new one asks anew)
        self.min_passage_score = min_passage_score
        self.hours = hours or HoursAnswerer(job, [])
        self.directory = directory or Directory(job, [])
        self.clock = clock
        self.state = DialogueState()
        self.last_support: list[str] = []  # the document sentences the last answer came from
        self.last_reply = ""  # what was said last (for "sorry, say that again")
        self.last_informative = ""  # the last reply that told something (not "of course, take your time")
        self.last_question = ""  # the last question put to the documents (a follow-up refers to it)
        self.last_stored: Reply | None = None  # the message or callback just taken (a correction amends it)

    # -- helpers ---------------------------------------------------------------------------------
    def _offer(self) -> str:
        if self.directory.targets:
            return f"I can take a message, or put you through to {self.directory.alternatives()}."
        return "I can take a message for you."

    def dont_know(self) -> str:
        return f"I'm sorry, I don't have that information. {self._offer()}"

    def _number_in(self, text: str) -> str:
        match = _PHONE.search(text)
        return re.sub(r"[^\d+]", "", match.group(1)) if match and len(re.sub(r"\D", "", match.group(1))) >= 7 else ""

    def _learn_name(self, text: str) -> None:
        if caller_name(self.human_block()):
            return
        theirs = {self.job.name.lower(), self.job.company.lower(), *(w.lower() for w in self.job.company.split())}
        staff = {part.lower() for person in self.directory.people for part in person.name.split()}
        for pattern in (_NAME_INTRO, _NAME_IS, _NAME_HERE, _NAME_AFTER_GREETING):
            match = pattern.search(text)
            if not match:
                continue
            name = match.group(1).strip()
            words = name.split()
            if words[0] in _NOT_NAMES or name.lower() in theirs:
                continue
            if pattern is not _NAME_INTRO and (any(w.lower() in staff | theirs for w in words)
                                               or all(english_zipf(w) >= 4.5 for w in words)):
                continue  # "Ida Brandt here?" is a staff name; "Delivery here" an everyday word
            self.remember(f"Name: {name}")
            return

    # -- the caller's own facts --------------------------------------------------------------------
    def _keep_number(self, clause: str) -> None:
        """"Please use my new number ... from now on": the callback number is replaced, not added to."""
        number = self._number_in(clause)
        if number and re.search(r"\b(new|use|from now on|instead|now|call me|ring me|reach me|try me|get hold of me|"
                                r"my (?:\w+ )?(?:number|mobile|phone))\b", clause, re.I):
            for line in self.human_block().splitlines():
                if line.startswith("Callback number:"):
                    self.forget(line)
            self.remember(f"Callback number: {number}")

    def _learn_preferences(self, text: str) -> list[str]:
        """Keep what the caller says of themselves; returns what was kept."""
        kept: list[str] = []
        if _NOTE_REQUEST.search(text) and not _SELF_QUESTION.search(text):
            # "Could you make a note of my reg? It's LM07 PQR.": the request and its value, kept together
            clause = _FILLER.sub("", _GREETING.sub("", _SELF_ID.sub("", text.strip())).strip(" ,"))
            self._keep_number(clause)
            told = [t.strip(" ,") for t in re.split(r"(?<=[.!?])\s+|,\s*(?=(?:and\s+)?(?:can|could|would|will|please)\b)", clause,
                                             flags=re.I) if not _NOTE_REQUEST.search(t)]
            told = [t for t in told if t]
            kept = ". ".join(t.rstrip("?.! ") for t in told) if told else clause.rstrip("?. ")
            # "Could you make a note of my reg? It's LM07 PQR." is kept as "my reg is LM07 PQR": its value
            # and what it is, without the request
            named = re.search(r"\b(?:of|on to|onto|to) (my (?:[\w'-]+ ){0,3}?[\w'-]+)(?= for\b| please\b|\s*[?.!,]|$)", clause,
                              re.I)
            if told and named:
                kept = re.sub(r"^(?:it'?s|it is|that'?s|that is)\s+", f"{named.group(1)} is ", kept, count=1, flags=re.I) \
                    if re.match(r"^(?:it'?s|it is|that'?s|that is)\b", kept, re.I) else f"{named.group(1)}: {kept}"
            if kept and kept.lower() not in self.human_block().lower():
                self.remember(f"Caller said: {kept}")
                return [kept]
        clauses = [c for s in re.split(r"(?<=[.!?])\s+", text)
                   for c in re.split(r",\s+(?=(?:can|could|would|will) you\b)|\s+(?:also|and also)[,\s]+", s, flags=re.I)]
        for sentence in clauses:
            # "If I can't get over this week, is there a charge?" asks; it tells nothing to keep
            is_question = sentence.rstrip().endswith("?") and not re.search(
                r"\b(?:note|keep|save|record|remember|hang on to|hold on to)\b", sentence, re.I) \
                or _SELF_QUESTION.search(sentence)
            if is_question or _PRIVACY.search(sentence):
                continue
            if _PREFERENCE.search(sentence) or _OWN_FACT.search(sentence):
                clause = _FILLER.sub("", _GREETING.sub("", _SELF_ID.sub("", sentence)).strip(" ,"))
                if not clause or clause.lower() in self.human_block().lower():
                    continue
                self._keep_number(clause)
                self.remember(f"Caller said: {clause.rstrip('?')}")
                kept.append(clause.rstrip("?. "))
        return kept

    def _about_themselves(self, text: str) -> Reply | None:
        """"What's my booking reference?", "which number did I give you?": from this caller's memory only."""
        if not _SELF_QUESTION.search(text):
            return None
        block = self.human_block()
        lines = [line for line in block.splitlines() if line.strip()]
        said = [line[len("Caller said:"):].strip() for line in lines if line.startswith("Caller said:")]
        # "I'm at your counter and my mind's gone blank. What's my order number?": the asking sentence
        asking = [s for s in re.split(r"(?<=[.!?])\s+", text) if _SELF_QUESTION.search(s)]
        text = asking[-1] if asking else text
        name = caller_name(block)
        if name and re.search(r"\b(?:my name|what name|which name|who i am|name (?:have|did|do) you)\b", text, re.I):
            return Reply(f"We have you down as {name}.", intent="recall")
        wanted = content_stems(text) - _ASK_STEMS
        if re.search(r"\bnumber\b", text, re.I):
            numbers = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Callback number:")]
            # "what was that job number?" names another number the caller gave: their own words answer it
            named = wanted - _PHONE_STEMS
            if numbers and not (named and any(named & content_stems(line) for line in said)):
                return Reply(f"The number you gave us is {numbers[-1]}.", intent="recall")
        if not said:
            return None
        overlap = [len(wanted & content_stems(line)) for line in said]
        if wanted and max(overlap) > 0:
            best = max(range(len(said)), key=lambda i: (overlap[i], i))
        else:
            scores = self.router.embedder.embed(said) @ self.router.embedder.embed_one(text)
            best = int(np.argmax(scores))
            if scores[best] < 0.3:
                return None
        return Reply(f"You told us: {to_second_person(said[best])}.", intent="recall")

    # -- conversation mechanics ----------------------------------------------------------------
    def _mechanics(self, text: str) -> Reply | None:
        if _REPEAT_WHAT.search(text) and len(text.split()) <= 14 and (self.last_informative or self.last_reply):
            return Reply(self.last_informative or self.last_reply, intent="repeat")  # "could you repeat the price?"
        if _REPEAT.match(text) and self.last_reply:
            return Reply(self.last_reply, intent="repeat")
        if _HELLO_ONLY.match(text):
            fine = "I'm well, thank you. " if re.search(r"\bhow|al+ ?right|well\b", text, re.I) else ""
            return Reply(f"Hello! {fine}How can I help you?", intent="presence")
        if _HOLD.match(text):
            return Reply("Of course, take your time.", intent="presence")
        if _MAY_I_ASK.match(text):
            return Reply("Of course, go ahead.", intent="presence")
        if _WRONG_NUMBER.match(text):
            return Reply(f"No problem. This is {self.job.company}. Goodbye!", "end_call", {}, "goodbye")
        if _NO_THANKS.match(text):
            return Reply(f"Thank you for calling {self.job.company}. Goodbye!", "end_call", {}, "goodbye")
        if _ARE_YOU_A_MACHINE.search(text):
            # honest about what it is: callers are owed that, and it says what it can do
            return Reply(f"I'm {self.job.name}, {self.job.company}'s virtual receptionist. I can answer questions, take a "
                         f"message{' or put you through to someone' if self.directory.targets else ''}.", intent="presence")
        asked_for = _IS_THIS.match(text)
        if asked_for and self._is_us(asked_for.group(1)):
            return Reply(f"Yes, you're through to {self.job.company}. How can I help?", intent="presence")
        if _PRESENCE.match(text):
            return Reply("Yes, I'm here. How can I help you?", intent="presence")
        if _THANKS.match(text):
            return Reply(YOURE_WELCOME, intent="thanks")
        if _AFFIRM.match(text):
            return Reply(f"Great. {ANYTHING_ELSE}", intent="affirm")
        return None

    def _is_us(self, named: str) -> bool:
        """"Is this Quillfeather Bindery?": the words name this company (most of its own words, or its first)."""
        ours = content_stems(self.job.company.replace("&", " and ")) - content_stems("ltd limited and the co company")
        said = content_stems(named.replace("&", " and "))
        return bool(ours) and (len(ours & said) * 2 >= len(ours) or bool(said) and said <= ours)

    def _amend(self, text: str) -> Reply | None:
        """"No, it's 555-0199" right after a message or callback was taken: the number is corrected."""
        stored, number = self.last_stored, self._number_in(text)
        if stored is None or not number or not _CORRECTION.search(text) and len(text.split()) > 6:
            return None
        arguments = dict(stored.arguments)
        is_message = "callback_number" in arguments  # take_message; schedule_callback has number and reason
        arguments["callback_number" if is_message else "number"] = number
        note = "message" if is_message else "reason"
        arguments[note] = (arguments.get(note, "") + " (number corrected)").strip()
        self.last_stored = Reply(stored.text, stored.tool, arguments, stored.intent)
        return Reply(f"Thanks, I've corrected that. We'll call you back on {number}.", stored.tool, arguments,
                     stored.intent)

    # -- the flows -------------------------------------------------------------------------------
    def handle(self, text: str) -> Reply | None:
        reply = self._handle(text)
        if reply is not None:
            if reply.intent not in ("repeat", "presence", "thanks", "affirm", "goodbye"):
                self.last_informative = reply.text  # what "could you repeat the price?" asks for again
            if reply.tool in ("take_message", "schedule_callback"):
                self.last_stored = reply
            elif reply.intent not in ("repeat", "presence", "affirm", "thanks"):
                self.last_stored = None
        return reply

    def _handle(self, text: str) -> Reply | None:
        if _PRIVACY.search(text):
            return Reply(PRIVACY_REPLY, intent="privacy")
        self._learn_name(text)
        if self.state.pending:
            return self._continue(text)
        amended = self._amend(text)
        if amended is not None:
            return amended
        learned = self._learn_preferences(text)
        mechanics = self._mechanics(text)
        if mechanics is not None:
            return mechanics
        recalled = self._about_themselves(text)
        if recalled is not None:
            return recalled
        parts = self._parts(text)
        if len(parts) > 1:
            return self._several(parts)
        reply = self._one(text)
        updated_number = any(self._number_in(c) for c in learned) and not _WHEN.search(text)
        if (reply is None or (updated_number and reply.intent == "callback")) and learned and not self._asks_more(
                text, learned):
            noted = "; ".join(to_second_person(c) for c in learned)
            if len(noted.split()) > 22:  # read back in full it would run past what a caller listens to
                return Reply(f"Thank you, I've made a note of that. {ANYTHING_ELSE}", intent="noted")
            return Reply(f"Thank you, I've made a note: {noted}. {ANYTHING_ELSE}", intent="noted")
        return reply

    @staticmethod
    def _asks_more(text: str, learned: list[str]) -> bool:
        """Does the turn ask something beyond stating the caller's own facts ("can you keep that on file?")?"""
        rest = text
        for clause in learned:
            rest = rest.replace(clause, " ")
        asked = any(s.strip().endswith("?") for s in re.split(r"(?<=[.!?])\s+", rest))
        rest = _GREETING.sub("", rest.strip(" ,.!?"))
        if re.search(r"\b(keep|note|save|record|remember|file|write|hang on to|hold on to)\b", rest, re.I):
            return False  # asking to note it is what was done
        rest = _FILLER.sub("", rest.strip(" ,.!?"))
        return bool(_QUESTION_START.match(rest) or asked)

    def _intent(self, text: str) -> str:
        intent, _score = self.router.classify(text)
        if intent == "hours" and _PRICE_WORDS.search(text) and not HOURS_QUESTION.search(text):
            return "question"
        if intent == "goodbye" and _THANKS.match(text):
            return "thanks"
        if intent == "transfer" and re.match(r"^\W*(?:and\s+|so\s+)?who(?:m)?\b", text, re.I):
            return "question"  # "Who would I talk to about payroll?" asks for a name; it is no request yet
        return intent

    def _one(self, text: str) -> Reply | None:
        intent = self._intent(text)
        if intent == "leave_message":
            return self._message(text)
        if intent == "transfer":
            return self._transfer(text)
        if intent == "callback":
            return self._callback(text)
        if intent == "goodbye":
            return Reply(f"Thank you for calling {self.job.company}. Goodbye!", "end_call", {}, intent)
        if intent == "thanks":
            return Reply(YOURE_WELCOME, intent=intent)
        if intent == "hours":
            said = self.hours.answer(text, self.clock())
            # The fact guard checks figures against these: the stated exceptions, and the answer itself, whose
            # dates and times were computed from the configuration and the calendar, not generated.
            self.last_support = [e.text for e in self.hours.exceptions] + [said]
            return Reply(said, intent=intent)
        if intent == "identity":
            name = caller_name(self.human_block())
            if name:
                return Reply(f"Of course, you're {name}. How can I help?", intent=intent)
            return Reply("I'm sorry, I don't have your name yet. May I have it?", intent=intent)
        if self._only_a_name(text):
            return self._transfer(text)  # "Ida Brandt, please, if she's free."
        return None  # a question or small talk: answered from the documents or by the model

    _POLITE = re.compile(r"\b(?:please|if|(?:s?he|they)(?:'s|'re| is| are)?|free|available|around|in|there|about|thanks?|"
                         r"thank you|cheers|just|quickly|for me|is|are|hi|hello|hey|morning|afternoon|can|could|i|have|get|"
                         r"speak to|talk to|dr\.?|doctor|mr\.?|mrs\.?|ms\.?|miss)\b", re.I)

    def _only_a_name(self, text: str) -> bool:
        """The turn is a staff member's name and politeness: a receptionist puts the caller through."""
        people = self.directory.named(text)
        if not people:
            return False
        rest = text
        for person in people:
            for word in person.name.split():
                rest = re.sub(rf"\b{re.escape(word)}\b", " ", rest, flags=re.I)
        return not re.sub(r"[\W_]+", "", self._POLITE.sub(" ", rest))

    _SPLIT = re.compile(r"(?<=[.!?])\s+|,?\s+(?:and|also|plus)\s+(?=(?:can|could|would|will|please|i'?d like|what|when|"
                        r"where|how|do|does|is|are)\b)", re.I)

    def _parts(self, text: str) -> list[str]:
        """A question and a request in one turn, as their two parts (else the turn whole)."""
        pieces = [p.strip() for p in self._SPLIT.split(text) if p and p.strip()]
        if len(pieces) < 2:
            return [text]  # one piece: nothing to classify twice
        acting = [p for p in pieces if self._intent(p) in ("leave_message", "transfer", "callback")]
        asking = [p for p in pieces if p not in acting and (p.endswith("?") or _QUESTION_START.match(p))]
        if not acting or not asking or len(acting) > 1:
            return [text]
        if self._intent(acting[0]) == "transfer" and self.directory.match(acting[0]).kind == "none":
            return [text]  # "Is Mr Ortega in today? Could you put me through?": one request, its person elsewhere
        # The request keeps everything after it (a message's content and number follow it).
        start = text.find(acting[0])
        before = [a for a in asking if text.find(a) < start]
        return [before[0], text[start:]] if before else [text[start:], asking[0]]

    def _several(self, parts: list[str]) -> Reply:
        said, tool, arguments, intents = [], None, {}, []
        support: list[str] = []
        for part in parts:
            self.last_support = []
            reply = self._one(part)
            if reply is None:
                reply = self.answer_from_documents(part)
            support += self.last_support
            if reply.text not in said:  # the same "I don't have that" for both parts is said once
                said.append(reply.text)
            intents.append(reply.intent)
            if reply.tool and tool is None:
                tool, arguments = reply.tool, reply.arguments
        self.last_support = support
        return Reply(" ".join(said), tool, arguments, "+".join(intents))

    def answer_from_documents(self, question: str) -> Reply:
        """The document sentence that answers the question, or an honest 'I don't have that'. A follow-up
        ("and what would two of those cost?") is asked together with the question before it."""
        asked = question
        if self.last_question and FOLLOW_UP.search(question) and not self.names_new_topic(question, self.last_question):
            asked = f"{question} {self.last_question}"
        asked = self._weekday_for(self._multiplied(question, asked))
        self.last_question = question
        found = self.answer(asked)
        questions = [s for s in re.split(r"(?<=[.!?])\s+", question) if s.strip().endswith("?")]
        if found is None and questions and questions[-1].strip() != question.strip():
            found = self.answer(questions[-1])  # "My order is about $800. Do I have to pay it all up front?"
        self.last_support = [found.support or found.text] if found else []
        if found is None:
            return Reply(self.dont_know(), intent="unknown")
        self.last_informative = found.text
        return Reply(found.text, intent="question")

    def names_new_topic(self, question: str, previous: str) -> bool:
        """"My partner says go for oak. What would it cost me?" follows the last question in its "it",
        but names a thing of the documents the last one did not: it is asked on its own."""
        before = content_stems(previous)
        return any(self.knows(stem) and english_rarity(stem) >= 0.5 for stem in
                   wanted_stems(question) - before - _FOLLOW_STEMS)

    _TIMES = re.compile(r"\b(?:(twice|double)|(three times|triple|treble))\b(?: as many| as much| that| the (?:number|amount|quantity))?",
                        re.I)

    def _multiplied(self, question: str, asked: str) -> str:
        """"And what would twice as many cost?" after "brochures: price 40, per 100": the row for 200 is
        looked for (the quantity is found in the documents, never computed into a price)."""
        times = self._TIMES.search(question)
        quantity = re.search(r"\bper (\d+)\b|\bfor (\d+)\b|\bpack of (\d+)\b", self.last_reply)
        if not times or not quantity:
            return asked
        count = int(next(g for g in quantity.groups() if g)) * (2 if times.group(1) else 3)
        return f"{asked} {count}"

    def _weekday_for(self, question: str) -> str:
        """"Is Ida in today?": the documents list weekdays, so today and tomorrow are named as theirs."""
        found = re.search(r"\b(?:in|working|around|available|there|about)\s+(today|tomorrow)\b", question, re.I)
        if not found:
            return question
        day = self.clock().astimezone(ZoneInfo(self.job.timezone)).date()
        if found.group(1).lower() == "tomorrow":
            day += timedelta(days=1)
        return question[:found.start(1)] + "on " + day.strftime("%A") + question[found.end(1):]

    def _content_after(self, text: str, recipient_end: int | None) -> str:
        """What the caller wants said: the words after the recipient, without "this is <name>" or numbers."""
        rest = text[recipient_end:] if recipient_end is not None else text
        rest = re.sub(r"^\s*(?:know|that|to say|saying|about)\b", "", rest.strip(), flags=re.I)
        clauses = re.split(r"(?<=[.!?])\s+|,\s+(?=(?:this is|i'?m|it'?s|my name is|call me|my number)\b)", rest, flags=re.I)
        kept = []
        for clause in clauses:
            clause = _SELF_ID.sub("", clause.strip(" ,.?!") + ".").strip(" ,.?!")  # "This is Carla, I was..." -> "I was..."
            if not clause or _CALL_ME.match(clause) or len(clause.split()) < 3:
                continue
            clause = re.sub(r"^(?:that|so)\s+", "", clause, flags=re.I)
            kept.append(_PHONE.sub("", clause).strip(" ,"))
        return ". ".join(k for k in kept if k)

    def _find_recipient(self, text: str) -> tuple[str | None, int | None]:
        for match in _RECIPIENT.finditer(text):
            name = (match.group(1) or match.group(2) or "").strip()
            if name and name.lower().split()[0] not in GENERIC:
                return name, match.end()
        return None, None

    def _message(self, text: str) -> Reply:
        state = self.state
        state.number = self._number_in(text) or state.number
        recipient, end = self._find_recipient(text)
        if recipient:
            state.recipient = recipient
            state.content = self._content_after(text, end) or state.content
        if not state.recipient:
            state.pending = "message_recipient"
            return Reply("Of course. Who is the message for?", intent="leave_message")
        if not state.content:
            state.pending = "message_content"
            return Reply(f"Sure. What would you like me to tell {state.recipient}?", intent="leave_message")
        return self._store_message()

    def _store_message(self) -> Reply:
        state = self.state
        number = state.number or self.caller_number
        reply = Reply(
            f"Got it. I'll tell {state.recipient}: {to_second_person(state.content)}. "
            f"We'll call you back on {number}.",
            "take_message",
            {"for_whom": state.recipient, "message": state.content, "callback_number": number},
            "leave_message",
        )
        self.state = DialogueState()
        return reply

    def _continue(self, text: str) -> Reply:
        state = self.state
        if state.pending == "message_recipient":
            recipient, end = self._find_recipient(text)
            state.recipient = recipient or text.strip(" .?!")
            state.number = self._number_in(text) or state.number
            state.content = self._content_after(text, end) if recipient else ""
            state.pending = None
            if not state.content:
                state.pending = "message_content"
                return Reply(f"Sure. What would you like me to tell {state.recipient}?", intent="leave_message")
            return self._store_message()
        if state.pending == "message_content":
            state.number = self._number_in(text) or state.number
            recipient, end = self._find_recipient(text)
            if recipient:
                state.recipient = recipient
            state.content = self._content_after(text, end) or _PHONE.sub("", text).strip(" .?!")
            state.pending = None
            return self._store_message()
        if state.pending == "transfer_which":
            return self._which(text)
        if state.pending == "callback_when":
            state.pending = None
            if _QUESTION_START.match(text) and not _WHEN.search(text):
                self.state = DialogueState()
                return self._handle(text)
            return self._store_callback(text.strip(" .") or "as soon as possible", self._number_in(text))
        self.state = DialogueState()
        return Reply(self.dont_know())

    def _transfer(self, text: str) -> Reply:
        outside = self.directory.outside(text)
        if outside:
            return Reply(f"I'm sorry, I can't put you through to {outside} from here. {self._offer()}",
                         intent="transfer_refused")
        found = self.directory.match(text)
        if found.kind == "target":
            return Reply(f"Sure, I'm putting you through to {found.target} now.", "transfer_call", {"to": found.target},
                         "transfer")
        if found.kind == "ambiguous":
            self.state = DialogueState(pending="transfer_which", choices=found.people)
            options = [p.described() for p in found.people[:3]]
            count = _COUNT_WORDS.get(len(found.people), str(len(found.people)))
            said = f"We have {count} people that could be: {' or '.join(options)}. Which one would you like?"
            self.last_support = [said]  # its count and names come from the directory, not from a model
            return Reply(said, intent="transfer_which")
        if found.kind == "person_unreachable":
            person = found.people[0]
            return Reply(f"I'm sorry, I can't put you through to {person.name} directly. I can take a message for "
                         f"{person.first}" + (f", or put you through to {self.directory.alternatives()}." if
                                              self.directory.targets else "."), intent="transfer_refused")
        return Reply(f"I'm sorry, I can't transfer you there. {self._offer()}", intent="transfer_refused")

    def _which(self, text: str) -> Reply:
        """The answer to "which one would you like?"."""
        choices = self.state.choices
        self.state = DialogueState()
        wanted = content_stems(text)
        scored = [(len(wanted & content_stems(f"{p.name} {p.about} {p.transfer or ''}")), p) for p in choices]
        top = max((s for s, _ in scored), default=0)
        best = [p for s, p in scored if s == top]
        if top == 0 or len(best) != 1:
            return self._transfer(text) if self._intent(text) == "transfer" else Reply(
                f"I'm sorry, I didn't catch which one. {self._offer()}", intent="transfer_which")
        person = best[0]
        if person.transfer:
            return Reply(f"Sure, I'm putting you through to {person.transfer} now.", "transfer_call",
                         {"to": person.transfer}, "transfer")
        return Reply(f"I'm sorry, I can't put you through to {person.name} directly. I can take a message for "
                     f"{person.first}.", intent="transfer_refused")

    def _callback(self, text: str) -> Reply:
        # a day or time named ("on Friday morning") before any "on"/"at" ("someone on the service desk")
        when = _WHEN_DAY.search(text) or _WHEN.search(text)
        number = self._number_in(text)
        if not when:
            self.state.pending = "callback_when"
            self.state.number = number
            return Reply("Of course. When is a good time to call you back?", intent="callback")
        return self._store_callback(when.group(1).strip(), number)

    def _store_callback(self, when: str, number: str) -> Reply:
        number = number or self.state.number or self.caller_number
        self.state = DialogueState()
        reason = "callback requested by the caller"
        about = re.search(r"\babout (.+?)[?.!]*$", when)
        if about:
            reason, when = about.group(1), when[: about.start()].strip()
        return Reply(f"Sure, someone will call you back {when} on {number}.", "schedule_callback",
                     {"when": when, "reason": reason, "number": number}, "callback")
