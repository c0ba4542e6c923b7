"""Deterministic mechanics of the agent layer: JSON streaming, action schemas, context eviction, tools."""

import asyncio
import json

import pytest
from pydantic import ValidationError
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    SystemMessage,
    UserMessage,
)

from brain.client import SPEAK_SCHEMA, action_schema, to_chat
from brain.context import PRESSURE_NOTE, EmployeeContext
from brain.jsonstream import JSONStringStreamer, message_start
from brain.line import ConsoleLine
from brain.prompt import business_hours_text, caller_name, greeting, system_prompt
from brain.tools import CallSession, build_tools
from config.settings import JobSettings, MemorySettings, TransferTarget
from memory.service import MemoryService
from memory.sqlite_store import SQLiteStore

TEXT = 'He said "hi" \\ then left.\nPrice: 5€ 😀'


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7])
def test_json_string_streams_identically_however_it_is_split(step):
    encoded = json.dumps(TEXT)[1:] + ', "next": 1}'  # the value after its opening quote, and what follows
    streamer = JSONStringStreamer()
    out = "".join(streamer.feed(encoded[i : i + step]) for i in range(0, len(encoded), step))
    assert out == TEXT and streamer.done and streamer.value == TEXT


def test_message_start_finds_only_send_message():
    raw = '{"tool": "send_message", "arguments": {"message": "Hel'
    assert raw[message_start(raw):] == "Hel"
    assert message_start('{"tool": "take_message", "arguments": {"message": "x') is None
    assert message_start('{"tool": "send_mes') is None


def test_action_schema_fixes_the_tool_name_and_bounds_strings():
    schema = action_schema([SPEAK_SCHEMA, {"name": "end_call", "parameters": {"type": "object", "properties": {}}}])
    assert [v["properties"]["tool"]["const"] for v in schema["anyOf"]] == ["send_message", "end_call"]
    message = schema["anyOf"][0]["properties"]["arguments"]["properties"]["message"]
    assert message["maxLength"] == 300


def test_history_is_shown_to_the_model_as_actions():
    messages = [
        SystemMessage(content="sys"),
        UserMessage(content="hi", source="caller"),
        AssistantMessage(content=[FunctionCall(id="1", name="end_call", arguments="{}")], source="employee"),
        FunctionExecutionResultMessage(content=[FunctionExecutionResult(content="ok", name="end_call", call_id="1")]),
        AssistantMessage(content="Goodbye!", source="employee"),
    ]
    chat = to_chat(messages)
    assert [m.role for m in chat] == ["system", "user", "assistant", "tool", "assistant"]
    assert json.loads(chat[2].content) == {"tool": "end_call", "arguments": {}}
    assert json.loads(chat[4].content) == {"tool": "send_message", "arguments": {"message": "Goodbye!"}}


def _words(messages):
    return sum(len(str(m.content).split()) + 1 for m in messages)


def test_context_warns_then_evicts_keeping_tool_pairs_and_summarising():
    summaries = []

    def summarize(text):
        summaries.append(text)
        return f"summary#{len(summaries)}"

    context = EmployeeContext(lambda: "system prompt", _words, window=100, summarize=summarize)

    async def fill():
        for i in range(6):
            await context.add_message(UserMessage(content=f"question {i} " + "word " * 5, source="caller"))
            await context.add_message(AssistantMessage(content=[FunctionCall(id=str(i), name="search_knowledge",
                                                                              arguments="{}")], source="employee"))
            await context.add_message(FunctionExecutionResultMessage(
                content=[FunctionExecutionResult(content="result " * 3, name="search_knowledge", call_id=str(i))]))
        return await context.get_messages()

    messages = asyncio.run(fill())
    assert context.evictions >= 1 and summaries  # the oldest turns were summarised...
    assert "question 0" in summaries[0]  # ...including the first question
    assert any(isinstance(m, SystemMessage) and "summary#" in m.content for m in messages)
    kept = [m for m in messages if not isinstance(m, SystemMessage)]
    assert not isinstance(kept[0], FunctionExecutionResultMessage)  # never a result without its call
    assert _words(messages) <= 100
    second = asyncio.run(context.get_messages())
    assert PRESSURE_NOTE not in [m.content for m in second] or context.pressure_notes >= 1


def test_pressure_note_near_the_limit():
    context = EmployeeContext(lambda: "system", _words, window=40, summarize=lambda t: "s")
    asyncio.run(context.add_message(UserMessage(content="word " * 30, source="caller")))
    messages = asyncio.run(context.get_messages())
    assert messages[-1].content == PRESSURE_NOTE and context.pressure_notes == 1


def test_prompt_holds_job_hours_transfers_and_caller_memory():
    job = JobSettings(name="Max", company="Acme Plumbing", business_hours={"monday": "07:00-15:00"},
                      transfers={"dispatch": TransferTarget(target="300", description="emergencies")})
    prompt = system_prompt(job, "Name: Lena Fischer\nHas a boiler")
    assert "Max, the receptionist of Acme Plumbing" in prompt and "Monday, 7 AM to 3 PM" in prompt
    assert "closed Tuesday to Sunday" in business_hours_text(job)
    assert "dispatch (emergencies)" in prompt and "Lena Fischer; Has a boiler" in prompt
    assert caller_name("Name: Lena Fischer\nHas a boiler") == "Lena Fischer"
    assert greeting(job, "Name: Lena Fischer").startswith("Hello Lena!")
    assert greeting(job, "").startswith("Thank you for calling Acme Plumbing, this is Max.")


@pytest.fixture()
def session(tmp_path):
    from memory.embeddings import Embedder

    store = SQLiteStore(tmp_path / "m.sqlite3")
    service = MemoryService(store, Embedder.from_reference(), MemorySettings())
    memory = service.for_caller("+15550100142")
    memory.start_conversation()
    job = JobSettings(transfers={"front desk": TransferTarget(target="2001"), "billing": TransferTarget(target="2002")})
    yield CallSession(memory, service, job, ConsoleLine(echo=False), "+15550100142")
    store.close()


def _tool(session, name):
    return next(t for t in build_tools(session) if t.name == name)


def _call(tool, **arguments):
    from autogen_core import CancellationToken

    return asyncio.run(tool.run_json(arguments, CancellationToken()))


def test_transfer_only_to_configured_targets(session):
    tool = _tool(session, "transfer_call")
    assert tool.schema["parameters"]["properties"]["to"]["enum"] == ["front desk", "billing"]
    assert "started" in _call(tool, to="billing")
    assert session.line.actions == [("transfer", "2002")]
    with pytest.raises(ValidationError):  # whatever the model says; AutoGen reports it back as a tool error
        _call(tool, to="the CEO's mobile")
    assert session.line.actions == [("transfer", "2002")]


def test_take_message_and_callback_are_stored_for_staff(session):
    assert "saved" in _call(_tool(session, "take_message"), for_whom="Dr. Patel", message="Crown is loose")
    assert "scheduled" in _call(_tool(session, "schedule_callback"), when="tomorrow 10am", reason="billing question")
    [message] = session.service.store.staff_messages()
    assert (message.for_whom, message.text, message.callback_number) == ("Dr. Patel", "Crown is loose", "+15550100142")
    [callback] = session.service.store.callbacks()
    assert (callback.when, callback.number) == ("tomorrow 10am", "+15550100142")


def test_dtmf_end_call_and_memory_tools(session):
    assert "Not sent" in _call(_tool(session, "send_dtmf"), digits="12; rm -rf")
    assert "Pressed" in _call(_tool(session, "send_dtmf"), digits="1#")
    _call(_tool(session, "end_call"))
    assert session.ended and ("hang_up", "") in session.line.actions
    _call(_tool(session, "core_memory_append"), fact="Prefers mornings")
    assert session.memory.human() == "Prefers mornings"
    assert "Not stored" in _call(_tool(session, "core_memory_append"), fact="x" * 2500)


def test_custom_tool_from_config(session):
    session.job = session.job.model_copy(update={"custom_tools": ["custom_tools_example:order_status"]})
    tool = _tool(session, "order_status")
    assert _call(tool, order_number="1234") == "Order 1234 ships tomorrow."
    session.job = session.job.model_copy(update={"custom_tools": ["no.such.module:fn"]})
    with pytest.raises(ValueError, match="cannot load"):
        build_tools(session)


def test_a_looping_or_endless_reply_is_cut_short():
    from brain.employee import MAX_REPLY_WORDS, ReplyLimiter

    limiter = ReplyLimiter()
    loop = "I'm here to help with any dental issues you may have,"
    assert limiter.take(loop) == (loop, False)
    assert limiter.take(f"{loop} {loop} I'm") == ("", True)  # saying it again ends the reply
    text, stop = ReplyLimiter().take("word " * 60)
    assert stop and len(text.split()) == MAX_REPLY_WORDS and text.endswith(".")
    limiter = ReplyLimiter()
    assert limiter.take("We open at eight. We close at five.") == ("We open at eight. We close at five.", False)
    assert limiter.take("Anything else?") == ("Anything else?", False)
    limiter = ReplyLimiter()  # a short clause looping right after itself (seen in a 4-call benchmark)
    assert limiter.take("I'm sorry, I'm sorry, I'm sorry,") == ("I'm sorry.", True)
    assert ReplyLimiter().take("No, no, that's fine. Thank you, thank you so much.")[1] is False


@pytest.mark.parametrize("step", [1, 3, 100])
def test_a_message_written_without_a_grammar_is_read_leniently(step):
    def read(raw):
        streamer = JSONStringStreamer(lenient=True)
        out = "".join(streamer.feed(raw[i : i + step]) for i in range(0, len(raw), step)) + streamer.finish()
        return out, streamer.done

    assert read('Our "Gold" plan is popular."}}') == ('Our "Gold" plan is popular.', True)  # inner quotes kept
    assert read("A bad \\u00zz escape.\"}") == ("A bad \\u00zz escape.", True)  # kept as written, no crash
    assert read('Half a pair \\ud83d here."}') == ("Half a pair  here.", True)  # unspeakable: dropped
    assert read('Cut off at the quote"') == ("Cut off at the quote", True)
    assert read("Cut off by the token limit") == ("Cut off by the token limit", False)


def test_short_repeated_clauses_are_not_a_loop():
    from brain.employee import ReplyLimiter

    limiter = ReplyLimiter()
    assert limiter.take("Dr. Smith is in on Monday, Dr. Jones on Tuesday.") == (
        "Dr. Smith is in on Monday, Dr. Jones on Tuesday.", False)
