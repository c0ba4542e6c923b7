"""A campaign's results as CSV: one row per contact, their own columns, then what happened.

One writer serves ``employai campaign export`` and the console's download, so both give the same file.
"""

from __future__ import annotations

import csv
from typing import Any, TextIO

FIXED_COLUMNS = ("line", "uri", "outcome", "attempts", "goal_achieved", "summary", "recording", "conversation_id")


def write_results(rows: list[dict[str, Any]], handle: TextIO) -> None:
    """``rows`` as ``CampaignStore.contacts`` returns them."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row["variables"] if c not in columns and c not in FIXED_COLUMNS]
    writer = csv.DictWriter(handle, fieldnames=["line", "uri", *columns, *FIXED_COLUMNS[2:]])
    writer.writeheader()
    for row in rows:
        writer.writerow({**row["variables"], "line": row["line"], "uri": row["uri"],
                         "outcome": row["outcome"] if row["state"] == "done" else row["state"],
                         "attempts": row["attempts"], "goal_achieved": {None: "", 1: "yes", 0: "no"}[row["goal_achieved"]],
                         "summary": row["summary"] or "", "recording": row["recording"] or "",
                         "conversation_id": row["conversation_id"] or ""})
