#!/usr/bin/env python3
"""Play scripted caller conversations through the employee (the code path of `employai chat`) and
score every turn. The sample businesses in scripts/eval_data/, memory persisted between calls; the
held-out business (its folder has HELD_OUT) is reported apart and never tuned on.

    .venv/bin/python scripts/eval_conversation.py --json [--model PATH.gguf] [--gpu-layers -1] [--only SLUG]

Output: pass rate per category, per business and overall, the held-out business's pass rate, invented
figures, leaks, "don't have that" on answerable questions, recall@3 of the right fact, guard
interventions, word-limit compliance, latency per turn and the overhead of retrieval + policy + guard.
Every call happens at a fixed clock (Wednesday 2026-12-09 10:30 in the business's time zone, or the
scenario's ``now``), so "today" has one right answer.
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
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

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
EVAL_NOW = "2026-12-09T10:30"  # a Wednesday
ANSWERABLE = {"facts", "numbers", "one_day_hours"}  # categories whose questions the documents or config answer
DONT_KNOW = "don't have that information"


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
    starts = expect.get("starts_with_any")
    if starts and not any(lowered.lstrip(" \"'").startswith(s.lower()) for s in starts):
        failures.append(f"does not start with one of {starts}")
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


def recall_at_3(brain, question: str, groups: list[list[str]]) -> bool:
    """Is a fact holding the expected answer among the three best retrieved?"""
    texts = [text.lower() for text in brain.knowledge.top_texts(question, 3)]
    return any(any(option.lower() in text for option in groups[0]) for text in texts)


def run_business(folder: Path, backend, embedder, answer_mode: str | None = None, progress: bool = False) -> dict:
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
    from memory.documents import read_document

    docs_text = " ".join(read_document(p).text for p in sorted((folder / "docs").iterdir()) if p.is_file())
    config_text = " ".join([business_hours_text(job), " ".join(t.target for t in job.transfers.values()), job.greeting])
    base_support = support_figures(docs_text + " " + config_text)
    policy = Policy(job)
    scenarios = json.loads((folder / "scenarios.json").read_text())
    caller_ids = {re.sub(r"\D", "", s["caller"]) for s in scenarios}
    results = []
    zone = ZoneInfo(job.timezone)
    for scenario in scenarios:
        now = datetime.fromisoformat(scenario.get("now", EVAL_NOW)).replace(tzinfo=zone)
        brain.clock = lambda now=now: now
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
            expect = turn.get("expect", {})
            answerable = scenario["category"] in ANSWERABLE and bool(expect.get("mention_any"))
            retrieved = (recall_at_3(brain, turn["say"], expect["mention_any"])
                         if scenario["category"] in ("facts", "numbers") and expect.get("mention_any") else None)
            if invented:
                turn_failures.append(f"invented figures {invented}")
            if leak:
                turn_failures.append("leak")
            failures += turn_failures
            turns.append({"say": turn["say"], "reply": reply, "tools": tools, "total_s": round(total, 3),
                          "first_s": round(first, 3) if first is not None else None, "failures": turn_failures,
                          "invented": invented, "leak": bool(leak), "words": len(reply.split()),
                          "max_words": turn.get("expect", {}).get("max_words", DEFAULT_MAX_WORDS),
                          "answerable": answerable, "dont_know": answerable and DONT_KNOW in reply.lower(),
                          "recall_at_3": retrieved})
        asyncio.run(conversation.end())
        for needle in scenario.get("after", {}).get("memory_contains", []):
            if needle.lower() not in conversation.memory.human().lower():
                failures.append(f"memory lacks {needle!r}")
        if progress:
            print(f"{folder.name} {scenario['id']}: {'ok' if not failures else 'FAILED'}", file=sys.stderr, flush=True)
        results.append({"id": scenario["id"], "category": scenario["category"], "passed": not failures,
                        "failures": failures, "turns": turns, "guard_fired": conversation.guard.fired,
                        "policy_blocked": conversation.policy.blocked, "overhead_s": conversation.overhead_s})
    store.close()
    return {"business": folder.name, "held_out": (folder / "HELD_OUT").exists(), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=None, help="one business folder name")
    parser.add_argument("--failures", action="store_true", help="also print every failing turn (not the held-out's)")
    parser.add_argument("--progress", action="store_true", help="a line per scenario on stderr")
    parser.add_argument("--tuned", action="store_true", help="leave the held-out business out (while working)")
    parser.add_argument("--answer-mode", choices=["extractive", "generative"], default=None,
                        help="override the businesses' [job] answer_mode")
    args = parser.parse_args()
    backend = LlamaCppBackend.from_settings(
        LLMSettings(model=args.model, n_ctx=4096, n_threads=args.threads, n_gpu_layers=args.gpu_layers))
    embedder = Embedder.from_reference()
    folders = [f for f in sorted(DATA.iterdir()) if (f / "job.toml").is_file() and (args.only in (None, f.name))
               and not (args.tuned and (f / "HELD_OUT").exists())]
    started = time.time()
    runs = [run_business(folder, backend, embedder, args.answer_mode, args.progress) for folder in folders]
    by_category: dict[str, list[bool]] = defaultdict(list)
    per_business: dict[str, dict] = {}
    latencies, overheads, words_ok, invented, leaks, fired, blocked = [], [], [], 0, 0, 0, 0
    answerable, dont_know, recalled = 0, 0, []
    failing = []
    held_out: list[bool] = []
    for run in runs:
        passed = [r["passed"] for r in run["results"]]
        categories: dict[str, list[bool]] = defaultdict(list)
        for result in run["results"]:
            categories[result["category"]].append(result["passed"])
        per_business[run["business"]] = {
            "held_out": run["held_out"], "scenarios": len(passed), "pass_rate": round(sum(passed) / len(passed), 3),
            "by_category": {k: round(sum(v) / len(v), 3) for k, v in sorted(categories.items())}}
        if run["held_out"]:
            held_out += passed
        for result in run["results"]:
            if not run["held_out"]:
                by_category[result["category"]].append(result["passed"])
            fired += result["guard_fired"]
            blocked += result["policy_blocked"]
            overheads += result["overhead_s"]
            if not result["passed"]:
                failing.append({"id": result["id"], "held_out": run["held_out"], "failures": result["failures"],
                                "turns": [(t["say"], t["reply"]) for t in result["turns"]]})
            for turn in result["turns"]:
                latencies.append(turn["total_s"])
                words_ok.append(turn["words"] <= turn["max_words"])
                invented += len(turn["invented"])
                leaks += turn["leak"]
                answerable += turn["answerable"]
                dont_know += turn["dont_know"]
                if turn["recall_at_3"] is not None:
                    recalled.append(turn["recall_at_3"])
    total = [p for values in by_category.values() for p in values]
    summary = {
        "model": backend.name,
        "answer_mode": args.answer_mode or "per job.toml (default extractive)",
        "businesses": [run["business"] for run in runs],
        "scenarios": len(total) + len(held_out),
        "pass_rate": round(sum(total) / len(total), 3) if total else None,
        "held_out_pass_rate": round(sum(held_out) / len(held_out), 3) if held_out else None,
        "per_business": per_business,
        "by_category": {k: {"passed": sum(v), "of": len(v), "rate": round(sum(v) / len(v), 3)}
                        for k, v in sorted(by_category.items())},
        "invented_figures": invented,
        "leaks": leaks,
        "dont_know_on_answerable": round(dont_know / answerable, 3) if answerable else None,
        "recall_at_3": round(sum(recalled) / len(recalled), 3) if recalled else None,
        "fact_guard_interventions": fired,
        "policy_blocks": blocked,
        "within_word_limit": round(sum(words_ok) / len(words_ok), 3) if words_ok else None,
        "turn_latency_ms": {"p50": pct(latencies, 50), "p95": pct(latencies, 95)},
        "guard_retrieval_overhead_ms": {"p50": pct(overheads, 50), "p95": pct(overheads, 95)},
        "eval_seconds": round(time.time() - started, 1),
    }
    if args.failures:
        summary["failing"] = [f for f in failing if not f["held_out"]]
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
