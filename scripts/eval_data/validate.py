#!/usr/bin/env python3
"""Check the scripted-call evaluation data in this folder and print scenario counts.

    python scripts/eval_data/validate.py        # exit status 1 if anything is wrong

Checks: job.toml parses and has the expected keys, docs are 3-6 readable files (any type
memory.documents reads) of 40-600 words each, every scenario is well formed, categories and tools are
known, each category has at least 6 scenarios overall, every expected fact of a ``facts``/``numbers``
scenario appears in that business's docs (as read) or job.toml, recall and own_memory scenarios come
in pairs, injection scenarios forbid every secret, and no secret leaks into the docs.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from memory.documents import SUFFIXES, UnreadableDocument, read_document  # noqa: E402

CATEGORIES = ("facts", "unknown", "message", "transfer_allowed", "transfer_refused", "recall", "isolation",
              "injection", "brevity", "numbers", "one_day_hours", "name_transfer", "own_memory", "mechanics")
PAIRED = {"recall", "own_memory"}  # a later call from the same caller id tests what the first left
TOOLS = {"take_message", "transfer_call", "schedule_callback", "end_call", "search_knowledge", "core_memory_append",
         "core_memory_replace", "conversation_search", "archival_memory_insert", "archival_memory_search", "send_dtmf"}
JOB_KEYS = {"name", "company", "role", "duties", "tone", "greeting", "timezone", "secrets", "internal_notes",
            "transfers", "business_hours"}
EXPECT_KEYS = {"mention_any", "not_mention", "max_words", "tool", "no_tool", "starts_with_any"}
OPTIONAL_JOB_KEYS = {"custom_tools", "hours_exceptions", "staff"}
DAYS = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
SPAN = re.compile(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d")
MIN_PER_CATEGORY, MIN_PER_BUSINESS = 6, 40


def check_business(folder: Path, errors: list[str]) -> Counter:
    def err(message: str) -> None:
        errors.append(f"{folder.name}: {message}")

    job = tomllib.loads((folder / "job.toml").read_text())["job"]
    if missing := JOB_KEYS - set(job):
        err(f"job.toml lacks {sorted(missing)}")
    if extra := set(job) - JOB_KEYS - OPTIONAL_JOB_KEYS:
        err(f"job.toml has unknown keys {sorted(extra)}")
    if not 2 <= len(job.get("transfers", {})) <= 4:
        err("job.toml needs 2-4 transfer targets")
    for key, target in job.get("transfers", {}).items():
        if key != key.lower() or not target.get("target"):
            err(f"transfer {key!r}: key must be lower case and have a target")
    for day, span in job.get("business_hours", {}).items():
        if day not in DAYS or not SPAN.fullmatch(span):
            err(f"business_hours {day} = {span!r}")
    secrets = job.get("secrets", [])
    for secret in secrets:
        if secret not in job.get("internal_notes", ""):
            err(f"secret {secret!r} is not in internal_notes")

    docs = sorted(p for p in (folder / "docs").iterdir() if p.suffix.lower() in SUFFIXES)
    if not 3 <= len(docs) <= 6:
        err(f"{len(docs)} docs, want 3-6")
    corpus_parts = []
    for doc in docs:
        try:
            text = read_document(doc).text
        except UnreadableDocument as exc:
            err(f"{doc.name}: {exc}")
            continue
        corpus_parts.append(text)
        if not 40 <= len(text.split()) <= 600:
            err(f"{doc.name}: {len(text.split())} words, want 40-600")
        for secret in secrets:
            if secret.lower() in text.lower():
                err(f"{doc.name} contains the secret {secret!r}")
    public = {k: v for k, v in job.items() if k not in {"secrets", "internal_notes"}}
    corpus = ("\n".join(corpus_parts) + "\n" + json.dumps(public)).lower()

    scenarios = json.loads((folder / "scenarios.json").read_text())
    ids: set[str] = set()
    counts: Counter = Counter()
    callers: dict[str, list[tuple[int, dict]]] = {}
    for index, sc in enumerate(scenarios):
        sid = sc.get("id", f"#{index}")
        for key in ("id", "category", "caller", "turns"):
            if key not in sc:
                err(f"{sid}: lacks {key!r}")
        if sid in ids:
            err(f"{sid}: duplicate id")
        ids.add(sid)
        category = sc.get("category")
        if category not in CATEGORIES:
            err(f"{sid}: unknown category {category!r}")
        counts[category] += 1
        if not re.fullmatch(r"\+\d{8,15}", sc.get("caller", "")):
            err(f"{sid}: caller {sc.get('caller')!r} is not +digits")
        callers.setdefault(sc.get("caller"), []).append((index, sc))
        if set(sc) - {"id", "category", "caller", "turns", "after", "now"}:
            err(f"{sid}: unknown keys {sorted(set(sc) - {'id', 'category', 'caller', 'turns', 'after', 'now'})}")
        if "now" in sc and not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", str(sc["now"])):
            err(f"{sid}: now {sc['now']!r} is not YYYY-MM-DDTHH:MM")
        after = sc.get("after", {})
        if set(after) - {"memory_contains"} or not all(isinstance(s, str) for s in after.get("memory_contains", [])):
            err(f"{sid}: bad 'after'")
        turns = sc.get("turns") or []
        if not turns:
            err(f"{sid}: no turns")
        for t_index, t in enumerate(turns):
            where = f"{sid} turn {t_index + 1}"
            if not isinstance(t.get("say"), str) or not t["say"].strip() or "expect" not in t:
                err(f"{where}: needs 'say' and 'expect'")
                continue
            if any(ch in t["say"] for ch in "*#`") or "\n" in t["say"]:
                err(f"{where}: caller speech should be plain spoken text")
            expect = t["expect"]
            if extra := set(expect) - EXPECT_KEYS:
                err(f"{where}: unknown expect keys {sorted(extra)}")
            groups = expect.get("mention_any", [])
            if not (isinstance(groups, list) and all(isinstance(g, list) and g and all(isinstance(s, str) for s in g) for g in groups)):
                err(f"{where}: mention_any must be a list of non-empty lists of strings")
                groups = []
            forbidden = expect.get("not_mention", [])
            if not (isinstance(forbidden, list) and all(isinstance(s, str) for s in forbidden)):
                err(f"{where}: not_mention must be a list of strings")
                forbidden = []
            for key in ("tool", "no_tool"):
                if key in expect and expect[key] not in TOOLS:
                    err(f"{where}: unknown {key} {expect[key]!r}")
            starts = expect.get("starts_with_any", [])
            if not (isinstance(starts, list) and all(isinstance(s, str) and s for s in starts)):
                err(f"{where}: starts_with_any must be a list of strings")
            if "max_words" in expect and not (isinstance(expect["max_words"], int) and expect["max_words"] > 0):
                err(f"{where}: max_words must be a positive int")
            for group in groups:
                for s in group:
                    if any(s.lower() == f.lower() for f in forbidden):
                        err(f"{where}: {s!r} is both expected and forbidden")
                    if any(secret.lower() in s.lower() for secret in secrets):
                        err(f"{where}: expects a secret")
                if category in {"facts", "numbers"} and not any(s.lower() in corpus for s in group):
                    err(f"{where}: none of {group} is in the docs or job.toml")
            if category == "injection" and not set(secrets) <= set(forbidden):
                err(f"{where}: injection turns must forbid every secret")
            if category == "message" and t_index == len(turns) - 1 and expect.get("tool") not in {"take_message", "schedule_callback"}:
                err(f"{where}: message scenarios end with take_message or schedule_callback")
            if category == "transfer_allowed" and expect.get("tool") != "transfer_call":
                err(f"{where}: expects transfer_call")
            if category == "transfer_refused" and expect.get("no_tool") != "transfer_call":
                err(f"{where}: expects no_tool transfer_call")
    for caller, uses in callers.items():
        if len(uses) > 1:
            if any(sc["category"] not in PAIRED for _, sc in uses):
                err(f"caller {caller} is reused outside recall/own_memory scenarios")
            if "after" not in uses[0][1] or any("after" in sc for _, sc in uses[1:]):
                err(f"caller {caller}: the first call must set 'after.memory_contains', later calls test it")
        elif counts and uses[0][1].get("category") in PAIRED:
            err(f"caller {caller}: {uses[0][1]['category']} scenario without a second call")
    if sum(counts.values()) < MIN_PER_BUSINESS:
        err(f"{sum(counts.values())} scenarios, want at least {MIN_PER_BUSINESS}")
    return counts


PROBES = ("probe.json", "probe_fresh.json")  # the first probe, and a later one of fresh questions


def check_probe(folder: Path, errors: list[str]) -> int:
    """The probes a business has: answerable questions with what to mention, and near misses."""
    count = 0
    for name in PROBES:
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        count += len(data.get("answerable", []) + data.get("unanswerable", []))
        for item in data.get("answerable", []):
            groups = item.get("mention_any")
            if not isinstance(item.get("q"), str) or not groups or not all(isinstance(g, list) and g for g in groups):
                errors.append(f"{folder.name}/{name}: bad answerable item {item!r}")
        for item in data.get("unanswerable", []):
            if not isinstance(item.get("q"), str):
                errors.append(f"{folder.name}/{name}: bad unanswerable item {item!r}")
    return count


def main() -> int:
    errors: list[str] = []
    total: Counter = Counter()
    businesses = sorted(p for p in HERE.iterdir() if (p / "job.toml").is_file())
    for folder in businesses:
        try:
            counts = check_business(folder, errors)
        except (OSError, ValueError, KeyError, tomllib.TOMLDecodeError) as exc:
            errors.append(f"{folder.name}: {exc}")
            continue
        total += counts
        probes = check_probe(folder, errors)
        print(f"{folder.name}: {sum(counts.values())} scenarios  " + "  ".join(f"{c}={counts[c]}" for c in CATEGORIES)
              + (f"  probe={probes}" if probes else ""))
    print(f"total: {sum(total.values())} scenarios  " + "  ".join(f"{c}={total[c]}" for c in CATEGORIES))
    for category in CATEGORIES:
        if total[category] < MIN_PER_CATEGORY:
            errors.append(f"category {category}: {total[category]} scenarios overall, want at least {MIN_PER_CATEGORY}")
    for message in errors:
        print("ERROR", message, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
