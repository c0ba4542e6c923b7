#!/usr/bin/env python3
"""LLM benchmark: time to first token cold vs. with the cached stable prefix, tokens per second,
and the parse rate of schema-constrained tool calls over 50+ caller utterances.

    .venv/bin/python scripts/bench_brain.py --json [--model PATH.gguf] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import asyncio  # noqa: E402
import tempfile  # noqa: E402

import llama_cpp  # noqa: E402

from brain.llm import ChatMessage, CompletionRequest, LlamaCppBackend  # noqa: E402
from config.settings import LLMSettings  # noqa: E402

SYSTEM = (
    "You are Ava, the receptionist of Northwind Dental, 12 Harbour Street, Springfield. Speak briefly and "
    "politely, one or two sentences, no lists. Opening hours: Monday to Friday 8:00 to 17:00, Saturday 9:00 "
    "to 12:00. Staff: Dr. Priya Patel (dentist), Dr. Tom Lee (orthodontist), Sam Reyes (front desk). "
    "You can take messages for staff, transfer calls to the front desk or billing, and end calls.\n"
    "Caller memory: name Maria Gomez, prefers morning appointments, last visit in March."
)
QUESTIONS = [
    "Hi, what time do you open tomorrow?", "Is Dr. Patel in today?", "Can I book a cleaning?",
    "Where are you located?", "Do you take walk-ins?", "How much is a check-up?",
]
TOOL_PROMPTS = [
    "Can you tell Dr. Patel I called about my crown?", "Please put me through to billing.",
    "I'd like to leave a message for Sam.", "Transfer me to the front desk please.", "That's all, goodbye.",
    "Let Dr. Lee know my braces are loose.", "I need to talk to someone about my invoice.",
    "Could you ask Dr. Patel to call me back at 555 0142?", "Thanks, bye!", "Connect me with a human.",
]
TOOLS_SCHEMA = {
    "type": "object",
    "properties": {
        "tool": {"type": "string", "enum": ["take_message", "transfer_call", "end_call", "answer"]},
        "arguments": {
            "type": "object",
            "properties": {
                "for_whom": {"type": "string", "maxLength": 40},
                "target": {"type": "string", "enum": ["front desk", "billing"]},
                "text": {"type": "string", "maxLength": 200},
            },
        },
    },
    "required": ["tool", "arguments"],
}


def pct(values, q):
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def valid(data: dict) -> bool:
    enum = TOOLS_SCHEMA["properties"]["tool"]["enum"]
    return isinstance(data, dict) and data.get("tool") in enum and isinstance(data.get("arguments"), dict)


def bench_agent_actions(llm: LlamaCppBackend, repeats: int) -> dict:
    """The employee's real action path: EmployeeModelClient with all standard tools, real memory file."""
    # Imported here, so a --skip-agent run (a GPU box with only the model) needs no AutoGen or embedding model.
    from autogen_core.models import SystemMessage, UserMessage

    from brain.client import EmployeeModelClient
    from brain.line import ConsoleLine
    from brain.prompt import system_prompt
    from brain.tools import CallSession, build_tools
    from config.settings import JobSettings, MemorySettings
    from memory.embeddings import Embedder
    from memory.service import MemoryService
    from memory.sqlite_store import SQLiteStore

    folder = tempfile.mkdtemp(prefix="bench-brain-")
    store = SQLiteStore(f"{folder}/memory.sqlite3")
    service = MemoryService(store, Embedder.from_reference(), MemorySettings())
    memory = service.for_caller("+15550100142")
    memory.start_conversation()
    job = JobSettings()
    session = CallSession(memory, service, job, ConsoleLine(echo=False), "+15550100142")
    tools = build_tools(session)
    client = EmployeeModelClient(llm)
    chosen: dict[str, int] = {}
    assembly = []
    for _ in range(repeats):
        for prompt in TOOL_PROMPTS + QUESTIONS:
            started = time.perf_counter()
            messages = [SystemMessage(content=system_prompt(job, memory.human())), UserMessage(content=prompt, source="caller")]
            client.count_tokens(messages)
            assembly.append(time.perf_counter() - started)
            result = asyncio.run(client.create(messages, tools=tools))
            name = result.content[0].name if isinstance(result.content, list) else "send_message"
            chosen[name] = chosen.get(name, 0) + 1
    store.close()
    stats = client.stats
    return {
        "actions": stats.actions,
        "parse_rate": round(stats.parse_rate, 3),
        "parsed_first_try": stats.parsed_first_try,
        "recovered": stats.recovered_by_retry,
        "failed": stats.failed,
        "chosen": chosen,
        "context_assembly_ms": {"p50": pct(assembly, 50), "p95": pct(assembly, 95)},
    }


def side_by_side(llm: LlamaCppBackend, repeats: int = 3) -> dict:
    """Two calls' replies asked for at once (one per llama.cpp context): each one's first token and the
    pair's total, against the same two replies one after the other."""
    import threading

    requests = [CompletionRequest([ChatMessage("system", SYSTEM), ChatMessage("user", q)], max_tokens=60,
                                  temperature=0.0) for q in QUESTIONS[:2]]
    together, alone, firsts = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for request in requests:
            llm.stream(request).read()
        alone.append(time.perf_counter() - started)
        streams: list = []

        def run(request: CompletionRequest) -> None:
            stream = llm.stream(request)
            stream.read()
            streams.append(stream)

        started = time.perf_counter()
        threads = [threading.Thread(target=run, args=(request,)) for request in requests]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        together.append(time.perf_counter() - started)
        firsts += [stream.stats.first_token_s for stream in streams]
    return {"one_after_the_other_ms": {"p50": pct(alone, 50)}, "side_by_side_ms": {"p50": pct(together, 50)},
            "first_token_ms": {"p50": pct(firsts, 50), "p95": pct(firsts, 95)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-agent", action="store_true", help="skip the AutoGen action pass (needs the embedding model)")
    args = parser.parse_args()

    llm = LlamaCppBackend.from_settings(
        LLMSettings(model=args.model, n_ctx=2048, n_threads=args.threads, n_gpu_layers=args.gpu_layers)
    )
    system = ChatMessage("system", SYSTEM)
    other = ChatMessage("system", "You are a helpful assistant for a bakery.")
    cold, cached, rates = [], [], []
    for _ in range(args.repeats):
        for question in QUESTIONS:
            request = CompletionRequest([system, ChatMessage("user", question)], max_tokens=48, temperature=0.0)
            llm.prefix_cache_enabled = False
            stream = llm.stream(request)
            stream.read()
            cold.append(stream.stats.first_token_s)
            llm.prefix_cache_enabled = True
            llm.stream(CompletionRequest([other, ChatMessage("user", "hi")], max_tokens=1)).read()  # another call
            stream = llm.stream(request)
            stream.read()
            cached.append(stream.stats.first_token_s)
            if stream.stats.tokens_per_second:
                rates.append(stream.stats.tokens_per_second)
    parsed, total, tool_latency = 0, 0, []
    instruction = ChatMessage("system", SYSTEM + "\nReply with the JSON action for the caller's request.")
    for _ in range(max(1, 50 // len(TOOL_PROMPTS))):
        for prompt in TOOL_PROMPTS:
            total += 1
            started = time.perf_counter()
            text = llm.stream(CompletionRequest([instruction, ChatMessage("user", prompt)], json_schema=TOOLS_SCHEMA,
                                                max_tokens=120, temperature=0.7)).read()
            tool_latency.append(time.perf_counter() - started)
            try:
                parsed += valid(json.loads(text))
            except json.JSONDecodeError:
                pass
    agent = None if args.skip_agent else bench_agent_actions(llm, repeats=max(1, 50 // len(TOOL_PROMPTS + QUESTIONS)) + 1)
    prompt_tokens = len(llm.tokenize_prompt(llm.render([system, ChatMessage("user", QUESTIONS[0])])[0]))
    result = {
        "model": llm.name,
        "threads": args.threads,
        "gpu_layers": args.gpu_layers,
        "gpu_offload_supported": bool(llama_cpp.llama_supports_gpu_offload()),
        "contexts": len(llm._contexts),
        "side_by_side": side_by_side(llm),
        "prompt_tokens": prompt_tokens,
        "first_token_ms_cold": {"p50": pct(cold, 50), "p95": pct(cold, 95), "n": len(cold)},
        "first_token_ms_cached_prefix": {"p50": pct(cached, 50), "p95": pct(cached, 95), "n": len(cached)},
        "tokens_per_second": {"p50": round(float(np.median(rates)), 1) if rates else None},
        "tool_call_parse_rate": round(parsed / total, 3),
        "tool_calls": total,
        "tool_call_ms": {"p50": pct(tool_latency, 50), "p95": pct(tool_latency, 95)},
        "agent": agent,
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
