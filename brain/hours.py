"""Opening hours as data: the day a caller asks about, answered for that day alone.

"Are you open Wednesday?" wants Wednesday's hours, not the week; "today", "tomorrow", "right now" and
"this Saturday" are days in the business's time zone. The weekly hours come from the configuration;
exceptions come from the configuration's ``hours_exceptions`` lines and from the documents, read the
same way: a closure on dates ("closed 24-26 December", "closed on Christmas Day") or a weekday open only
in some weeks ("first and third Saturday of the month only"). A sentence that states an exception and
cannot be computed is said beside the hours, never dropped.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from brain.prompt import DAYS, WEEKDAY, business_hours_text
from config.settings import JobSettings

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {
    m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|" \
         r"jun|jul|aug|sep|sept|oct|nov|dec)\.?"
_DAY_NUMBER = r"(\d{1,2})(?:st|nd|rd|th)?(?!\d)"
_RANGE = r"\s*(?:-|–|—|to|until|through|thru)\s*(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday),?\s+)?"
_HOLIDAYS = {"christmas eve": (12, 24), "christmas day": (12, 25), "christmas": (12, 25), "boxing day": (12, 26),
             "new year's eve": (12, 31), "new years eve": (12, 31), "new year's day": (1, 1), "new years day": (1, 1),
             "new year's": (1, 1)}
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "last": -1}
_EXCEPTION_CUE = re.compile(r"\b(only|except|closed|closes|by appointment|holiday|holidays|every other|alternate|"
                            r"first|second|third|fourth|last)\b", re.I)
_NOW = re.compile(r"\b(right now|at the moment|currently|open now|still open|now)\b", re.I)
_TODAY = re.compile(r"\b(today|tonight|this (?:morning|afternoon|evening))\b", re.I)
_TOMORROW = re.compile(r"\btomorrow\b", re.I)
_WEEKEND = re.compile(r"\b(?:the |this |on the )?weekends?\b", re.I)
_ASKED_DAY = re.compile(r"\b(this|next|coming|on)?\s*" + WEEKDAY + r"\b", re.I)
_CLOSE_ASKED = re.compile(r"\b(close|closing|shut|until|till)\b", re.I)
# "When do you open?" asks for the opening time; "when are you open?" for the day's hours.
_OPEN_ASKED = re.compile(r"\b(?:what time|when) (?:do|does|will|did) (?:you|it|the \w+|\w+) (?:open|start)\b"
                         r"|\bopening time\b|\bhow early\b", re.I)
_PART_OF_DAY = {"morning": (time(0), time(12)), "afternoon": (time(12), time(17)), "evening": (time(17), time(23, 59)),
                "tonight": (time(17), time(23, 59)), "lunchtime": (time(12), time(14)), "lunch": (time(12), time(14))}
_NUMBERS = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_CLOCK_NUMBER = r"(\d{1,2}|" + "|".join(_NUMBERS) + r")"  # "4" or "four"
_AT_TIME = re.compile(r"\b(?:at|around|about|by|after|before|until|till)\s+" + _CLOCK_NUMBER +
                      r"(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.|o'?clock)?", re.I)
_YES_NO = re.compile(r"^\s*(?:and\s+|so\s+|hi,?\s+)?(are|is|will|do|can|could|may|would)\b", re.I)


def clock_text(t: time) -> str:
    suffix = "AM" if t.hour < 12 else "PM"
    hour = t.hour % 12 or 12
    if t.hour == 12 and t.minute == 0:
        return "noon"
    return f"{hour} {suffix}" if t.minute == 0 else f"{hour}:{t.minute:02d} {suffix}"


def _span(job: JobSettings, day: str) -> tuple[time, time] | None:
    span = job.business_hours.get(day)
    if not span:
        return None
    start, end = span.split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


@dataclass(frozen=True)
class Exception_:
    """One stated exception: its sentence, and what of it could be computed."""

    text: str
    dates: frozenset[tuple[int, int]] = frozenset()  # (month, day) closed
    weekday: str | None = None  # a weekday that is open (or closed) only in some weeks
    weeks: frozenset[int] = frozenset()  # 1..4, -1 = last
    closed_weeks: bool = False  # "closed the first Monday" (else "open the first and third Saturday only")
    until: time | None = None  # "every Thursday in January we stay open until 8 pm": the day's later closing
    months: frozenset[int] = frozenset()  # the months such an extension holds in (all when empty)
    on_dates: frozenset[tuple[int, int]] = frozenset()  # the dates it holds on (all when empty)

    def extends(self, day: date | None, weekday: str | None = None) -> time | None:
        """The later closing time this states for the day, or None."""
        if self.until is None:
            return None
        if day is None:
            return self.until if self.weekday and weekday == self.weekday and not self.on_dates else None
        if self.weekday and DAYS[day.weekday()] != self.weekday:
            return None
        if self.months and day.month not in self.months or self.on_dates and (day.month, day.day) not in self.on_dates:
            return None
        return self.until

    def closes(self, day: date) -> bool:
        if self.until is not None:
            return False
        if (day.month, day.day) in self.dates:
            return True
        if self.weekday == DAYS[day.weekday()] and self.weeks:
            week = (day.day - 1) // 7 + 1
            is_last = day.day + 7 > calendar.monthrange(day.year, day.month)[1]
            listed = week in self.weeks or (-1 in self.weeks and is_last)
            return listed if self.closed_weeks else not listed
        return False

    def about(self, weekday: str | None, day: date | None) -> bool:
        if day is not None and self.closes(day):
            return True
        if self.until is not None:
            return self.extends(day, weekday) is not None
        if day is not None and self.dates:
            return False  # a closure on other dates says nothing of this day
        return bool(weekday) and weekday in self.text.lower()


def _span_dates(first: tuple[int, int], last: tuple[int, int]) -> set[tuple[int, int]]:
    """(month, day) pairs from ``first`` to ``last`` inclusive, across a year's end if need be."""
    year = 2001  # any year that is not a leap year
    start = date(year, *first)
    end = date(year if last >= first else year + 1, *last)
    return {((start + timedelta(days=n)).month, (start + timedelta(days=n)).day) for n in range((end - start).days + 1)}


def _dates_in(text: str) -> set[tuple[int, int]]:
    lowered = text.lower()
    found: set[tuple[int, int]] = set()
    year = r"(?:,?\s+\d{4})?"
    for match in re.finditer(_DAY_NUMBER + r"\s+(?:of\s+)?" + _MONTH + year + _RANGE + _DAY_NUMBER + r"\s+(?:of\s+)?"
                             + _MONTH, lowered):  # "24 December 2026 to 1 January"
        found |= _span_dates((_MONTHS[match.group(2)], int(match.group(1))), (_MONTHS[match.group(4)], int(match.group(3))))
    for match in re.finditer(_MONTH + r"\s+" + _DAY_NUMBER + year + _RANGE + _MONTH + r"\s+" + _DAY_NUMBER, lowered):
        found |= _span_dates((_MONTHS[match.group(1)], int(match.group(2))), (_MONTHS[match.group(3)], int(match.group(4))))
    for match in re.finditer(_DAY_NUMBER + f"(?:{_RANGE}{_DAY_NUMBER})?\\s+(?:of\\s+)?" + _MONTH, lowered):
        first, last, month = int(match.group(1)), int(match.group(2) or match.group(1)), _MONTHS[match.group(3)]
        found |= {(month, d) for d in range(first, min(last, 31) + 1)}
    for match in re.finditer(_MONTH + r"\s+" + _DAY_NUMBER + f"(?:{_RANGE}{_DAY_NUMBER})?", lowered):
        month, first, last = _MONTHS[match.group(1)], int(match.group(2)), int(match.group(3) or match.group(2))
        found |= {(month, d) for d in range(first, min(last, 31) + 1)}
    for name, when in _HOLIDAYS.items():
        if re.search(rf"\b{re.escape(name)}\b", lowered):
            found.add(when)
    return found


def exception_texts(texts: list[str]) -> list[str]:
    """The sentences of the documents that state an exception to the opening hours."""
    return [t for t in texts if re.search(r"\b(open|opens|closed|closes|hours)\b", t, re.I) and parse_exception(t)]


_LATER = re.compile(r"\b(?:stay|staying|stays|are|is|we'?re|open|opens|opening)\s+(?:open\s+)?(?:late\s+)?(?:until|till|to|til)\s+"
                    r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?", re.I)
_IN_MONTH = re.compile(r"\b(?:in|during|throughout|every \w+ (?:in|of))\s+" + _MONTH + r"\b(?!\s+\d{1,2}(?!\d))", re.I)


def _extension(text: str) -> Exception_ | None:
    """"Every Thursday in January we stay open until 8 pm": later closing on some days (why its own parse:
    it opens, where the other exceptions close or narrow)."""
    later = _LATER.search(text)
    if not later:
        return None
    hour, minute = int(later.group(1)), int(later.group(2) or 0)
    suffix = (later.group(3) or "").lower().replace(".", "")
    if suffix == "pm" and hour < 12 or not suffix and 1 <= hour <= 11:
        hour += 12  # "until 8": a closing time is in the evening
    if hour > 23 or minute > 59:
        return None
    lowered = text.lower()
    weekday = re.search(WEEKDAY, lowered)
    months = frozenset(_MONTHS[m.group(1)] for m in _IN_MONTH.finditer(lowered))
    on_dates = frozenset(_dates_in(text))
    if not weekday and not months and not on_dates:
        return None  # "we're open until 6" restates a day's hours
    return Exception_(" ".join(text.split()), weekday=weekday.group(1) if weekday else None, until=time(hour, minute),
                      months=months, on_dates=on_dates)


def parse_exception(text: str) -> Exception_ | None:
    """An hours exception in a sentence, or None when it states none."""
    lowered = text.lower()
    extension = _extension(text)
    if extension is not None:
        return extension
    if not _EXCEPTION_CUE.search(lowered):
        return None
    # "... closed 24-31 December, reopening 4 January": the reopening date is no closure, but ends it
    parts = re.split(r"\b(?:re-?open\w*|open again|back on)\b", text, maxsplit=1, flags=re.I)
    closing, reopening = parts[0], parts[1] if len(parts) > 1 else ""
    dates = _dates_in(closing) if re.search(r"\bclosed|\bclos(es|ing)\b|\bshut\b", lowered) else set()
    reopen = sorted(_dates_in(reopening))
    if dates and reopen:  # "closed 24 December to 1 January; we reopen on Monday 4 January": the 2nd and 3rd too
        last = max(dates, key=lambda md: (md[0] < 6, md))  # a closure over New Year ends in January
        first_back = min(reopen, key=lambda md: (md[0] >= 6, md))
        back = date(2001 + (first_back < last), *first_back) - timedelta(days=1)
        dates |= _span_dates(last, (back.month, back.day))
    weekday, weeks = None, set()
    ordinal = re.search(r"((?:(?:first|second|third|fourth|last|1st|2nd|3rd|4th)(?:\s*(?:,|and|&)\s*)?)+)\s+" + WEEKDAY,
                        lowered)
    if ordinal:
        weeks = {_ORDINALS[w] for w in re.findall(r"first|second|third|fourth|last|1st|2nd|3rd|4th", ordinal.group(1))}
        weekday = ordinal.group(2)
    if not dates and not weeks and not re.search(WEEKDAY, lowered) and "holiday" not in lowered:
        return None
    if not dates and not weeks and not re.search(r"\b(only|except|by appointment|every other|alternate|holidays?)\b",
                                                 lowered):
        return None  # "Office hours: ... Friday 9 to 4, closed Saturday and Sunday" restates the week
    closed = bool(re.search(r"\b(closed|shut|no lessons|no classes|no appointments)\b", lowered)) and not re.search(
        r"\bonly\b|\bopen\b", lowered)
    return Exception_(" ".join(text.split()), frozenset(dates), weekday, frozenset(weeks), closed)


@dataclass(frozen=True)
class DayAsked:
    label: str  # "today", "tomorrow", "on Saturday", "right now"
    weekday: str
    day: date | None  # a concrete date, or None for "on Saturdays" in general
    now: bool = False


def day_asked(text: str, now: datetime) -> list[DayAsked]:
    """The days a question is about (two for "the weekend"), in the business's local time ``now``."""
    today = now.date()
    lowered = text.lower()
    for name, (month, number) in _HOLIDAYS.items():
        if re.search(rf"\b{re.escape(name)}\b", lowered):
            day = date(today.year, month, number)
            day = day if day >= today else date(today.year + 1, month, number)
            return [DayAsked(f"on {name.title()}", DAYS[day.weekday()], day)]
    dated = _dates_in(text)
    if dated:
        month, number = min(dated)
        day = date(today.year, month, number)
        day = day if day >= today else date(today.year + 1, month, number)
        return [DayAsked(f"on {calendar.month_name[month]} {number}", DAYS[day.weekday()], day)]
    if _TOMORROW.search(text):
        day = today + timedelta(days=1)
        return [DayAsked("tomorrow", DAYS[day.weekday()], day)]
    if _TODAY.search(text):
        return [DayAsked("today", DAYS[today.weekday()], today)]
    if _WEEKEND.search(text):
        general = not re.search(r"\bthis\b", lowered)
        out = []
        for name in ("saturday", "sunday"):
            ahead = (DAYS.index(name) - today.weekday()) % 7
            out.append(DayAsked(f"on {name.capitalize()}", name, None if general else today + timedelta(days=ahead)))
        return out
    match = _ASKED_DAY.search(text)
    if match:
        qualifier, name = (match.group(1) or "").lower(), match.group(2).lower()
        plural = match.group(0).lower().rstrip().endswith("s") and not name.endswith("s")
        ahead = (DAYS.index(name) - today.weekday()) % 7
        if qualifier == "next" and ahead == 0:
            ahead = 7
        concrete = qualifier in ("this", "next", "coming") or (not plural and qualifier == "on") or not plural
        day = today + timedelta(days=ahead) if concrete else None
        label = "today" if day == today and qualifier != "next" else f"on {name.capitalize()}"
        return [DayAsked(label, name, day)]
    if _NOW.search(text):
        return [DayAsked("right now", DAYS[today.weekday()], today, now=True)]
    return []


def _next_opening(job: JobSettings, after: date, exceptions: list[Exception_], today: date) -> str:
    for offset in range(1, 15):
        day = after + timedelta(days=offset)
        span = _span(job, DAYS[day.weekday()])
        if span and not any(e.closes(day) for e in exceptions):
            when = "tomorrow" if day == today + timedelta(days=1) else f"on {DAYS[day.weekday()].capitalize()}"
            if (day - today).days > 6:
                when += f" {day.day} {calendar.month_name[day.month]}"
            return f" We open again {when} at {clock_text(span[0])}."
    return ""


def _short(text: str, words: int = 16) -> str:
    """An exception as said beside the hours: its first sentence, at most ``words`` words."""
    first = re.split(r"(?<=[.!?])\s+", text.strip())[0]
    cut = first.split()
    said = " ".join(cut[:words]).rstrip(",;:") if len(cut) > words else first.rstrip(".")
    return said + "."


_HALF_PAST = re.compile(r"\bhalf (?:past )?" + _CLOCK_NUMBER + r"\b", re.I)
_QUARTER_PAST = re.compile(r"\bquarter past " + _CLOCK_NUMBER + r"\b", re.I)
_QUARTER_TO = re.compile(r"\bquarter to " + _CLOCK_NUMBER + r"\b", re.I)


def _hour_of(raw: str) -> int:
    """"4" or "four" as 4."""
    return int(raw) if raw.isdigit() else _NUMBERS[raw.lower()]


def _time_asked(question: str) -> tuple[time, time] | None:
    """The part of the day or the time the question is about ("tomorrow morning", "at four"), if any."""
    lowered = question.lower()
    for word, window in _PART_OF_DAY.items():
        if re.search(rf"\b{word}\b", lowered):
            return window
    # "about half six" is 6:30, "quarter to five" 4:45 (British clock talk)
    question = _HALF_PAST.sub(lambda m: f"{m.group(1)}:30", question)
    question = _QUARTER_PAST.sub(lambda m: f"{m.group(1)}:15", question)
    question = _QUARTER_TO.sub(lambda m: f"{_hour_of(m.group(1)) - 1 or 12}:45", question)
    match = _AT_TIME.search(question)
    if not match:
        return None
    hour = _hour_of(match.group(1))
    minute = int(match.group(2) or 0)
    suffix = (match.group(3) or "").lower().replace(".", "")
    if suffix == "pm" and hour < 12 or not suffix.startswith(("am", "pm")) and 1 <= hour <= 7:
        hour += 12  # "at four" in business hours is four in the afternoon
    if hour > 23 or minute > 59:
        return None
    moment = time(hour, minute)
    return moment, moment


class HoursAnswerer:
    """Answers hours questions for the day asked, from the configuration and the stated exceptions."""

    def __init__(self, job: JobSettings, exception_texts: list[str]) -> None:
        self.job = job
        parsed = (parse_exception(t) for t in [*job.hours_exceptions, *exception_texts])
        self.exceptions = [e for e in parsed if e is not None]
        self.zone = ZoneInfo(job.timezone)

    def answer(self, question: str, now_utc: datetime) -> str:
        now = now_utc.astimezone(self.zone)
        asked = day_asked(question, now)
        if not asked:
            general = [_short(e.text) for e in self.exceptions if e.weeks or e.weekday]
            return f"Our hours are {business_hours_text(self.job)}." + (f" {general[0]}" if general else "")
        return " ".join(self._one(question, a, now) for a in asked[:2])

    def _one(self, question: str, asked: DayAsked, now: datetime) -> str:
        # "Morning. Are you open today? I was going to bring some books round.": the asking sentence decides
        yes_no = any(_YES_NO.match(s) for s in re.split(r"(?<=[.!?])\s+", question))
        span = _span(self.job, asked.weekday)
        relevant = [e for e in self.exceptions if e.about(asked.weekday, asked.day)]
        closed_by = next((e for e in relevant if asked.day is not None and e.closes(asked.day)), None)
        day_name = asked.weekday.capitalize() + ("s" if asked.day is None else "")
        label = asked.label if asked.day is not None else f"on {day_name}"
        note = ""
        if relevant and closed_by is None:
            note = " " + _short(relevant[0].text)
        if span is None or closed_by is not None:
            because = ""
            if closed_by is not None and closed_by.dates and asked.day is not None:
                last = asked.day
                while any(e.closes(last + timedelta(days=1)) for e in self.exceptions):
                    last += timedelta(days=1)
                if last > asked.day:  # a closure of several days: until when, not the whole notice
                    because = f" We're closed until {DAYS[last.weekday()].capitalize()} {last.day} {calendar.month_name[last.month]}."
            elif closed_by is not None:
                because = f" {_short(closed_by.text)}"
            after = asked.day or now.date()
            reopening = _next_opening(self.job, after, self.exceptions, now.date()) if asked.day is not None else ""
            if reopening and because.startswith(" We're closed until"):
                because = ""  # "we open again on Monday 4 January" says it
            return f"{'No, w' if yes_no else 'W'}e're closed {label}.{because}{reopening}"
        start, end = span
        later = max((t for e in relevant if (t := e.extends(asked.day, asked.weekday)) is not None), default=None)
        if later is not None and later > end:
            end = later  # the late opening is the answer itself, not a note beside it
            note = ""
        wanted = _time_asked(question)
        if wanted is not None and not asked.now:
            inside = start <= wanted[0] < end or start < wanted[1] <= end or (wanted[0] <= start and end <= wanted[1])
            if not inside:
                return (f"{'No, ' if yes_no else ''}{label} we're open from {clock_text(start)} to "
                        f"{clock_text(end)}.{note}")
        if asked.now:
            if start <= now.time() < end:
                return f"{'Yes, w' if yes_no else 'W'}e're open right now, until {clock_text(end)}.{note}"
            if now.time() < start:
                return f"{'No, w' if yes_no else 'W'}e're not open yet. We open today at {clock_text(start)}.{note}"
            return f"{'No, w' if yes_no else 'W'}e're closed for today.{_next_opening(self.job, now.date(), self.exceptions, now.date())}"
        lead = label[0].upper() + label[1:]
        if _CLOSE_ASKED.search(question) and not _OPEN_ASKED.search(question):
            return f"{lead} we close at {clock_text(end)}.{note}"
        if _OPEN_ASKED.search(question):
            return f"{lead} we open at {clock_text(start)}.{note}"
        said = f"{'Yes, ' if yes_no else ''}{label} we're open from {clock_text(start)} to {clock_text(end)}.{note}"
        return said[0].upper() + said[1:]
