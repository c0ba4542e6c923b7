"""Calling hours in the campaign's time zone, and the clock the campaign reads (replaceable in tests)."""

from __future__ import annotations

import re
import threading
import time as _time
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.I)


class Clock(Protocol):
    def now(self) -> datetime: ...  # aware

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        """Sleep, or return early when ``wake`` is set (the campaign was told to stop)."""
        if wake is not None:
            wake.wait(max(0.0, seconds))
        else:
            _time.sleep(max(0.0, seconds))


def parse_duration(text: str) -> float:
    """``30m``, ``90s``, ``1h30m``, ``2d`` or plain seconds -> seconds."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(f"{text!r} is not a duration like 30m, 90s or 1h30m")
    unit = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    return sum(float(n) * unit[u.lower()] for n, u in parts)


@dataclass(frozen=True)
class CallingHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, span: str, zone: str) -> "CallingHours":
        match = _SPAN.match(span.strip())
        if not match:
            raise ValueError(f"calling hours {span!r}: expected HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            raise ValueError(f"calling hours {span!r}: start and end are the same")
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"time zone {zone!r} is unknown (use an IANA name like Europe/London)") from exc
        return cls(time(h1, m1), time(h2, m2), tz)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.zone).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # e.g. 22:00-06:00

    def next_open(self, at: datetime) -> datetime:
        """``at`` when calls may start then, else the next opening (aware, in the campaign's zone)."""
        local = at.astimezone(self.zone)
        if self.is_open(local):
            return local
        day = local.date()
        for offset in (0, 1, 2):
            opening = datetime.combine(day + timedelta(days=offset), self.start, self.zone)
            if opening > local:
                return opening
        raise AssertionError("unreachable: an opening is at most a day away")
