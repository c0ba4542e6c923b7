"""normalize_for_speech: what the Piper voice is actually handed for numbers, money, times, symbols."""

from __future__ import annotations

import pytest

from speech.text_normalize import SUPPORTED_LANGUAGES, normalize_for_speech


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("42", "forty-two"),
        ("3.5", "three point five"),
        ("0.75", "zero point seven five"),
        ("1,250", "one thousand two hundred and fifty"),
        ("1,000,000", "one million"),
        ("I have 3 kids.", "I have three kids."),
        ("version 1.2.3", "version one point two point three"),
        (".5 mm", "point five mm"),
        ("-5 degrees", "minus five degrees"),
        ("5kg", "five kg"),
        ("COVID-19", "COVID-nineteen"),
        ("pages 5-10", "pages five to ten"),
        ("#5", "number five"),
    ],
)
def test_cardinals_and_decimals(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("$12.50", "twelve dollars and fifty cents"),
        ("$1", "one dollar"),
        ("$40", "forty dollars"),
        ("$5.00", "five dollars"),
        ("$0.99", "ninety-nine cents"),
        ("$0.01", "one cent"),
        ("$12.5", "twelve dollars and fifty cents"),
        ("$1,250.75", "one thousand two hundred and fifty dollars and seventy-five cents"),
        ("$1.5 million", "one point five million dollars"),
        ("-$5", "minus five dollars"),
        ("€5", "five euros"),
        ("€1", "one euro"),
        ("€2.50", "two euros and fifty cents"),
        ("£3.99", "three pounds and ninety-nine pence"),
        ("£1.01", "one pound and one penny"),
        ("£0.50", "fifty pence"),
        ("12.50 USD", "twelve dollars and fifty cents"),
        ("3 GBP", "three pounds"),
        ("It costs $12.50.", "It costs twelve dollars and fifty cents."),
        ("$2024", "two thousand and twenty-four dollars"),
    ],
)
def test_money(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("9:30", "nine thirty"),
        ("9:05", "nine oh five"),
        ("9:00", "nine o'clock"),
        ("9:30am", "nine thirty a m"),
        ("9:30 AM", "nine thirty a m"),
        ("10:00 a.m", "ten a m"),
        ("5pm", "five p m"),
        ("5 PM", "five p m"),
        ("5 p.m.", "five p m."),
        ("12:15 pm", "twelve fifteen p m"),
        ("Meet at 5 p.m. tomorrow.", "Meet at five p m tomorrow."),
        ("Meet at 5 p.m. Then call.", "Meet at five p m. Then call."),
        # 24-hour times keep the 24-hour reading instead of guessing a m / p m.
        ("17:00", "seventeen hundred"),
        ("17:30", "seventeen thirty"),
        ("17:05", "seventeen oh five"),
        ("00:00", "zero hundred"),
        ("We open 9-5.", "We open nine to five."),
    ],
)
def test_times(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


def test_out_of_range_hours_are_not_read_as_times() -> None:
    assert normalize_for_speech("13pm") == "thirteen pm"
    assert normalize_for_speech("25:30") == "twenty-five:thirty"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("555-0123", "five five five, zero one two three"),
        ("+1 (555) 123-4567", "plus one, five five five, one two three, four five six seven"),
        ("(555) 123-4567", "five five five, one two three, four five six seven"),
        ("555.123.4567", "five five five, one two three, four five six seven"),
        ("1-800-555-1234", "one, eight zero zero, five five five, one two three four"),
        ("+44 20 7946 0958", "plus four four, two zero, seven nine four six, zero nine five eight"),
        ("ext. 204", "extension two zero four"),
        (
            "Call 555-123-4567 ext. 204.",
            "Call five five five, one two three, four five six seven extension two zero four.",
        ),
        ("Your order number is 1234567.", "Your order number is one two three four five six seven."),
        ("zip 90210", "zip nine zero two one zero"),
        ("code 0123", "code zero one two three"),
    ],
)
def test_phone_numbers_and_digit_strings(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("1st", "first"),
        ("2nd", "second"),
        ("23rd", "twenty-third"),
        ("4th", "fourth"),
        ("March 3rd", "March third"),
        ("March 3", "March three"),
        ("15%", "fifteen percent"),
        ("3.5%", "three point five percent"),
        ("10-20%", "ten to twenty percent"),
        ("in 1999", "in nineteen ninety-nine"),
        ("2024", "twenty twenty-four"),
        ("2005", "two thousand and five"),
        ("1100", "eleven hundred"),
        ("2100", "two thousand one hundred"),
        ("1099", "one thousand and ninety-nine"),
        ("1999-2024", "nineteen ninety-nine to twenty twenty-four"),
        ("the 1990s", "the nineteen nineties"),
        ("the '80s", "the eighties"),
        ("2024-03-15", "March fifteenth twenty twenty-four"),
    ],
)
def test_ordinals_percent_years_dates(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("R&D", "R and D"),
        ("Tom & Jerry", "Tom and Jerry"),
        ("Email jo.smith@example.com please.", "Email jo dot smith at example dot com please."),
        ("see you @ noon", "see you at noon"),
        ("**Important:** call *now*", "Important: call now"),
        ("__really__ `code`", "really code"),
        ("# Opening hours", "Opening hours."),
        ("## Hours:", "Hours:"),
        ("See [our site](https://example.com).", "See our site."),
        (
            "We have:\n- apples\n- pears\n* plums!",
            "We have: apples. pears. plums!",
        ),
        ("Steps:\n1. Call us\n2. Email us", "Steps: Call us. Email us."),
        ("snake_case_name stays", "snake_case_name stays"),
    ],
)
def test_symbols_and_markdown(text: str, spoken: str) -> None:
    assert normalize_for_speech(text) == spoken


@pytest.mark.parametrize(
    "text",
    [
        "Hello, how can I help you today?",
        "Mr. Smith isn't in; try again later!",
        "Well... maybe.",
        "",
    ],
)
def test_text_without_numbers_is_unchanged(text: str) -> None:
    assert normalize_for_speech(text) == text


def test_whitespace_is_collapsed() -> None:
    assert normalize_for_speech("  Hello,\n\n  world!\tBye.  ") == "Hello, world! Bye."


def test_mixed_reply() -> None:
    text = "Sure! Your appointment is on March 3rd at 9:30am, and it costs $45. Call 555-0123 to change it."
    assert normalize_for_speech(text) == (
        "Sure! Your appointment is on March third at nine thirty a m, and it costs forty-five dollars. "
        "Call five five five, zero one two three to change it."
    )


def test_output_has_no_digits_left() -> None:
    text = "Order 98765 ships 2024-03-15 at 17:00 for $1,250.99 (15% off), ref #7, 3rd try, +1 555 123 4567."
    spoken = normalize_for_speech(text)
    assert not any(ch.isdigit() for ch in spoken), spoken


def test_language_variants_and_unsupported_language() -> None:
    assert "en" in SUPPORTED_LANGUAGES
    assert normalize_for_speech("42", lang="en-US") == "forty-two"
    assert normalize_for_speech("42", lang="en_GB") == "forty-two"
    with pytest.raises(ValueError, match="fr"):
        normalize_for_speech("42", lang="fr")
