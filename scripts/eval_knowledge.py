#!/usr/bin/env python3
"""Answering from documents alone, on questions the scripted calls do not ask: JSON out.

Each sample business may have a ``probe.json`` beside its scenarios: questions a helper wrote from the
business's documents only (not from the code, not from its scenarios), answerable ones with what the
reply must mention and near misses the documents do not answer. Every question goes straight to
``KnowledgeIndex.answer`` (no dialogue, no model), so this measures retrieval and the accept gate:

- answerable right: the reply mentions what it must; "don't know": no fact accepted; wrong: another fact;
- unanswerable honest: no fact accepted (the caller is told we do not have it).

The probe set was first run on 2026-12-07 and the gate was worked on with it since: it is a
development set, not a held-out one (the held-out business is ``larkspur_physio`` of the scripted calls).

    .venv/bin/python scripts/eval_knowledge.py [--only BUSINESS] [--failures]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from brain.knowledge import KnowledgeIndex  # noqa: E402
from memory.embeddings import Embedder  # noqa: E402
from memory.service import MemoryService  # noqa: E402
from memory.sqlite_store import SQLiteStore  # noqa: E402

DATA = REPO / "scripts" / "eval_data"


def mentions(text: str, groups: list[list[str]]) -> bool:
    lowered = text.lower()
    return all(any(m.lower() in lowered for m in group) for group in groups)


def run(only: str | None, failures: bool) -> dict:
    embedder = Embedder.from_reference()
    report: dict = {"per_business": {}, "failing": []}
    totals = {"answerable": 0, "right": 0, "dont_know": 0, "wrong": 0, "unanswerable": 0, "honest": 0}
    timings: list[float] = []
    for probe in sorted(DATA.glob("*/probe.json")):
        business = probe.parent.name
        if only and business != only:
            continue
        company = tomllib.loads((probe.parent / "job.toml").read_text())["job"]["company"]
        with tempfile.TemporaryDirectory() as work:
            service = MemoryService(SQLiteStore(Path(work) / "memory.sqlite3"), embedder)
            service.ingest(probe.parent / "docs")
            index = KnowledgeIndex(service, company)
            index.answer("Where are you?")  # builds the index: the first answer's cost is no answer's
            data = json.loads(probe.read_text())
            counts = dict.fromkeys(totals, 0)
            for item in data["answerable"]:
                started = time.perf_counter()
                found = index.answer(item["q"])
                timings.append((time.perf_counter() - started) * 1000)
                counts["answerable"] += 1
                outcome = "dont_know" if found is None else "right" if mentions(found.text, item["mention_any"]) else "wrong"
                counts[outcome] += 1
                if outcome != "right":
                    report["failing"].append({"business": business, "q": item["q"], "outcome": outcome,
                                              "said": found.text if found else None})
            for item in data["unanswerable"]:
                found = index.answer(item["q"])
                counts["unanswerable"] += 1
                counts["honest"] += found is None
                if found is not None:
                    report["failing"].append({"business": business, "q": item["q"], "outcome": "answered",
                                              "said": found.text})
        report["per_business"][business] = _rates(counts)
        for key in totals:
            totals[key] += counts[key]
    report.update(_rates(totals))
    timings.sort()
    report["answer_ms"] = {"p50": round(timings[len(timings) // 2], 1) if timings else None,
                           "p95": round(timings[int(len(timings) * 0.95)], 1) if timings else None}
    if not failures:
        del report["failing"]
    return report


def _rates(counts: dict[str, int]) -> dict:
    answerable, unanswerable = counts["answerable"] or 1, counts["unanswerable"] or 1
    return {"answerable": counts["answerable"], "right": round(counts["right"] / answerable, 3),
            "dont_know": round(counts["dont_know"] / answerable, 3), "wrong": round(counts["wrong"] / answerable, 3),
            "unanswerable": counts["unanswerable"], "honest": round(counts["honest"] / unanswerable, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="one business folder")
    parser.add_argument("--failures", action="store_true", help="list every question not answered as it should be")
    args = parser.parse_args()
    print(json.dumps(run(args.only, args.failures), indent=2))


if __name__ == "__main__":
    main()
