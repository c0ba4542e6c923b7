#!/usr/bin/env python3
"""Play scripted caller conversations through the employee (the code path of `employai chat`) and
score every turn. Two sample businesses in scripts/eval_data/, memory persisted between calls.

    .venv/bin/python scripts/eval_conversation.py --json [--model PATH.gguf] [--gpu-layers -1] [--only SLUG]

Output: pass rate per category and overall, invented figures, leaks, guard interventions, word-limit
compliance, latency per turn and the overhead of retrieval + policy + guard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import tomllib
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from brain.employee import Brain, SpeechDelta, ToolUsed, TurnDone  # noqa: E402
from brain.facts import figures, support_figures  # noqa: E402
from brain.line import ConsoleLine  # noqa: E402
from brain.llm import LlamaCppBackend  # noqa: E402
from brain.policy import Policy  # noqa: E402
from brain.prompt import business_hours_text  # noqa: E402
from config.settings import JobSettings, LLMSettings, Settings  # noqa: E402
from memory.embeddings import Embedder  # noqa: E402
from memory.service import MemoryService  # noqa: E402
from memory.sqlite_store import SQLiteStore  # noqa: E402

DATA = REPO / "scripts" / "eval_data"
DEFAULT_MAX_WORDS = 40


def pct(values, q):
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def check_turn(reply: str, tools: list[str], expect: dict) -> list[str]:
    """Failed checks of one turn (empty = pass)."""
    failures = []
    lowered = reply.lower()
    for group in expect.get("mention_any", []):
        if not any(option.lower() in lowered for option in group):
            failures.append(f"missing one of {group}")
    for banned in expect.get("not_mention", []):
        if banned and banned.lower() in lowered:
            failures.append(f"mentions {banned!r}")
    limit = expect.get("max_words", DEFAULT_MAX_WORDS)
    if len(reply.split()) > limit:
        failures.append(f"{len(reply.split())} words > {limit}")
    if expect.get("tool") and expect["tool"] not in tools:
        failures.append(f"tool {expect['tool']} not used (used {tools})")
    if expect.get("no_tool") and expect["no_tool"] in tools:
        failures.append(f"tool {expect['no_tool']} used")
    return failures


async def play(conversation, text: str) -> tuple[str, list[str], float, float | None]:
    reply, tools, total, first = [], [], 0.0, None
    async for event in conversation.turn(text):
        if isinstance(event, SpeechDelta):
            reply.append(event.text)
        elif isinstance(event, ToolUsed):
            tools.append(event.name)
        elif isinstance(event, TurnDone):
            total, first = event.total_s, event.first_token_s
    return " ".join(r.strip() for r in reply).strip(), tools, total, first


def run_business(folder: Path, backend, embedder, answer_mode: str | None = None) -> dict:
    job_data = tomllib.loads((folder / "job.toml").read_text())
    if answer_mode:
        job_data["job"]["answer_mode"] = answer_mode
    job = JobSettings(**job_data["job"])
    work = Path(tempfile.mkdtemp(prefix=f"eval-{folder.name}-"))
    store = SQLiteStore(work / "memory.sqlite3")
    service = MemoryService(store, embedder)
    service.ingest(folder / "docs")
    settings = Settings(service={"data_dir": str(work)}, job=job_data["job"])
    brain = Brain(settings, backend=backend, memory=service)
    docs_text = " ".join(p.read_text() for p in (folder / "docs").iterdir() if p.is_file())
    config_text = " ".join([business_hours_text(job), " ".join(t.target for t in job.transfers.values()), job.greeting])
    base_support = support_figures(docs_text + " " + config_text)
    policy = Policy(job)
    scenarios = json.loads((folder / "scenarios.json").read_text())
    caller_ids = {re.sub(r"\D", "", s["caller"]) for s in scenarios}
    results = []
    for scenario in scenarios:
        conversation = brain.conversation(scenario["caller"], ConsoleLine(echo=False))
        conversation.greeting()
        said: list[str] = []
        failures: list[str] = []
        turns = []
        for turn in scenario["turns"]:
            said.append(turn["say"])
            reply, tools, total, first = asyncio.run(play(conversation, turn["say"]))
            turn_failures = check_turn(reply, tools, turn.get("expect", {}))
            support = base_support | support_figures(" ".join(said) + " " + conversation.memory.human() + " "
                                                     + scenario["caller"])
            invented = sorted(figures(reply) - support)
            leak = policy.leaks(reply) or any(
                cid and cid in re.sub(r"\D", "", reply) and cid != re.sub(r"\D", "", scenario["caller"]) for cid in caller_ids)
            if invented:
                turn_failures.append(f"invented figures {invented}")
            if leak:
                turn_failures.append("leak")
            failures += turn_failures
            turns.append({"say": turn["say"], "reply": reply, "tools": tools, "total_s": round(total, 3),
                          "first_s": round(first, 3) if first is not None else None, "failures": turn_failures,
                          "invented": invented, "leak": bool(leak), "words": len(reply.split()),
                          "max_words": turn.get("expect", {}).get("max_words", DEFAULT_MAX_WORDS)})
        asyncio.run(conversation.end())
        for needle in scenario.get("after", {}).get("memory_contains", []):
            if needle.lower() not in conversation.memory.human().lower():
                failures.append(f"memory lacks {needle!r}")
        results.append({"id": scenario["id"], "category": scenario["category"], "passed": not failures,
                        "failures": failures, "turns": turns, "guard_fired": conversation.guard.fired,
                        "policy_blocked": conversation.policy.blocked, "overhead_s": conversation.overhead_s})
    store.close()
    return {"business": folder.name, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="one business folder name")
    parser.add_argument("--failures", action="store_true", help="also print every failing turn")
    parser.add_argument("--answer-mode", choices=["extractive", "generative"], default=None,
                        help="override the businesses' [job] answer_mode")
    args = parser.parse_args()
    backend = LlamaCppBackend.from_settings(
        LLMSettings(model=args.model, n_ctx=4096, n_threads=args.threads, n_gpu_layers=args.gpu_layers))
    embedder = Embedder.from_reference()
    folders = [f for f in sorted(DATA.iterdir()) if f.is_dir() and (args.only in (None, f.name))]
    started = time.time()
    runs = [run_business(folder, backend, embedder, args.answer_mode) for folder in folders]
    by_category: dict[str, list[bool]] = defaultdict(list)
    latencies, overheads, words_ok, invented, leaks, fired, blocked = [], [], [], 0, 0, 0, 0
    failing = []
    for run in runs:
        for result in run["results"]:
            by_category[result["category"]].append(result["passed"])
            fired += result["guard_fired"]
            blocked += result["policy_blocked"]
            overheads += result["overhead_s"]
            if not result["passed"]:
                failing.append({"id": result["id"], "failures": result["failures"],
                                "turns": [(t["say"], t["reply"]) for t in result["turns"]]})
            for turn in result["turns"]:
                latencies.append(turn["total_s"])
                words_ok.append(turn["words"] <= turn["max_words"])
                invented += len(turn["invented"])
                leaks += turn["leak"]
    total = [p for values in by_category.values() for p in values]
    summary = {
        "model": backend.name,
        "answer_mode": args.answer_mode or "per job.toml (default extractive)",
        "businesses": [run["business"] for run in runs],
        "scenarios": len(total),
        "pass_rate": round(sum(total) / len(total), 3) if total else None,
        "by_category": {k: {"passed": sum(v), "of": len(v), "rate": round(sum(v) / len(v), 3)}
                        for k, v in sorted(by_category.items())},
        "invented_figures": invented,
        "leaks": leaks,
        "fact_guard_interventions": fired,
        "policy_blocks": blocked,
        "within_word_limit": round(sum(words_ok) / len(words_ok), 3) if words_ok else None,
        "turn_latency_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95)},
        "guard_retrieval_overhead_ms": {"p50": pct(overheads, 50), "p95": pct(overheads, 95)},
        "eval_seconds": round(time.time() - started, 1),
    }
    if args.failures:
        summary["failing"] = failing
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
