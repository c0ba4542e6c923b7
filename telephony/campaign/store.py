"""Campaign state in one SQLite file: campaigns, their contacts, and every call attempt.

Why it survives ``kill -9`` without calling anyone twice: a worker *claims* a contact in one
transaction (``BEGIN IMMEDIATE``) that also inserts the attempt row, before it dials;
``UNIQUE(contact_id, number)`` makes a second dial of the same attempt impossible. On resume, an
attempt left open by the crash is closed as ``interrupted``: if the call had been answered the contact
is done (they were spoken to); if not, the contact gets its next attempt, whatever its retry budget
(the crash was ours, not their answer: nobody is skipped).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telephony.campaign.contacts import Contact

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY,
    goal TEXT NOT NULL,
    source TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'running'
);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL REFERENCES campaigns(name),
    line INTEGER NOT NULL,
    uri TEXT NOT NULL,
    variables TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dialing', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    outcome TEXT,
    goal_achieved INTEGER,
    summary TEXT,
    recording TEXT,
    conversation_id INTEGER,
    UNIQUE (campaign, uri)
);
CREATE INDEX IF NOT EXISTS contacts_due ON contacts (campaign, state, next_at);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    number INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at REAL NOT NULL,
    answered_at REAL,
    ended_at REAL,
    outcome TEXT,
    sip_code INTEGER,
    call_id TEXT,
    conversation_id INTEGER,
    goal_achieved INTEGER,
    summary TEXT,
    recording TEXT,
    UNIQUE (contact_id, number)
);
"""


class CampaignError(ValueError):
    """A campaign that does not exist, or one that exists already."""


@dataclass(frozen=True)
class Campaign:
    name: str
    goal: str
    source: str
    options: dict[str, Any]
    created_at: float
    status: str


@dataclass(frozen=True)
class Claim:
    """A contact a worker may now dial, and which attempt this is."""

    contact_id: int
    attempt_id: int
    number: int  # 1 = first call
    contact: Contact


class CampaignStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses no commit
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()  # one connection shared by the worker threads

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, fn):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    # -- campaigns -----------------------------------------------------------------------------------
    def create(self, name: str, goal: str, source: str, options: dict[str, Any], contacts: list[Contact]) -> Campaign:
        def create(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM campaigns WHERE name = ?", (name,)).fetchone():
                raise CampaignError(f"campaign {name!r} exists already: resume it with `employai campaign resume {name}`")
            db.execute("INSERT INTO campaigns (name, goal, source, options, created_at) VALUES (?, ?, ?, ?, ?)",
                       (name, goal, source, json.dumps(options), time.time()))
            db.executemany("INSERT INTO contacts (campaign, line, uri, variables) VALUES (?, ?, ?, ?)",
                           [(name, c.line, c.uri, json.dumps(c.variables)) for c in contacts])

        self._write(create)
        return self.campaign(name)

    def campaign(self, name: str) -> Campaign:
        with self._lock:
            row = self._db.execute("SELECT * FROM campaigns WHERE name = ?", (name,)).fetchone()
            names = [r[0] for r in self._db.execute("SELECT name FROM campaigns ORDER BY created_at")]
        if row is None:
            known = f" (known: {', '.join(names)})" if names else ""
            raise CampaignError(f"no campaign named {name!r}{known}")
        return Campaign(row["name"], row["goal"], row["source"], json.loads(row["options"]), row["created_at"],
                        row["status"])

    def campaigns(self) -> list[Campaign]:
        with self._lock:
            names = [r[0] for r in self._db.execute("SELECT name FROM campaigns ORDER BY created_at")]
        return [self.campaign(n) for n in names]

    def set_status(self, name: str, status: str) -> None:
        self._write(lambda db: db.execute("UPDATE campaigns SET status = ? WHERE name = ?", (status, name)))

    # -- the dialling cycle ----------------------------------------------------------------------------
    def claim(self, name: str, now: float, worker: str) -> Claim | None:
        """The next due contact, marked as being dialled, with its attempt row inserted (one transaction)."""

        def claim(db: sqlite3.Connection) -> Claim | None:
            row = db.execute("SELECT * FROM contacts WHERE campaign = ? AND state = 'pending' AND next_at <= ? "
                             "ORDER BY next_at, id LIMIT 1", (name, now)).fetchone()
            if row is None:
                return None
            number = row["attempts"] + 1
            db.execute("UPDATE contacts SET state = 'dialing', attempts = ? WHERE id = ?", (number, row["id"]))
            cursor = db.execute("INSERT INTO attempts (contact_id, number, worker, started_at) VALUES (?, ?, ?, ?)",
                                (row["id"], number, worker, time.time()))
            contact = Contact(row["line"], row["uri"], json.loads(row["variables"]))
            return Claim(row["id"], cursor.lastrowid, number, contact)

        return self._write(claim)

    def answered(self, attempt_id: int, call_id: str, conversation_id: int | None) -> None:
        self._write(lambda db: db.execute(
            "UPDATE attempts SET answered_at = ?, call_id = ?, conversation_id = ? WHERE id = ?",
            (time.time(), call_id, conversation_id, attempt_id)))

    def finish(self, claim: Claim, outcome: str, *, retry_at: float | None, sip_code: int | None = None,
               call_id: str | None = None, conversation_id: int | None = None, goal_achieved: bool | None = None,
               summary: str = "", recording: str | None = None) -> None:
        """Close the attempt; the contact is done, or pending again from ``retry_at``."""
        achieved = None if goal_achieved is None else int(goal_achieved)

        def finish(db: sqlite3.Connection) -> None:
            db.execute("UPDATE attempts SET ended_at = ?, outcome = ?, sip_code = ?, call_id = COALESCE(?, call_id), "
                       "conversation_id = COALESCE(?, conversation_id), goal_achieved = ?, summary = ?, recording = ? "
                       "WHERE id = ?", (time.time(), outcome, sip_code, call_id or None, conversation_id, achieved,
                                        summary, recording, claim.attempt_id))
            state = "pending" if retry_at is not None else "done"
            db.execute("UPDATE contacts SET state = ?, next_at = ?, outcome = ?, goal_achieved = ?, "
                       "summary = ?, recording = COALESCE(?, recording), "
                       "conversation_id = COALESCE(?, conversation_id) WHERE id = ?",
                       (state, retry_at or 0, outcome, achieved, summary, recording, conversation_id,
                        claim.contact_id))

        self._write(finish)

    def recover(self, name: str, now: float) -> dict[str, int]:
        """After a crash: close the attempts left open (see the module docstring). Returns what was done."""

        def recover(db: sqlite3.Connection) -> dict[str, int]:
            done = {"answered": 0, "retry": 0}
            open_attempts = db.execute(
                "SELECT a.id, a.contact_id, a.number, a.answered_at, a.conversation_id FROM attempts a "
                "JOIN contacts c ON c.id = a.contact_id WHERE c.campaign = ? AND a.outcome IS NULL", (name,)).fetchall()
            for row in open_attempts:
                db.execute("UPDATE attempts SET outcome = 'interrupted', ended_at = ? WHERE id = ?", (now, row["id"]))
                if row["answered_at"] is not None:
                    db.execute("UPDATE contacts SET state = 'done', outcome = 'interrupted', conversation_id = ?, "
                               "summary = 'The call was cut off when the campaign stopped.' WHERE id = ?",
                               (row["conversation_id"], row["contact_id"]))
                    done["answered"] += 1
                else:
                    db.execute("UPDATE contacts SET state = 'pending', next_at = ?, outcome = 'interrupted' "
                               "WHERE id = ?", (now, row["contact_id"]))
                    done["retry"] += 1
            # A contact marked as dialling with no open attempt cannot exist (one transaction), but be safe.
            db.execute("UPDATE contacts SET state = 'pending' WHERE campaign = ? AND state = 'dialing' AND id NOT IN "
                       "(SELECT contact_id FROM attempts WHERE outcome IS NULL)", (name,))
            return done

        return self._write(recover)

    # -- reading -----------------------------------------------------------------------------------------
    def next_due(self, name: str) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_at) FROM contacts WHERE campaign = ? AND state = 'pending'",
                                   (name,)).fetchone()
        return row[0]

    def unfinished(self, name: str) -> int:
        """Contacts still pending (retries waiting included) or being dialled."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM contacts WHERE campaign = ? AND state != 'done'",
                                    (name,)).fetchone()[0]

    def counts(self, name: str) -> dict[str, int]:
        """Contacts by final outcome, plus ``pending`` (incl. retries waiting) and ``dialing``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT CASE state WHEN 'done' THEN outcome ELSE state END AS what, COUNT(*) FROM contacts "
                "WHERE campaign = ? GROUP BY what", (name,)).fetchall()
            achieved = self._db.execute("SELECT COUNT(*) FROM contacts WHERE campaign = ? AND goal_achieved = 1",
                                        (name,)).fetchone()[0]
            attempts = self._db.execute("SELECT COUNT(*) FROM attempts a JOIN contacts c ON c.id = a.contact_id "
                                        "WHERE c.campaign = ?", (name,)).fetchone()[0]
        out = {what: n for what, n in rows}
        out["goal_achieved"] = achieved
        out["attempts"] = attempts
        return out

    def contacts(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM contacts WHERE campaign = ? ORDER BY line", (name,)).fetchall()
        return [dict(r) | {"variables": json.loads(r["variables"])} for r in rows]

    def attempts(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT a.*, c.uri, c.line FROM attempts a JOIN contacts c ON c.id = a.contact_id "
                "WHERE c.campaign = ? ORDER BY a.id", (name,)).fetchall()
        return [dict(r) for r in rows]
