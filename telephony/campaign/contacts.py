"""The contact list of a campaign: a CSV with a number (or SIP URI) column and any other columns.

Every other column reaches the agent as a variable of that contact (``{name}``, ``{time}`` in the
goal). A bad row is reported with its line number and skipped; the rest runs. A problem with the
whole file (unreadable, no number column, a goal naming a column the file lacks) is an error.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from brain.outbound import GoalTemplateError, fill_goal, goal_fields

NUMBER_COLUMNS = ("number", "phone", "phone_number", "telephone", "tel", "mobile", "uri", "sip", "sip_uri")
_SIP_URI = re.compile(r"^sips?:[^@\s<>\"]+@[A-Za-z0-9.\-\[\]:]+(;[^\s]*)?$")
_PHONE_CHARS = re.compile(r"[\s\-.()/]")
_PHONE = re.compile(r"^\+?\d{2,15}$")


class ContactListError(ValueError):
    """The file as a whole cannot be used (it says why)."""


@dataclass(frozen=True)
class Contact:
    line: int  # line of the CSV file, for people reading reports
    uri: str  # what is dialled
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ContactList:
    path: Path
    number_column: str
    columns: list[str]
    contacts: list[Contact]
    problems: list[RowProblem]


def dial_uri(value: str, dial_host: str | None) -> str:
    """A SIP URI as given, or a phone number dialled through the PBX at ``dial_host``."""
    value = value.strip()
    if value.lower().startswith(("sip:", "sips:")):
        if not _SIP_URI.match(value):
            raise ValueError(f"{value!r} is not a valid SIP URI")
        return value
    if value.lower().startswith("tel:"):
        value = value[4:]
    number = _PHONE_CHARS.sub("", value)
    if not _PHONE.match(number):
        raise ValueError(f"{value!r} is not a phone number or SIP URI")
    if not dial_host:
        raise ValueError(f"{value!r} is a phone number, and no [sip] registrar is configured to dial it through")
    return f"sip:{number}@{dial_host}"


def load_contacts(path: Path, goal: str, dial_host: str | None = None) -> ContactList:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContactListError(f"{path}: cannot read it as a UTF-8 CSV file ({exc})") from exc
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(text.splitlines(), dialect)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ContactListError(f"{path}: the file is empty") from None
    lowered = [h.lower() for h in header]
    number_column = next((header[lowered.index(n)] for n in NUMBER_COLUMNS if n in lowered), None)
    if number_column is None:
        raise ContactListError(f"{path}: no number column; name one of: {', '.join(NUMBER_COLUMNS)}")
    try:
        needed = goal_fields(goal)
    except GoalTemplateError as exc:
        raise ContactListError(str(exc)) from exc
    unknown = [name for name in needed if name not in header]
    if unknown:
        raise ContactListError(f"the goal uses {', '.join('{' + n + '}' for n in unknown)}, "
                               f"but {path.name} has no such column (columns: {', '.join(header)})")
    contacts: list[Contact] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            problems.append(RowProblem(line, f"{len(values)} fields, the header has {len(header)}"))
            continue
        row = {h: v.strip() for h, v in zip(header, values)}
        try:
            uri = dial_uri(row[number_column], dial_host)
        except ValueError as exc:
            problems.append(RowProblem(line, str(exc) if row[number_column] else "no number"))
            continue
        try:
            fill_goal(goal, row)
        except GoalTemplateError as exc:
            problems.append(RowProblem(line, str(exc)))
            continue
        if uri in seen:
            problems.append(RowProblem(line, f"same number as line {seen[uri]}"))
            continue
        seen[uri] = line
        contacts.append(Contact(line, uri, row))
    return ContactList(path, number_column, header, contacts, problems)
