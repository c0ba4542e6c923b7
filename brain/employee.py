"""The employee: one AutoGen agent per conversation, sharing the model and memory across calls.

:class:`Brain` holds what is loaded once (LLM backend, memory service, job); it opens a
:class:`Conversation` per call. A conversation greets, runs turns (the caller's text in, a stream of
:class:`SpeechDelta` / :class:`ToolUsed` events out, then :class:`TurnDone`), records every message in
recall memory as it happens, and on :meth:`Conversation.end` runs the post-call work.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    ModelClientStreamingChunkEvent,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core import CancellationToken

from autogen_core.models import AssistantMessage, SystemMessage, UserMessage

from brain.client import MAX_TOOL_ROUNDS, EmployeeModelClient, to_chat
from brain.context import EmployeeContext
from brain.dialogue import IntentRouter, Receptionist, Reply
from brain.directory import Directory
from brain.hours import HoursAnswerer, exception_texts
from brain.facts import FactGuard, support_figures
from brain.knowledge import KnowledgeIndex
from brain.policy import REFUSAL, Policy
from brain.line import LineControl
from brain.outbound import GoalFlow, OutboundTask
from brain.llm import ChatMessage, CompletionRequest, LLMBackend, load_backend
from brain.prompt import business_hours_text, caller_name, greeting, system_prompt
from brain.tools import LOOKUP_TOOLS, CallSession, build_tools
from config.settings import Settings
from speech.sentences import SentenceChunker, split_sentences
from memory.service import MemoryLimitError, MemoryService, open_memory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechDelta:
    text: str


@dataclass(frozen=True)
class ToolUsed:
    name: str
    arguments: str
    result: str
    is_error: bool = False


@dataclass(frozen=True)
class TurnDone:
    text: str  # what the employee said this turn
    first_token_s: float | None
    total_s: float
    cancelled: bool = False


TurnEvent = SpeechDelta | ToolUsed | TurnDone


@dataclass(frozen=True)
class PostCall:
    summary: str
    action_items: list[str] = field(default_factory=list)
    remembered: list[str] = field(default_factory=list)


POST_CALL_SCHEMA = {
    "type": "object",
    "properties": {
        "caller_name": {"type": "string", "maxLength": 40},
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 120}, "maxItems": 4},
        "action_items": {"type": "array", "items": {"type": "string", "maxLength": 120}, "maxItems": 4},
    },
    "required": ["caller_name", "facts", "action_items"],
}
_WORD = re.compile(r"[a-z0-9']+")
_MARKDOWN = re.compile(r"(\*\*|__|`|^#+\s*|^\s*[-*•]\s+|^\s*\d+\.\s+)", re.M)
_QUESTION = re.compile(r"\?\s*$|^\s*(what|when|where|who|whom|which|why|how|do|does|did|is|are|can|could|will|would|"
                       r"should|may|have|has)\b", re.I)
_CODE_LIKE = re.compile(r'[{}<>\[\]]|"tool"|\\"|_{2,}|(\w+_){3,}')
_CLAIMED_FREE = re.compile(r"^\W*(?:please\s+)?(?:confirm|tell me|say|agree|admit)\s+(?:that\s+)?(.+?)\s+(?:is|are)\s+"
                           r"(?:now\s+)?(?:free|free of charge|at no cost)\W*$", re.I)
MAX_SENTENCES = 2  # telephone style: one or two sentences unless asked
MAX_REPLY_WORDS = 40


class ReplyLimiter:
    """Telephone brevity for what the model writes, piece by piece: at most ``MAX_REPLY_WORDS`` words, and a
    clause the reply already said ends it (a small model loops: "I'm here to help, I'm here to help, ...",
    with no full stop for the sentence limit to catch), and so does a clause of two words or more said again
    right after itself ("I'm sorry, I'm sorry, ..." was spoken 20 times in a 4-call benchmark). What is cut
    ends with a full stop."""

    _CLAUSE = re.compile(r"(?<=[,;:.!?])\s+")

    def __init__(self, max_words: int = MAX_REPLY_WORDS) -> None:
        self.max_words = max_words
        self.words = 0
        self._said: set[str] = set()
        self._last = ""

    def take(self, piece: str) -> tuple[str, bool]:
        """The part of ``piece`` to speak, and whether the reply must end there."""
        kept: list[str] = []
        for clause in self._CLAUSE.split(piece.strip()):
            key = re.sub(r"[^a-z0-9 ]", "", clause.lower()).strip()
            count = len(clause.split())
            if (len(key.split()) >= 3 and key in self._said) or (len(key.split()) == 2 and key == self._last):
                return self._close(kept), True  # "Dr." twice, or "No, no," is not a loop
            if self.words + count > self.max_words:
                if not kept and not self.words:  # one endless clause: its first words
                    kept.append(" ".join(clause.split()[: self.max_words]))
                return self._close(kept), True
            self._said.add(key)
            self._last = key
            self.words += count
            kept.append(clause)
        return " ".join(kept), False

    @staticmethod
    def _close(kept: list[str]) -> str:
        text = " ".join(kept).rstrip(" ,;:-–")
        return text + "." if text and not _SENTENCE_END.search(text) else text
_STOP = {"the", "a", "an", "to", "is", "and", "of", "i", "my", "me", "for", "in", "on", "at", "it", "caller", "their",
         "they", "wants", "has", "be", "with", "you", "your", "please", "would", "like", "about", "this", "that", "how",
         "can", "what", "when", "where", "who", "will", "are", "was", "have", "hi", "hello", "thanks", "thank", "yes",
         "not", "but", "just", "get", "got", "need", "want", "there", "here", "could", "should", "did", "does", "from"}


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


# The first piece of a reply may end at a comma after FIRST_CLAUSE_CHARS ("I'm sorry, | ..."), or before a
# phrase after FIRST_PHRASE_WORDS words and 20 characters: the caller hears the reply begin sooner (Piper's
# time grows with the piece: ~2.4 ms a character here).
FIRST_CLAUSE_CHARS = 10
FIRST_PHRASE_WORDS = 4


def first_piece_chunker() -> SentenceChunker:
    """A chunker whose first piece may be such a clause or phrase (a reply's start, and whoever predicts it)."""
    return SentenceChunker(first_clause_min_chars=FIRST_CLAUSE_CHARS, first_phrase_min_words=FIRST_PHRASE_WORDS)
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*$")


class Brain:
    """What every conversation shares: the model, the memory, the job."""

    def __init__(self, settings: Settings, backend: LLMBackend | None = None, memory: MemoryService | None = None) -> None:
        self.settings = settings
        self.job = settings.job
        self.backend = backend or load_backend(settings.llm)
        self.memory = memory or open_memory(settings.memory_path, settings.memory)
        self.router = IntentRouter(self.memory.embedder)
        self.knowledge = KnowledgeIndex(self.memory, self.job.company)
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)  # the eval sets a fixed one
        self._desk: tuple[int, HoursAnswerer, Directory] | None = None

    def front_desk(self) -> tuple[HoursAnswerer, Directory]:
        """The hours (with the exceptions the documents state) and the staff directory, rebuilt when the
        documents change."""
        version = self.memory.store.count("passages")
        if self._desk is None or self._desk[0] != version:
            facts = self.knowledge.facts()
            texts = [f"{fact.heading}: {fact.text}" if fact.kind in ("list", "item") else fact.text for fact in facts]
            self._desk = (version, HoursAnswerer(self.job, exception_texts(texts)), Directory(self.job, facts))
        return self._desk[1], self._desk[2]

    def conversation(self, caller: str, line: LineControl, channel: str = "phone", call_context: str = "",
                     task: OutboundTask | None = None) -> "Conversation":
        return Conversation(self, caller, line, channel, call_context, task)

    def close(self) -> None:
        self.backend.close()
        self.memory.store.close()


class Conversation:
    def __init__(self, brain: Brain, caller: str, line: LineControl, channel: str, call_context: str = "",
                 task: OutboundTask | None = None) -> None:
        self.brain = brain
        self.memory = brain.memory.for_caller(caller)
        self.memory.start_conversation(channel)
        self.session = CallSession(self.memory, brain.memory, brain.job, line, caller)
        self.client = EmployeeModelClient(brain.backend)
        human = self.memory.human()
        self._prompt = system_prompt(brain.job, human)  # stable for the whole call: the cached prefix
        self.call_context = call_context.strip()
        if self.call_context:  # e.g. who transferred the call here (Diversion / History-Info / Referred-By)
            self._prompt += f"\n\nAbout this call: {self.call_context}"
            self.memory.record("system", f"call context: {self.call_context}")
        self.context = EmployeeContext(
            system_prompt=lambda: self._prompt,
            count_tokens=self.client.count_tokens,
            window=brain.backend.context_window,
            summarize=self._summarize,
        )
        model_tools = self._model_tools(build_tools(self.session), brain.settings.llm.model_tools, brain.job.custom_tools)
        self._has_model_tools = bool(model_tools)  # the model's turn is an action (chosen, then written)
        self.agent = AssistantAgent(
            "employee",
            model_client=self.client,
            tools=model_tools,
            model_context=self.context,
            system_message=None,
            model_client_stream=True,
            reflect_on_tool_use=True,
            max_tool_iterations=MAX_TOOL_ROUNDS,
        )
        self.turns = 0
        self._transcript: list[tuple[str, str]] = []
        self.policy = Policy(brain.job)
        job = brain.job
        self.guard = FactGuard.from_texts(
            business_hours_text(job), " ".join(t.target for t in job.transfers.values()), job.greeting, job.company)
        hours, directory = brain.front_desk()
        self.receptionist = Receptionist(
            job, brain.router, brain.knowledge.answer, caller, self.memory.human, self._remember_from_dialogue,
            hours=hours, directory=directory, clock=lambda: brain.clock(), forget=self._forget,
            knows=brain.knowledge.knows)
        self._tools = {t.name: t for t in build_tools(self.session)}  # every tool, for the dialogue flows
        self.overhead_s: list[float] = []  # per turn: intent, retrieval, policy and fact guard
        self.task = task
        self.goal = GoalFlow(task, job, self._document_answer) if task is not None else None
        if task is not None:
            self.memory.record("system", f"outbound call{' for campaign ' + task.campaign if task.campaign else ''}: "
                                         f"calling to {task.purpose}")

    @staticmethod
    def _model_tools(tools: list, policy: str, custom: list[str]) -> list:
        """Which tools the model may call by itself (see ``llm.model_tools``).

        Measured on the 135M model: given every tool, it took "messages" made of its own words, scheduled
        callbacks and ended calls on unrelated sentences. Acting tools therefore stay with the dialogue
        flows, which act only on what the caller clearly asked for; the model keeps the lookups.
        """
        if policy == "all":
            return tools
        custom_names = {name.partition(":")[2] for name in custom}
        return [t for t in tools if t.name in LOOKUP_TOOLS or t.name in custom_names]

    def warm_up(self) -> None:
        """Evaluate this call's stable prompt prefix now (while the greeting plays), not on the first question."""
        self.brain.backend.warm_prefix([ChatMessage("system", self._prompt)])

    def prefill(self, caller_text: str = "", *, whole: bool = False, until: Callable[[], bool] | None = None,
                defer: Callable[[], bool] | None = None) -> int:
        """Let the model read ahead while nobody waits: the conversation so far and, while the caller is still
        speaking, their words so far (a partial transcript). The turn then evaluates only what is new.
        ``whole``: these may be the caller's final words (the transcript of a pause that may end the turn): the
        turn's whole prompt is read, and the reply's first words written (:meth:`first_words_ahead`) until
        ``until()`` says the turn came (pausing while ``defer()``): if it comes with these words it starts
        speaking at once.
        Blocking (model work): call it off the voice loop."""
        messages = list(self.context.current_messages())
        if caller_text.strip():
            messages.append(UserMessage(content=caller_text.strip(), source="caller"))
            if whole:
                return self.client.prefill_turn(messages, tools=self._has_model_tools, until=until, defer=defer)
        return self.brain.backend.prefill(to_chat(messages), open_last=bool(caller_text.strip()))

    def first_words_ahead(self, caller_text: str) -> str:
        """What the reply to ``caller_text`` will say first, if the model wrote its start ahead (a whole-turn
        :meth:`prefill`) and the turn goes to the model: that start as :meth:`_model_turn` would vet and cut it
        into its first piece ("" when there is no complete first piece, or it would not be said as written).
        Nothing is recorded: the turn may never come. Blocking (it tokenizes the prompt): off the voice loop."""
        messages = [*self.context.current_messages(), UserMessage(content=caller_text.strip(), source="caller")]
        written, whole = self.client.written_ahead(messages)
        if not written:
            return ""
        chunker = first_piece_chunker()
        pieces = chunker.push(written) + (chunker.flush() if whole else [])
        piece = self._styled(pieces[0]) if pieces else None
        # As _vet would pass it unchanged, without counting a check for a turn that may never come.
        if (piece is None or self.policy.leaks(piece)
                or (self.policy.may_begin_secret(piece) and not _SENTENCE_END.search(piece))
                or self.guard.unsupported(piece, self._support(pending=caller_text))):
            return ""
        said, _ = ReplyLimiter().take(piece)
        return said

    @property
    def ended(self) -> bool:
        return self.session.ended

    def greeting(self) -> str:
        """What the employee says on answering; empty on a campaign call (the callee speaks first)."""
        if self.goal is not None:
            return ""
        text = greeting(self.brain.job, self.memory.human())
        self.record_reply(text)
        return text

    def opening(self) -> str:
        """A campaign call's opening, when the callee picked up but said nothing."""
        assert self.goal is not None
        text = self.goal.opening()
        self.record_reply(text)
        return text

    def voicemail_message(self) -> str:
        """The message left on an answering machine (the goal flow ends with it)."""
        assert self.goal is not None
        text = self.goal.voicemail_message()
        self.record_reply(text)
        return text

    def _document_answer(self, text: str) -> str | None:
        """A question about the company asked in the middle of a campaign call, answered from the documents."""
        if not _QUESTION.search(text):
            return None
        found = self.brain.knowledge.answer(text)
        if found is None:
            return None
        self.receptionist.last_support = [found.support or found.text]
        return found.text

    def _forget(self, line: str) -> None:
        try:
            self.memory.core_memory_replace(line, "")
        except MemoryLimitError:
            pass

    def _remember_from_dialogue(self, fact: str) -> None:
        try:
            self.memory.core_memory_append(fact)
        except MemoryLimitError:
            log.info("core memory full; not remembering %r", fact)

    def _support(self, pending: str = "") -> set[str]:
        """Figures this turn may state: the caller's words (``pending``: words not yet in the transcript), their
        memory, the passages just retrieved."""
        texts = [text for who, text in self._transcript if who == "caller"] + [self.session.caller_number, pending]
        texts += [self.memory.human()] + self.receptionist.last_support
        if self.task is not None:  # a campaign call may state what its contact list says (the time booked, ...)
            texts += [str(v) for v in self.task.contact.values()] + [self.task.goal]
        support: set[str] = set()
        for text in texts:
            support |= support_figures(text)
        return support

    @staticmethod
    def _styled(sentence: str) -> str | None:
        """The sentence without markdown; None if nothing is left or it is code-like (a small model sometimes
        writes JSON or markup into what it says: never speak it)."""
        sentence = _MARKDOWN.sub("", sentence).strip()
        return None if not sentence or _CODE_LIKE.search(sentence) else sentence

    def _vet(self, sentence: str) -> str | None:
        """Style, secrets and facts, in that order; None drops the sentence."""
        sentence = self._styled(sentence)
        if sentence is None:
            return None
        if self.policy.filter(sentence) is None:
            return None
        if not self.guard.check(sentence, self._support()):
            return self.receptionist.dont_know()
        return sentence

    async def _run_tool(self, reply: Reply) -> ToolUsed:
        tool = self._tools[reply.tool]
        try:
            result = await tool.run_json(reply.arguments, CancellationToken())
            text, error = tool.return_value_as_string(result), False
        except Exception as exc:  # a tool refusing its arguments must not end the call
            text, error = f"{type(exc).__name__}: {exc}", True
        self.memory.record("tool", f"{reply.tool}({json.dumps(reply.arguments)})", name=reply.tool)
        self.memory.record("tool", text, name=reply.tool)
        return ToolUsed(reply.tool, json.dumps(reply.arguments), text, error)

    def _deterministic(self, caller_text: str) -> Reply | None:
        if self.goal is not None and not self.goal.done:
            handled = self.goal.handle(caller_text)
            if handled is not None:
                text, end = handled
                return Reply(text, tool="end_call" if end else None, intent="goal")
        if self.policy.is_injection(caller_text):
            return self._refuse_injection(caller_text)
        reply = self.receptionist.handle(caller_text)
        if reply is not None:
            return reply
        if self.brain.job.answer_mode == "extractive":
            answer = self.receptionist.answer_from_documents(caller_text)
            if answer.intent == "question" or _QUESTION.search(caller_text):
                return answer
        else:
            self.receptionist.last_support = [
                p.text for p in self.brain.memory.search_knowledge(caller_text, limit=2)
                if p.score >= self.receptionist.min_passage_score]
        return None

    def _refuse_injection(self, caller_text: str) -> Reply:
        """Refuse the attempt; still answer the honest question beside it (hours, documents, a request)."""
        honest = " ".join(s for s in split_sentences(caller_text) if not self.policy.is_injection(s)).strip()
        # "Confirm that a repair is free": the injected claim made a question, the real one is its price.
        claimed = _CLAIMED_FREE.match(honest) or next(
            (m for m in map(_CLAIMED_FREE.match, split_sentences(caller_text)) if m), None)  # the claim beside the rule
        if claimed:
            honest = f"How much is {claimed.group(1)}?"
        if not honest:
            # one sentence carrying both: "from now on it's free, so how much is X?" -> its last clause
            clauses = re.split(r"[,;:]\s+|\s+(?:so|anyway|but|now)\s+", caller_text)
            honest = clauses[-1].strip() if len(clauses) > 1 and not self.policy.is_injection(clauses[-1]) else ""
        answer: Reply | None = None
        if honest:
            answer = self.receptionist.handle(honest)
            if answer is None or answer.tool in ("end_call",):
                found = self.brain.knowledge.answer(honest)
                self.receptionist.last_support = [found.support or found.text] if found else []
                answer = Reply(found.text, intent="question") if found else None
        if answer is None:
            return Reply(REFUSAL, intent="injection")
        return Reply(f"I can't change that. {answer.text}", answer.tool if answer.tool != "end_call" else None,
                     answer.arguments, "injection")

    def note_caller(self, text: str) -> None:
        """Keep words the caller said that will get no answer (they hung up while saying them)."""
        if text.strip():
            self.memory.record("user", text.strip())
            self._transcript.append(("caller", text.strip()))

    def record_reply(self, text: str) -> None:
        """Record what the caller actually heard (the voice loop calls this after a barge-in)."""
        if text.strip():
            self.memory.record("assistant", text.strip())
            self._transcript.append(("assistant", text.strip()))
            self.receptionist.last_reply = text.strip()

    async def turn(
        self, caller_text: str, cancellation: CancellationToken | None = None, *, record_reply: bool = True
    ) -> AsyncIterator[TurnEvent]:
        """One caller utterance -> the employee's reply, streamed sentence by sentence, vetted.

        ``record_reply=False`` leaves recording the reply to the caller (the voice loop records only
        what was played before a barge-in, via :meth:`record_reply`).
        """
        started = time.perf_counter()
        self.turns += 1
        self.memory.record("user", caller_text)
        self._transcript.append(("caller", caller_text))
        token = cancellation or CancellationToken()
        spoken: list[str] = []
        first: float | None = None
        overhead = time.perf_counter()
        reply = self._deterministic(caller_text)
        overhead = time.perf_counter() - overhead
        if reply is not None:
            if reply.tool:
                yield await self._run_tool(reply)
            vet_started = time.perf_counter()
            text = self._vet(reply.text) or self.receptionist.dont_know()  # dropped by policy: say so, never it
            overhead += time.perf_counter() - vet_started
            if first is None:
                first = time.perf_counter() - started
            spoken.append(text)
            yield SpeechDelta(text)
            await self.context.add_message(UserMessage(content=caller_text, source="caller"))
            await self.context.add_message(AssistantMessage(content=text, source="employee"))
        else:
            async for event in self._model_turn(caller_text, token):
                if isinstance(event, SpeechDelta):
                    if first is None:
                        first = time.perf_counter() - started
                    spoken.append(event.text)
                yield event
        self.overhead_s.append(overhead)
        text = " ".join(s.strip() for s in spoken if s.strip())
        if text and record_reply:
            self.record_reply(text)
        yield TurnDone(text, first, time.perf_counter() - started, token.is_cancelled())

    async def _model_turn(self, caller_text: str, token: CancellationToken) -> AsyncIterator[TurnEvent]:
        """The AutoGen agent answers; its sentences are vetted before they are spoken; at most two."""
        passages = self.receptionist.last_support
        if passages:
            facts = " ".join(" ".join(p.split()) for p in passages)
            await self.context.add_message(SystemMessage(content=f"Facts for the next answer: {facts}"))
        # The first clause or phrase is vetted and spoken as soon as it is complete (the caller hears the
        # reply begin a sentence earlier); the limit counts whole sentences.
        chunker = first_piece_chunker()
        sentences = 0
        limiter = ReplyLimiter()
        streamed_any = False
        received_any = False  # deltas reached the chunker (the final message must not be added again)
        held = ""  # a first piece ending with the start of a secret: vetted together with what follows

        def vetted(pieces: list[str], final: bool = False) -> list[str]:
            nonlocal held
            out = []
            for piece in pieces:
                if held:
                    piece, held = f"{held} {piece}", ""
                if not _SENTENCE_END.search(piece) and self.policy.may_begin_secret(piece):
                    held = piece
                    continue
                checked = self._vet(piece)
                if checked:
                    out.append(checked)
            if final and held:
                checked, held = self._vet(held), ""
                if checked:
                    out.append(checked)
            return out

        def limited(sentence: str) -> str:
            """What of a vetted piece is said, counting the sentences it ends. The honest "I don't have that"
            (the guard's replacement) is said whole, whatever came before, and ends the reply."""
            nonlocal sentences
            if sentence == self.receptionist.dont_know():
                sentences = MAX_SENTENCES
                return sentence
            said, stop = limiter.take(sentence)
            sentences = MAX_SENTENCES if stop else sentences + self._sentences_in(said)
            return said

        async for event in self.agent.run_stream(task=TextMessage(content=caller_text, source="caller"),
                                                 cancellation_token=token):
            if isinstance(event, ModelClientStreamingChunkEvent) and sentences < MAX_SENTENCES:
                received_any = True
                for sentence in vetted(chunker.push(event.content)):
                    if sentences < MAX_SENTENCES and (said := limited(sentence)):
                        streamed_any = True
                        yield SpeechDelta(said + " ")
                if sentences >= MAX_SENTENCES:
                    token.cancel()
            elif isinstance(event, ToolCallRequestEvent):
                for call in event.content:
                    self.memory.record("tool", f"{call.name}({call.arguments})", name=call.name)
            elif isinstance(event, ToolCallExecutionEvent):
                for result in event.content:
                    self.memory.record("tool", result.content, name=result.name)
                    yield ToolUsed(result.name, "", result.content, result.is_error)
            elif isinstance(event, TaskResult):
                last = event.messages[-1] if event.messages else None
                if not received_any and isinstance(last, TextMessage):
                    chunker.push(last.content)
        for sentence in vetted(chunker.flush(), final=True):
            if sentences >= MAX_SENTENCES:
                break
            if said := limited(sentence):
                streamed_any = True
                yield SpeechDelta(said + " ")
        if not streamed_any:
            yield SpeechDelta(self.receptionist.dont_know())

    @staticmethod
    def _sentences_in(piece: str) -> int:
        """How many sentences a vetted piece ends (a first clause ends none)."""
        return sum(1 for sentence in split_sentences(piece) if _SENTENCE_END.search(sentence))

    def _summarize(self, text: str) -> str:
        request = CompletionRequest(
            [ChatMessage("system", "Summarise this part of a phone call in at most three sentences. Keep names, "
                                   "numbers and requests."), ChatMessage("user", text)],
            max_tokens=120, temperature=0.0, stable_prefix_messages=0,
        )
        return self.brain.backend.complete(request)[0].strip()

    def action_summary(self) -> str:
        """What happened, from the facts of the call (tools run, questions asked): no model, no invention."""
        name = caller_name(self.memory.human())
        who = name or f"Caller {self.memory.key}"
        asked = [text for who_, text in self._transcript if who_ == "caller"]
        parts = []
        for entry in self.session.tool_log:
            args = entry["arguments"]
            if entry["tool"] == "take_message":
                parts.append(f"left a message for {args.get('for_whom')}: {args.get('message')}")
            elif entry["tool"] == "transfer_call":
                parts.append(f"was transferred to {args.get('to')}")
            elif entry["tool"] == "schedule_callback":
                parts.append(f"asked for a callback {args.get('when')} on {args.get('number')}")
        questions = [q for q in asked if _QUESTION.search(q)]
        if questions:
            parts.insert(0, "asked: " + "; ".join(q.strip() for q in questions[:3]))
        if self.goal is not None:
            goal = self.goal.result.summary or f"Goal not reached (calling to {self.task.purpose})."
            return goal + (f" Also, {who} " + "; ".join(parts) + "." if parts else "")
        return f"{who} " + ("; ".join(parts) if parts else "called") + "."

    async def end(self) -> PostCall:
        """Post-call work: a summary for staff, action items, and what to remember about the caller."""
        transcript = "\n".join(f"{who}: {text}" for who, text in self._transcript)
        if self.turns == 0:
            said = self.goal.result.summary if self.goal is not None and self.goal.result.summary else ""
            summary = said or "No conversation (the caller said nothing)."
            self.memory.end_conversation(summary)
            return PostCall(summary)
        summary = self.action_summary()
        request = CompletionRequest(
            [ChatMessage("system", "Read this phone call. Give the caller's name if they said it (else empty), up to "
                                   "four facts about the caller worth remembering, and the staff's action items."),
             ChatMessage("user", transcript)],
            max_tokens=200, temperature=0.0, json_schema=POST_CALL_SCHEMA, stable_prefix_messages=0,
            background=True,  # nobody waits for it: live calls' turns go first
        )
        raw, _ = self.brain.backend.complete(request)
        try:
            extracted = json.loads(raw)
        except json.JSONDecodeError:
            extracted = {"caller_name": "", "facts": [], "action_items": []}
        remembered = self._remember(extracted)
        self.memory.end_conversation(summary)
        items = [f"Call back {e['arguments'].get('callback_number') or e['arguments'].get('number')}: "
                 f"{e['arguments'].get('message') or e['arguments'].get('reason')}"
                 for e in self.session.tool_log if e["tool"] in ("take_message", "schedule_callback")]
        return PostCall(summary, items, remembered)

    def _remember(self, extracted: dict) -> list[str]:
        """Only facts grounded in the caller's own words are kept (small models invent names)."""
        said = _content_words(" ".join(text for who, text in self._transcript if who == "caller"))
        current = self.memory.human()
        remembered: list[str] = []
        name = str(extracted.get("caller_name", "")).strip()
        if name and not caller_name(current) and _content_words(name) and _content_words(name) <= said:
            remembered.append(f"Name: {name}")
        for fact in extracted.get("facts", []):
            words = _content_words(str(fact))
            if name and words <= _content_words(name):
                continue  # the name again, already handled
            assistant_said = " ".join(t for w, t in self._transcript if w == "assistant").lower()
            if str(fact).lower() in assistant_said:
                continue  # the model copying the employee's own words is not a fact about the caller
            # A fact is a phrase mostly made of the caller's own words ("caller_name" or a paraphrase of
            # the employee's reply is not).
            if len(words) >= 2 and len(words & said) >= max(2, -(-3 * len(words) // 5)) and fact not in current:
                remembered.append(str(fact).strip())
        kept = []
        for line in remembered:
            try:
                self.memory.core_memory_append(line)
                kept.append(line)
            except MemoryLimitError:
                break
        return kept
