"""Rewrite written text the way a person would say it on the phone, before it reaches the TTS voice.

Piper reads digits, symbols and markdown poorly: "$12.50" comes out as noise, "555-0123" as a
subtraction, "**Note**" as asterisks. The language model writes like a chat bot, so every reply
passes through :func:`normalize_for_speech` first. Number words always come from ``num2words``;
this module only decides *which* reading fits (money, a clock time, a phone number, a year...).

The passes run in a fixed order, most specific first, because each one turns digits into words
and so hides them from the later, more general passes: a phone number must be read digit by
digit before the plain-number pass would call it "five hundred fifty-five minus...".

Choices worth knowing:

* 24-hour times (hour 0 or 13-23) are read military style: "17:00" -> "seventeen hundred",
  "17:30" -> "seventeen thirty"; 12-hour times without AM/PM say "o'clock" on the hour.
* AM/PM become the letters "a m" / "p m" so the voice spells them.
* Phone numbers and 5+ digit runs are read digit by digit, groups separated by ", " (a short
  pause); zero is "zero".
* A lone 4-digit number from 1100 to 2099 is read as a year ("1999" -> "nineteen ninety-nine").
* Commas that num2words puts in large numbers are dropped, since a comma is a pause to the voice.
* Markdown list items and headers that lack final punctuation get a "." so the voice pauses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from num2words import num2words

__all__ = ["SUPPORTED_LANGUAGES", "normalize_for_speech"]

#: Languages whose connecting words ("dollars", "point", "o'clock"...) this module knows. The
#: number words themselves would work in any num2words language, but mixing an English "and fifty
#: cents" into French speech is worse than refusing loudly at start-up.
SUPPORTED_LANGUAGES: frozenset[str] = frozenset({"en"})

# --- markdown -------------------------------------------------------------------------------
_MD_HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+", re.MULTILINE)
_MD_LIST = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,2}[.)])[ \t]+", re.MULTILINE)
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\s]+\)")
_MD_STARS = re.compile(r"(?<=\S)\*+|\*+(?=\S)")  # emphasis touches a word; "5 * 3" keeps its star
_MD_UNDERSCORES = re.compile(r"(?<!\w)_{2,}|_{2,}(?!\w)")
_MD_BACKTICKS = re.compile(r"`+")
_ENDS_WITH_PUNCT = re.compile(r"[.!?:;,…]\s*$")

# --- symbols --------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([\w-]+(?:\.[\w-]+)+)")
_LONE_AT = re.compile(r"(?<=\s)@(?=\s)")
_AMPERSAND = re.compile(r"\s*&\s*")
_NUMBER_SIGN = re.compile(r"#(?=\d)")
_PERCENT = re.compile(r"\s*%")

# --- numbers --------------------------------------------------------------------------------
_INT = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"  # "1,250" or "1250"
_AMPM = r"(?P<ap>[AaPp])\.?[ ]?[Mm]\b\.?"  # am, AM, a.m., a m, p.m.

_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:"
    r"\+\d{1,3}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,4}){2,6}"  # +44 20 7946 0958, +1 (555) 123-4567
    r"|(?:1[ .-])?(?:\(\d{3}\)[ ]?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # (555) 123-4567, 1-800-555-1234
    r"|\d{3}-\d{4}"  # 555-0123
    r")"
    r"(?![\w]|-\d)"
)
_EXTENSION = re.compile(r"\bext(?:ension)?\.?[ \t]*#?[ \t]*(\d+)\b", re.IGNORECASE)
_MONEY_SYMBOL = re.compile(
    r"(?P<neg>(?<![\w)\]])-)?(?P<sym>[$€£])[ ]?(?P<int>" + _INT + r")(?:\.(?P<frac>\d+))?"
    r"(?:[ ](?P<scale>thousand|million|billion|trillion)\b)?"
)
_MONEY_CODE = re.compile(
    r"(?<![\d.,])(?P<int>" + _INT + r")(?:\.(?P<frac>\d+))?"
    r"(?:[ ](?P<scale>thousand|million|billion|trillion))?[ ]?(?P<code>USD|EUR|GBP)\b"
)
_CLOCK = re.compile(
    r"(?<![\d:.,$€£])(?P<h>\d{1,2}):(?P<m>[0-5]\d)(?::[0-5]\d)?(?![\d:])(?:[ ]?" + _AMPM + r")?"
)
_HOUR_AMPM = re.compile(r"(?<![\d:.,$€£])(?P<h>\d{1,2})[ ]?" + _AMPM)
_RANGE = re.compile(r"(?<![\w.,-])(\d+)[ ]?[-–][ ]?(\d+)(?![\w-]|[.,]\d)")
_ORDINAL = re.compile(r"(?<!\d)(" + _INT + r")(?:st|nd|rd|th)\b", re.IGNORECASE)
_DECADE = re.compile(r"(?<![\d'’])(?:(1[1-9]\d0|20\d0)|['’]?([1-9]0))s\b")
_NUMBER = re.compile(
    r"(?P<neg>(?<![\w)\]-])-)?"
    r"(?<!\d)"
    r"(?:(?P<int>" + _INT + r")(?P<frac>(?:\.\d+)*)"
    r"|(?<![\w.])(?P<lead>(?:\.\d+)+))"
)
_SPACES = re.compile(r"\s+")

_CURRENCIES: dict[str, tuple[str, str, str, str]] = {
    # symbol/code: (unit, units, subunit, subunits)
    "$": ("dollar", "dollars", "cent", "cents"),
    "USD": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "EUR": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "GBP": ("pound", "pounds", "penny", "pence"),
}
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def normalize_for_speech(text: str, *, lang: str = "en") -> str:
    """Return ``text`` rewritten for a TTS voice: numbers, money, times and symbols as spoken words.

    Text with nothing to rewrite comes back unchanged apart from collapsed whitespace, so this is
    safe to run on every sentence the agent says. ``lang`` accepts region variants ("en-US",
    "en_GB"); anything outside :data:`SUPPORTED_LANGUAGES` raises :class:`ValueError`.
    """
    n2w = _resolve_lang(lang)
    text = _strip_markdown(text)
    text = _EMAIL.sub(_read_email, text)
    text = _LONE_AT.sub("at", text)
    text = _AMPERSAND.sub(" and ", text)
    text = _NUMBER_SIGN.sub("number ", text)

    passes: tuple[tuple[re.Pattern[str], Callable[[re.Match[str], str], str]], ...] = (
        (_ISO_DATE, _read_iso_date),
        (_PHONE, _read_phone),
        (_EXTENSION, lambda m, lg: "extension " + _digits(m.group(1), lg)),
        (_MONEY_SYMBOL, _read_money),
        (_MONEY_CODE, _read_money),
        (_CLOCK, _read_clock),
        (_HOUR_AMPM, _read_hour_ampm),
        (_RANGE, lambda m, lg: f"{_integer(m.group(1), lg)} to {_integer(m.group(2), lg)}"),
        (_ORDINAL, lambda m, lg: _words(int(m.group(1).replace(",", "")), lg, to="ordinal")),
        (_DECADE, _read_decade),
        (_NUMBER, _read_number),
    )
    for pattern, render in passes:
        text = _substitute(pattern, render, text, n2w)
    text = _PERCENT.sub(" percent", text)
    return _SPACES.sub(" ", text).strip()


# --- plumbing -------------------------------------------------------------------------------


def _resolve_lang(lang: str) -> str:
    """Map "en-US" / "en_GB" / "EN" to the num2words code, refusing languages we cannot glue."""
    base = lang.replace("-", "_").split("_", 1)[0].lower()
    if base not in SUPPORTED_LANGUAGES:
        supported = ", ".join(sorted(SUPPORTED_LANGUAGES))
        raise ValueError(f"speech normalization supports {supported}, not {lang!r}")
    return base


def _substitute(
    pattern: re.Pattern[str], render: Callable[[re.Match[str], str], str], text: str, lang: str
) -> str:
    """``pattern.sub`` that keeps words apart: "5kg" must become "five kg", not "fivekg"."""

    def replace(m: re.Match[str]) -> str:
        words = render(m, lang)
        if words == m.group(0):
            return words
        before = m.string[m.start() - 1] if m.start() > 0 else " "
        after = m.string[m.end()] if m.end() < len(m.string) else " "
        if before.isalnum():
            words = " " + words
        if after.isalnum():
            words += " "
        return words

    return pattern.sub(replace, text)


@lru_cache(maxsize=4096)
def _words(number: int, lang: str, *, to: str = "cardinal") -> str:
    """num2words without its commas ("one thousand, two hundred"): a comma would be a pause."""
    return num2words(number, lang=lang, to=to).replace(",", "")


def _digits(digits: str, lang: str) -> str:
    """Digit by digit, the way phone numbers and order numbers are read out."""
    return " ".join(_words(int(d), lang) for d in digits if d.isdigit())


def _integer(raw: str, lang: str, *, allow_year: bool = True) -> str:
    """Read an integer as written: codes with a leading zero or 5+ bare digits digit by digit,
    a lone 1100-2099 as a year, everything else (including "1,250") as a cardinal."""
    if "," in raw:
        return _words(int(raw.replace(",", "")), lang)
    if len(raw) >= 5 or (len(raw) > 1 and raw.startswith("0")):
        return _digits(raw, lang)
    value = int(raw)
    if allow_year and len(raw) == 4 and 1100 <= value <= 2099:
        return _words(value, lang, to="year")
    return _words(value, lang)


def _point(fraction: str, lang: str) -> str:
    """The part after a decimal point, digit by digit ("3.14" -> "... point one four")."""
    return "point " + _digits(fraction, lang)


# --- renderers ------------------------------------------------------------------------------


def _strip_markdown(text: str) -> str:
    """Drop the markdown an LLM likes to emit; a list item or header becomes its own sentence."""
    lines = []
    for line in text.splitlines():
        stripped = _MD_LIST.sub("", _MD_HEADER.sub("", line))
        if stripped != line and stripped.strip() and not _ENDS_WITH_PUNCT.search(stripped):
            stripped = stripped.rstrip() + "."
        lines.append(stripped)
    text = "\n".join(lines)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_STARS.sub("", text)
    text = _MD_UNDERSCORES.sub("", text)
    return _MD_BACKTICKS.sub("", text)


def _read_email(m: re.Match[str]) -> str:
    """"jo.smith@example.com" -> "jo dot smith at example dot com", how it is spelled aloud."""
    user, domain = m.group(1), m.group(2)
    return f"{user.replace('.', ' dot ')} at {domain.replace('.', ' dot ')}"


def _read_iso_date(m: re.Match[str], lang: str) -> str:
    """"2024-03-15" -> "March fifteenth twenty twenty-four"; nobody says the dashes."""
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    year_words = _words(year, lang, to="year")
    return f"{_MONTHS[month - 1]} {_words(day, lang, to='ordinal')} {year_words}"


def _read_phone(m: re.Match[str], lang: str) -> str:
    """Digit by digit, one comma-separated group per group as written, "+" said as "plus"."""
    groups = [_digits(group, lang) for group in re.findall(r"\d+", m.group(0))]
    spoken = ", ".join(groups)
    return "plus " + spoken if m.group(0).startswith("+") else spoken


def _read_money(m: re.Match[str], lang: str) -> str:
    """"$12.50" -> "twelve dollars and fifty cents"; "$1.5 million" -> "one point five million dollars"."""
    unit, units, subunit, subunits = _CURRENCIES[m.groupdict().get("sym") or m.group("code")]
    amount = int(m.group("int").replace(",", ""))
    frac, scale = m.group("frac"), m.group("scale")
    sign = "minus " if m.groupdict().get("neg") else ""
    if scale or (frac is not None and len(frac) > 2):
        spoken = _words(amount, lang)
        if frac:
            spoken += " " + _point(frac, lang)
        return f"{sign}{spoken} {scale + ' ' if scale else ''}{units}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    main = f"{_words(amount, lang)} {unit if amount == 1 else units}"
    if not cents:
        return sign + main
    minor = f"{_words(cents, lang)} {subunit if cents == 1 else subunits}"
    return sign + (minor if amount == 0 else f"{main} and {minor}")


def _ampm(m: re.Match[str]) -> str:
    """"p.m." -> "p m"; keeps a sentence-final period that the abbreviation swallowed."""
    letters = f"{m.group('ap').lower()} m"
    if m.group(0).endswith("."):
        rest = m.string[m.end() :]
        if not rest.strip() or re.match(r"\s+[A-Z]", rest):
            letters += "."
    return letters


def _read_clock(m: re.Match[str], lang: str) -> str:
    """"9:30" -> "nine thirty", "9:05" -> "nine oh five", "9:00" -> "nine o'clock", "17:00" ->
    "seventeen hundred" (24-hour times keep the 24-hour reading rather than guessing a m/p m)."""
    hour, minute = int(m.group("h")), int(m.group("m"))
    if m.group("ap"):
        if not 1 <= hour <= 12:
            return m.group(0)
        hour_words = _words(hour, lang)
        minute_words = "" if minute == 0 else " " + _minutes(minute, lang)
        return f"{hour_words}{minute_words} {_ampm(m)}"
    if hour > 23:
        return m.group(0)
    hour_words = _words(hour, lang)
    if minute:
        return f"{hour_words} {_minutes(minute, lang)}"
    suffix = "hundred" if hour == 0 or hour > 12 else "o'clock"
    return f"{hour_words} {suffix}"


def _minutes(minute: int, lang: str) -> str:
    """Minutes after the hour: "05" is "oh five", as in "nine oh five"."""
    return f"oh {_words(minute, lang)}" if minute < 10 else _words(minute, lang)


def _read_hour_ampm(m: re.Match[str], lang: str) -> str:
    """"5pm" / "5 p.m." -> "five p m"."""
    hour = int(m.group("h"))
    if not 1 <= hour <= 12:
        return m.group(0)
    return f"{_words(hour, lang)} {_ampm(m)}"


def _read_decade(m: re.Match[str], lang: str) -> str:
    """"1990s" -> "nineteen nineties", "'80s" -> "eighties"."""
    year, tens = m.group(1), m.group(2)
    spoken = _words(int(year), lang, to="year") if year else _words(int(tens), lang)
    return spoken[:-1] + "ies" if spoken.endswith("y") else spoken + "s"


def _read_number(m: re.Match[str], lang: str) -> str:
    """Any number left over: cardinal, decimal ("three point five"), year, or digit string."""
    sign = "minus " if m.group("neg") else ""
    if m.group("lead"):
        return sign + " ".join(_point(part, lang) for part in m.group("lead").split(".")[1:])
    raw, frac = m.group("int"), m.group("frac")
    if not frac:
        return sign + _integer(raw, lang, allow_year=not sign)
    spoken = _words(int(raw.replace(",", "")), lang)
    return sign + " ".join([spoken, *(_point(part, lang) for part in frac.split(".")[1:])])
